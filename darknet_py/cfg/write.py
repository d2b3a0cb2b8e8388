"""Typed sections -> Darknet cfg text (pure Python, no torch).

Each section is written as ``[kind]`` followed by the keys whose value differs
from Darknet's default, in the section's field order.  Keys whose default is
derived from other keys (``Section.DERIVED``, such as ``stride_x`` from
``stride``) are left out when they hold the derived value, so reading the text
back gives the same sections.  Comments and the original spelling are not kept.
"""

from __future__ import annotations

from typing import Any

from .sections import Cfg, Section


def format_value(value: Any) -> str:
    """A value as cfg text that parses back to the same value (floats exactly)."""
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def section_options(section: Section) -> dict[str, str]:
    """The ``key: value`` texts that describe ``section`` (non-default keys only)."""
    derived = type(section).DERIVED
    out = {}
    for key, info in section.keys().items():
        name = info.field.name
        value = getattr(section, name)
        if value == info.default:
            continue
        if name in derived and value == derived[name](section):
            continue
        out[key] = format_value(value)
    return out


def section_text(section: Section) -> str:
    """One section as cfg text, ending in a newline."""
    lines = [f"[{section.kind}]"]
    lines += [f"{key}={value}" for key, value in section_options(section).items()]
    return "\n".join(lines) + "\n"


def cfg_to_text(cfg: Cfg) -> str:
    """The whole cfg as text: ``[net]`` then each layer, separated by blank lines."""
    return "\n".join(section_text(s) for s in [cfg.net, *cfg.layers])
