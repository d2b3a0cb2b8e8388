"""Images as Darknet sees them: RGB float32 in [0, 1], H x W x 3, and its resizes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import ImageError, read_input


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to RGB float32 in [0, 1] (``(float)byte / 255.`` as Darknet)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        raise ImageError(f"{name}: cannot decode image (not an image file, or corrupt)")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return (rgb.astype(np.float64) / 255.0).astype(np.float32)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB float32 in [0, 1], shape H x W x 3."""
    return decode_image(read_input(path, "image file", ImageError), str(path))


def resize_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's ``resize_image``: bilinear in two passes (columns, then rows), in float32.

    Corners map to corners (scale ``(in-1)/(out-1)``); the last output column
    copies the last input column and the last row takes only the ``(1-dy)``
    share of its source row, exactly as Darknet does.
    """
    im = np.asarray(im, dtype=np.float32)
    in_h, in_w = im.shape[:2]
    if (in_w, in_h) == (w, h):
        return im.copy()
    one = np.float32(1)
    w_scale = np.float32(in_w - 1) / np.float32(w - 1) if w > 1 else np.float32(0)
    h_scale = np.float32(in_h - 1) / np.float32(h - 1) if h > 1 else np.float32(0)

    sx = np.arange(w, dtype=np.float32) * w_scale
    ix = sx.astype(np.int64)
    dx = (sx - ix.astype(np.float32))[None, :, None]
    ix = np.minimum(ix, in_w - 1)
    ix1 = np.minimum(ix + 1, in_w - 1)
    part = (one - dx) * im[:, ix] + dx * im[:, ix1]
    if in_w == 1:
        part[:] = im[:, in_w - 1: in_w]
    else:
        part[:, w - 1] = im[:, in_w - 1]

    sy = np.arange(h, dtype=np.float32) * h_scale
    iy = np.minimum(sy.astype(np.int64), in_h - 1)
    dy = (sy - iy.astype(np.float32))[:, None, None]
    out = (one - dy) * part[iy]
    if in_h > 1:
        rows = slice(0, h - 1)
        out[rows] += dy[rows] * part[np.minimum(iy[rows] + 1, in_h - 1)]
    return out.astype(np.float32, copy=False)


def letterbox_size(im_w: int, im_h: int, w: int, h: int) -> tuple[int, int]:
    """Size of the image inside a ``w x h`` letterbox (Darknet's integer arithmetic)."""
    if w / im_w < h / im_h:
        return w, (im_h * w) // im_w
    return (im_w * h) // im_h, h


def letterbox_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's ``letterbox_image``: resize keeping aspect ratio, centre on 0.5 grey."""
    in_h, in_w = im.shape[:2]
    new_w, new_h = letterbox_size(in_w, in_h, w, h)
    resized = resize_image(im, new_w, new_h)
    boxed = np.full((h, w, im.shape[2]), 0.5, dtype=np.float32)
    top, left = (h - new_h) // 2, (w - new_w) // 2
    boxed[top: top + new_h, left: left + new_w] = resized
    return boxed
