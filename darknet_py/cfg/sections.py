"""Typed cfg sections: one dataclass per Darknet section (``base``, ``net``, ``layers``),
the table from section name to class, and ``Cfg``, a whole parsed cfg."""

from __future__ import annotations

from dataclasses import dataclass

from . import basic, classify, recurrent, yolov2  # noqa: F401  (each registers its sections)
from .base import (ACTIVATIONS, FLT_MAX, SECTION_TYPES, FieldInfo, LayerSection,  # noqa: F401
                   Option, Section)
from .layers import (ConvolutionalSection, MaxpoolSection, RouteSection, SamSection,  # noqa: F401
                     ShortcutSection, UpsampleSection, YoloSection)
from .net import NetSection


@dataclass
class Cfg:
    """A cfg: the ``[net]`` section, the layer sections and the source text ("" for a cfg
    built in code; ``to_text()`` writes one)."""

    net: NetSection
    layers: list[LayerSection]
    text: str = ""
    path: str = "<string>"

    @property
    def yolo_layers(self) -> list[YoloSection]:
        return [s for s in self.layers if type(s) is YoloSection]

    def to_text(self) -> str:
        """Darknet cfg text of these sections (see ``darknet_py.cfg.write``)."""
        from .write import cfg_to_text

        return cfg_to_text(self)

    @property
    def source_text(self) -> str:
        """The text this cfg was read from, else ``to_text()``."""
        return self.text or self.to_text()
