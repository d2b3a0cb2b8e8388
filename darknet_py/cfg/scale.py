"""``scale_cfg``: a Darknet cfg generated from a preset and compound-scaling knobs.

    >>> cfg = scale_cfg("yolov4-p5", width=0.75, size=768, classes=3)
    >>> model = Darknet(cfg)            # no file needed
    >>> open("my.cfg", "w").write(cfg.text)

The knobs are those of ``darknet_py.cfg.family.scaled``; the presets are
``darknet_py.cfg.presets.PRESETS``.
"""

from __future__ import annotations

from typing import Sequence

from .family import Anchor, Design, scaled
from .generate import design_text
from .parse import parse_cfg
from .presets import preset
from .sections import Cfg


def scaled_design(base: str | Design, width: float = 1.0,
                  depth: float | Sequence[int] | None = None, levels: int | None = None,
                  size: int | tuple[int, int] | None = None, classes: int | None = None,
                  anchors: Sequence[Anchor] | None = None,
                  activation: str | None = None) -> Design:
    """The design of ``base`` (a preset name or a design) with the knobs applied."""
    design = preset(base) if isinstance(base, str) else base
    return scaled(design, width, depth, levels, size, classes, anchors, activation)


def describe(design: Design, base: str | Design, **knobs: object) -> str:
    """A one-line name of a scaled design, for the cfg's first comment and messages."""
    name = base if isinstance(base, str) else base.name
    set_knobs = ", ".join(f"{k} {v}" for k, v in knobs.items()
                          if v is not None and not (k == "width" and v == 1.0))
    return f"{name} ({set_knobs})" if set_knobs else name


def scale_cfg(base: str | Design, width: float = 1.0,
              depth: float | Sequence[int] | None = None, levels: int | None = None,
              size: int | tuple[int, int] | None = None, classes: int | None = None,
              anchors: Sequence[Anchor] | None = None, activation: str | None = None) -> Cfg:
    """A parsed cfg for ``base`` scaled by the knobs (``None`` keeps the preset's):

    - ``width``: channel multiplier (channels rounded to multiples of 8; the stem is kept);
    - ``depth``: residual-block multiplier (rounded half up, at least 1; the neck's
      convolution pairs too) or one block count per stage;
    - ``levels``: output levels (3 is P5, 4 is P6, 5 is P7); new top levels copy the top
      stage and get the top anchors doubled per level unless ``anchors`` are given;
    - ``size``: network input, a multiple of the largest stride;
    - ``classes``, ``anchors`` (``(w, h)`` pairs, all levels, smallest first) and
      ``activation`` (replaces the design's, e.g. mish -> swish).

    Raises ``CfgError`` for knobs that cannot work.  ``cfg.text`` is the generated file
    (with a comment naming the preset and knobs); ``cfg.to_text()`` writes it anew.
    """
    design = scaled_design(base, width, depth, levels, size, classes, anchors, activation)
    title = describe(design, base, width=width, depth=depth, levels=levels, size=size,
                     classes=classes, activation=activation)
    text = design_text(design, title)
    return parse_cfg(text, f"<{title}>")
