"""PyTorch modules for Darknet's convolutional, route and shortcut layers, and the base
``DarknetLayer`` (resampling layers are in ``pooling.py``, ``[sam]`` and
``[scale_channels]`` in ``attention.py``, the heads in ``heads.py``, classifier layers in
``classify.py``, YOLOv2's reorg in ``yolov2.py``, ``[crnn]`` in ``recurrent.py``).

Every layer is called as ``layer(x, outputs)``: ``x`` is the previous layer's
output and ``outputs`` the list of earlier layer outputs (by Darknet layer
index) that later layers refer to.  Each class is one registered kind
(``registry.py``): ``build`` from its section, ``forward``, ``darknet_tensors()`` (its
``.weights`` blocks in file order), ``bflops`` and ``describe`` for the load table.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import activation as make_activation
from .registry import MAX_ELEMENTS, BuildContext, Shape, register

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- layers


class DarknetLayer(nn.Module):
    """Base class: a layer with no ``.weights`` data and no reference to earlier outputs."""

    kind = ""  # the section kind (set by ``register``)
    #: Darknet indices of earlier layers this layer reads (resolved at build time).
    sources: tuple[int, ...] = ()

    @classmethod
    def build(cls, section, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        """The module of ``section`` and its output shape (``ctx``: shapes so far)."""
        raise NotImplementedError

    def darknet_tensors(self) -> list[Tensor]:
        """Tensors stored for this layer in a ``.weights`` file, in file order."""
        return []

    def loaded_tensors(self) -> list[Tensor]:
        """The tensors loading reads (``dontloadscales`` leaves some out)."""
        return self.darknet_tensors()

    def bflops(self, out: Shape) -> float:
        """Billions of operations for one image, as Darknet's load table counts them."""
        return 0.0

    def describe(self) -> str:
        """The type column of Darknet's load table."""
        return self.kind

    def darknet_output(self, x: Tensor, y: Tensor) -> Tensor:
        """(N, outputs) Darknet's ``l.output`` after this layer ran on ``x`` giving ``y``."""
        return y.reshape(y.shape[0], -1)


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


