"""PyTorch modules for Darknet layers.

Every layer is called as ``layer(x, outputs)``: ``x`` is the previous layer's
output and ``outputs`` the list of earlier layer outputs (by Darknet layer
index) that later layers refer to.  Layers holding ``.weights`` data list their
tensors in file order in ``darknet_tensors()``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.boxes import yolo_boxes
from .activations import activation as make_activation

# --------------------------------------------------------------------------- layers


class DarknetLayer(nn.Module):
    """Base class: a layer with no ``.weights`` data and no reference to earlier outputs."""

    #: Darknet indices of earlier layers this layer reads (resolved at build time).
    sources: tuple[int, ...] = ()

    def darknet_tensors(self) -> list[Tensor]:
        """Tensors stored for this layer in a ``.weights`` file, in file order."""
        return []


class DarknetBatchNorm2d(nn.BatchNorm2d):
    """Batch norm with Darknet's training definition: normalize by the mini-batch mean and
    the variance divided by n - 1 (``variance_cpu``); rolling statistics
    ``.99 * rolling + .01 * batch`` (momentum 0.01, unbiased variance).  Eval mode uses the
    rolling statistics, as ``nn.BatchNorm2d``."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        dims = (0, 2, 3)
        mean = x.mean(dims)
        var = x.var(dims, correction=1)
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach(), alpha=m)
                self.num_batches_tracked.add_(1)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return x * scale[None, :, None, None] + (self.bias - mean * scale)[None, :, None, None]


class Convolutional(DarknetLayer):
    """``[convolutional]``: conv, then batch norm (eps 1e-5) or bias, then activation."""

    def __init__(self, in_channels: int, filters: int, size: int, stride: tuple[int, int],
                 padding: int, groups: int, batch_normalize: bool, activation: str,
                 dontloadscales: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, filters, size, stride, padding, groups=groups,
                              bias=not batch_normalize)
        # Darknet's rolling statistics: rolling = .99 * rolling + .01 * batch
        self.bn = (DarknetBatchNorm2d(filters, eps=1e-5, momentum=0.01) if batch_normalize
                   else None)
        self.act = make_activation(activation)
        self.dontloadscales = dontloadscales
        # Darknet's initialization (make_convolutional_layer): uniform(-1, 1) * sqrt(2 / fan_in),
        # zero biases, batch-norm scales 1 (nn.BatchNorm2d already starts there), rolling
        # statistics 0
        scale = math.sqrt(2.0 / (size * size * in_channels / groups))
        with torch.no_grad():
            self.conv.weight.uniform_(-scale, scale)
            if self.conv.bias is not None:
                self.conv.bias.zero_()
            if self.bn is not None:
                self.bn.running_var.zero_()  # Darknet's rolling_variance starts at 0

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    def darknet_tensors(self) -> list[Tensor]:
        if self.bn is None:
            return [self.conv.bias, self.conv.weight]
        return [self.bn.bias, self.bn.weight, self.bn.running_mean, self.bn.running_var,
                self.conv.weight]


class Route(DarknetLayer):
    """``[route]``: concatenate chunk ``group_id`` of ``groups`` of each source (route_layer.c)."""

    def __init__(self, sources: list[int], channels: list[int], groups: int = 1, group_id: int = 0):
        super().__init__()
        self.sources = tuple(sources)
        self.parts = tuple((c // groups * group_id, c // groups) for c in channels)
        self.groups = groups

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        chunks = []
        for i, (start, length) in zip(self.sources, self.parts):
            t = outputs[i]
            assert t is not None
            chunks.append(t if self.groups == 1 else t.narrow(1, start, length))
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, 1)

    def extra_repr(self) -> str:
        return f"sources={list(self.sources)}, parts={list(self.parts)}"


class Shortcut(DarknetLayer):
    """``[shortcut]``: ``act(w0*x + sum_i wi*out[from_i])`` (shortcut_multilayer_cpu).

    With unequal channel counts only the common leading channels are added, as
    Darknet does.  ``weights_type`` per_feature has one weight per input,
    per_channel one per input and channel; ``weights_normalization`` relu or
    softmax normalizes them across the inputs (with Darknet's 1e-4 epsilon).
    """

    def __init__(self, sources: list[int], channels: int, source_channels: list[int],
                 activation: str = "linear", weights_type: str = "none",
                 weights_normalization: str = "none"):
        super().__init__()
        self.sources = tuple(sources)
        self.channels = channels
        self.source_channels = tuple(source_channels)
        self.act = make_activation(activation)
        self.weights_type = weights_type
        self.normalization = weights_normalization
        n = len(sources) + 1
        if weights_type == "per_feature":
            self.weight = nn.Parameter(torch.ones(n))
        elif weights_type == "per_channel":
            self.weight = nn.Parameter(torch.ones(n, channels))
        else:
            self.weight = None

    def _weights(self) -> Tensor:
        w = self.weight
        assert w is not None
        if self.normalization == "relu":
            w = F.relu(w)
            w = w / (1e-4 + w.sum(0, keepdim=True))
        elif self.normalization == "softmax":
            e = torch.exp(w - w.max(0, keepdim=True).values)
            w = e / (1e-4 + e.sum(0, keepdim=True))
        if w.dim() == 1:
            return w.view(-1, 1, 1, 1, 1).expand(-1, 1, self.channels, 1, 1)
        return w.view(w.shape[0], 1, self.channels, 1, 1)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        inputs = [x] + [outputs[i] for i in self.sources]
        w = self._weights() if self.weight is not None else None
        out = x if w is None else x * w[0]
        for k, t in enumerate(inputs[1:], 1):
            assert t is not None
            c = t.shape[1]
            if c > self.channels:
                t = t[:, : self.channels]
            if w is not None:
                t = t * w[k][:, : t.shape[1]]
            if c < self.channels:
                t = F.pad(t, (0, 0, 0, 0, 0, self.channels - c))
            out = out + t
        return self.act(out)

    def darknet_tensors(self) -> list[Tensor]:
        return [] if self.weight is None else [self.weight]


class MaxPool(DarknetLayer):
    """``[maxpool]``: Darknet pads ``padding//2`` before and the rest after (forward_maxpool_layer).

    Output size is ``(h + padding - size) // stride + 1``; padded cells never win.
    """

    def __init__(self, size: int, stride: tuple[int, int], padding: int):
        super().__init__()
        self.size = size
        self.stride = stride
        before = padding // 2
        self.pad = (before, padding - before, before, padding - before)  # left, right, top, bottom

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)

    def extra_repr(self) -> str:
        return f"size={self.size}, stride={self.stride}, pad={self.pad}"


