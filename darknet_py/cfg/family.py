"""The two model families of Scaled-YOLOv4 as data, and its compound-scaling rule.

``CspDesign`` describes a CSP-ized detector: a stem, stride-2 backbone stages of residual
blocks (every stage but optionally the first split CSP-style), an SPP block on the last
stage, a CSP-PAN neck and one head per output level, smallest stride first (P3, P4, ...).
A design with ``L`` output levels has ``L + 2`` stages; level ``j`` reads stage ``j + 2``.

``TinyDesign`` describes the CSPOSANet of yolov4-tiny: two stride-2 convolutions, three
blocks whose second half is computed on half the channels (partial in the computational
block), a 1x1 neck and an FPN of up to three levels.

``scaled`` applies the scaling knobs: width (every channel count but the stem's), depth
(residual blocks per stage, as a multiplier or per stage), number of output levels
(a P5 gains P6 and P7 stages and levels, each a copy of the top one), input size,
classes, anchors and activation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Sequence, Union

from ..errors import CfgError
from .base import ACTIVATIONS

log = logging.getLogger(__name__)

Anchor = tuple[int, int]
MIN_STEM_HIDDEN = 32  # the plain first stage's residual keeps 32 channels (the -s model)


@dataclass(frozen=True)
class Head:
    """Darknet keys of the ``[yolo]`` layers: ``common`` to all, ``per_level`` overrides
    (smallest stride first) and the masks when they are not consecutive (yolov4-tiny)."""

    common: dict[str, str] = field(default_factory=dict)
    per_level: tuple[dict[str, str], ...] = ()
    masks: tuple[tuple[int, ...], ...] | None = None

    def keys(self, level: int) -> dict[str, str]:
        extra = self.per_level[level] if level < len(self.per_level) else {}
        return {**self.common, **extra}


@dataclass(frozen=True)
class CspDesign:
    """A CSP-ized Scaled-YOLOv4 model (yolov4-csp, -x, -s, P5, P6, P7); see the module doc.

    Channels are filters as written in the cfg; ``neck`` and ``heads`` are per output
    level, smallest stride first.  ``spp_pairs`` 3x3 convolutions surround the SPP
    (``None``: as many as ``neck_depth``).  ``heads_last`` writes every head after the
    PAN (P family) instead of between its stages (yolov4-csp); ``sam_heads`` puts a
    spatial attention layer in each head (P7).
    """

    name: str
    stem: int
    stages: tuple[int, ...]
    depths: tuple[int, ...]
    neck: tuple[int, ...]
    heads: tuple[int, ...]
    neck_depth: int
    anchors: tuple[Anchor, ...]
    width: int
    height: int
    csp_first_stage: bool = False
    spp_pairs: int | None = None
    heads_last: bool = False
    sam_heads: bool = False
    activation: str = "mish"
    classes: int = 80
    net: dict[str, str] = field(default_factory=dict)
    head: Head = field(default_factory=Head)

    @property
    def levels(self) -> int:
        return len(self.neck)

    @property
    def anchors_per_level(self) -> int:
        return len(self.anchors) // self.levels

    @property
    def max_stride(self) -> int:
        return 2 ** len(self.stages)

    def check(self) -> None:
        """Raise ``CfgError`` unless the lists agree with each other."""
        if len(self.stages) != len(self.depths) or len(self.stages) != self.levels + 2:
            raise CfgError(f"{self.name}: {len(self.stages)} stages and {len(self.depths)} "
                           f"depths for {self.levels} output levels (needs levels + 2)")
        if len(self.heads) != self.levels or len(self.anchors) % self.levels:
            raise CfgError(f"{self.name}: {len(self.heads)} heads and {len(self.anchors)} "
                           f"anchors for {self.levels} output levels")


@dataclass(frozen=True)
class TinyDesign:
    """A yolov4-tiny style CSPOSANet; ``blocks`` are the three blocks' channels, ``top``
    the 3x3 convolution after them, ``neck`` the 1x1 under the top head."""

    name: str
    stem: tuple[int, int]
    blocks: tuple[int, ...]
    top: int
    neck: int
    levels: int
    anchors: tuple[Anchor, ...]
    width: int
    height: int
    activation: str = "leaky"
    classes: int = 80
    net: dict[str, str] = field(default_factory=dict)
    head: Head = field(default_factory=Head)

    @property
    def anchors_per_level(self) -> int:
        return len(self.anchors) // self.levels

    @property
    def max_stride(self) -> int:
        return 2 ** (2 + len(self.blocks))

    def check(self) -> None:
        if not 1 <= self.levels <= len(self.blocks):
            raise CfgError(f"{self.name}: {self.levels} output levels; a tiny model has 1 to "
                           f"{len(self.blocks)}")
        if self.head.masks is None and len(self.anchors) % self.levels:
            raise CfgError(f"{self.name}: {len(self.anchors)} anchors for {self.levels} "
                           f"output levels")


Design = Union[CspDesign, TinyDesign]


def round_channels(channels: float, multiple: int = 8) -> int:
    """Width-scaled channels, rounded half up to a multiple of 8 (never below 8)."""
    return max(multiple, int(math.floor(channels / multiple + 0.5)) * multiple)


def round_depth(blocks: int, multiplier: float) -> int:
    """Depth-scaled block count, rounded half up, at least 1 (2 x 1.25 -> 3, 8 x 1.25 -> 10)."""
    return max(1, int(math.floor(blocks * multiplier + 0.5)))


def _widened(design: Design, w: float) -> Design:
    if isinstance(design, TinyDesign):
        return replace(design, stem=tuple(round_channels(c * w) for c in design.stem),
                       blocks=tuple(round_channels(c * w) for c in design.blocks),
                       top=round_channels(design.top * w), neck=round_channels(design.neck * w))
    return replace(design, stages=tuple(round_channels(c * w) for c in design.stages),
                   neck=tuple(round_channels(c * w) for c in design.neck),
                   heads=tuple(round_channels(c * w) for c in design.heads))


def _deepened(design: CspDesign, depth: float | Sequence[int]) -> CspDesign:
    if isinstance(depth, (int, float)):
        return replace(design, depths=tuple(round_depth(n, depth) for n in design.depths),
                       neck_depth=round_depth(design.neck_depth, depth))
    depths = tuple(int(n) for n in depth)
    if len(depths) != len(design.depths) or min(depths) < 1:
        raise CfgError(f"--depth needs {len(design.depths)} block counts of at least 1 "
                       f"(one per stage of {design.name}), got {list(depths)}")
    return replace(design, depths=depths)


def _relevelled(design: CspDesign, levels: int) -> CspDesign:
    """Add copies of the top stage and level (P5 -> P6 -> P7), or drop top levels."""
    if not 1 <= levels <= 8:
        raise CfgError(f"--levels {levels}: a model has 1 to 8 output levels")
    extra = levels - design.levels
    k = design.anchors_per_level
    if extra <= 0:
        keep = levels + 2
        return replace(design, stages=design.stages[:keep], depths=design.depths[:keep],
                       neck=design.neck[:levels], heads=design.heads[:levels],
                       anchors=design.anchors[:levels * k])
    top = design.anchors[-k:]
    anchors = design.anchors + tuple((w * 2 ** i, h * 2 ** i)  # a stride twice as large
                                     for i in range(1, extra + 1) for w, h in top)
    return replace(design, stages=design.stages + (design.stages[-1],) * extra,
                   depths=design.depths + (design.depths[-1],) * extra,
                   neck=design.neck + (design.neck[-1],) * extra,
                   heads=design.heads + (design.heads[-1],) * extra, anchors=anchors)


def _tiny_relevelled(design: TinyDesign, levels: int) -> TinyDesign:
    """A tiny model with ``levels`` FPN levels, three consecutive anchors each (a new,
    finer level gets the finest anchors halved)."""
    if not 1 <= levels <= len(design.blocks):
        raise CfgError(f"--levels {levels}: a tiny model has 1 to {len(design.blocks)}")
    anchors = design.anchors
    while len(anchors) < 3 * levels:
        anchors = tuple((max(1, w // 2), max(1, h // 2)) for w, h in anchors[:3]) + anchors
    return replace(design, levels=levels, anchors=anchors[len(anchors) - 3 * levels:],
                   head=replace(design.head, masks=None))


def custom_schedule(classes: int) -> dict[str, str]:
    """Darknet's guide for training on a custom dataset: ``max_batches`` = classes x 2000,
    at least 6000, and the rate ``steps`` at 80 % and 90 % of it."""
    max_batches = max(6000, classes * 2000)
    return {"max_batches": str(max_batches),
            "steps": f"{max_batches * 8 // 10},{max_batches * 9 // 10}"}


def scaled(design: Design, width: float = 1.0, depth: float | Sequence[int] | None = None,
           levels: int | None = None, size: int | tuple[int, int] | None = None,
           classes: int | None = None, anchors: Sequence[Anchor] | None = None,
           activation: str | None = None) -> Design:
    """``design`` with the scaling knobs applied (see the module doc); ``None`` keeps a
    knob as the design has it.  Raises ``CfgError`` for a value that cannot work."""
    if not 0 < width <= 8:
        raise CfgError(f"--width {width}: expected a multiplier in (0, 8]")
    out = _widened(design, width) if width != 1.0 else design
    if depth is not None:
        if not isinstance(out, CspDesign):
            raise CfgError(f"{design.name} has no residual stages to deepen (--depth)")
        out = _deepened(out, depth)
    if levels is not None and levels != out.levels:
        out = _relevelled(out, levels) if isinstance(out, CspDesign) else \
            _tiny_relevelled(out, levels)
        if anchors is None:
            log.warning("%s: %d output levels; anchors for the new levels are the top "
                        "level's scaled by 2 per level: compute your own (calc_anchors)",
                        design.name, levels)
    if size is not None:
        w, h = (size, size) if isinstance(size, int) else size
        if w % out.max_stride or h % out.max_stride or w <= 0 or h <= 0:
            raise CfgError(f"--size {w}x{h}: must be a positive multiple of "
                           f"{out.max_stride}, the largest stride of {design.name}")
        out = replace(out, width=w, height=h)
    if classes is not None:
        if classes < 1:
            raise CfgError(f"--classes {classes}: expected at least 1")
        out = replace(out, classes=classes, net={**out.net, **custom_schedule(classes)})
    if anchors is not None:
        out = replace(out, anchors=tuple((int(w), int(h)) for w, h in anchors))
    if activation is not None:
        if activation not in ACTIVATIONS:
            raise CfgError(f"--activation {activation}: expected one of "
                           f"{', '.join(sorted(ACTIVATIONS))}")
        out = replace(out, activation=activation)
    out.check()
    return out
