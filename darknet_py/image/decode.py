"""Image files as Darknet sees them: RGB float32 in [0, 1], H x W x 3.

Two decoders, each the pixels of one Darknet build (other formats than JPEG are lossless
and decode the same either way):
- ``opencv`` (``DEFAULT_DECODER``): libjpeg through OpenCV, as Darknet built with
  ``OPENCV=1`` reads images (``cv::imread``).  That is the build nearly every user has: only
  it trains ``mosaic=1``, and Hank.ai's Darknet always uses OpenCV.  About 9 times faster
  per JPEG than ``stb``;
- ``stb``: stb_image's JPEG pipeline (``image.stb``), as Darknet built without OpenCV reads
  images; JPEG pixels differ from ``opencv``'s by up to 3/255.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..errors import ImageError
from ..files import read_input
from .stb import StbUnsupported, decode_stb, jpeg_segments

log = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 1 << 27  # 134 megapixels: 1.6 GB as float32 RGB


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's frame header, without decoding;
    ``None`` for other formats or a header that cannot be read."""
    if data.startswith(PNG_MAGIC) and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(JPEG_MAGIC):
        return None
    for marker, body in jpeg_segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(body) >= 5:
            return int.from_bytes(body[3:5], "big"), int.from_bytes(body[1:3], "big")  # SOFn
    return None


def _check_size(data: bytes, name: str) -> None:
    size = header_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ImageError(f"{name}: {size[0]}x{size[1]} pixels is more than the "
                         f"{MAX_PIXELS:,} an image may have")


def _opencv(data: bytes, name: str, path: str | Path | None) -> np.ndarray:
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    except (cv2.error, MemoryError) as err:
        raise ImageError(f"{name}: cannot decode image ({str(err).strip()[:80]})") from None
    if bgr is None:
        raise ImageError(f"{name}: cannot decode image (not an image file, or corrupt)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _stb(data: bytes, name: str, path: str | Path | None) -> np.ndarray:
    if not data.startswith(JPEG_MAGIC):
        return _opencv(data, name, path)  # PNG, BMP...: lossless, the same pixels
    try:
        return decode_stb(path, data) if path is not None else decode_stb(data)
    except StbUnsupported as why:
        log.debug("%s: %s; decoded with OpenCV", name, why)
        return _opencv(data, name, path)
    except (OSError, ValueError) as err:
        raise ImageError(f"{name}: cannot decode image (corrupt JPEG: {err})") from None


DECODERS: dict[str, Callable[[bytes, str, str | Path | None], np.ndarray]] = {
    "opencv": _opencv, "stb": _stb}
DEFAULT_DECODER = "opencv"  # Darknet built with OpenCV; "stb" for a build without it


def _decoder(decoder: str):
    if decoder not in DECODERS:
        raise ValueError(f"decoder {decoder!r}: expected one of {', '.join(DECODERS)}")
    return DECODERS[decoder]


def decode_rgb8(data: bytes, name: str = "<bytes>", decoder: str = DEFAULT_DECODER) -> np.ndarray:
    """Decode encoded image bytes to RGB uint8, H x W x 3."""
    _check_size(data, name)
    return _decoder(decoder)(data, name, None)


def decode_image(data: bytes, name: str = "<bytes>", decoder: str = DEFAULT_DECODER) -> np.ndarray:
    """Decode encoded image bytes to RGB float32 in [0, 1] (``(float)byte / 255.`` as Darknet)."""
    return to_float(decode_rgb8(data, name, decoder))


def to_float(rgb8: np.ndarray) -> np.ndarray:
    """RGB uint8 -> float32 in [0, 1], as Darknet divides (in double, then rounded)."""
    return (rgb8.astype(np.float64) / 255.0).astype(np.float32)


def load_rgb8(path: str | Path, decoder: str = DEFAULT_DECODER) -> np.ndarray:
    """Read an image file as RGB uint8, H x W x 3 (4 times less to move than float)."""
    data = read_input(path, "image file", ImageError)
    _check_size(data, str(path))
    return _decoder(decoder)(data, str(path), path)


def load_image(path: str | Path, decoder: str = DEFAULT_DECODER) -> np.ndarray:
    """Read an image file as RGB float32 in [0, 1], shape H x W x 3."""
    return to_float(load_rgb8(path, decoder))
