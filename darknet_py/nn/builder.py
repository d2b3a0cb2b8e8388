"""Layer construction: parsed sections -> ``nn.Module`` layers, with shapes worked out here.

Each section kind's module class (``registry.LAYER_KINDS``) builds its module from the
section and a ``BuildContext`` (the shape of every earlier layer and the network input
size) and returns it with its output ``Shape``.  Route/shortcut/sam indices are resolved
there, once.
"""

from __future__ import annotations

from torch import nn

from ..cfg import Cfg
from ..cfg.net import MAX_SIZE
from ..errors import CfgError
# each module registers its kinds
from . import attention, basic, classify, heads, layers, pooling, recurrent, yolov2  # noqa: F401
from .registry import HEAD_KINDS, LAYER_KINDS, MAX_ELEMENTS, BuildContext, Shape

__all__ = ["BuildContext", "LAYER_KINDS", "Shape", "build_layers"]


def build_layers(cfg: Cfg, width: int | None = None,
                 height: int | None = None) -> tuple[list[nn.Module], list[Shape]]:
    """Build every layer of ``cfg``; ``width``/``height`` override ``[net]``'s."""
    net_h = height or cfg.net.height
    net_w = width or cfg.net.width
    if not (0 < net_h <= MAX_SIZE and 0 < net_w <= MAX_SIZE):
        raise CfgError(f"network size {net_w}x{net_h}: width and height must be 1 to "
                       f"{MAX_SIZE}", cfg.path)
    ctx = BuildContext(net_h, net_w, Shape(cfg.net.channels, net_h, net_w))
    for section in cfg.layers:
        if ctx.kinds and ctx.kinds[-1] in HEAD_KINDS and section.kind != "route":
            raise section.error(f"a [{section.kind}] cannot follow a [{ctx.kinds[-1]}] layer;"
                                " start the next branch with a [route]")
        kind = LAYER_KINDS.get(section.kind)
        if kind is None:
            raise section.error(f"[{section.kind}] layers are not implemented by darknet-py")
        module, shape = kind.build(section, ctx)
        if shape.size > MAX_ELEMENTS:
            raise section.error(f"output {shape.c}x{shape.h}x{shape.w} is more than "
                                f"{MAX_ELEMENTS:,} values per image")
        ctx.modules.append(module)
        ctx.shapes.append(shape)
        ctx.kinds.append(section.kind)
    return ctx.modules, ctx.shapes
