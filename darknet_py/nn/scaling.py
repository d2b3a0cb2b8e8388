"""What a scaled model costs, before it is trained: exact for a cfg, predicted for a knob.

``cfg_cost`` counts a cfg's Darknet BFLOPs and parameters by building its layers on
PyTorch's ``meta`` device (shapes only, no memory), with ``nn.cost``'s formulas.

``SeedCost`` is the cost model of a design (the seed): each layer's BFLOPs and parameters
at the seed, how each grows with width (its exponent, from the seed built at twice the
width), which repeated unit it belongs to (a residual block of a stage, a neck pair) and
that the cost grows with the input area.  ``predict`` applies width, depth and size knobs
to those numbers without generating the cfg; ``growth`` says how the totals grow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..cfg.family import Design, TinyDesign, scaled
from ..cfg.generate import design_sections, design_text
from ..cfg.parse import parse_cfg
from ..cfg.sections import Cfg
from .builder import build_layers
from .cost import layer_bflops


def cfg_cost(cfg: Cfg, width: int | None = None,
             height: int | None = None) -> tuple[list[float], list[int]]:
    """Per layer: Darknet's BFLOPs for one image and the parameter count."""
    with torch.device("meta"):
        layers, shapes = build_layers(cfg, width, height)
    params = [sum(p.numel() for p in m.parameters()) for m in layers]
    return layer_bflops(layers, shapes), params


def _design_cost(design: Design) -> tuple[list[float], list[int]]:
    return cfg_cost(parse_cfg(design_text(design), f"<{design.name}>"))


def _power(a: float, b: float) -> float:
    return math.log2(b / a) if a > 0 and b > 0 else 0.0


@dataclass
class SeedCost:
    """The cost model of one design (see the module doc)."""

    seed: Design
    bflops: list[float]
    params: list[int]
    flop_power: list[float]
    param_power: list[float]
    groups: list[str | None]
    repeats: dict[str, int]

    @classmethod
    def of(cls, seed: Design) -> SeedCost:
        bflops, params = _design_cost(seed)
        wide_bflops, wide_params = _design_cost(scaled(seed, width=2.0))
        writer = design_sections(seed)
        return cls(seed, bflops, params,
                   [_power(a, b) for a, b in zip(bflops, wide_bflops)],
                   [_power(a, b) for a, b in zip(params, wide_params)],
                   writer.groups, writer.repeats)

    def predict(self, width: float = 1.0, depth: float | None = None,
                size: int | None = None) -> tuple[float, float]:
        """Predicted (BFLOPs per image, parameters) of the seed scaled by the knobs."""
        ratio = {g: 1.0 for g in self.repeats}
        if depth is not None:
            counts = design_sections(scaled(self.seed, depth=depth)).repeats
            ratio = {g: counts.get(g, 0) / n for g, n in self.repeats.items()}
        area = 1.0 if size is None else size * size / (self.seed.width * self.seed.height)
        flops = params = 0.0
        for f, p, fp, pp, g in zip(self.bflops, self.params, self.flop_power,
                                   self.param_power, self.groups):
            r = ratio[g] if g is not None else 1.0
            flops += f * width ** fp * r * area
            params += p * width ** pp * r
        return flops, params

    def growth(self) -> dict[str, float]:
        """Exponents of BFLOPs in width, depth (a CSP design) and input side, each measured
        by doubling: about 2, 1 for the repeated part, and 2."""
        base = self.predict()[0]
        out = {"width": _power(base, self.predict(width=2.0)[0]),
               "size": _power(base, self.predict(size=2 * self.seed.width)[0])}
        if not isinstance(self.seed, TinyDesign):
            out["depth"] = _power(base, self.predict(depth=2.0)[0])
        return out
