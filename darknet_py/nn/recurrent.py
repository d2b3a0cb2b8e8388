"""Recurrent layers for image inputs: ``[crnn]`` and ``[conv_lstm]`` (registered kinds,
``registry.py``), one time step from a zero state."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import Convolutional, DarknetLayer
from .registry import BuildContext, Shape, register


def _conv(s, cin: int, cout: int) -> Convolutional:
    """One of a recurrent layer's convolutions, with the section's size, padding, groups,
    batch norm and activation."""
    return Convolutional(cin, cout, s.size, (s.stride, s.stride), s.padding, s.groups,
                         bool(s.batch_normalize), s.activation)


def _same_size(s, inp: Shape) -> Shape:
    """The input shape, after checking that the section's padding keeps its map size (the
    state convolutions read the output as an input of the same size)."""
    h = (inp.h + 2 * s.padding - s.size) // s.stride + 1
    w = (inp.w + 2 * s.padding - s.size) // s.stride + 1
    if (h, w) != (inp.h, inp.w):
        raise s.error(f"size={s.size} padding={s.padding} changes the {inp.w}x{inp.h} "
                      f"map; [{s.kind}] needs a padding that keeps it", "padding")
    return inp


class _RecurrentConv(DarknetLayer):
    """What ``[crnn]`` and ``[conv_lstm]`` share: built on an input whose map size the
    padding keeps, ``s.output`` channels out, weights and BFLOPs from their convolutions
    in Darknet's file order (``convs``)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = _same_size(s, ctx.previous)
        return cls(inp.c, s), Shape(s.output, inp.h, inp.w)

    def convs(self) -> list[Convolutional]:
        raise NotImplementedError

    def darknet_tensors(self) -> list:
        return [t for conv in self.convs() for t in conv.darknet_tensors()]

    def bflops(self, out: Shape) -> float:
        return sum(conv.bflops(out) for conv in self.convs())


@register("crnn")
class Crnn(_RecurrentConv):
    """``[crnn]`` (forward_crnn_layer), one time step from a zero state:
    ``state = input_conv(x) + self_conv(0)`` (plus the old state, zero, with
    ``shortcut``), output ``output_conv(state)``.  Darknet keeps ``l.state`` from one
    ``network_predict`` to the next (for video); darknet-py's forward is stateless, so
    each call equals Darknet's first call."""

    def __init__(self, channels: int, s):
        super().__init__()

        def conv(cin: int, cout: int) -> Convolutional:
            return _conv(s, cin, cout)

        self.input_conv = conv(channels, s.hidden)
        self.self_conv = conv(s.hidden, s.hidden)
        self.output_conv = conv(s.hidden, s.output)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        state = self.input_conv(x, outputs)
        state = state + self.self_conv(x.new_zeros(state.shape), outputs)
        return self.output_conv(state, outputs)

    def convs(self) -> list[Convolutional]:
        return [self.input_conv, self.self_conv, self.output_conv]


@register("conv_lstm")
class ConvLstm(_RecurrentConv):
    """``[conv_lstm]`` (forward_conv_lstm_layer, CPU build), one time step from a zero
    cell and output: ``f = logistic(wf(h) + uf(x) [+ vf(c)])``, ``i`` likewise,
    ``g = tanh(wg(h) + ug(x))``, ``c = f * c + i * g`` (clipped to +-state_constrain),
    ``o = logistic(wo(h) + uo(x) [+ vo(c)])`` and the output ``h = o * tanh(c)``.  As for
    ``[crnn]``, Darknet keeps c and h from one call to the next; each call here equals its
    first.  Weights in Darknet's file order: v (f, i, o) with peephole, w (f, i, g, o),
    u (f, i, g, o)."""

    GATES = ("f", "i", "g", "o")

    def __init__(self, channels: int, s):
        super().__init__()
        out = s.output
        self.peephole = bool(s.peephole)
        self.v = nn.ModuleList([_conv(s, out, out) for _ in "fio"] if s.peephole else [])
        self.w = nn.ModuleList([_conv(s, out, out) for _ in self.GATES])
        self.u = nn.ModuleList([_conv(s, channels, out) for _ in self.GATES])

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        u = [conv(x, outputs) for conv in self.u]
        zero = u[0].new_zeros(u[0].shape)  # the first step's cell and output
        w = [conv(zero, outputs) for conv in self.w]
        pre = [a + b for a, b in zip(w, u)]
        if self.peephole:
            pre[0] = pre[0] + self.v[0](zero, outputs)
            pre[1] = pre[1] + self.v[1](zero, outputs)
        f, i = torch.sigmoid(pre[0]), torch.sigmoid(pre[1])
        c = f * zero + i * torch.tanh(pre[2])
        o = pre[3] + self.v[2](c, outputs) if self.peephole else pre[3]
        return torch.sigmoid(o) * torch.tanh(c)  # h; Darknet clips c only after it

    def convs(self) -> list[Convolutional]:
        return [*self.v, *self.w, *self.u]

    def bflops(self, out: Shape) -> float:
        return super().bflops(out) + (12 if self.peephole else 9) * out.size / 1e9
