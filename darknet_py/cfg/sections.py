"""Typed cfg sections: one dataclass per Darknet section, with Darknet's defaults.

Field defaults are those of Darknet's ``parse_net_options``,
``parse_convolutional``, ``parse_yolo``...  A field's metadata may give its cfg
key (``from``), its allowed values, that it is required, or that Darknet reads it
but darknet-py does not implement it (``unimplemented``: setting it to anything
but its default is warned about).  ``DERIVED`` lists the keys whose default
depends on other keys, so writing a section can leave them out.  Each section
remembers the file and line it came from for error messages.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Union, get_args, get_origin, get_type_hints

from ..errors import CfgError

log = logging.getLogger(__name__)

FLT_MAX = 3.4028234663852886e38

ACTIVATIONS = (
    "linear", "leaky", "relu", "relu6", "logistic", "mish", "swish", "elu", "selu",
    "gelu", "hard_mish", "tanh",
)


@dataclass
class Option:
    """One ``key=value`` line as written in the file."""

    key: str
    value: str
    line: int


def _choice(*choices: str) -> dict:
    return {"choices": choices}


def _todo(what: str) -> dict:
    """Metadata of a key Darknet reads and darknet-py does not implement."""
    return {"unimplemented": what}


@dataclass
class Section:
    """Base of all parsed sections: where it came from and its raw options."""

    kind: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: key -> the value ``finalize`` gives it when the cfg does not set it
    DERIVED: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    path: str = field(default="<string>", repr=False, compare=False)
    line: int = field(default=0, repr=False, compare=False)
    options: dict[str, Option] = field(default_factory=dict, repr=False, compare=False)

    def error(self, message: str, key: str | None = None) -> CfgError:
        """A CfgError pointing at this section (or at the line of ``key``)."""
        line = self.options[key].line if key in self.options else self.line
        return CfgError(f"[{self.kind}] {message}", self.path, line)

    def finalize(self) -> None:
        """Resolve defaults that depend on other keys and validate values."""
        self.fill_derived()

    def fill_derived(self) -> None:
        """Give each unset (None) key of ``DERIVED`` its value from the other keys."""
        for name, derive in self.DERIVED.items():
            if getattr(self, name) is None:
                setattr(self, name, derive(self))

    @classmethod
    def keys(cls) -> dict[str, FieldInfo]:
        """cfg key -> how the key is stored (see ``FieldInfo``)."""
        return _field_table(cls)


@dataclass
class LayerSection(Section):
    """Keys every Darknet layer section understands (``parse_network_cfg_custom``)."""

    index: int = field(default=-1, repr=False, compare=False)
    stopbackward: int = 0
    dontload: int = 0
    dontloadscales: int = 0
    learning_rate: float = 1.0  # per-layer learning-rate scale
    onlyforward: int = field(default=0, metadata=_todo("training"))
    dont_update: int = field(default=0, metadata=_todo("training"))
    burnin_update: int = field(default=0, metadata=_todo("training"))
    train_only_bn: int = field(default=0, metadata=_todo("training"))
    clip: float = field(default=0.0, metadata=_todo("training"))


@dataclass
class NetSection(Section):
    """``[net]``: input size, optimizer, schedule and augmentation settings."""

    kind: ClassVar[str] = "net"
    aliases: ClassVar[tuple[str, ...]] = ("network",)
    DERIVED: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "inputs": lambda s: s.width * s.height * s.channels,
        "sgdr_cycle": lambda s: s.max_batches,
        "sequential_subdivisions": lambda s: s.subdivisions,
        "max_crop": lambda s: s.width * 2,
        "min_crop": lambda s: s.width,
    }

    batch: int = 1
    subdivisions: int = 1
    width: int = 0
    height: int = 0
    channels: int = 0
    inputs: int | None = None
    max_batches: int = 0
    learning_rate: float = 0.001
    learning_rate_min: float = 0.00001
    momentum: float = 0.9
    decay: float = 0.0001
    burn_in: int = 0
    power: float = 4.0
    policy: str = field(default="constant", metadata=_choice(
        "constant", "steps", "step", "poly", "exp", "sigmoid", "sgdr", "random"))
    steps: list[int] | None = None
    scales: list[float] | None = None
    seq_scales: list[float] | None = field(default=None, metadata=_todo("training"))
    step: int = 1
    scale: float = 1.0
    gamma: float = 1.0
    sgdr_cycle: int | None = None
    sgdr_mult: int = 2
    time_steps: int = field(default=1, metadata=_todo("recurrent layers"))
    track: int = field(default=0, metadata=_todo("training"))
    augment_speed: int = field(default=2, metadata=_todo("training"))
    sequential_subdivisions: int | None = field(default=None, metadata=_todo("training"))
    try_fix_nan: int = field(default=0, metadata=_todo("training"))
    weights_reject_freq: int = field(default=0, metadata=_todo("training"))
    equidistant_point: int = field(default=0, metadata=_todo("training"))
    badlabels_rejection_percentage: float = field(default=0.0, metadata=_todo("training"))
    num_sigmas_reject_badlabels: float = field(default=0.0, metadata=_todo("training"))
    ema_alpha: float = 0.0
    use_cuda_graph: int = field(default=0, metadata=_todo("Darknet's CUDA graphs"))
    loss_scale: float = field(default=1.0, metadata=_todo("training"))
    dynamic_minibatch: int = field(default=0, metadata=_todo("training"))
    optimized_memory: int = field(default=0, metadata=_todo("Darknet's GPU memory use"))
    workspace_size_limit_MB: float = field(default=1024.0, metadata=_todo("cuDNN workspace"))
    adam: int = field(default=0, metadata=_todo("training with Adam; darknet-py uses SGD"))
    B1: float = field(default=0.9, metadata=_todo("training (Adam)"))
    B2: float = field(default=0.999, metadata=_todo("training (Adam)"))
    eps: float = field(default=0.000001, metadata=_todo("training (Adam)"))
    max_crop: int | None = None
    min_crop: int | None = None
    flip: int = 1
    blur: int = field(default=0, metadata=_todo("training augmentation"))
    gaussian_noise: int = field(default=0, metadata=_todo("training augmentation"))
    mixup: int = field(default=0, metadata=_todo("training augmentation"))
    cutmix: int = field(default=0, metadata=_todo("training augmentation"))
    mosaic: int = 0
    letter_box: int = 0
    mosaic_bound: int = field(default=0, metadata=_todo("training augmentation"))
    contrastive: int = field(default=0, metadata=_todo("training"))
    contrastive_jit_flip: int = field(default=0, metadata=_todo("training"))
    contrastive_color: int = field(default=0, metadata=_todo("training"))
    unsupervised: int = field(default=0, metadata=_todo("training"))
    label_smooth_eps: float = field(default=0.0, metadata=_todo("classifier training"))
    resize_step: float = 32.0
    attention: int = field(default=0, metadata=_todo("training"))
    adversarial_lr: float = field(default=0.0, metadata=_todo("training"))
    max_chart_loss: float = field(default=20.0, metadata=_todo("the training chart"))
    angle: float = field(default=0.0, metadata=_todo("classifier augmentation"))
    aspect: float = field(default=1.0, metadata=_todo("classifier augmentation"))
    saturation: float = 1.0
    exposure: float = 1.0
    hue: float = 0.0
    show_receptive_field: float = field(default=0.0, metadata=_todo("a display window"))

    def finalize(self) -> None:
        self.fill_derived()
        for key in ("batch", "subdivisions"):
            if getattr(self, key) < 1:
                raise self.error(f"{key}={getattr(self, key)} must be at least 1", key)
        if self.batch % self.subdivisions:
            log.warning("%s:%d: [net] batch=%d is not a multiple of subdivisions=%d; "
                        "mini-batch is %d as in Darknet", self.path, self.line, self.batch,
                        self.subdivisions, self.batch // self.subdivisions)
        if not (self.width > 0 and self.height > 0 and self.channels > 0):
            raise self.error("width, height and channels must be set and positive "
                             f"(got width={self.width} height={self.height} "
                             f"channels={self.channels})")
        if self.policy == "steps":
            if not self.steps or not self.scales:
                raise self.error("policy=steps needs both steps= and scales=", "policy")
            if len(self.scales) != len(self.steps):
                raise self.error(f"steps has {len(self.steps)} values but scales has "
                                 f"{len(self.scales)}", "scales")

    @property
    def mini_batch(self) -> int:
        """Images per forward pass: ``batch // subdivisions`` (Darknet's ``net.batch``)."""
        return max(1, self.batch // self.subdivisions)


@dataclass
class ConvolutionalSection(LayerSection):
    """``[convolutional]``: conv + optional batch norm + activation."""

    kind: ClassVar[str] = "convolutional"
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
    activation: str = field(default="logistic", metadata=_choice(*ACTIVATIONS))
    antialiasing: int = 0
    share_index: int | None = None
    binary: int = 0
    xnor: int = 0
    flipped: int = field(default=0, metadata=_todo("deconvolutional layers"))

    def finalize(self) -> None:
        self.fill_derived()
        if self.size == 1:
            self.dilation = 1
        if self.pad:
            self.padding = self.size // 2
        for key in ("filters", "size", "stride_x", "stride_y", "groups"):
            if getattr(self, key) < 1:
                raise self.error(f"{key}={getattr(self, key)} must be at least 1", key)
        unsupported = {"antialiasing": self.antialiasing, "binary": self.binary,
                       "xnor": self.xnor, "share_index": self.share_index,
                       "dilation": self.dilation != 1}
        for key, value in unsupported.items():
            if value:
                raise self.error(f"{key} is not supported by darknet-py", key)
        if self.filters % self.groups:
            raise self.error(f"filters={self.filters} is not divisible by "
                             f"groups={self.groups}", "groups")


@dataclass
class RouteSection(LayerSection):
    """``[route]``: concatenation of earlier outputs, optionally one channel group of each."""

    kind: ClassVar[str] = "route"

    layers: list[int] = field(default_factory=list, metadata={"required": True})
    groups: int = 1
    group_id: int = 0

    def finalize(self) -> None:
        if self.groups < 1:
            raise self.error(f"groups={self.groups} must be at least 1", "groups")
        if not 0 <= self.group_id < self.groups:
            raise self.error(f"group_id={self.group_id} must be in 0..{self.groups - 1}",
                             "group_id")


@dataclass
class ShortcutSection(LayerSection):
    """``[shortcut]``: (weighted) sum of the previous output and ``from`` layers."""

    kind: ClassVar[str] = "shortcut"

    from_: list[int] = field(default_factory=list, metadata={"key": "from", "required": True})
    activation: str = field(default="linear", metadata=_choice(*ACTIVATIONS))
    weights_type: str = field(default="none", metadata=_choice(
        "none", "per_feature", "per_layer", "per_channel"))
    weights_normalization: str = field(default="none", metadata=_choice(
        "none", "relu", "avg_relu", "softmax"))

    def finalize(self) -> None:
        if self.weights_type == "per_layer":
            self.weights_type = "per_feature"
        if self.weights_normalization == "avg_relu":
            self.weights_normalization = "relu"


@dataclass
class MaxpoolSection(LayerSection):
    """``[maxpool]``: Darknet max pooling (size defaults to stride, padding to size-1)."""

    kind: ClassVar[str] = "maxpool"
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
    out_channels: int = field(default=1, metadata=_todo("maxpool_depth"))
    antialiasing: int = 0
    maxpool_zero_nonmax: int = 0

    def finalize(self) -> None:
        self.fill_derived()
        for key in ("size", "stride_x", "stride_y"):
            if getattr(self, key) < 1:
                raise self.error(f"{key}={getattr(self, key)} must be at least 1", key)
        for key in ("maxpool_depth", "antialiasing", "maxpool_zero_nonmax"):
            if getattr(self, key):
                raise self.error(f"{key} is not supported by darknet-py", key)


@dataclass
class UpsampleSection(LayerSection):
    """``[upsample]``: nearest-neighbour upsampling by ``stride``, times ``scale``."""

    kind: ClassVar[str] = "upsample"

    stride: int = 2
    scale: float = 1.0

    def finalize(self) -> None:
        if self.stride < 1:
            raise self.error(f"stride={self.stride} is not supported (must be >= 1)", "stride")


@dataclass
class SamSection(LayerSection):
    """``[sam]``: spatial attention, previous output times the ``from`` layer's output."""

    kind: ClassVar[str] = "sam"

    from_: int = field(default=0, metadata={"key": "from", "required": True})
    activation: str = field(default="linear", metadata=_choice(*ACTIVATIONS))


@dataclass
class YoloSection(LayerSection):
    """``[yolo]``: detection head (decoding at inference, Darknet's loss in training)."""

    kind: ClassVar[str] = "yolo"
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
    delta_normalizer: float = field(default=1.0, metadata=_todo("training"))
    iou_loss: str = field(default="mse", metadata=_choice("mse", "iou", "giou", "diou", "ciou"))
    iou_thresh_kind: str = field(default="iou", metadata=_choice("iou", "giou", "diou", "ciou"))
    beta_nms: float = 0.6
    nms_kind: str = field(default="default", metadata=_choice(
        "default", "greedynms", "diounms", "cornersnms"))
    jitter: float = 0.2
    resize: float = 1.0
    focal_loss: int = field(default=0, metadata=_todo("training"))
    ignore_thresh: float = 0.5
    truth_thresh: float = 1.0
    iou_thresh: float = 1.0
    random: float = 0.0
    show_details: int = 1
    track_history_size: int = field(default=5, metadata=_todo("Darknet's tracker"))
    sim_thresh: float = field(default=0.8, metadata=_todo("Darknet's tracker"))
    dets_for_track: int = field(default=1, metadata=_todo("Darknet's tracker"))
    dets_for_show: int = field(default=1, metadata=_todo("Darknet's tracker"))
    track_ciou_norm: float = field(default=0.01, metadata=_todo("Darknet's tracker"))

    def finalize(self) -> None:
        if self.classes < 1:
            raise self.error(f"classes={self.classes} must be at least 1", "classes")
        if self.anchors is None:
            self.anchors = self.DERIVED["anchors"](self)
        if len(self.anchors) % 2:
            raise self.error(f"anchors has an odd number of values ({len(self.anchors)}); "
                             "expected width,height pairs", "anchors")
        listed = len(self.anchors) // 2
        if listed != self.num:
            if listed < self.num:
                raise self.error(f"num={self.num} but only {listed} anchors are listed",
                                 "anchors")
            line = self.options["num"].line if "num" in self.options else self.line
            log.warning("%s:%d: [yolo] num=%d but %d anchors are listed; using the %d "
                        "anchors listed", self.path, line, self.num, listed, listed)
            self.num = listed
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


SECTION_TYPES: dict[str, type[Section]] = {}
for _cls in (NetSection, ConvolutionalSection, RouteSection, ShortcutSection, MaxpoolSection,
             UpsampleSection, SamSection, YoloSection):
    for _name in (_cls.kind, *_cls.aliases):
        SECTION_TYPES[_name] = _cls


@dataclass
class Cfg:
    """A cfg: the ``[net]`` section, the layer sections and the source text ("" for a cfg
    built in code; ``to_text()`` writes one)."""

    net: NetSection
    layers: list[LayerSection]
    text: str = ""
    path: str = "<string>"

    @property
    def yolo_layers(self) -> list[YoloSection]:
        return [s for s in self.layers if isinstance(s, YoloSection)]

    def to_text(self) -> str:
        """Darknet cfg text of these sections (see ``darknet_py.cfg.write``)."""
        from .write import cfg_to_text

        return cfg_to_text(self)

    @property
    def source_text(self) -> str:
        """The text this cfg was read from, else ``to_text()``."""
        return self.text or self.to_text()


# --------------------------------------------------------------------------- key table

@dataclass(frozen=True)
class FieldInfo:
    """How a cfg key is stored: its dataclass field, scalar type and whether it is a list."""

    field: dataclasses.Field
    type: type
    is_list: bool

    @property
    def default(self) -> Any:
        f = self.field
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _unwrap(hint: Any) -> tuple[type, bool]:
    """(scalar type, is_list) of a field annotation like ``list[int] | None``."""
    origin = get_origin(hint)
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in get_args(hint) if a is not type(None)]
        return _unwrap(args[0])
    if origin is list:
        return get_args(hint)[0], True
    return hint, False


@functools.lru_cache(maxsize=None)
def _field_table(cls: type[Section]) -> dict[str, FieldInfo]:
    hints = get_type_hints(cls)
    table = {}
    for f in dataclasses.fields(cls):
        if f.name in ("path", "line", "options", "index"):
            continue
        typ, is_list = _unwrap(hints[f.name])
        table[f.metadata.get("key", f.name)] = FieldInfo(f, typ, is_list)
    return table
