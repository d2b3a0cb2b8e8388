"""Resampling layers: ``[maxpool]``, ``[local_avgpool]`` and ``[upsample]``, each a
registered kind (``registry.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import DarknetLayer
from .registry import BuildContext, Shape, register


@register("maxpool")
class MaxPool(DarknetLayer):
    """``[maxpool]``: Darknet pads ``padding//2`` before and the rest after (forward_maxpool_layer).

    Output size is ``(h + padding - size) // stride + 1``; padded cells never win.
    """

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        h = (inp.h + s.padding - s.size) // s.stride_y + 1
        w = (inp.w + s.padding - s.size) // s.stride_x + 1
        if h < 1 or w < 1:
            raise s.error(f"input {inp.h}x{inp.w} is too small for size={s.size}")
        if s.padding // 2 >= s.size or s.padding - s.padding // 2 >= s.size:
            raise s.error(f"padding={s.padding} leaves windows with no input for "
                          f"size={s.size}", "padding")
        return cls(s.size, (s.stride_y, s.stride_x), s.padding), Shape(inp.c, h, w)

    def __init__(self, size: int, stride: tuple[int, int], padding: int):
        super().__init__()
        self.size = size
        self.stride = stride
        before = padding // 2
        self.pad = (before, padding - before, before, padding - before)  # left, right, top, bottom

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)

    def extra_repr(self) -> str:
        return f"size={self.size}, stride={self.stride}, pad={self.pad}"

    def bflops(self, out: Shape) -> float:
        return self.size * self.size * out.size / 1e9

    KIND_TEXT = "max"

    def describe(self) -> str:
        """make_maxpool_layer's text (``avg`` for local_avgpool)."""
        sx, sy = self.stride
        if sx != sy:
            return f"{self.KIND_TEXT:16s} {self.size:2d}x{self.size:2d}/{sx:2d}x{sy:2d}"
        return f"{self.KIND_TEXT:17s} {self.size:2d}x{self.size:2d}/{sx:2d}   "


@register("local_avgpool")
class LocalAvgPool(MaxPool):
    """``[local_avgpool]``: ``[maxpool]``'s windows and padding, each the mean of its cells
    that lie inside the input (forward_local_avgpool_layer)."""

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        ones = torch.ones_like(x[:1, :1])
        if any(self.pad):
            x, ones = F.pad(x, self.pad), F.pad(ones, self.pad)
        total = F.avg_pool2d(x, self.size, self.stride, divisor_override=1)
        count = F.avg_pool2d(ones, self.size, self.stride, divisor_override=1)
        return total / count

    def bflops(self, out: Shape) -> float:
        return self.size * self.size * out.size / 1e9  # make_maxpool_layer's count

    KIND_TEXT = "avg"


@register("upsample")
class Upsample(DarknetLayer):
    """``[upsample]``: nearest-neighbour upsampling by ``stride``, times ``scale``."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        return cls(s.stride, s.scale), Shape(inp.c, inp.h * s.stride, inp.w * s.stride)

    def __init__(self, stride: int, scale: float = 1.0):
        super().__init__()
        self.stride = stride
        self.scale = scale

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        x = F.interpolate(x, scale_factor=self.stride, mode="nearest")
        return x if self.scale == 1.0 else x * self.scale

    def extra_repr(self) -> str:
        return f"stride={self.stride}, scale={self.scale}"
