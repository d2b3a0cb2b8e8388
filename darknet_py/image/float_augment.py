"""Darknet's float-image augmentation of classifier training (AlexeyAB ``src/image.c``):
``rotate_crop_image`` with ``bilinear_interpolate``, ``flip_image`` and ``distort_image``
(its float HSV round trip).  Images are H x W x C float32 numpy arrays in [0, 1]; the
arithmetic follows Darknet's float/double mix, so results equal Darknet C's to the last
bits of float32.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def rotate_crop_image(im: np.ndarray, rad: float, s: float, w: int, h: int, dx: float,
                      dy: float, aspect: float) -> np.ndarray:
    """``rotate_crop_image``: the (h, w, C) window of ``im`` rotated by ``rad`` about the
    image centre, scaled by ``s`` (``aspect`` stretches x), shifted by (dx, dy) output
    pixels; samples outside the image are 0."""
    rad, s, dx, dy, aspect = F32(rad), F32(s), F32(dx), F32(dy), F32(aspect)
    cx, cy = F32(im.shape[1] / 2.), F32(im.shape[0] / 2.)
    x = (np.arange(w, dtype=np.float64) - w / 2.) / np.float64(s) * np.float64(aspect)
    x = x + np.float64(F32(F32(dx / s) * aspect))  # dx/s*aspect is float arithmetic
    y = (np.arange(h, dtype=np.float64) - h / 2.) / np.float64(s) + np.float64(F32(dy / s))
    c, sn = np.cos(np.float64(rad)), np.sin(np.float64(rad))
    rx = (c * x[None, :] - sn * y[:, None] + np.float64(cx)).astype(F32)
    ry = (sn * x[None, :] + c * y[:, None] + np.float64(cy)).astype(F32)
    return bilinear_interpolate(im, rx, ry)


def bilinear_interpolate(im: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``bilinear_interpolate`` at float32 positions ``x``, ``y`` (any equal shape), every
    channel; neighbours outside the image count 0 (``get_pixel_extend``)."""
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = (x - ix).astype(F32), (y - iy).astype(F32)
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)
    height, width = im.shape[:2]

    def pixel(px, py):
        inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
        v = im[np.clip(py, 0, height - 1), np.clip(px, 0, width - 1)]
        return np.where(inside[..., None], v, F32(0))

    one = F32(1)
    gx, gy = fx[..., None], fy[..., None]
    val = (one - gy) * (one - gx) * pixel(ix, iy)
    val = val + gy * (one - gx) * pixel(ix, iy + 1)
    val = val + (one - gy) * gx * pixel(ix + 1, iy)
    val = val + gy * gx * pixel(ix + 1, iy + 1)
    return val.astype(F32)


def flip_image(im: np.ndarray) -> np.ndarray:
    """``flip_image``: left-right mirror."""
    return np.ascontiguousarray(im[:, ::-1])


def distort_image(im: np.ndarray, hue: float, sat: float, val: float) -> np.ndarray:
    """``distort_image``: to HSV, saturation and value scaled, ``hue`` added (wrapped to
    [0, 1]), back to RGB, clipped to [0, 1].  Grey images: the value scaled only."""
    if im.shape[2] < 3:
        return np.clip(im * F32(val), 0, 1).astype(F32)
    hsv = rgb_to_hsv(im)
    hsv[..., 1] *= F32(sat)
    hsv[..., 2] *= F32(val)
    h = hsv[..., 0] + F32(hue)
    h = np.where(h > 1, h - F32(1), h)
    hsv[..., 0] = np.where(h < 0, h + F32(1), h)
    return np.clip(hsv_to_rgb(hsv), 0, 1).astype(F32)


def rgb_to_hsv(im: np.ndarray) -> np.ndarray:
    """Darknet's float ``rgb_to_hsv`` (hue in [0, 1))."""
    r, g, b = (im[..., k].astype(F32) for k in range(3))
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    delta = mx - mn
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(mx == 0, F32(0), delta / mx)
        h = np.where(r == mx, (g - b) / delta,
                     np.where(g == mx, F32(2) + (b - r) / delta, F32(4) + (r - g) / delta))
    h = np.where(h < 0, h + F32(6), h)
    h = (h.astype(np.float64) / 6.).astype(F32)
    h = np.where(mx == 0, F32(0), h)
    return np.stack([h, s, mx], -1).astype(F32)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Darknet's float ``hsv_to_rgb``."""
    h = F32(6) * hsv[..., 0]
    s, v = hsv[..., 1], hsv[..., 2]
    index = np.floor(np.nan_to_num(h.astype(np.float64))).astype(np.int64)  # NaN: grey
    f = (h - index).astype(F32)
    p = v * (F32(1) - s)
    q = v * (F32(1) - s * f)
    t = v * (F32(1) - s * (F32(1) - f))
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v)]
    rgb = [np.select([index == k for k in range(5)], [c[ch] for c in choices],
                     (v, p, q)[ch]) for ch in range(3)]
    out = np.stack(rgb, -1)
    return np.where((s == 0)[..., None], v[..., None], out).astype(F32)
