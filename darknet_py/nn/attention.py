"""Layers that scale one output by another: ``[sam]`` (spatial attention) and
``[scale_channels]`` (squeeze-and-excitation), each a registered kind (``registry.py``)."""

from __future__ import annotations

from torch import Tensor, nn

from .activations import activation as make_activation
from .layers import DarknetLayer
from .registry import BuildContext, Shape, register


@register("sam")
class Sam(DarknetLayer):
    """``[sam]``: spatial attention, ``act(x * out[from])`` element by element (sam_layer.c)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        source = ctx.resolve(s, s.from_, "from")
        if ctx.shapes[source] != inp:
            sh = ctx.shapes[source]
            raise s.error(f"layer {source} is {sh.c}x{sh.h}x{sh.w} but the previous layer is "
                          f"{inp.c}x{inp.h}x{inp.w}; [sam] needs equal shapes", "from")
        return cls(source, s.activation), inp

    def __init__(self, source: int, activation: str = "linear"):
        super().__init__()
        self.sources = (source,)
        self.act = make_activation(activation)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        other = outputs[self.sources[0]]
        assert other is not None
        return self.act(x * other)  # broadcast: [scale_channels] passes (N, C, 1, 1) x


@register("scale_channels")
class ScaleChannels(Sam):
    """``[scale_channels]``: ``act(out[from] * x)`` with ``x`` one value per channel
    (N, C, 1, 1), or with ``scale_wh`` one per position (N, 1, H, W)
    (forward_scale_channels_layer): the same product as ``[sam]``, broadcast."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        source = ctx.resolve(s, s.from_, "from")
        out = ctx.shapes[source]
        fits = ((inp.c == 1 and (inp.h, inp.w) == (out.h, out.w)) if s.scale_wh
                else (inp.h == inp.w == 1 and inp.c == out.c))
        if not fits:
            need = (f"1 x {out.h} x {out.w}" if s.scale_wh else f"{out.c} x 1 x 1")
            raise s.error(f"the previous layer is {inp.c} x {inp.h} x {inp.w}, but scaling "
                          f"layer {source} ({out.c} x {out.h} x {out.w}) needs {need}", "from")
        return cls(source, s.activation), out

    def describe(self) -> str:
        return "scale_channels"
