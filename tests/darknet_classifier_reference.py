"""A slow, literal, loop-by-loop transcription of Darknet's classifier augmentation, for
tests only: ``rotate_crop_image``, ``bilinear_interpolate`` with ``get_pixel_extend``,
``distort_image`` with the float ``rgb_to_hsv`` / ``hsv_to_rgb`` (AlexeyAB
``src/image.c``).  Images are Darknet's: a flat CHW float32 list with w, h, c."""

from __future__ import annotations

import math

import numpy as np

f32 = np.float32


def get_pixel_extend(data, w, h, x, y, c):
    if x < 0 or x >= w or y < 0 or y >= h:
        return f32(0)
    return data[c * h * w + y * w + x]


def bilinear_interpolate(data, w, h, x, y, c):
    ix, iy = int(math.floor(x)), int(math.floor(y))
    dx, dy = f32(x - f32(ix)), f32(y - f32(iy))
    one = f32(1)
    val = (one - dy) * (one - dx) * get_pixel_extend(data, w, h, ix, iy, c)
    val = val + dy * (one - dx) * get_pixel_extend(data, w, h, ix, iy + 1, c)
    val = val + (one - dy) * dx * get_pixel_extend(data, w, h, ix + 1, iy, c)
    val = val + dy * dx * get_pixel_extend(data, w, h, ix + 1, iy + 1, c)
    return f32(val)


def rotate_crop_image(data, iw, ih, ic, rad, s, w, h, dx, dy, aspect):
    rad, s, dx, dy, aspect = f32(rad), f32(s), f32(dx), f32(dy), f32(aspect)
    cx, cy = f32(iw / 2.), f32(ih / 2.)
    out = [f32(0)] * (w * h * ic)
    for c in range(ic):
        for y in range(h):
            for x in range(w):
                a = (x - w / 2.) / float(s) * float(aspect) + float(f32(f32(dx / s) * aspect))
                b = (y - h / 2.) / float(s) + float(f32(dy / s))
                rx = f32(math.cos(rad) * a - math.sin(rad) * b + float(cx))
                ry = f32(math.sin(rad) * a + math.cos(rad) * b + float(cy))
                out[c * h * w + y * w + x] = bilinear_interpolate(data, iw, ih, rx, ry, c)
    return out


def rgb_to_hsv(data, w, h):
    for j in range(h):
        for i in range(w):
            r, g, b = (data[k * h * w + j * w + i] for k in range(3))
            mx, mn = max(r, g, b), min(r, g, b)
            delta = f32(mx - mn)
            v = mx
            if mx == 0:
                s = hh = f32(0)
            else:
                s = f32(delta / mx)
                with np.errstate(divide="ignore", invalid="ignore"):
                    if r == mx:
                        hh = f32((g - b) / delta)
                    elif g == mx:
                        hh = f32(2 + (b - r) / delta)
                    else:
                        hh = f32(4 + (r - g) / delta)
                if hh < 0:
                    hh = f32(hh + 6)
                hh = f32(hh / 6.)
            for k, val in enumerate((hh, s, v)):
                data[k * h * w + j * w + i] = val


def hsv_to_rgb(data, w, h):
    for j in range(h):
        for i in range(w):
            hh = f32(6 * data[j * w + i])
            s, v = data[h * w + j * w + i], data[2 * h * w + j * w + i]
            if s == 0:
                r = g = b = v
            else:
                index = int(math.floor(hh))
                f = f32(hh - index)
                p = f32(v * (1 - s))
                q = f32(v * (1 - s * f))
                t = f32(v * (1 - s * (1 - f)))
                r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v)][index] \
                    if index < 5 else (v, p, q)
            for k, val in enumerate((r, g, b)):
                data[k * h * w + j * w + i] = val


def distort_image(data, w, h, hue, sat, val):
    data = list(data)
    rgb_to_hsv(data, w, h)
    for i in range(w * h):
        data[h * w + i] = f32(data[h * w + i] * f32(sat))
        data[2 * h * w + i] = f32(data[2 * h * w + i] * f32(val))
    for i in range(w * h):
        data[i] = f32(data[i] + f32(hue))
        if data[i] > 1:
            data[i] = f32(data[i] - 1)
        if data[i] < 0:
            data[i] = f32(data[i] + 1)
    hsv_to_rgb(data, w, h)
    return [min(max(v, f32(0)), f32(1)) for v in data]
