"""YOLOv2's reorganisation layers: ``[reorg]`` (Darknet's ``reorg_old``) and
``[reorg3d]`` (space to depth), each a registered kind (``registry.py``)."""

from __future__ import annotations

from torch import Tensor, nn

from .layers import DarknetLayer
from .registry import BuildContext, Shape, register


def space_to_depth(x: Tensor, stride: int) -> Tensor:
    """(N, C, H, W) -> (N, C*s*s, H/s, W/s): output channel ``(dy*s + dx)*C + c`` at
    (j, i) is input channel ``c`` at (j*s + dy, i*s + dx) (``reorg_cpu``, forward 0)."""
    n, c, h, w = x.shape
    s = stride
    x = x.reshape(n, c, h // s, s, w // s, s).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(n, s * s * c, h // s, w // s)


def _reorg_shape(s, inp: Shape) -> Shape:
    if inp.h % s.stride or inp.w % s.stride:
        raise s.error(f"input {inp.w}x{inp.h} is not divisible by stride={s.stride}",
                      "stride")
    return Shape(inp.c * s.stride * s.stride, inp.h // s.stride, inp.w // s.stride)


@register("reorg3d")
class Reorg3d(DarknetLayer):
    """``[reorg3d]``: space to depth by ``stride`` (forward_reorg_layer)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        return cls(s.stride), _reorg_shape(s, ctx.previous)

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return space_to_depth(x, self.stride)

    def describe(self) -> str:
        return f"reorg3d {'':8s} /{self.stride:2d}"


@register("reorg")
class Reorg(Reorg3d):
    """``[reorg]``, Darknet's ``reorg_old`` (forward_reorg_old_layer): ``reorg_cpu`` given
    the input's own sizes, so it reads the (C, H, W) input as if it were
    (C/s², H*s, W*s), takes that space to depth, and the (C, H, W)-shaped result is read
    on as (C*s², H/s, W/s).  The YOLOv2 cfgs' weights were trained with exactly this."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        if inp.c % (s.stride * s.stride):
            raise s.error(f"input channels {inp.c} are not divisible by stride²="
                          f"{s.stride * s.stride} (reorg_old)", "stride")
        return cls(s.stride), _reorg_shape(s, inp)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        n, c, h, w = x.shape
        s = self.stride
        y = space_to_depth(x.reshape(n, c // (s * s), h * s, w * s), s)
        return y.reshape(n, c * s * s, h // s, w // s)

    def describe(self) -> str:
        return f"reorg_old {'':6s} /{self.stride:2d}"
