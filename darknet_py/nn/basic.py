"""Modules of the small layers: ``[activation]``, ``[batchnorm]``, ``[empty]`` and
``[implicit]``, each a registered kind (``registry.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .activations import activation as make_activation
from .layers import DarknetBatchNorm2d, DarknetLayer
from .registry import BuildContext, Shape, register


@register("activation")
class Activation(DarknetLayer):
    """``[activation]``: ``act(x)`` (forward_activation_layer)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        return cls(s.activation), ctx.previous

    def __init__(self, activation: str):
        super().__init__()
        self.act = make_activation(activation)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return self.act(x)


@register("batchnorm")
class BatchNorm(DarknetLayer):
    """``[batchnorm]`` (forward_batchnorm_layer): normalized by the rolling statistics
    (eps 1e-5 inside the square root), times the scales, plus the biases; in training
    Darknet's batch statistics with rolling ``.9 * rolling + .1 * batch``.  The file holds
    biases, scales, rolling means and variances (load_batchnorm_weights)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        return cls(ctx.previous.c), ctx.previous

    def __init__(self, channels: int):
        super().__init__()
        self.bn = DarknetBatchNorm2d(channels, eps=1e-5, momentum=0.1)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return self.bn(x)

    def darknet_tensors(self) -> list[Tensor]:
        b = self.bn
        return [b.bias, b.weight, b.running_mean, b.running_var]


@register("empty")
class Empty(DarknetLayer):
    """``[empty]`` / ``[silence]``: its output is the previous layer's."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        return cls(), ctx.previous

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return x


@register("implicit")
class Implicit(DarknetLayer):
    """``[implicit]`` (forward_implicit_layer): its weights, (filters, atoms, 1), for every
    image of the batch, whatever the input."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        return cls(s.filters, s.atoms, s.mean, s.std), Shape(s.filters, s.atoms, 1)

    def __init__(self, filters: int, atoms: int = 1, mean: float = 0.0, std: float = 0.2):
        super().__init__()
        # make_implicit_layer: mean + uniform(-std, std)
        self.weight = nn.Parameter(torch.empty(filters, atoms, 1).uniform_(-std, std) + mean)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return self.weight.unsqueeze(0).expand(x.shape[0], -1, -1, -1)

    def darknet_tensors(self) -> list[Tensor]:
        return [self.weight]
