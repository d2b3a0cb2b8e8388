"""Small sections: ``[activation]``, ``[batchnorm]``, ``[empty]`` (``[silence]``) and
``[implicit]``, with Darknet's defaults (``parse_activation``, ``parse_batchnorm``,
the EMPTY case of ``parse_network_cfg``, ``parse_implicit``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import ACTIVATIONS, LayerSection, choices, register_section


@register_section
@dataclass
class ActivationSection(LayerSection):
    """``[activation]``: an activation on its own."""

    kind: ClassVar[str] = "activation"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("activation",)

    activation: str = field(default="linear", metadata=choices(*ACTIVATIONS))


@register_section
@dataclass
class BatchnormSection(LayerSection):
    """``[batchnorm]``: batch norm on its own (scales and biases per channel)."""

    kind: ClassVar[str] = "batchnorm"


@register_section
@dataclass
class EmptySection(LayerSection):
    """``[empty]`` / ``[silence]``: the previous output, unchanged."""

    kind: ClassVar[str] = "empty"
    aliases: ClassVar[tuple[str, ...]] = ("silence",)


@register_section
@dataclass
class ImplicitSection(LayerSection):
    """``[implicit]``: learned values of shape ``filters`` x ``atoms`` x 1, whatever the
    input (YOLOR's implicit knowledge)."""

    kind: ClassVar[str] = "implicit"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("filters", "atoms")

    filters: int = 128
    atoms: int = 1
    mean: float = 0.0
    std: float = 0.2

    def finalize(self) -> None:
        self.check_range("filters", 1, 1 << 16)
        self.check_range("atoms", 1, 1 << 16)
