"""Darknet ``.cfg`` parsing: text -> typed section objects (pure Python, no torch).

The reader follows Darknet's ``read_cfg``: all whitespace is removed from a
line, lines starting with ``#`` or ``;`` are comments, ``[name]`` opens a
section and ``key=value`` adds an option to it; when a key is repeated the
first value wins.  Each section becomes a dataclass whose defaults are
Darknet's (``parse_net_options``, ``parse_convolutional``, ``parse_yolo``...),
and which remembers the file and line it came from for error messages.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

from .errors import CfgError, read_input

log = logging.getLogger(__name__)

FLT_MAX = 3.4028234663852886e38

ACTIVATIONS = (
    "linear", "leaky", "relu", "relu6", "logistic", "mish", "swish", "elu", "selu",
    "gelu", "hard_mish", "tanh",
)

_INT_RE = re.compile(r"[+-]?\d+$")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class Option:
    """One ``key=value`` line as written in the file."""

    key: str
    value: str
    line: int


def _choice(*choices: str) -> dict:
    return {"choices": choices}


def _key(name: str) -> dict:
    return {"key": name}


@dataclass
class Section:
    """Base of all parsed sections: where it came from and its raw options."""

    kind: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()

    path: str = field(default="<string>", repr=False, compare=False)
    line: int = field(default=0, repr=False, compare=False)
    options: dict[str, Option] = field(default_factory=dict, repr=False, compare=False)

    def error(self, message: str, key: str | None = None) -> CfgError:
        """A CfgError pointing at this section (or at the line of ``key``)."""
        line = self.options[key].line if key in self.options else self.line
        return CfgError(f"[{self.kind}] {message}", self.path, line)

    def finalize(self) -> None:
        """Resolve defaults that depend on other keys and validate values."""


@dataclass
class LayerSection(Section):
    """Keys every Darknet layer section understands (``parse_network_cfg_custom``)."""

    index: int = field(default=-1, repr=False, compare=False)
    stopbackward: int = 0
    dontload: int = 0
    dontloadscales: int = 0
    learning_rate: float = 1.0  # per-layer learning-rate scale
    onlyforward: int = 0
    dont_update: int = 0
    burnin_update: int = 0
    train_only_bn: int = 0
    clip: float = 0.0


@dataclass
class NetSection(Section):
    """``[net]``: input size, optimizer, schedule and augmentation settings."""

    kind: ClassVar[str] = "net"
    aliases: ClassVar[tuple[str, ...]] = ("network",)

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
    seq_scales: list[float] | None = None
    step: int = 1
    scale: float = 1.0
    gamma: float = 1.0
    sgdr_cycle: int | None = None
    sgdr_mult: int = 2
    time_steps: int = 1
    track: int = 0
    augment_speed: int = 2
    sequential_subdivisions: int | None = None
    try_fix_nan: int = 0
    weights_reject_freq: int = 0
    equidistant_point: int = 0
    badlabels_rejection_percentage: float = 0.0
    num_sigmas_reject_badlabels: float = 0.0
    ema_alpha: float = 0.0
    use_cuda_graph: int = 0
    loss_scale: float = 1.0
    dynamic_minibatch: int = 0
    optimized_memory: int = 0
    workspace_size_limit_MB: float = 1024.0
    adam: int = 0
    B1: float = 0.9
    B2: float = 0.999
    eps: float = 0.000001
    max_crop: int | None = None
    min_crop: int | None = None
    flip: int = 1
    blur: int = 0
    gaussian_noise: int = 0
    mixup: int = 0
    cutmix: int = 0
    mosaic: int = 0
    letter_box: int = 0
    mosaic_bound: int = 0
    contrastive: int = 0
    contrastive_jit_flip: int = 0
    contrastive_color: int = 0
    unsupervised: int = 0
    label_smooth_eps: float = 0.0
    resize_step: float = 32.0
    attention: int = 0
    adversarial_lr: float = 0.0
    max_chart_loss: float = 20.0
    angle: float = 0.0
    aspect: float = 1.0
    saturation: float = 1.0
    exposure: float = 1.0
    hue: float = 0.0
    show_receptive_field: float = 0.0

    def finalize(self) -> None:
        if self.inputs is None:
            self.inputs = self.width * self.height * self.channels
        if self.sgdr_cycle is None:
            self.sgdr_cycle = self.max_batches
        if self.sequential_subdivisions is None:
            self.sequential_subdivisions = self.subdivisions
        if self.max_crop is None:
            self.max_crop = self.width * 2
        if self.min_crop is None:
            self.min_crop = self.width
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

    filters: int = 1
    size: int = 1
    stride: int = 1
    stride_x: int = -1
    stride_y: int = -1
    pad: int = 0
    padding: int = 0
    groups: int = 1
    dilation: int = 1
    batch_normalize: int = 0
    activation: str = field(default="logistic", metadata=_choice(*ACTIVATIONS))
    antialiasing: int = 0
    share_index: int | None = None
    binary: int = 0
    xnor: int = 0
    flipped: int = 0

    def finalize(self) -> None:
        if self.stride_x < 1:
            self.stride_x = self.stride
        if self.stride_y < 1:
            self.stride_y = self.stride
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

    stride: int = 1
    stride_x: int | None = None
    stride_y: int | None = None
    size: int | None = None
    padding: int | None = None
    maxpool_depth: int = 0
    out_channels: int = 1
    antialiasing: int = 0
    maxpool_zero_nonmax: int = 0

    def finalize(self) -> None:
        if self.stride_x is None:
            self.stride_x = self.stride
        if self.stride_y is None:
            self.stride_y = self.stride
        if self.size is None:
            self.size = self.stride
        if self.padding is None:
            self.padding = self.size - 1
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
    delta_normalizer: float = 1.0
    iou_loss: str = field(default="mse", metadata=_choice("mse", "iou", "giou", "diou", "ciou"))
    iou_thresh_kind: str = field(default="iou", metadata=_choice("iou", "giou", "diou", "ciou"))
    beta_nms: float = 0.6
    nms_kind: str = field(default="default", metadata=_choice(
        "default", "greedynms", "diounms", "cornersnms"))
    jitter: float = 0.2
    resize: float = 1.0
    focal_loss: int = 0
    ignore_thresh: float = 0.5
    truth_thresh: float = 1.0
    iou_thresh: float = 1.0
    random: float = 0.0
    show_details: int = 1
    track_history_size: int = 5
    sim_thresh: float = 0.8
    dets_for_track: int = 1
    dets_for_show: int = 1
    track_ciou_norm: float = 0.01

    def finalize(self) -> None:
        if self.classes < 1:
            raise self.error(f"classes={self.classes} must be at least 1", "classes")
        if self.anchors is None:
            self.anchors = [0.5] * (2 * self.num)  # make_yolo_layer's default biases
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
            self.mask = list(range(self.num))
        if not self.mask:
            raise self.error("mask is empty", "mask")
        for m in self.mask:
            if not 0 <= m < self.num:
                raise self.error(f"mask value {m} is beyond the {self.num} anchors", "mask")
        if self.counters_per_class is not None and len(self.counters_per_class) != self.classes:
            raise self.error(f"counters_per_class has {len(self.counters_per_class)} values "
                             f"but classes={self.classes}", "counters_per_class")

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
    """A parsed cfg: the ``[net]`` section, the layer sections and the source text."""

    net: NetSection
    layers: list[LayerSection]
    text: str
    path: str = "<string>"

    @property
    def yolo_layers(self) -> list[YoloSection]:
        return [s for s in self.layers if isinstance(s, YoloSection)]


# --------------------------------------------------------------------------- values

def _parse_scalar(text: str, typ: type, section: Section, key: str, line: int) -> Any:
    if typ is str:
        return text
    if typ is int:
        if _INT_RE.match(text):
            return int(text)
        if _FLOAT_RE.match(text) and float(text).is_integer():
            return int(float(text))
        raise CfgError(f"[{section.kind}] {key}={text!r}: expected an integer", section.path, line)
    if typ is float:
        if _FLOAT_RE.match(text) or _INT_RE.match(text):
            value = float(text)
            if math.isfinite(value):
                return value
        raise CfgError(f"[{section.kind}] {key}={text!r}: expected a number", section.path, line)
    raise TypeError(typ)


def _unwrap(hint: Any) -> tuple[type, bool]:
    """(scalar type, is_list) of a field annotation like ``list[int] | None``."""
    origin = get_origin(hint)
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in get_args(hint) if a is not type(None)]
        return _unwrap(args[0])
    if origin is list:
        return get_args(hint)[0], True
    return hint, False


_HINTS: dict[type, dict[str, Any]] = {}


def _fields(cls: type[Section]) -> dict[str, tuple[dataclasses.Field, type, bool]]:
    """cfg key -> (dataclass field, scalar type, is_list) for a section class."""
    if cls not in _HINTS:
        hints = get_type_hints(cls)
        table = {}
        for f in dataclasses.fields(cls):
            if f.name in ("path", "line", "options", "index"):
                continue
            typ, is_list = _unwrap(hints[f.name])
            table[f.metadata.get("key", f.name)] = (f, typ, is_list)
        _HINTS[cls] = table
    return _HINTS[cls]


def _build_section(cls: type[Section], options: dict[str, Option], path: str, line: int,
                   index: int) -> Section:
    section = cls(path=path, line=line, options=options)
    if isinstance(section, LayerSection):
        section.index = index
    table = _fields(cls)
    for key, opt in options.items():
        if key not in table:
            log.warning("%s:%d: unused option '%s=%s' in [%s]", path, opt.line, key, opt.value,
                        cls.kind)
            continue
        f, typ, is_list = table[key]
        if is_list:
            parts = [p for p in opt.value.split(",")]
            if parts and parts[-1] == "":
                parts = parts[:-1]  # Darknet tolerates a trailing comma
            if any(p == "" for p in parts) or not parts:
                raise CfgError(f"[{cls.kind}] {key}={opt.value!r}: expected a comma-separated "
                               "list of numbers", path, opt.line)
            value = [_parse_scalar(p, typ, section, key, opt.line) for p in parts]
        else:
            value = _parse_scalar(opt.value, typ, section, key, opt.line)
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise CfgError(f"[{cls.kind}] {key}={value!r}: expected one of "
                               f"{', '.join(choices)}", path, opt.line)
        setattr(section, f.name, value)
    for key, (f, _typ, _is_list) in table.items():
        if f.metadata.get("required") and key not in options:
            raise CfgError(f"[{cls.kind}] needs '{key}='", path, line)
    section.finalize()
    return section


# --------------------------------------------------------------------------- text

def parse_cfg(text: str, path: str | Path = "<string>") -> Cfg:
    """Parse cfg ``text``; ``path`` is only used in messages."""
    path = str(path)
    raw: list[tuple[str, int, dict[str, Option]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s+", "", line)
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"malformed section header {line!r}: expected [name]", path, number)
            raw.append((line[1:-1], number, {}))
            continue
        line = line.split("#", 1)[0]
        if "=" not in line:
            raise CfgError(f"cannot parse {line!r}: expected key=value", path, number)
        key, value = line.split("=", 1)
        if not key or not value:
            raise CfgError(f"cannot parse {line!r}: expected key=value", path, number)
        if not raw:
            raise CfgError(f"option {key!r} appears before the first [section]", path, number)
        options = raw[-1][2]
        if key in options:
            log.warning("%s:%d: '%s' repeated in [%s]; the first value (line %d) is used",
                        path, number, key, raw[-1][0], options[key].line)
            continue
        options[key] = Option(key, value, number)
    if not raw:
        raise CfgError("no sections found (empty cfg?)", path)
    name, line, options = raw[0]
    if SECTION_TYPES.get(name) is not NetSection:
        raise CfgError(f"the first section must be [net], found [{name}]", path, line)
    net = _build_section(NetSection, options, path, line, -1)
    layers: list[LayerSection] = []
    for index, (name, line, options) in enumerate(raw[1:]):
        cls = SECTION_TYPES.get(name)
        if cls is None or cls is NetSection:
            supported = ", ".join(f"[{k}]" for k in sorted({c.kind for c in SECTION_TYPES.values()})
                                  if k != "net")
            raise CfgError(f"section [{name}] (layer {index}) is not supported; supported: "
                           f"{supported}", path, line)
        layers.append(_build_section(cls, options, path, line, index))  # type: ignore[arg-type]
    if not layers:
        raise CfgError("the cfg has no layers after [net]", path)
    return Cfg(net=net, layers=layers, text=text, path=path)


def read_cfg(path: str | Path) -> Cfg:
    """Read and parse a cfg file."""
    p = Path(path)
    data = read_input(p, "cfg file", CfgError)
    if b"\0" in data:
        raise CfgError("not a text cfg file (contains NUL bytes)", str(p))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_cfg(text, p)
