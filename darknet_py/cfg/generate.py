"""Write a Darknet cfg from a ``CspDesign`` or ``TinyDesign`` (``darknet_py.cfg.family``).

The writer appends sections and hands back their layer indices, so routes and shortcuts
are written from the indices they mean: relative within a block, absolute across the
network (laterals, PAN merges, heads), as the shipped cfgs write them.  Each layer made
inside a repeated unit (a residual block of a stage, a pair of convolutions of the neck)
is tagged with that unit's group, which the cost model uses to scale depth.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

from .family import MIN_STEM_HIDDEN, CspDesign, Design, TinyDesign


@dataclass
class Writer:
    """Sections as (kind, keys) in order, with a repeat group (or None) for each."""

    activation: str
    sections: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    groups: list[str | None] = field(default_factory=list)
    repeats: dict[str, int] = field(default_factory=dict)
    _group: str | None = None

    def add(self, kind: str, **keys: object) -> int:
        self.sections.append((kind, {k: str(v) for k, v in keys.items()}))
        self.groups.append(self._group)
        return len(self.sections) - 1

    @property
    def last(self) -> int:
        return len(self.sections) - 1

    @contextlib.contextmanager
    def repeat(self, group: str) -> Iterator[None]:
        """Tag the layers written inside as one repetition of ``group``."""
        self.repeats[group] = self.repeats.get(group, 0) + 1
        outer, self._group = self._group, group
        try:
            yield
        finally:
            self._group = outer

    def ref(self, index: int, absolute: bool = False) -> str:
        """``index`` as written at the next layer: ``-1`` for the previous layer, else
        relative or absolute."""
        here = len(self.sections)
        return str(index) if absolute and index != here - 1 else str(index - here)

    def conv(self, filters: int, size: int, stride: int = 1, activation: str | None = None,
             bn: bool = True) -> int:
        keys: dict[str, object] = {"batch_normalize": 1} if bn else {}
        keys.update(filters=filters, size=size, stride=stride, pad=1,
                    activation=activation or self.activation)
        return self.add("convolutional", **keys)

    def route(self, *layers: int, absolute: bool = False, **keys: object) -> int:
        return self.add("route", layers=",".join(self.ref(i, absolute) for i in layers),
                        **keys)

    def shortcut(self, source: int) -> int:
        return self.add("shortcut", **{"from": self.ref(source)}, activation="linear")

    def maxpool(self, size: int, stride: int) -> int:
        return self.add("maxpool", size=size, stride=stride)

    def upsample(self) -> int:
        return self.add("upsample", stride=2)

    def yolo(self, design: Design, level: int, mask: tuple[int, ...]) -> int:
        """The output convolution and the ``[yolo]`` layer of one level."""
        self.conv((design.classes + 5) * len(mask), 1, bn=False,
                  activation="logistic" if design.head.common.get("new_coords") == "1"
                  else "linear")
        anchors = ", ".join(f"{w},{h}" for w, h in design.anchors)
        return self.add("yolo", mask=",".join(map(str, mask)), anchors=anchors,
                        classes=design.classes, num=len(design.anchors),
                        **design.head.keys(level))


def _masks(design: Design) -> list[tuple[int, ...]]:
    if design.head.masks is not None:
        return list(design.head.masks)
    k = design.anchors_per_level
    return [tuple(range(j * k, (j + 1) * k)) for j in range(design.levels)]


# ------------------------------------------------------------------------ CSP family

def _stage(w: Writer, index: int, channels: int, blocks: int, csp: bool) -> int:
    """A stride-2 stage of ``blocks`` residual blocks; returns its output layer."""
    down = w.conv(channels, 3, 2)
    if not csp:  # a plain residual stage (the first stage of yolov4-csp)
        hidden = max(MIN_STEM_HIDDEN, channels // 2)
        for _ in range(blocks):
            with w.repeat(f"stage{index}"):
                w.conv(hidden, 1)
                w.conv(channels, 3)
                w.shortcut(w.last - 2)
        return w.last
    hidden = channels // 2
    part = w.conv(hidden, 1)
    w.route(down)
    w.conv(hidden, 1)
    for _ in range(blocks):
        with w.repeat(f"stage{index}"):
            w.conv(hidden, 1)
            w.conv(hidden, 3)
            w.shortcut(w.last - 2)
    w.conv(hidden, 1)
    w.route(w.last, part)
    return w.conv(channels, 1)


def _csp_block(w: Writer, channels: int, pairs: int) -> int:
    """A CSP block of the PAN: 1x1, split, ``pairs`` (1x1, 3x3), merge, 1x1."""
    merged = w.conv(channels, 1)
    part = w.conv(channels, 1)
    w.route(merged)
    for _ in range(pairs):
        with w.repeat("neck"):
            w.conv(channels, 1)
            w.conv(channels, 3)
    w.route(w.last, part)
    return w.conv(channels, 1)


def _spp(w: Writer, top: int, channels: int, pairs: int, group: str) -> int:
    """The CSP block with spatial pyramid pooling (5, 9, 13) on the last stage; its
    convolution pairs repeat as ``group``."""
    part = w.conv(channels, 1)
    w.route(top)
    w.conv(channels, 1)
    before, after = pairs // 2, pairs - pairs // 2
    for _ in range(before):
        with w.repeat(group):
            w.conv(channels, 3)
            w.conv(channels, 1)
    pooled = w.last
    for size in (5, 9, 13):
        if size != 5:
            w.route(pooled)
        w.maxpool(size, 1)
    w.route(w.last, w.last - 2, w.last - 4, pooled)
    for _ in range(after):
        with w.repeat(group):
            w.conv(channels, 1)
            w.conv(channels, 3)
    w.route(w.last, part)
    return w.conv(channels, 1)


def _head(w: Writer, d: CspDesign, level: int, source: int, mask: tuple[int, ...]) -> None:
    """One output level: a 3x3 (or, with SAM, 1x1 + attention) then the yolo layer."""
    if w.last != source:
        w.route(source, absolute=d.heads_last)
    width = d.heads[level]
    if d.sam_heads:
        w.conv(width, 1)
        w.conv(width, 1, activation="logistic")
        w.add("sam", **{"from": -2})
        w.conv(width, 1)
    else:
        w.conv(width, 3)
    w.yolo(d, level, mask)


def csp_sections(d: CspDesign) -> Writer:
    """The layer sections of a CSP design (see ``family`` for the layout)."""
    w = Writer(d.activation)
    w.conv(d.stem, 3)
    outs = [_stage(w, i, c, n, csp=d.csp_first_stage or i > 0)
            for i, (c, n) in enumerate(zip(d.stages, d.depths))]
    if d.spp_pairs is None:  # as deep as the neck
        top = _spp(w, outs[-1], d.neck[-1], d.neck_depth, "neck")
    else:
        top = _spp(w, outs[-1], d.neck[-1], d.spp_pairs, "spp")
    up = {d.levels - 1: top}
    for j in range(d.levels - 2, -1, -1):  # the FPN, top-down
        w.conv(d.neck[j], 1)
        w.upsample()
        w.route(outs[j + 2], absolute=True)
        w.conv(d.neck[j], 1)
        w.route(w.last, w.last - 2)
        up[j] = _csp_block(w, d.neck[j], d.neck_depth)
    masks = _masks(d)
    level_out = [up[0]]
    if not d.heads_last:
        _head(w, d, 0, up[0], masks[0])
    for j in range(1, d.levels):  # the PAN, bottom-up
        if w.last != level_out[-1]:
            w.route(level_out[-1])
        w.conv(d.neck[j], 3, 2)
        w.route(w.last, up[j], absolute=d.heads_last)
        level_out.append(_csp_block(w, d.neck[j], d.neck_depth))
        if not d.heads_last:
            _head(w, d, j, level_out[-1], masks[j])
    if d.heads_last:
        for j, source in enumerate(level_out):
            _head(w, d, j, source, masks[j])
    return w


# ----------------------------------------------------------------------- tiny family

def tiny_sections(d: TinyDesign) -> Writer:
    """The layer sections of a yolov4-tiny style design, top level first."""
    w = Writer(d.activation)
    w.conv(d.stem[0], 3, 2)
    w.conv(d.stem[1], 3, 2)
    laterals = []
    for c in d.blocks:
        first = w.conv(c, 3)
        w.route(first, groups=2, group_id=1)  # the second half of the channels
        w.conv(c // 2, 3)
        w.conv(c // 2, 3)
        w.route(w.last, w.last - 1)
        laterals.append(w.conv(c, 1))
        w.route(first, w.last)
        w.maxpool(2, 2)
    w.conv(d.top, 3)
    feature = w.conv(d.neck, 1)
    masks = _masks(d)
    w.conv(d.top, 3)
    w.yolo(d, d.levels - 1, masks[d.levels - 1])
    for j in range(d.levels - 2, -1, -1):  # finer levels, each from the one above
        b = j + len(d.blocks) - d.levels + 1  # the block at this level's stride
        w.route(feature)
        w.conv(d.blocks[b] // 2, 1)
        w.upsample()
        w.route(w.last, laterals[b], absolute=True)
        feature = w.conv(d.blocks[b], 3)
        w.yolo(d, j, masks[j])
    return w


def design_sections(d: Design) -> Writer:
    """The layer sections of either kind of design."""
    return tiny_sections(d) if isinstance(d, TinyDesign) else csp_sections(d)


def design_text(d: Design, title: str | None = None) -> str:
    """Darknet cfg text of a design: a comment naming it (``title``, default its name),
    ``[net]`` with its size and training keys, then the layers."""
    w = design_sections(d)
    net = {"batch": "64", "subdivisions": "8", "width": str(d.width), "height": str(d.height),
           "channels": "3", **d.net}
    out = [f"# {title or d.name}: written by darknet-py cfg scale\n[net]\n"
           + "".join(f"{k}={v}\n" for k, v in net.items())]
    for kind, keys in w.sections:
        out.append(f"[{kind}]\n" + "".join(f"{k}={v}\n" for k, v in keys.items()))
    return "\n".join(out)
