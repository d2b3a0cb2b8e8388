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


_FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "leaky": lambda: nn.LeakyReLU(0.1),
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "logistic": nn.Sigmoid,
    "mish": nn.Mish,  # x * tanh(softplus(x)), softplus threshold 20 as Darknet
    "swish": nn.SiLU,  # x * logistic(x)
    "elu": nn.ELU,  # x >= 0 ? x : exp(x) - 1
    "selu": DarknetSELU,
    "gelu": DarknetGELU,
    "hard_mish": HardMish,
    "tanh": nn.Tanh,
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
