"""Recurrent sections for image inputs: ``[crnn]`` (``parse_crnn``), with Darknet's
defaults.  Text models (``[rnn]``, ``[gru]``, ``[lstm]``) are refused by the parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import ACTIVATIONS, LayerSection, choices, register_section


@register_section
@dataclass
class CrnnSection(LayerSection):
    """``[crnn]``: a convolutional recurrent layer: three convolutions (input, self,
    output) around a ``hidden``-channel state."""

    kind: ClassVar[str] = "crnn"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("size", "stride", "padding", "output", "hidden",
                                           "groups", "batch_normalize", "activation",
                                           "shortcut")

    size: int = 3
    stride: int = 1
    dilation: int = 1
    pad: int = 0
    padding: int = 0
    output: int = 1
    hidden: int = 1
    groups: int = 1
    activation: str = field(default="logistic", metadata=choices(*ACTIVATIONS))
    batch_normalize: int = 0
    xnor: int = 0
    shortcut: int = 0

    def finalize(self) -> None:
        if self.pad:
            self.padding = self.size // 2
        for key in ("size", "output", "hidden", "groups"):
            self.check_range(key, 1, 65536)
        for key, bad in (("stride", self.stride != 1), ("dilation", self.dilation != 1),
                         ("xnor", self.xnor)):
            if bad:
                raise self.error(f"{key}={getattr(self, key)} is not supported by darknet-py "
                                 "in [crnn]", key)
