"""What a network costs, counted as Darknet counts it when it loads a cfg.

``layer_bflops`` gives each layer's billions of floating-point operations for one image,
as Darknet's layer table prints them: ``2 * weights * output cells`` for a convolution,
``size * size * channels * output cells`` for a max pool, ``outputs * inputs added`` for a
shortcut, 0 for the rest; their sum is Darknet's ``Total BFLOPS``.
"""

from __future__ import annotations

from torch import nn

from .builder import Shape
from .layers import Convolutional, MaxPool, Shortcut


def _conv(layer: Convolutional, out: Shape) -> float:
    return 2.0 * layer.conv.weight.numel() * out.h * out.w / 1e9


def _maxpool(layer: MaxPool, out: Shape) -> float:
    return layer.size * layer.size * out.c * out.h * out.w / 1e9


def _shortcut(layer: Shortcut, out: Shape) -> float:
    return out.c * out.h * out.w * len(layer.sources) / 1e9


COSTS = {Convolutional: _conv, MaxPool: _maxpool, Shortcut: _shortcut}


def layer_bflops(layers: list[nn.Module], shapes: list[Shape]) -> list[float]:
    """Darknet's BFLOPs of every layer (for one image) given the layers and output shapes."""
    return [COSTS[type(m)](m, s) if type(m) in COSTS else 0.0 for m, s in zip(layers, shapes)]


def parameter_count(model: nn.Module) -> int:
    """Trainable and stored parameters (batch-norm statistics not counted)."""
    return sum(p.numel() for p in model.parameters())


def _describe(module: nn.Module) -> str:
    if isinstance(module, Convolutional):
        c = module.conv
        return (f"conv {c.out_channels:5d} {c.kernel_size[0]:3d} x{c.kernel_size[1]:2d}/"
                f"{c.stride[0]:2d}")
    if isinstance(module, MaxPool):
        return f"max  {'':5s} {module.size:3d} x{module.size:2d}/{module.stride[0]:2d}"
    return type(module).__name__.lower()


def layer_table(layers: list[nn.Module], shapes: list[Shape], input_shape: Shape) -> list[str]:
    """Darknet's load-time table: each layer's kind, input and output shape, parameters
    and BFLOPs, ending with ``Total BFLOPS``."""
    bflops = layer_bflops(layers, shapes)
    lines = ["layer  type                    input               output   params     BFLOPs"]
    previous = input_shape
    for i, (m, s, bf) in enumerate(zip(layers, shapes, bflops)):
        params = sum(p.numel() for p in m.parameters())
        lines.append(f"{i:5d}  {_describe(m):22s} {previous.w:4d} x{previous.h:4d} x{previous.c:5d}"
                     f" -> {s.w:4d} x{s.h:4d} x{s.c:5d} {params:9d} {bf:9.3f} BF")
        previous = s
    lines.append(f"Total BFLOPS {sum(bflops):.3f} ")
    return lines
