"""The embedded default model (yolov4-tiny, COCO) and a sample image, found by name.

In a source checkout they live in the repository's ``cfg/`` and ``weights/``;
an installed wheel carries them in this package's ``cfg/`` and ``weights/``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import WeightsError

_HERE = Path(__file__).resolve().parent
_ROOTS = (_HERE, _HERE.parent.parent)

#: sha256 of the embedded weights files (the public-domain AlexeyAB release).
KNOWN_WEIGHTS = {
    "yolov4-tiny.weights": "cf9fbfd0f6d4869b35762f56100f50ed05268084078805f0e7989efe5bb8ca87",
}

DEFAULT_CFG = "yolov4-tiny.cfg"
DEFAULT_WEIGHTS = "yolov4-tiny.weights"
DEFAULT_DATA = "coco.data"
DEFAULT_NAMES = "coco.names"
SAMPLE_IMAGE = _HERE / "astronaut.jpg"


def find(name: str) -> Path | None:
    """Path of an embedded file (``yolov4-tiny.cfg``, ``coco.names``...), or None."""
    folder = "weights" if name.endswith(".weights") else "cfg"
    for root in _ROOTS:
        p = root / folder / name
        if p.is_file():
            return p
    return None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve(path: str | Path) -> Path:
    """``path`` if it exists, else the embedded file of that name (weights hash-checked)."""
    p = Path(path)
    try:
        if p.exists() or p.parent != Path("."):
            return p
    except OSError:  # a name too long for the file system: reading it will say so
        return p
    found = find(p.name)
    if found is None:
        return p
    expected = KNOWN_WEIGHTS.get(p.name)
    if expected is not None and sha256(found) != expected:
        raise WeightsError(f"{found}: embedded weights are damaged (sha256 differs from the "
                           f"release's {expected[:12]}...)")
    return found
