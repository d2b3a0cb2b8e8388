"""Recurrent layers for image inputs: ``[crnn]`` (a registered kind, ``registry.py``)."""

from __future__ import annotations

from torch import Tensor, nn

from .layers import Convolutional, DarknetLayer
from .registry import BuildContext, Shape, register


@register("crnn")
class Crnn(DarknetLayer):
    """``[crnn]`` (forward_crnn_layer), one time step from a zero state:
    ``state = input_conv(x) + self_conv(0)`` (plus the old state, zero, with
    ``shortcut``), output ``output_conv(state)``.  Darknet keeps ``l.state`` from one
    ``network_predict`` to the next (for video); darknet-py's forward is stateless, so
    each call equals Darknet's first call."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        h = (inp.h + 2 * s.padding - s.size) // s.stride + 1
        w = (inp.w + 2 * s.padding - s.size) // s.stride + 1
        if (h, w) != (inp.h, inp.w):
            raise s.error(f"size={s.size} padding={s.padding} changes the {inp.w}x{inp.h} "
                          "map; [crnn] needs a padding that keeps it", "padding")
        return cls(inp.c, s), Shape(s.output, h, w)

    def __init__(self, channels: int, s):
        super().__init__()

        def conv(cin: int, cout: int) -> Convolutional:
            return Convolutional(cin, cout, s.size, (s.stride, s.stride), s.padding, s.groups,
                                 bool(s.batch_normalize), s.activation)

        self.input_conv = conv(channels, s.hidden)
        self.self_conv = conv(s.hidden, s.hidden)
        self.output_conv = conv(s.hidden, s.output)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        state = self.input_conv(x, outputs)
        state = state + self.self_conv(x.new_zeros(state.shape), outputs)
        return self.output_conv(state, outputs)

    def darknet_tensors(self) -> list:
        return [t for c in (self.input_conv, self.self_conv, self.output_conv)
                for t in c.darknet_tensors()]

    def bflops(self, out: Shape) -> float:
        return sum(c.bflops(out) for c in (self.input_conv, self.self_conv, self.output_conv))
