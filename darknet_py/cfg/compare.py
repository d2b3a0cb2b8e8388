"""Structural differences between two cfgs: what changes the network, not how it trains.

Compared per layer: the section type and the keys that shape the computation, as each
section class lists them (``STRUCTURAL``: filters, sizes, strides, padding, groups,
activations, routes, shortcut sources, yolo masks, anchors, classes...); comments,
spelling, defaults written out and training keys (normalizers, thresholds, augmentation)
are ignored.
"""

from __future__ import annotations

from .sections import Cfg, Section



def _absolute(section: Section, name: str, value):
    """Layer references as absolute indices, so ``-1`` and ``12`` at layer 13 compare equal."""
    if name in ("layers", "from_") and section.kind != "net":
        refs = value if isinstance(value, list) else [value]
        out = [section.index + r if r < 0 else r for r in refs]
        return out if isinstance(value, list) else out[0]
    return value


def section_differences(a: Section, b: Section, where: str) -> list[str]:
    """Lines naming each structural key that differs between two sections."""
    if a.kind != b.kind:
        return [f"{where}: [{a.kind}] vs [{b.kind}]"]
    label = where if a.kind == "net" else f"{where} [{a.kind}]"
    out = []
    for name in type(a).STRUCTURAL:
        va, vb = _absolute(a, name, getattr(a, name)), _absolute(b, name, getattr(b, name))
        if va != vb:
            out.append(f"{label}: {'from' if name == 'from_' else name} {va} vs {vb}")
    return out


def cfg_differences(a: Cfg, b: Cfg) -> list[str]:
    """Every structural difference, one line each (empty when the networks are the same)."""
    out = section_differences(a.net, b.net, "[net]")
    for index, (x, y) in enumerate(zip(a.layers, b.layers)):
        out += section_differences(x, y, f"layer {index}")
    if len(a.layers) != len(b.layers):
        out.append(f"{len(a.layers)} layers vs {len(b.layers)} layers")
    return out
