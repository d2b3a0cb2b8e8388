"""Image files as Darknet sees them: RGB float32 in [0, 1], H x W x 3."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError
from ..io.files import read_input


def decode_rgb8(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to RGB uint8, H x W x 3."""
    buf = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        raise ImageError(f"{name}: cannot decode image (not an image file, or corrupt)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to RGB float32 in [0, 1] (``(float)byte / 255.`` as Darknet)."""
    return (decode_rgb8(data, name).astype(np.float64) / 255.0).astype(np.float32)


def load_rgb8(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8, H x W x 3 (4 times less to move than float)."""
    return decode_rgb8(read_input(path, "image file", ImageError), str(path))


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB float32 in [0, 1], shape H x W x 3."""
    return decode_image(read_input(path, "image file", ImageError), str(path))
