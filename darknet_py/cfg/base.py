"""What every cfg section shares: raw options with their lines, Darknet's defaults as
dataclass fields, the key table that parsing and writing read, and error messages that
name file and line.

A field's metadata may give its cfg key (``from``), its allowed values, that it is
required, or that Darknet reads it but darknet-py does not implement it
(``unimplemented``: setting it to anything but its default is warned about).
``DERIVED`` lists the keys whose default depends on other keys, so writing a section
can leave them out.
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

#: The one list of each kind of name; ``nn`` and ``ops`` implement exactly these.
ACTIVATIONS = (
    "linear", "leaky", "relu", "relu6", "logistic", "mish", "swish", "elu", "selu",
    "gelu", "hard_mish", "tanh", "revleaky", "relie", "ramp", "plse", "hardtan", "lhtan",
    "loggy", "stair", "normalize_channels", "normalize_channels_softmax",
    "normalize_channels_softmax_maxval",
)
NMS_KINDS = ("default", "greedynms", "diounms", "cornersnms")
IOU_KINDS = ("iou", "giou", "diou", "ciou")


@dataclass
class Option:
    """One ``key=value`` line as written in the file."""

    key: str
    value: str
    line: int


def choices(*values: str) -> dict:
    """Metadata of a key that takes one of ``values``."""
    return {"choices": values}


def unimplemented(what: str) -> dict:
    """Metadata of a key Darknet reads and darknet-py does not implement."""
    return {"unimplemented": what}


@dataclass
class Section:
    """Base of all parsed sections: where it came from and its raw options."""

    kind: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: the keys that shape the network (what ``cfg diff`` compares)
    STRUCTURAL: ClassVar[tuple[str, ...]] = ()
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

    def check_range(self, key: str, low: float, high: float) -> None:
        """A ``CfgError`` naming ``key`` unless low <= value <= high (NaN fails too)."""
        value = getattr(self, key)
        if not low <= value <= high:
            raise self.error(f"{key}={value} is out of range (expected {low:g} to {high:g})",
                             key)

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
    onlyforward: int = field(default=0, metadata=unimplemented("training"))
    dont_update: int = field(default=0, metadata=unimplemented("training"))
    burnin_update: int = field(default=0, metadata=unimplemented("training"))
    train_only_bn: int = field(default=0, metadata=unimplemented("training"))
    clip: float = field(default=0.0, metadata=unimplemented("training"))


#: section name (and alias) -> its class; filled by ``register_section``
SECTION_TYPES: dict[str, type[Section]] = {}


def register_section(cls: type[Section]) -> type[Section]:
    """Class decorator: ``cls`` parses the sections named ``cls.kind`` (and its aliases)."""
    for name in (cls.kind, *cls.aliases):
        if name in SECTION_TYPES:
            raise ValueError(f"section [{name}] is registered twice")
        SECTION_TYPES[name] = cls
    return cls


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