@register("convolutional")
class Convolutional(DarknetLayer):
    """``[convolutional]``: conv, then batch norm (eps 1e-5) or bias, then activation."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        if inp.c % s.groups:
            raise s.error(f"input channels {inp.c} are not divisible by groups={s.groups}",
                          "groups")
        h = (inp.h + 2 * s.padding - s.size) // s.stride_y + 1  # convolutional_out_height
        w = (inp.w + 2 * s.padding - s.size) // s.stride_x + 1
        if s.dilation > 1:  # im2col pads by pad * dilation; the size ignores dilation
            span, pad = s.dilation * (s.size - 1) + 1, s.padding * s.dilation
            if ((inp.h + 2 * pad - span) // s.stride_y + 1,
                    (inp.w + 2 * pad - span) // s.stride_x + 1) != (h, w):
                raise s.error(f"dilation={s.dilation} with padding={s.padding} reads past "
                              "the padded input; darknet-py supports it where it does not",
                              "dilation")
        if h < 1 or w < 1:
            raise s.error(f"input {inp.h}x{inp.w} is too small for size={s.size} "
                          f"stride={s.stride_y},{s.stride_x} padding={s.padding}")
        weights = inp.c // s.groups * s.filters * s.size * s.size
        if weights > MAX_ELEMENTS:
            raise s.error(f"{weights:,} weights in one layer (input channels {inp.c}, "
                          f"filters={s.filters}, size={s.size}) is more than "
                          f"{MAX_ELEMENTS:,}")
        module = cls(inp.c, s.filters, s.size, (s.stride_y, s.stride_x), s.padding, s.groups,
                     bool(s.batch_normalize), s.activation,
                     dontloadscales=bool(s.dontloadscales), dilation=s.dilation,
                     xnor=bool(s.xnor))
        if s.share_index is not None:
            module.share(ctx, s)
        return module, Shape(s.filters, h, w)

    def share(self, ctx: BuildContext, s) -> None:
        """Use the weights (and batch norm) of layer ``share_index`` (Darknet's
        ``share_layer``: one set of weights, read from and written to the file once)."""
        index = s.share_index if s.share_index >= 0 else s.index + s.share_index
        other = ctx.modules[index] if 0 <= index < len(ctx.modules) else None
        if not isinstance(other, Convolutional) or other.shared_with is not None:
            raise s.error(f"share_index={s.share_index} is not an earlier, unshared "
                          "[convolutional] layer", "share_index")
        if (other.conv.weight.shape != self.conv.weight.shape
                or (other.bn is None) != (self.bn is None)):
            raise s.error(f"share_index={s.share_index}: layer {index}'s weights do not fit "
                          "this layer", "share_index")
        self.conv.weight = other.conv.weight
        self.conv.bias = other.conv.bias
        self.bn = other.bn
        self.shared_with = index

    def __init__(self, in_channels: int, filters: int, size: int, stride: tuple[int, int],
                 padding: int, groups: int, batch_normalize: bool, activation: str,
                 dontloadscales: bool = False, dilation: int = 1, xnor: bool = False):
        super().__init__()
        self.xnor = xnor
        self.conv = nn.Conv2d(in_channels, filters, size, stride, padding * dilation,
                              dilation=dilation, groups=groups, bias=not batch_normalize)
        # Darknet's rolling statistics: rolling = .99 * rolling + .01 * batch
        self.bn = (DarknetBatchNorm2d(filters, eps=1e-5, momentum=0.01) if batch_normalize
                   else None)
        self.act = make_activation(activation)
        self.dontloadscales = dontloadscales
        self.shared_with: int | None = None  # share_index: the layer whose weights these are
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
        x = self._xnor(x) if self.xnor else self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    def _xnor(self, x: Tensor) -> Tensor:
        """XNOR-Net's convolution (forward_convolutional_layer with ``xnor``): the input
        as +-1 (``binarize_cpu``), each filter as the sign of its weights times their mean
        magnitude (``binarize_weights``), zero padding.  Darknet's CPU build passes the
        whole layer's weight count as the per-filter count and reads past the weights (it
        crashes on the xnor cfgs); darknet-py takes each filter's own weights, as the
        function means."""
        c = self.conv
        w = c.weight
        mean = w.abs().mean((1, 2, 3), keepdim=True)
        binary = torch.where(w > 0, mean, -mean)
        signs = torch.where(x > 0, torch.ones_like(x), -torch.ones_like(x))
        return F.conv2d(signs, binary, c.bias, c.stride, c.padding, c.dilation, c.groups)

    def darknet_tensors(self) -> list[Tensor]:
        if self.shared_with is not None:  # stored with the layer it shares
            return []
        if self.bn is None:
            return [self.conv.bias, self.conv.weight]
        return [self.bn.bias, self.bn.weight, self.bn.running_mean, self.bn.running_var,
                self.conv.weight]

    def loaded_tensors(self) -> list[Tensor]:
        tensors = self.darknet_tensors()
        if self.dontloadscales and len(tensors) == 5:  # only biases and weights are read
            return [tensors[0], tensors[4]]
        return tensors

    def bflops(self, out: Shape) -> float:
        return 2.0 * self.conv.weight.numel() * out.h * out.w / 1e9

    def describe(self) -> str:
        """make_convolutional_layer's text: convX for xnor, filters (/ groups), size,
        stride (dilation)."""
        c = self.conv
        filters = (f"{c.out_channels:5d}/{c.groups:4d} " if c.groups > 1
                   else f"{c.out_channels:5d}      ")
        if c.stride[0] != c.stride[1]:
            size = f"{c.kernel_size[0]:2d}x{c.kernel_size[1]:2d}/{c.stride[0]:2d}x{c.stride[1]:2d} "
        else:
            size = f"{c.kernel_size[0]:2d} x{c.kernel_size[1]:2d}/{c.stride[0]:2d}"
            size += f"({c.dilation[0]:1d})" if c.dilation[0] > 1 else "   "
        return f"{'convX ' if self.xnor else 'conv  '}{filters}{size}"


@register("route")
class Route(DarknetLayer):
    """``[route]``: concatenate chunk ``group_id`` of ``groups`` of each source (route_layer.c)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        if not s.layers:
            raise s.error("layers= is empty", "layers")
        sources = [ctx.resolve(s, i, "layers") for i in s.layers]
        shapes = [ctx.shapes[i] for i in sources]
        first = shapes[0]
        for i, sh in zip(sources[1:], shapes[1:]):
            if (sh.h, sh.w) != (first.h, first.w):
                raise s.error(f"layer {i} is {sh.h}x{sh.w} but layer {sources[0]} is "
                              f"{first.h}x{first.w}; routed layers must have the same size",
                              "layers")
        for i, sh in zip(sources, shapes):
            if sh.c % s.groups:
                raise s.error(f"layer {i} has {sh.c} channels, not divisible by "
                              f"groups={s.groups}", "groups")
        channels = [sh.c for sh in shapes]
        module = cls(sources, channels, s.groups, s.group_id)
        return module, Shape(sum(channels) // s.groups, first.h, first.w)

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


@register("shortcut")
class Shortcut(DarknetLayer):
    """``[shortcut]``: ``act(w0*x + sum_i wi*out[from_i])`` (shortcut_multilayer_cpu).

    With unequal channel counts only the common leading channels are added, as
    Darknet does; a source of another height or width adds its first values in memory
    order to the first values of the output, as Darknet's flat loop does (rarely what a
    cfg means: the build warns).  ``weights_type`` per_feature has one weight per input,
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

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        sources = [ctx.resolve(s, i, "from") for i in s.from_]
        for i in sources:
            sh = ctx.shapes[i]
            if (sh.h, sh.w) != (inp.h, inp.w):
                line = s.options["from"].line if "from" in s.options else s.line
                log.warning("%s:%d: [shortcut] layer %d is %dx%d but the previous layer is "
                            "%dx%d: Darknet adds the first %d values in memory order, and so "
                            "does darknet-py", s.path, line, i, sh.h, sh.w, inp.h, inp.w,
                            min(sh.size, inp.size))
        module = cls(sources, inp.c, [ctx.shapes[i].c for i in sources], s.activation,
                     s.weights_type, s.weights_normalization)
        return module, inp

    def bflops(self, out: Shape) -> float:
        return out.size * len(self.sources) / 1e9 * (2 if self.weight is not None else 1)

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
            if t.shape[2:] != x.shape[2:]:
                out = out + self._flat(t, x, None if w is None else w[k])
                continue
            c = t.shape[1]
            if c > self.channels:
                t = t[:, : self.channels]
            if w is not None:
                t = t * w[k][:, : t.shape[1]]
            if c < self.channels:
                t = F.pad(t, (0, 0, 0, 0, 0, self.channels - c))
            out = out + t
        return self.act(out)

    def _flat(self, t: Tensor, x: Tensor, w: Tensor | None) -> Tensor:
        """``t``'s first values in memory order on the output's first positions, each
        times its output channel's weight (shortcut_multilayer_cpu's ``src_i``)."""
        n = x[0].numel()
        k = min(n, t[0].numel())
        add = t.reshape(t.shape[0], -1)[:, :k]
        if w is not None:
            add = add * w.reshape(1, -1, 1, 1).expand(1, *x.shape[1:]).reshape(1, -1)[:, :k]
        return F.pad(add, (0, n - k)).reshape(x.shape)

    def darknet_tensors(self) -> list[Tensor]:
        return [] if self.weight is None else [self.weight]