class Upsample(DarknetLayer):
    """``[upsample]``: nearest-neighbour upsampling by ``stride``, times ``scale``."""

    def __init__(self, stride: int, scale: float = 1.0):
        super().__init__()
        self.stride = stride
        self.scale = scale

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        x = F.interpolate(x, scale_factor=self.stride, mode="nearest")
        return x if self.scale == 1.0 else x * self.scale

    def extra_repr(self) -> str:
        return f"stride={self.stride}, scale={self.scale}"


class Sam(DarknetLayer):
    """``[sam]``: spatial attention, ``act(x * out[from])`` element by element (sam_layer.c)."""

    def __init__(self, source: int, activation: str = "linear"):
        super().__init__()
        self.sources = (source,)
        self.act = make_activation(activation)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        other = outputs[self.sources[0]]
        assert other is not None
        return self.act(x * other)


class Yolo(DarknetLayer):
    """``[yolo]``: a detection head.

    In training mode it returns its input (the raw map the loss reads).  In eval
    mode it returns ``(N, A*H*W, 5+C)`` in Darknet's memory order (anchor, row,
    column): cx, cy, w, h in network-input pixels, objectness and per-class
    probability, decoded as ``forward_yolo_layer`` + ``get_yolo_box``:
    ``new_coords=0`` applies the logistic to x, y, obj and classes and uses
    ``exp(t) * anchor`` for the size; ``new_coords=1`` takes the conv's logistic
    output as is and uses ``(2t)^2 * anchor``.  Both scale x, y by
    ``scale_x_y`` around the cell centre.
    """

    def __init__(self, anchors: list[tuple[float, float]], classes: int,
                 net_size: tuple[int, int], scale_x_y: float = 1.0, new_coords: bool = False,
                 grid: tuple[int, int] | None = None):
        super().__init__()
        self.num_anchors = len(anchors)
        self.classes = classes
        self.net_size = net_size  # (width, height) of the network input it was built for
        self.grid = grid  # (width, height) of its input at that size; None: not known
        self.scale_x_y = scale_x_y
        self.new_coords = bool(new_coords)
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32),
                             persistent=False)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        if self.training:
            return x
        return self.decode(x)

    def activate(self, x: Tensor) -> Tensor:
        """Darknet's ``l.output`` of this layer, shaped (N, A, 5+C, H, W)."""
        n, _, h, w = x.shape
        p = x.reshape(n, self.num_anchors, 5 + self.classes, h, w)
        if not self.new_coords:
            p = torch.cat([torch.sigmoid(p[:, :, 0:2]), p[:, :, 2:4],
                           torch.sigmoid(p[:, :, 4:])], 2)
        if self.scale_x_y != 1.0:
            s = self.scale_x_y
            p = torch.cat([p[:, :, 0:2] * s - 0.5 * (s - 1), p[:, :, 2:]], 2)
        return p

    def input_size(self, h: int, w: int) -> tuple[float, float]:
        """(width, height) of the network input that gives an ``h`` x ``w`` grid here: the
        built size scaled by the grid, as ``resize_network`` sets ``net.w``, ``net.h``."""
        net_w, net_h = self.net_size
        if self.grid is None or (w, h) == self.grid:
            return net_w, net_h
        return net_w * w / self.grid[0], net_h * h / self.grid[1]

    def boxes(self, p: Tensor) -> Tensor:
        """(N, A, H, W, 4) boxes relative to the network input of activated output ``p``
        (the input the grid came from, whatever size the model was built for)."""
        net_w, net_h = self.input_size(p.shape[3], p.shape[4])
        return yolo_boxes(p, self.anchors, net_w, net_h, self.new_coords)

    def decode(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        p = self.activate(x)
        net_w, net_h = self.input_size(h, w)
        b = self.boxes(p)
        boxes = torch.stack([b[..., 0] * net_w, b[..., 1] * net_h, b[..., 2] * net_w,
                             b[..., 3] * net_h], -1)  # N, A, H, W, 4 in input pixels
        out = torch.cat([boxes, p[:, :, 4:].permute(0, 1, 3, 4, 2)], -1)  # N, A, H, W, 5+C
        return out.reshape(n, self.num_anchors * h * w, 5 + self.classes)

    def extra_repr(self) -> str:
        return (f"anchors={self.anchors.tolist()}, classes={self.classes}, "
                f"net_size={self.net_size}, scale_x_y={self.scale_x_y}, "
                f"new_coords={int(self.new_coords)}")
