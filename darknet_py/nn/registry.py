"""The layer kinds: one module class per Darknet section kind, registered once.

A kind is a ``DarknetLayer`` subclass decorated with ``@register("kind")``.  The class is
the whole torch-side unit: ``build(section, ctx)`` makes the module from its parsed
section (``cfg``) and returns it with its output ``Shape``; ``forward`` is Darknet's
formula; ``darknet_tensors()`` are its ``.weights`` blocks in file order; ``bflops(out)``
and ``describe()`` are what Darknet's load table prints.  The section dataclass, with
Darknet's defaults and the keys that shape the network, is the cfg-side unit
(``cfg.base.register_section``); cfg parsing needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import nn

    from ..cfg import LayerSection

MAX_ELEMENTS = 2 ** 28  # values of one layer's weights or one image's output


@dataclass(frozen=True)
class Shape:
    """Output shape of a layer for one image: channels, height, width."""

    c: int
    h: int
    w: int

    @property
    def size(self) -> int:
        return self.c * self.h * self.w


@dataclass
class BuildContext:
    """What builders know: the network input and the shapes built so far."""

    net_h: int
    net_w: int
    input: Shape
    shapes: list[Shape] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    modules: list[nn.Module] = field(default_factory=list)  # the modules built so far

    @property
    def previous(self) -> Shape:
        return self.shapes[-1] if self.shapes else self.input

    def resolve(self, section: LayerSection, index: int, key: str) -> int:
        """Absolute layer index of a reference ``index`` in ``section`` (Darknet: only
        negative indices are relative; 0 is layer 0)."""
        here = section.index
        absolute = here + index if index < 0 else index
        if not 0 <= absolute < here:
            raise section.error(f"{key}={index} refers to layer {absolute}, but only layers "
                                f"0..{here - 1} come before layer {here}", key)
        if self.kinds[absolute] in HEAD_KINDS:
            raise section.error(f"{key}={index} refers to [{self.kinds[absolute]}] layer "
                                f"{absolute}; refer to the layer before it", key)
        return absolute


#: section kind -> its module class
LAYER_KINDS: dict[str, type] = {}
#: kinds that are detection heads (nothing may read their output)
HEAD_KINDS: set[str] = set()


def register(kind: str, head: bool = False) -> Callable[[type], type]:
    """Class decorator: the module class of section kind ``kind``."""
    def deco(cls: type) -> type:
        if kind in LAYER_KINDS:
            raise ValueError(f"layer kind {kind!r} is registered twice")
        LAYER_KINDS[kind] = cls
        cls.kind = kind
        if head:
            HEAD_KINDS.add(kind)
        return cls
    return deco
