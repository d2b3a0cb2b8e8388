"""YOLOv2's sections: ``[region]`` (its head), ``[reorg]`` (Darknet's ``reorg_old``, as
the YOLOv2 cfgs use it) and ``[reorg3d]`` (the space-to-depth reorg), and YOLOv1's head
``[detection]``, with Darknet's defaults (``parse_region``, ``parse_reorg_old``,
``parse_reorg``, ``parse_detection``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import LayerSection, register_section, unimplemented
from .tree import load_tree


@register_section
@dataclass
class ReorgSection(LayerSection):
    """``[reorg]``: Darknet's ``reorg_old`` with ``stride``."""

    kind: ClassVar[str] = "reorg"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("stride", "reverse")

    stride: int = 1
    reverse: int = 0

    def finalize(self) -> None:
        self.check_range("stride", 1, 64)
        if self.reverse:
            raise self.error("reverse=1 is not supported by darknet-py", "reverse")


@register_section
@dataclass
class Reorg3dSection(ReorgSection):
    """``[reorg3d]``: space to depth by ``stride`` (``reorg_layer.c``)."""

    kind: ClassVar[str] = "reorg3d"


@register_section
@dataclass
class RegionSection(LayerSection):
    """``[region]``: YOLOv2's detection head (``region_layer.c``)."""

    kind: ClassVar[str] = "region"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("classes", "num", "coords", "anchors", "softmax")

    coords: int = 4
    classes: int = 20
    num: int = 1
    max: int = 200
    anchors: list[float] | None = None
    softmax: int = 0
    log: int = 0  # log, sqrt, absolute and mask_scale: parse_region reads them, and
    sqrt: int = 0  # forward_region_layer uses none of them
    focal_loss: int = 0
    jitter: float = 0.2
    resize: float = 1.0
    rescore: int = 0
    thresh: float = 0.5
    classfix: int = 0
    absolute: int = 0
    random: float = 0.0
    coord_scale: float = 1.0
    object_scale: float = 1.0
    noobject_scale: float = 1.0
    mask_scale: float = 1.0
    class_scale: float = 1.0
    bias_match: int = 0
    tree: str | None = None  # yolo9000's softmax tree (``softmax_tree`` once read)
    map: str | None = field(default=None, metadata=unimplemented("training"))

    def finalize(self) -> None:
        if self.classes < 1:
            raise self.error(f"classes={self.classes} must be at least 1", "classes")
        if self.num < 1:
            raise self.error(f"num={self.num} must be at least 1", "num")
        if self.coords != 4:
            raise self.error(f"coords={self.coords} is not supported by darknet-py (4 is)",
                             "coords")
        self.softmax_tree = load_tree(self)
        if self.softmax_tree is not None and self.softmax_tree.n != self.classes:
            raise self.error(f"tree={self.tree} has {self.softmax_tree.n} classes, but "
                             f"classes={self.classes}", "tree")
        listed = list(self.anchors or [])[: 2 * self.num]  # Darknet reads num * 2 values
        self.anchors = listed + [0.5] * (2 * self.num - len(listed))  # make_region_layer's .5


@register_section
@dataclass
class DetectionSection(LayerSection):
    """``[detection]``: YOLOv1's head (``parse_detection``): per cell of a ``side`` x
    ``side`` grid, class probabilities, then ``num`` confidences, then ``num`` boxes."""

    kind: ClassVar[str] = "detection"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("classes", "coords", "num", "side", "softmax",
                                           "sqrt")

    coords: int = 1
    classes: int = 1
    rescore: int = 0
    num: int = 1
    side: int = 7
    softmax: int = 0
    sqrt: int = 0
    max: int = 200
    coord_scale: float = 1.0
    forced: int = field(default=0, metadata=unimplemented("training"))
    object_scale: float = 1.0
    noobject_scale: float = 1.0
    class_scale: float = 1.0
    jitter: float = 0.2
    resize: float = 1.0
    random: float = 0.0
    reorg: int = field(default=0, metadata=unimplemented("the [detection] reorg"))
