"""The layer sections: ``[convolutional]``, ``[route]``, ``[shortcut]``, ``[maxpool]``,
``[upsample]``, ``[sam]``, ``[scale_channels]`` and ``[yolo]``, with Darknet's defaults
and checks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from .base import (ACTIVATIONS, FLT_MAX, IOU_KINDS, NMS_KINDS, LayerSection, choices,
                   register_section, unimplemented)

log = logging.getLogger(__name__)


MAX_CHANNELS = 65536  # filters of one layer
MAX_KERNEL = 256  # kernel size, stride, padding
MAX_ANCHOR = 1e6  # anchor width or height in pixels


@register_section
@dataclass
class ConvolutionalSection(LayerSection):
    """``[convolutional]``: conv + optional batch norm + activation."""

    kind: ClassVar[str] = "convolutional"
    STRUCTURAL: ClassVar[tuple[str, ...]] = (
        "filters", "size", "stride_x", "stride_y", "padding", "groups", "dilation",
        "batch_normalize", "activation")
    aliases: ClassVar[tuple[str, ...]] = ("conv",)
    DERIVED: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "stride_x": lambda s: s.stride,
        "stride_y": lambda s: s.stride,
        "padding": lambda s: s.size // 2 if s.pad else 0,  # pad=1 overrides padding=
    }

    filters: int = 1
    size: int = 1
    stride: int = 1
    stride_x: int | None = None
    stride_y: int | None = None
    pad: int = 0
    padding: int | None = None
    groups: int = 1
    dilation: int = 1
    batch_normalize: int = 0
    activation: str = field(default="logistic", metadata=choices(*ACTIVATIONS))
    antialiasing: int = 0
    share_index: int | None = None
    binary: int = 0
    xnor: int = 0
    flipped: int = field(default=0, metadata=unimplemented("deconvolutional layers"))

    def finalize(self) -> None:
        self.fill_derived()
        if self.size == 1:
            self.dilation = 1
        if self.pad:
            self.padding = self.size // 2
        for key in ("filters", "size", "stride_x", "stride_y", "groups"):
            if getattr(self, key) < 1:
                raise self.error(f"{key}={getattr(self, key)} must be at least 1", key)
        self.check_range("filters", 1, MAX_CHANNELS)
        self.check_range("size", 1, MAX_KERNEL)
        self.check_range("stride_x", 1, MAX_KERNEL)
        self.check_range("stride_y", 1, MAX_KERNEL)
        self.check_range("padding", 0, MAX_KERNEL)
        self.check_range("dilation", 1, MAX_KERNEL)
        if self.binary and not self.xnor:
            log.warning("%s:%d: [convolutional] binary=1: Darknet's CPU forward ignores it "
                        "(only xnor binarizes), and so does darknet-py", self.path,
                        self.options["binary"].line if "binary" in self.options else self.line)
        unsupported = {"antialiasing": self.antialiasing}
        for key, value in unsupported.items():
            if value:
                raise self.error(f"{key} is not supported by darknet-py", key)
        if self.filters % self.groups:
            raise self.error(f"filters={self.filters} is not divisible by "
                             f"groups={self.groups}", "groups")


@register_section
@dataclass
class RouteSection(LayerSection):
    """``[route]``: concatenation of earlier outputs, optionally one channel group of each."""

    kind: ClassVar[str] = "route"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("layers", "groups", "group_id")

    layers: list[int] = field(default_factory=list, metadata={"required": True})
    groups: int = 1
    group_id: int = 0

    def finalize(self) -> None:
        if self.groups < 1:
            raise self.error(f"groups={self.groups} must be at least 1", "groups")
        if not 0 <= self.group_id < self.groups:
            raise self.error(f"group_id={self.group_id} must be in 0..{self.groups - 1}",
                             "group_id")


@register_section
@dataclass
class ShortcutSection(LayerSection):
    """``[shortcut]``: (weighted) sum of the previous output and ``from`` layers."""

    kind: ClassVar[str] = "shortcut"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("from_", "activation", "weights_type",
                                           "weights_normalization")

    from_: list[int] = field(default_factory=list, metadata={"key": "from", "required": True})
    activation: str = field(default="linear", metadata=choices(*ACTIVATIONS))
    weights_type: str = field(default="none", metadata=choices(
        "none", "per_feature", "per_layer", "per_channel"))
    weights_normalization: str = field(default="none", metadata=choices(
        "none", "relu", "avg_relu", "softmax"))

    def finalize(self) -> None:
        if self.weights_type == "per_layer":
            self.weights_type = "per_feature"
        if self.weights_normalization == "avg_relu":
            self.weights_normalization = "relu"


@register_section
@dataclass
class MaxpoolSection(LayerSection):
    """``[maxpool]``: Darknet max pooling (size defaults to stride, padding to size-1)."""

    kind: ClassVar[str] = "maxpool"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("size", "stride_x", "stride_y", "padding")
    aliases: ClassVar[tuple[str, ...]] = ("max",)
    DERIVED: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "stride_x": lambda s: s.stride,
        "stride_y": lambda s: s.stride,
        "size": lambda s: s.stride,
        "padding": lambda s: s.size - 1,
    }

    stride: int = 1
    stride_x: int | None = None
    stride_y: int | None = None
    size: int | None = None
    padding: int | None = None
    maxpool_depth: int = 0
    out_channels: int = field(default=1, metadata=unimplemented("maxpool_depth"))
    antialiasing: int = 0
    maxpool_zero_nonmax: int = 0

    def finalize(self) -> None:
        self.fill_derived()
        for key in ("size", "stride_x", "stride_y"):
            if getattr(self, key) < 1:
                raise self.error(f"{key}={getattr(self, key)} must be at least 1", key)
            self.check_range(key, 1, MAX_KERNEL)
        for key in ("maxpool_depth", "antialiasing", "maxpool_zero_nonmax"):
            if getattr(self, key):
                raise self.error(f"{key} is not supported by darknet-py", key)


@register_section
@dataclass
class LocalAvgpoolSection(MaxpoolSection):
    """``[local_avgpool]``: ``[maxpool]``'s windows, averaged over the cells inside the
    input (``forward_local_avgpool_layer``)."""

    kind: ClassVar[str] = "local_avgpool"
    aliases: ClassVar[tuple[str, ...]] = ()


@register_section
@dataclass
class UpsampleSection(LayerSection):
    """``[upsample]``: nearest-neighbour upsampling by ``stride``, times ``scale``."""

    kind: ClassVar[str] = "upsample"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("stride", "scale")

    stride: int = 2
    scale: float = 1.0

    def finalize(self) -> None:
        if self.stride < 1:
            raise self.error(f"stride={self.stride} is not supported (must be >= 1)", "stride")


@register_section
@dataclass
class SamSection(LayerSection):
    """``[sam]``: spatial attention, previous output times the ``from`` layer's output."""

    kind: ClassVar[str] = "sam"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("from_", "activation")

    from_: int = field(default=0, metadata={"key": "from", "required": True})
    activation: str = field(default="linear", metadata=choices(*ACTIVATIONS))


