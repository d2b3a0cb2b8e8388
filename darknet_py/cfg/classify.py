"""The sections of Darknet's classifiers and backbones: ``[avgpool]``, ``[softmax]``,
``[connected]``, ``[dropout]``, ``[crop]`` and ``[cost]``, and the training-only
``[contrastive]``, with Darknet's defaults (``parse_avgpool`` ... ``parse_contrastive`` in
``parser.c``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar

from .base import ACTIVATIONS, FLT_MAX, LayerSection, choices, register_section, unimplemented
from .tree import load_tree

log = logging.getLogger(__name__)


@register_section
@dataclass
class AvgpoolSection(LayerSection):
    """``[avgpool]``: the mean of each channel (global average pooling)."""

    kind: ClassVar[str] = "avgpool"
    aliases: ClassVar[tuple[str, ...]] = ("avg",)


@register_section
@dataclass
class SoftmaxSection(LayerSection):
    """``[softmax]``: softmax over each of ``groups`` equal slices of the input, at
    ``temperature``."""

    kind: ClassVar[str] = "softmax"
    aliases: ClassVar[tuple[str, ...]] = ("soft",)
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("groups", "temperature")

    groups: int = 1
    temperature: float = 1.0
    tree: str | None = None
    spatial: float = field(default=0.0, metadata=unimplemented("training"))
    noloss: int = field(default=0, metadata=unimplemented("training"))

    def finalize(self) -> None:
        if self.groups < 1:
            raise self.error(f"groups={self.groups} must be at least 1", "groups")
        self.softmax_tree = load_tree(self)
        if not self.temperature > 0:
            raise self.error(f"temperature={self.temperature} must be positive", "temperature")


@register_section
@dataclass
class ConnectedSection(LayerSection):
    """``[connected]``: a fully connected layer (+ batch norm) and its activation."""

    kind: ClassVar[str] = "connected"
    aliases: ClassVar[tuple[str, ...]] = ("conn",)
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("output", "batch_normalize", "activation")

    output: int = 1
    activation: str = field(default="logistic", metadata=choices(*ACTIVATIONS))
    batch_normalize: int = 0

    def finalize(self) -> None:
        self.check_range("output", 1, 1 << 24)


@register_section
@dataclass
class DropoutSection(LayerSection):
    """``[dropout]``: nothing at inference (its output is its input's memory)."""

    kind: ClassVar[str] = "dropout"

    probability: float = 0.2
    dropblock: int = field(default=0, metadata=unimplemented("training"))
    dropblock_size_rel: float = field(default=0.0, metadata=unimplemented("training"))
    dropblock_size_abs: float = field(default=0.0, metadata=unimplemented("training"))

    def finalize(self) -> None:
        self.check_range("probability", 0, 1)


@register_section
@dataclass
class CropSection(LayerSection):
    """``[crop]``: the centre ``crop_width`` x ``crop_height`` of the input at inference,
    times 2 minus 1 unless ``noadjust``."""

    kind: ClassVar[str] = "crop"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("crop_width", "crop_height", "noadjust")

    crop_height: int = 1
    crop_width: int = 1
    flip: int = field(default=0, metadata=unimplemented("training"))
    angle: float = field(default=0.0, metadata=unimplemented("training"))
    saturation: float = field(default=1.0, metadata=unimplemented("training"))
    exposure: float = field(default=1.0, metadata=unimplemented("training"))
    noadjust: int = 0
    shift: float = field(default=0.0, metadata=unimplemented("training"))

    def finalize(self) -> None:
        self.check_range("crop_height", 1, 1 << 16)
        self.check_range("crop_width", 1, 1 << 16)


@register_section
@dataclass
class CostSection(LayerSection):
    """``[cost]``: the classifier's training cost; nothing at inference."""

    kind: ClassVar[str] = "cost"

    type: str = field(default="sse", metadata=choices("sse", "masked", "smooth", "L1", "seg",
                                                       "wgan"))
    scale: float = 1.0
    ratio: float = field(default=0.0, metadata=unimplemented("training"))


@register_section
@dataclass
class ContrastiveSection(LayerSection):
    """``[contrastive]``: Darknet's contrastive loss on embeddings (training only; at
    inference its output stays zero)."""

    kind: ClassVar[str] = "contrastive"

    classes: int = 1000
    yolo_layer: int = 0
    temperature: float = field(default=1.0, metadata=unimplemented("training"))
    cls_normalizer: float = field(default=1.0, metadata=unimplemented("training"))
    max_delta: float = field(default=FLT_MAX, metadata=unimplemented("training"))
    contrastive_neg_max: int = field(default=3, metadata=unimplemented("training"))

    def finalize(self) -> None:
        log.warning("%s:%d: [contrastive] is Darknet's training-only contrastive loss; "
                    "darknet-py does not train it (at inference it outputs zeros, as Darknet)",
                    self.path, self.line)
