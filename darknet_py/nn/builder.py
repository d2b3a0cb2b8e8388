"""Layer construction: parsed sections -> ``nn.Module`` layers, with shapes worked out here.

One builder per section type, looked up in ``BUILDERS``.  Each receives the
section and a ``BuildContext`` (the shape of every earlier layer and the
network input size) and returns the module and its output ``Shape``.
Route/shortcut/sam indices are resolved here, once (Darknet: only negative
indices are relative; 0 is layer 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..cfg import (Cfg, ConvolutionalSection, LayerSection, MaxpoolSection, RouteSection,
                   SamSection, ShortcutSection, UpsampleSection, YoloSection)
from ..cfg.net import MAX_SIZE
from ..errors import CfgError
from . import layers as L

MAX_ELEMENTS = 2 ** 28  # values of one layer's weights or one image's output


@dataclass(frozen=True)
class Shape:
    """Output shape of a layer for one image: channels, height, width."""

    c: int
    h: int
    w: int


@dataclass
class BuildContext:
    """What builders know: the network input and the shapes built so far."""

    net_h: int
    net_w: int
    input: Shape
    shapes: list[Shape] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    @property
    def previous(self) -> Shape:
        return self.shapes[-1] if self.shapes else self.input

    def resolve(self, section: LayerSection, index: int, key: str) -> int:
        """Absolute layer index of a reference ``index`` in ``section``."""
        here = section.index
        absolute = here + index if index < 0 else index
        if not 0 <= absolute < here:
            raise section.error(f"{key}={index} refers to layer {absolute}, but only layers "
                                f"0..{here - 1} come before layer {here}", key)
        if self.kinds[absolute] == "yolo":
            raise section.error(f"{key}={index} refers to [yolo] layer {absolute}; "
                                "refer to the convolutional layer before it", key)
        return absolute


Builder = Callable[[LayerSection, BuildContext], tuple[nn.Module, Shape]]


def _conv(s: ConvolutionalSection, ctx: BuildContext) -> tuple[nn.Module, Shape]:
    inp = ctx.previous
    if inp.c % s.groups:
        raise s.error(f"input channels {inp.c} are not divisible by groups={s.groups}", "groups")
    h = (inp.h + 2 * s.padding - s.size) // s.stride_y + 1
    w = (inp.w + 2 * s.padding - s.size) // s.stride_x + 1
    if h < 1 or w < 1:
        raise s.error(f"input {inp.h}x{inp.w} is too small for size={s.size} "
                      f"stride={s.stride_y},{s.stride_x} padding={s.padding}")
    weights = inp.c // s.groups * s.filters * s.size * s.size
    if weights > MAX_ELEMENTS:
        raise s.error(f"{weights:,} weights in one layer (input channels {inp.c}, "
                      f"filters={s.filters}, size={s.size}) is more than {MAX_ELEMENTS:,}")
    module = L.Convolutional(inp.c, s.filters, s.size, (s.stride_y, s.stride_x), s.padding,
                             s.groups, bool(s.batch_normalize), s.activation,
                             dontloadscales=bool(s.dontloadscales))
    return module, Shape(s.filters, h, w)


def _route(s: RouteSection, ctx: BuildContext) -> tuple[nn.Module, Shape]:
    if not s.layers:
        raise s.error("layers= is empty", "layers")
    sources = [ctx.resolve(s, i, "layers") for i in s.layers]
    shapes = [ctx.shapes[i] for i in sources]
    first = shapes[0]
    for i, sh in zip(sources[1:], shapes[1:]):
        if (sh.h, sh.w) != (first.h, first.w):
            raise s.error(f"layer {i} is {sh.h}x{sh.w} but layer {sources[0]} is "
                          f"{first.h}x{first.w}; routed layers must have the same size", "layers")
    for i, sh in zip(sources, shapes):
        if sh.c % s.groups:
            raise s.error(f"layer {i} has {sh.c} channels, not divisible by groups={s.groups}",
                          "groups")
    channels = [sh.c for sh in shapes]
    module = L.Route(sources, channels, s.groups, s.group_id)
    return module, Shape(sum(channels) // s.groups, first.h, first.w)


def _shortcut(s: ShortcutSection, ctx: BuildContext) -> tuple[nn.Module, Shape]:
    inp = ctx.previous
    sources = [ctx.resolve(s, i, "from") for i in s.from_]
    for i in sources:
        sh = ctx.shapes[i]
        if (sh.h, sh.w) != (inp.h, inp.w):
            raise s.error(f"layer {i} is {sh.h}x{sh.w} but the previous layer is "
                          f"{inp.h}x{inp.w}; shortcut inputs must have the same size", "from")
    module = L.Shortcut(sources, inp.c, [ctx.shapes[i].c for i in sources], s.activation,
                        s.weights_type, s.weights_normalization)
    return module, inp


def _maxpool(s: MaxpoolSection, ctx: BuildContext) -> tuple[nn.Module, Shape]:
    inp = ctx.previous
    assert s.size is not None and s.padding is not None and s.stride_x and s.stride_y
    h = (inp.h + s.padding - s.size) // s.stride_y + 1
    w = (inp.w + s.padding - s.size) // s.stride_x + 1
    if h < 1 or w < 1:
        raise s.error(f"input {inp.h}x{inp.w} is too small for size={s.size}")
    if s.padding // 2 >= s.size or s.padding - s.padding // 2 >= s.size:
        raise s.error(f"padding={s.padding} leaves windows with no input for size={s.size}",
                      "padding")
    return L.MaxPool(s.size, (s.stride_y, s.stride_x), s.padding), Shape(inp.c, h, w)


def _upsample(s: UpsampleSection, ctx: BuildContext) -> tuple[nn.Module, Shape]:
    inp = ctx.previous
    return L.Upsample(s.stride, s.scale), Shape(inp.c, inp.h * s.stride, inp.w * s.stride)


def _sam(s: SamSection, ctx: BuildContext) -> tuple[nn.Module, Shape]:
    inp = ctx.previous
    source = ctx.resolve(s, s.from_, "from")
    if ctx.shapes[source] != inp:
        sh = ctx.shapes[source]
        raise s.error(f"layer {source} is {sh.c}x{sh.h}x{sh.w} but the previous layer is "
                      f"{inp.c}x{inp.h}x{inp.w}; [sam] needs equal shapes", "from")
    return L.Sam(source, s.activation), inp


def _yolo(s: YoloSection, ctx: BuildContext) -> tuple[nn.Module, Shape]:
    inp = ctx.previous
    assert s.mask is not None
    expected = len(s.mask) * (s.classes + 5)
    if inp.c != expected:
        raise s.error(f"the layer before has filters={inp.c}, but classes={s.classes} and "
                      f"{len(s.mask)} masked anchors need filters=(classes+5)*{len(s.mask)}="
                      f"{expected}", "classes")
    module = L.Yolo(s.masked_anchors, s.classes, (ctx.net_w, ctx.net_h), s.scale_x_y,
                    bool(s.new_coords), (inp.w, inp.h))
    return module, inp


BUILDERS: dict[str, Builder] = {
    "convolutional": _conv,  # type: ignore[dict-item]
    "route": _route,  # type: ignore[dict-item]
    "shortcut": _shortcut,  # type: ignore[dict-item]
    "maxpool": _maxpool,  # type: ignore[dict-item]
    "upsample": _upsample,  # type: ignore[dict-item]
    "sam": _sam,  # type: ignore[dict-item]
    "yolo": _yolo,  # type: ignore[dict-item]
}


def build_layers(cfg: Cfg, width: int | None = None,
                 height: int | None = None) -> tuple[list[nn.Module], list[Shape]]:
    """Build every layer of ``cfg``; ``width``/``height`` override ``[net]``'s."""
    net_h = height or cfg.net.height
    net_w = width or cfg.net.width
    if not (0 < net_h <= MAX_SIZE and 0 < net_w <= MAX_SIZE):
        raise CfgError(f"network size {net_w}x{net_h}: width and height must be 1 to "
                       f"{MAX_SIZE}", cfg.path)
    ctx = BuildContext(net_h, net_w, Shape(cfg.net.channels, net_h, net_w))
    modules: list[nn.Module] = []
    for section in cfg.layers:
        if ctx.kinds and ctx.kinds[-1] == "yolo" and section.kind != "route":
            raise section.error(f"a [{section.kind}] cannot follow a [yolo] layer; "
                                "start the next branch with a [route]")
        module, shape = BUILDERS[section.kind](section, ctx)
        if shape.c * shape.h * shape.w > MAX_ELEMENTS:
            raise section.error(f"output {shape.c}x{shape.h}x{shape.w} is more than "
                                f"{MAX_ELEMENTS:,} values per image")
        modules.append(module)
        ctx.shapes.append(shape)
        ctx.kinds.append(section.kind)
    if "yolo" not in ctx.kinds:
        raise CfgError("the cfg has no [yolo] layer", cfg.path)
    return modules, ctx.shapes
