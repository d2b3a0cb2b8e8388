"""Modules of Darknet's classifier and backbone layers: ``[avgpool]``, ``[softmax]``,
``[connected]``, ``[dropout]``, ``[crop]`` and ``[cost]`` (each a registered kind, see
``registry.py``), with Darknet's inference forward."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import activation as make_activation
from .layers import DarknetLayer
from .registry import MAX_ELEMENTS, BuildContext, Shape, register
from .tree import TreeBuffers


@register("avgpool")
class AvgPool(DarknetLayer):
    """``[avgpool]``: each channel's mean over the whole map (forward_avgpool_layer)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        return cls(), Shape(inp.c, 1, 1)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return x.mean((2, 3), keepdim=True)

    def describe(self) -> str:
        return "avg"


@register("softmax")
class Softmax(DarknetLayer):
    """``[softmax]``: softmax of each of ``groups`` equal slices of the flattened input,
    of ``x / temperature`` (softmax_cpu); the output keeps the input's shape."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        if inp.size % s.groups:
            raise s.error(f"the input's {inp.size} values do not split into groups="
                          f"{s.groups}", "groups")
        tree = getattr(s, "softmax_tree", None)
        if tree is not None and tree.n != inp.size:
            raise s.error(f"tree={s.tree} has {tree.n} classes, but the input has "
                          f"{inp.size} values", "tree")
        return cls(s.groups, s.temperature, tree), inp

    def __init__(self, groups: int = 1, temperature: float = 1.0, tree=None):
        super().__init__()
        self.groups, self.temperature = groups, temperature
        self.tree = TreeBuffers(tree, temperature) if tree is not None else None

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        if self.tree is not None:  # softmax_tree: within each group of the tree
            y = self.tree.softmax(x.reshape(x.shape[0], -1)).reshape(x.shape)
        else:
            flat = x.reshape(x.shape[0], self.groups, -1)
            y = torch.softmax(flat / self.temperature, -1).reshape(x.shape)
        if self.training and x.requires_grad:  # backward_softmax_layer: delta passes as is
            return _PassDelta.apply(x, y)
        return y

    def extra_repr(self) -> str:
        return f"groups={self.groups}, temperature={self.temperature}"


class _PassDelta(torch.autograd.Function):
    """Gives ``y`` forward; backward hands the gradient on ``y`` to ``x`` unchanged, as
    Darknet's ``backward_softmax_layer`` adds its ``delta`` to the layer before's (its
    ``softmax_x_ent`` delta ``truth - p`` is already the cross-entropy gradient of the
    logits)."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor) -> Tensor:
        return y.detach().clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


@register("connected")
class Connected(DarknetLayer):
    """``[connected]``: ``act(W x + b)`` of the flattened input, with batch norm between
    (eps 1e-5 inside the square root) when ``batch_normalize`` (forward_connected_layer)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inputs = ctx.previous.size
        if inputs * s.output > MAX_ELEMENTS:
            raise s.error(f"{inputs * s.output:,} weights in one layer is more than "
                          f"{MAX_ELEMENTS:,}", "output")
        module = cls(inputs, s.output, bool(s.batch_normalize), s.activation,
                     bool(s.dontloadscales))
        return module, Shape(s.output, 1, 1)

    def __init__(self, inputs: int, outputs: int, batch_normalize: bool, activation: str,
                 dontloadscales: bool = False):
        super().__init__()
        self.linear = nn.Linear(inputs, outputs, bias=not batch_normalize)
        # Darknet's rolling statistics for connected layers: .95 * rolling + .05 * batch
        self.bn = nn.BatchNorm1d(outputs, eps=1e-5, momentum=0.05) if batch_normalize else None
        self.act = make_activation(activation)
        self.dontloadscales = dontloadscales
        scale = math.sqrt(2.0 / inputs)  # make_connected_layer: uniform(-1, 1) * sqrt(2/in)
        with torch.no_grad():
            self.linear.weight.uniform_(-scale, scale)
            if self.linear.bias is not None:
                self.linear.bias.zero_()

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        y = self.linear(x.reshape(x.shape[0], -1))
        if self.bn is not None:
            y = self.bn(y)
        return self.act(y).reshape(y.shape[0], -1, 1, 1)

    def darknet_tensors(self) -> list[Tensor]:
        if self.bn is None:
            return [self.linear.bias, self.linear.weight]
        return [self.bn.bias, self.linear.weight, self.bn.weight, self.bn.running_mean,
                self.bn.running_var]

    def loaded_tensors(self) -> list[Tensor]:
        tensors = self.darknet_tensors()
        return tensors[:2] if self.dontloadscales else tensors

    def describe(self) -> str:
        return "connected"  # Darknet counts no BFLOPs for it


@register("dropout")
class Dropout(DarknetLayer):
    """``[dropout]``: the input unchanged at inference; in training Darknet's dropout
    (kept values scaled by 1 / (1 - probability))."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        return cls(s.probability), ctx.previous

    def __init__(self, probability: float):
        super().__init__()
        self.probability = probability

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return F.dropout(x, self.probability, self.training)


@register("crop")
class Crop(DarknetLayer):
    """``[crop]`` at inference: the centre ``crop_height`` x ``crop_width``, times 2 minus 1
    unless ``noadjust`` (forward_crop_layer)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        if s.crop_height > inp.h or s.crop_width > inp.w:
            raise s.error(f"crop {s.crop_width}x{s.crop_height} is larger than the input "
                          f"{inp.w}x{inp.h}")
        module = cls((inp.h - s.crop_height) // 2, (inp.w - s.crop_width) // 2,
                     s.crop_height, s.crop_width, bool(s.noadjust))
        return module, Shape(inp.c, s.crop_height, s.crop_width)

    def __init__(self, top: int, left: int, height: int, width: int, noadjust: bool):
        super().__init__()
        self.box = (top, left, height, width)
        self.scale, self.shift = (1.0, 0.0) if noadjust else (2.0, -1.0)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        top, left, h, w = self.box
        return x[:, :, top: top + h, left: left + w] * self.scale + self.shift


@register("cost")
class Cost(DarknetLayer):
    """``[cost]``: the training cost; at inference it passes its input on (the network's
    output is the layer before, as ``get_network_output`` skips it) and its own
    ``l.output`` stays zero."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        return cls(), ctx.previous

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return x

    def darknet_output(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.zeros_like(y).reshape(y.shape[0], -1)


@register("contrastive")
class Contrastive(DarknetLayer):
    """``[contrastive]``: Darknet's training-only contrastive loss; at inference its
    ``l.output`` stays zero (forward_contrastive_layer returns at once), and so is its
    output here."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        if s.yolo_layer:
            target = s.index + s.yolo_layer if s.yolo_layer < 0 else s.yolo_layer
            if not 0 <= target < s.index or ctx.kinds[target] != "yolo":
                raise s.error(f"yolo_layer={s.yolo_layer} must point to an earlier [yolo] "
                              "layer", "yolo_layer")
        return cls(), ctx.previous

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return torch.zeros_like(x)
