"""Darknet cfg text -> typed sections (pure Python, no torch).

The reader follows Darknet's ``read_cfg``: all whitespace is removed from a
line, lines starting with ``#`` or ``;`` are comments, ``[name]`` opens a
section and ``key=value`` adds an option to it; when a key is repeated the
first value wins.  Values are parsed by the section's field types; unknown keys
and keys darknet-py does not implement are warned about with file and line.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from ..errors import CfgError
from ..files import read_input
from .sections import SECTION_TYPES, Cfg, LayerSection, NetSection, Option, Section

log = logging.getLogger(__name__)

_INT_RE = re.compile(r"[+-]?\d+$")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


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


def _build_section(cls: type[Section], options: dict[str, Option], path: str, line: int,
                   index: int) -> Section:
    section = cls(path=path, line=line, options=options)
    if isinstance(section, LayerSection):
        section.index = index
    table = cls.keys()
    for key, opt in options.items():
        if key not in table:
            log.warning("%s:%d: unused option '%s=%s' in [%s]", path, opt.line, key, opt.value,
                        cls.kind)
            continue
        info = table[key]
        f, typ, is_list = info.field, info.type, info.is_list
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
        if "unimplemented" in f.metadata and value != info.default:
            log.warning("%s:%d: [%s] %s=%s is read by Darknet (%s) but not implemented by "
                        "darknet-py; it is ignored", path, opt.line, cls.kind, key, opt.value,
                        f.metadata["unimplemented"])
    for key, info in table.items():
        if info.field.metadata.get("required") and key not in options:
            raise CfgError(f"[{cls.kind}] needs '{key}='", path, line)
    section.finalize()
    return section


# --------------------------------------------------------------------------- text

TEXT_LAYERS = ("rnn", "gru", "lstm")  # Darknet's layers for text models


def _refuse_text_model(raw: list[tuple[str, int, dict[str, Option]]], path: str) -> None:
    """A one-line ``CfgError`` for Darknet's text models (char-rnn: ``[rnn]``, ``[gru]``,
    ``[lstm]``, or a ``[net]`` of ``inputs=`` and no image size)."""
    why = next(((f"[{n}]", ln) for n, ln, _ in raw if n in TEXT_LAYERS), None)
    net = raw[0][2]
    if why is None and "inputs" in net and "width" not in net:
        why = ("[net] inputs= without width=", net["inputs"].line)
    if why:
        raise CfgError(f"{why[0]} makes this a text model (Darknet's char-rnn); darknet-py "
                       "runs image models only", path, why[1])


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
    _refuse_text_model(raw, path)
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
