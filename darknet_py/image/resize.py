"""Darknet's resizes of RGB float32 images (H x W x 3): ``resize_image`` and
``letterbox_image``, in float32 as Darknet computes them."""

from __future__ import annotations

import numpy as np

from ..ops.boxes import letterbox_size


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


def letterbox_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """Darknet's ``letterbox_image``: resize keeping aspect ratio, centre on 0.5 grey."""
    in_h, in_w = im.shape[:2]
    new_w, new_h = letterbox_size(in_w, in_h, w, h)
    resized = resize_image(im, new_w, new_h)
    boxed = np.full((h, w, im.shape[2]), 0.5, dtype=np.float32)
    top, left = (h - new_h) // 2, (w - new_w) // 2
    boxed[top: top + new_h, left: left + new_w] = resized
    return boxed
