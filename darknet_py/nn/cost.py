"""What a network costs, counted as Darknet counts it when it loads a cfg.

``layer_bflops`` gives each layer's billions of floating-point operations for one image,
as Darknet's layer table prints them (each kind's ``bflops``: ``2 * weights * output
cells`` for a convolution, ``size * size * channels * output cells`` for a max pool, ...);
their sum is Darknet's ``Total BFLOPS``.
"""

from __future__ import annotations

from torch import nn

from .registry import Shape


def layer_bflops(layers: list[nn.Module], shapes: list[Shape]) -> list[float]:
    """Darknet's BFLOPs of every layer (for one image) given the layers and output shapes."""
    return [m.bflops(s) for m, s in zip(layers, shapes)]


def parameter_count(model: nn.Module) -> int:
    """Trainable and stored parameters (batch-norm statistics not counted)."""
    return sum(p.numel() for p in model.parameters())


def layer_table(layers: list[nn.Module], shapes: list[Shape], input_shape: Shape) -> list[str]:
    """Darknet's load-time table: each layer's kind, input and output shape, parameters
    and BFLOPs, ending with ``Total BFLOPS``."""
    bflops = layer_bflops(layers, shapes)
    lines = ["layer  type                          input               output   params     "
             "BFLOPs"]
    previous = input_shape
    for i, (m, s, bf) in enumerate(zip(layers, shapes, bflops)):
        params = sum(p.numel() for p in m.parameters())
        lines.append(f"{i:5d}  {m.describe():28s} {previous.w:4d} x{previous.h:4d} x"
                     f"{previous.c:5d} -> {s.w:4d} x{s.h:4d} x{s.c:5d} {params:9d} {bf:9.3f} BF")
        previous = s
    lines.append(f"Total BFLOPS {sum(bflops):.3f} ")
    return lines