@register_section
@dataclass
class ScaleChannelsSection(LayerSection):
    """``[scale_channels]``: the ``from`` layer's output times the previous output, per
    channel (or, with ``scale_wh``, per position)."""

    kind: ClassVar[str] = "scale_channels"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("from_", "scale_wh", "activation")

    from_: int = field(default=0, metadata={"key": "from", "required": True})
    scale_wh: int = 0
    activation: str = field(default="linear", metadata=choices(*ACTIVATIONS))


@register_section
@dataclass
class YoloSection(LayerSection):
    """``[yolo]``: detection head (decoding at inference, Darknet's loss in training)."""

    kind: ClassVar[str] = "yolo"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("classes", "num", "mask", "anchors", "new_coords",
                                           "scale_x_y")
    DERIVED: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "anchors": lambda s: [0.5] * (2 * s.num),  # make_yolo_layer's default biases
        "mask": lambda s: list(range(s.num)),
    }

    classes: int = 20
    num: int = 1
    mask: list[int] | None = None
    anchors: list[float] | None = None
    max: int = 200
    max_delta: float = FLT_MAX
    counters_per_class: list[int] | None = None
    label_smooth_eps: float = 0.0
    scale_x_y: float = 1.0
    objectness_smooth: int = 0
    new_coords: int = 0
    iou_normalizer: float = 0.75
    obj_normalizer: float = 1.0
    cls_normalizer: float = 1.0
    delta_normalizer: float = field(default=1.0, metadata=unimplemented("training"))
    iou_loss: str = field(default="mse", metadata=choices("mse", *IOU_KINDS))
    iou_thresh_kind: str = field(default="iou", metadata=choices(*IOU_KINDS))
    beta_nms: float = 0.6
    nms_kind: str = field(default="default", metadata=choices(*NMS_KINDS))
    jitter: float = 0.2
    resize: float = 1.0
    focal_loss: int = field(default=0, metadata=unimplemented("training"))
    ignore_thresh: float = 0.5
    truth_thresh: float = 1.0
    iou_thresh: float = 1.0
    random: float = 0.0
    show_details: int = 1
    track_history_size: int = field(default=5, metadata=unimplemented("Darknet's tracker"))
    sim_thresh: float = field(default=0.8, metadata=unimplemented("Darknet's tracker"))
    dets_for_track: int = field(default=1, metadata=unimplemented("Darknet's tracker"))
    dets_for_show: int = field(default=1, metadata=unimplemented("Darknet's tracker"))
    track_ciou_norm: float = field(default=0.01, metadata=unimplemented("Darknet's tracker"))
    embedding_layer: int | None = field(default=None,
                                        metadata=unimplemented("Darknet's tracker"))

    def finalize(self) -> None:
        if self.classes < 1:
            raise self.error(f"classes={self.classes} must be at least 1", "classes")
        if self.anchors is None:
            self.anchors = self.DERIVED["anchors"](self)
        values = len(self.anchors)
        if values % 2 or values < 2 * self.num:  # Darknet reads what there is, up to num*2
            line = self.options["anchors"].line if "anchors" in self.options else self.line
            kept = self.anchors[: 2 * self.num]
            self.anchors = kept + [0.5] * (2 * self.num - len(kept))  # make_yolo_layer's .5
            log.warning("%s:%d: [%s] anchors has %d values for num=%d; as Darknet, the first "
                        "%d are read and the rest are 0.5", self.path, line, self.kind, values,
                        self.num, len(kept))
        listed = len(self.anchors) // 2
        if listed != self.num:  # more are listed: the masks may use them
            line = self.options["num"].line if "num" in self.options else self.line
            log.warning("%s:%d: [yolo] num=%d but %d anchors are listed; using the %d "
                        "anchors listed", self.path, line, self.num, listed, listed)
            self.num = listed
        bad = [a for a in self.anchors if not 0 < a < MAX_ANCHOR]
        if bad:
            raise self.error(f"anchor value {bad[0]:g}: anchors must be positive pixel "
                             f"sizes below {MAX_ANCHOR:g}", "anchors")
        self.check_range("scale_x_y", 1e-6, 100)
        if self.mask is None:
            self.mask = self.DERIVED["mask"](self)
        if not self.mask:
            raise self.error("mask is empty", "mask")
        for m in self.mask:
            if not 0 <= m < self.num:
                raise self.error(f"mask value {m} is beyond the {self.num} anchors", "mask")
        if self.counters_per_class is not None and len(self.counters_per_class) != self.classes:
            raise self.error(f"counters_per_class has {len(self.counters_per_class)} values "
                             f"but classes={self.classes}", "counters_per_class")
        if self.nms_kind == "cornersnms":
            line = self.options["nms_kind"].line if "nms_kind" in self.options else self.line
            log.warning("%s:%d: [yolo] nms_kind=cornersnms is not implemented by darknet-py; "
                        "plain IoU NMS is used", self.path, line)

    @property
    def masked_anchors(self) -> list[tuple[float, float]]:
        """(w, h) in network-input pixels of the anchors this head predicts."""
        assert self.anchors is not None and self.mask is not None
        return [(self.anchors[2 * m], self.anchors[2 * m + 1]) for m in self.mask]


@register_section
@dataclass
class GaussianYoloSection(YoloSection):
    """``[Gaussian_yolo]``: Gaussian YOLOv3's head, a ``[yolo]`` that also predicts the
    uncertainty of each box coordinate (``parse_gaussian_yolo``)."""

    kind: ClassVar[str] = "Gaussian_yolo"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("classes", "num", "mask", "anchors", "scale_x_y")

    uc_normalizer: float = 1.0
    yolo_point: str = field(default="center", metadata=choices("center", "left_top",
                                                                "right_bottom"))

    def finalize(self) -> None:
        super().finalize()
        if self.yolo_point != "center":
            raise self.error(f"yolo_point={self.yolo_point} is not supported by darknet-py",
                             "yolo_point")
