"""Darknet's activations (``activations.c``) as named ``nn.Module`` classes.

Where PyTorch has the same function its module is used (``nn.LeakyReLU(0.1)``,
``nn.Mish``, ``nn.SiLU``...), so quantization tools, ``torch.compile`` and
fusion passes recognise them; Darknet's own variants (its rounded GELU and SELU
constants, hard-mish) are small classes here.  Every module pickles.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from ..cfg.base import ACTIVATIONS as CFG_ACTIVATIONS


class HardMish(nn.Module):
    """``x`` for x > 0, ``x*x/2 + x`` for -2 < x <= 0, else 0 (``hard_mish_yashas``)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x > 0, x, torch.where(x > -2, x * x / 2 + x, torch.zeros_like(x)))


class DarknetGELU(nn.Module):
    """Darknet's tanh approximation of GELU with its rounded constants (``gelu_activate``)."""

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * x * (1 + torch.tanh(0.797885 * x + 0.035677 * x * x * x))


class DarknetSELU(nn.Module):
    """SELU with Darknet's rounded constants 1.0507 and 1.6732 (``selu_activate``)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * torch.expm1(x))


class Ramp(nn.Module):
    """``x * (x > 0) + 0.1 * x`` (``ramp_activate``)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * (x > 0) + 0.1 * x


class Plse(nn.Module):
    """Piecewise-linear logistic: slope 0.01 beyond +-4, ``0.125 x + 0.5`` between."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x < -4, 0.01 * (x + 4),
                           torch.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5))


class Lhtan(nn.Module):
    """Leaky hard tanh on [0, 1]: slope 0.001 outside (``lhtan_activate``)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x < 0, 0.001 * x, torch.where(x > 1, 0.001 * (x - 1) + 1, x))


class Loggy(nn.Module):
    """``2 / (1 + exp(-x)) - 1`` (``loggy_activate``)."""

    def forward(self, x: Tensor) -> Tensor:
        return 2 / (1 + torch.exp(-x)) - 1


class Stair(nn.Module):
    """Darknet's stair (``stair_activate``): ``floor(x / 2)`` where ``floor(x)`` is even,
    else ``x - floor(x) + floor(x / 2)``."""

    def forward(self, x: Tensor) -> Tensor:
        n = torch.floor(x)
        half = torch.floor(x / 2)
        return torch.where(torch.remainder(n, 2) == 0, half, x - n + half)


class NormalizeChannels(nn.Module):
    """Across the channels of each position: positive values over their sum (+ 1e-4),
    the rest 0 (``activate_array_normalize_channels``)."""

    def forward(self, x: Tensor) -> Tensor:
        positive = torch.where(x > 0, x, torch.zeros_like(x))
        return positive / (positive.sum(1, keepdim=True) + 0.0001)


class NormalizeChannelsSoftmax(nn.Module):
    """Softmax across the channels of each position with Darknet's 1e-4 in the sum; the
    exponent is shifted by the channels' maximum only for ``maxval``
    (``activate_array_normalize_channels_softmax``)."""

    def __init__(self, maxval: bool = False):
        super().__init__()
        self.maxval = maxval

    def forward(self, x: Tensor) -> Tensor:
        shift = x.amax(1, keepdim=True) if self.maxval else torch.zeros_like(x[:, :1])
        e = torch.exp(x - shift)
        return e / (e.sum(1, keepdim=True) + 0.0001)


_FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "leaky": lambda: nn.LeakyReLU(0.1),
    "relu": nn.ReLU,
    # relu6_activate: min(max(x, 0), 6), as Darknet's GPU build computes it.  Its CPU
    # build's activate() has no RELU6 case and returns 0 for every value (a Darknet bug
    # left out; see the README).
    "relu6": nn.ReLU6,
    "logistic": nn.Sigmoid,
    "mish": nn.Mish,  # x * tanh(softplus(x)), softplus threshold 20 as Darknet
    "swish": nn.SiLU,  # x * logistic(x)
    "elu": nn.ELU,  # x >= 0 ? x : exp(x) - 1
    "selu": DarknetSELU,
    "gelu": DarknetGELU,
    "hard_mish": HardMish,
    "tanh": nn.Tanh,
    "revleaky": lambda: nn.LeakyReLU(0.1),  # Darknet computes it as leaky
    "relie": lambda: nn.LeakyReLU(0.01),
    "ramp": Ramp,
    "plse": Plse,
    "hardtan": lambda: nn.Hardtanh(-1.0, 1.0),
    "lhtan": Lhtan,
    "loggy": Loggy,
    "stair": Stair,
    "normalize_channels": NormalizeChannels,
    "normalize_channels_softmax": NormalizeChannelsSoftmax,
    "normalize_channels_softmax_maxval": lambda: NormalizeChannelsSoftmax(maxval=True),
}
#: Darknet activation name -> module factory, for exactly the names ``cfg`` accepts (a name
#: added there without a module here fails at import).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {name: _FACTORIES[name]
                                                   for name in CFG_ACTIVATIONS}


def activation(name: str) -> nn.Module:
    """A new module computing Darknet's activation ``name`` (a key of ``ACTIVATIONS``)."""
    try:
        factory = ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{', '.join(ACTIVATIONS)}") from None
    return factory()
