"""One augmented image as Darknet's OpenCV loader makes it, in uint8 from decode to output.

``load_data_detection`` and ``image_data_augmentation`` (AlexeyAB ``src/data.c``,
``src/image_opencv.cpp``): a jitter crop of the RGB image (the part outside the image
filled with the image's mean colour), resized to the network size, flipped, shifted in
hue and scaled in saturation and value in OpenCV's 8-bit HSV, blurred, and given noise;
labels follow the crop (``fill_truth_detection``).  The arithmetic is Darknet's: C floats,
truncation to int where Darknet assigns to an int.

The pixels stay uint8 as in Darknet; the crop is a view of the decoded image when it lies
inside it, and a mosaic piece is coloured only where it shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .draws import F32, MOSAIC, PieceDraws, noise_image


@dataclass(frozen=True)
class Crop:
    """Where a piece's crop lies on its image (Darknet's pleft, pright, ptop, pbot)."""

    left: int
    right: int
    top: int
    bottom: int
    width: int  # swidth
    height: int  # sheight


def _precalc(lo, hi, r: float) -> F32:
    """``rand_precalc_random``: ``r`` of the way from lo to hi, in float."""
    lo, hi = sorted((F32(lo), F32(hi)))
    return F32(r) * (hi - lo) + lo


def crop_of(d: PieceDraws, ow: int, oh: int, w: int, h: int, augment, mode: int,
            k: int) -> Crop:
    """The crop of piece ``k`` of a sample, from its draws (``load_data_detection``)."""
    jitter, resize = F32(augment.jitter), F32(augment.resize)
    dw, dh = int(ow * jitter), int(oh * jitter)
    down = 1 / resize if resize > 1 else resize
    up = 1 / resize if resize < 1 else resize
    min_rdw, min_rdh = int(ow * (1 - 1 / down) / 2), int(oh * (1 - 1 / down) / 2)
    max_rdw, max_rdh = int(ow * (1 - 1 / up) / 2), int(oh * (1 - 1 / up) / 2)
    left, right = int(_precalc(-dw, dw, d.r1)), int(_precalc(-dw, dw, d.r2))
    top, bottom = int(_precalc(-dh, dh, d.r3)), int(_precalc(-dh, dh, d.r4))
    hi_w, hi_h = (0, 0) if resize < 1 else (max_rdw, max_rdh)
    left = int(left + _precalc(min_rdw, hi_w, d.resize_r1))
    right = int(right + _precalc(min_rdw, hi_w, d.resize_r2))
    top = int(top + _precalc(min_rdh, hi_h, d.resize_r1))
    bottom = int(bottom + _precalc(min_rdh, hi_h, d.resize_r2))
    if augment.letter_box:  # widen the crop to the network's aspect ratio
        net_ar = F32(w) / F32(h)
        if (F32(ow) / F32(oh)) / net_ar > 1:
            delta = (F32(ow) / net_ar - oh) / 2
            top, bottom = int(top - delta), int(bottom - delta)
        else:
            delta = (F32(oh) * net_ar - ow) / 2
            left, right = int(left - delta), int(right - delta)
    if mode == MOSAIC and d.corner:  # the slack goes away from the cut
        move_x_right = (k in (0, 2)) != d.flip
        if move_x_right:
            right, left = right + left, 0
        else:
            left, right = left + right, 0
        if k < 2:
            bottom, top = bottom + top, 0
        else:
            top, bottom = top + bottom, 0
    width, height = ow - left - right, oh - top - bottom
    if width <= 0 or height <= 0 or ow - left <= 0 or oh - top <= 0:
        width, height, left, top = ow, oh, 0, 0  # Darknet's "invalid resize" reset
    return Crop(left, right, top, bottom, width, height)


def box_order(swaps: tuple[int, ...]) -> np.ndarray:
    """The box order ``randomize_boxes`` leaves: box i swapped with box swaps[i], in turn."""
    order = list(range(len(swaps)))
    for i, j in enumerate(swaps):
        order[i], order[j] = order[j], order[i]
    return np.asarray(order, dtype=np.int64)


def fill_truth(labels: np.ndarray, d: PieceDraws, crop: Crop, ow: int, oh: int, w: int,
               h: int, max_boxes: int) -> tuple[np.ndarray, int]:
    """``fill_truth_detection``: (N, 5) labels ``class cx cy w h`` -> those of the crop, in
    Darknet's order, and ``min_w_h`` (the smallest side in network pixels, for blur)."""
    sx, sy = F32(crop.width) / F32(ow), F32(crop.height) / F32(oh)
    dx, dy = (F32(crop.left) / F32(ow)) / sx, (F32(crop.top) / F32(oh)) / sy
    isx, isy = F32(1.0 / float(sx)), F32(1.0 / float(sy))
    b = labels[box_order(d.box_swaps)].astype(F32)
    x, y, bw, bh = b[:, 1], b[:, 2], b[:, 3], b[:, 4]
    bad = (x == 0) & (y == 0)  # Darknet marks such a box invalid
    lft, rgt = (x - bw / 2) * isx - dx, (x + bw / 2) * isx - dx
    top, bot = (y - bh / 2) * isy - dy, (y + bh / 2) * isy - dy
    if d.flip:
        lft, rgt = 1 - rgt, 1 - lft
    lft, rgt, top, bot = (np.clip(v, 0, 1) for v in (lft, rgt, top, bot))
    out = np.stack([b[:, 0], (lft + rgt) / 2, (top + bot) / 2,
                    np.clip(rgt - lft, 0, 1), np.clip(bot - top, 0, 1)], 1)[:max_boxes]
    bad = bad[:max_boxes]
    keep = ~bad & (out[:, 3] >= F32(1) / F32(w)) & (out[:, 4] >= F32(1) / F32(h))
    keep &= (out[:, 1] > 0) & (out[:, 1] <= 1) & (out[:, 2] > 0) & (out[:, 2] <= 1)
    out = out[keep]
    return out, _min_w_h(out, w, h)


def _min_w_h(truth: np.ndarray, w: int, h: int) -> int:
    """Darknet's running ``min_w_h`` over the kept boxes (ints, as C assigns them)."""
    m = 0
    for bw, bh in zip(truth[:, 3].tolist(), truth[:, 4].tolist()):
        sw, sh = F32(bw) * F32(w), F32(bh) * F32(h)
        if m == 0:
            m = int(sw)
        if m > sw:
            m = int(sw)
        if m > sh:
            m = int(sh)
    return m


def blur_of(d: PieceDraws, min_w_h: int) -> int:
    """The blur Darknet applies: a whole-image blur shrinks to min_w_h / 8 for small boxes."""
    if d.blur > 1 and min_w_h // 8 < d.blur:
        return min_w_h // 8
    return d.blur


def distort_hsv(rgb: np.ndarray, dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """Darknet's HSV step on OpenCV's 8-bit HSV (H in [0, 180)): ``hsv[0] += 179 * dhue``
    (a Scalar: the shift rounded first, the sum saturated at 0 and 255, not wrapped),
    ``hsv[1] *= dsat`` and ``hsv[2] *= dexp`` (``convertTo``: float, rounded, saturated;
    ``convertScaleAbs`` is the same for these non-negative values)."""
    h, s, v = cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))
    cv2.add(h, float(F32(179) * F32(dhue)), dst=h)
    cv2.convertScaleAbs(s, dst=s, alpha=float(F32(dsat)))
    cv2.convertScaleAbs(v, dst=v, alpha=float(F32(dexp)))
    return cv2.cvtColor(cv2.merge((h, s, v)), cv2.COLOR_HSV2RGB)


def image_mean(image: np.ndarray) -> tuple[float, ...]:
    """``cv::mean`` of a uint8 image, as OpenCV computes it (the sum times 1 / count);
    ``cv2.mean`` itself takes 20 times longer on three channels."""
    scale = 1.0 / (image.shape[0] * image.shape[1])
    return tuple(v * scale for v in cv2.sumElems(image))


def crop_resize(image: np.ndarray, crop: Crop, w: int, h: int) -> np.ndarray:
    """The crop of an RGB uint8 image, mean colour outside it, resized to w x h."""
    oh, ow = image.shape[:2]
    l_, t_ = crop.left, crop.top
    r_, b_ = l_ + crop.width, t_ + crop.height
    x0, y0, x1, y1 = max(l_, 0), max(t_, 0), min(r_, ow), min(b_, oh)
    if (x0, y0, x1, y1) == (l_, t_, r_, b_):
        roi = image[y0:y1, x0:x1]  # inside the image: a view, no copy
    else:
        mean = image_mean(image)
        if x1 <= x0 or y1 <= y0:  # wholly outside: the mean colour only
            fill = [min(255, max(0, round(m))) for m in mean[:3]]
            roi = np.full((crop.height, crop.width, 3), fill, np.uint8)
        else:
            roi = cv2.copyMakeBorder(image[y0:y1, x0:x1], y0 - t_, b_ - y1, x0 - l_, r_ - x1,
                                     cv2.BORDER_CONSTANT, value=mean)
    return cv2.resize(roi, (w, h), interpolation=cv2.INTER_LINEAR)


def augment_pixels(image: np.ndarray, d: PieceDraws, crop: Crop, w: int, h: int,
                   truth: np.ndarray, blur: int,
                   window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """``image_data_augmentation``: RGB uint8 (H, W, 3) -> the augmented (h, w, 3) uint8,
    or only its ``window`` ``(x, y, width, height)`` (a mosaic quarter): without blur
    every step after the resize acts pixel by pixel, so only the window is coloured."""
    sized = crop_resize(image, crop, w, h)
    if d.flip:
        sized = cv2.flip(sized, 1)
    x, y, ww, hh = window or (0, 0, w, h)
    if not blur:
        sized = sized[y: y + hh, x: x + ww]
    if d.dsat != 1 or d.dexp != 1 or d.dhue != 0:
        sized = distort_hsv(sized, d.dhue, d.dsat, d.dexp)
    if blur:
        sized = _blur(sized, blur, truth)[y: y + hh, x: x + ww]
    if d.gaussian_noise:
        noise = noise_image(d.noise_seed, (h, w, 3), d.gaussian_noise)
        sized = cv2.add(sized, noise[y: y + hh, x: x + ww])
    return sized


def _blur(sized: np.ndarray, blur: int, truth: np.ndarray) -> np.ndarray:
    """Gaussian blur: 17x17 on the background only (blur 1), else the whole image."""
    k = 17 if blur == 1 else (blur // 2) * 2 + 1
    out = cv2.GaussianBlur(sized, (k, k), 0)
    if blur == 1:  # the objects keep their sharp pixels
        rows, cols = sized.shape[:2]
        for x, y, bw, bh in truth[:, 1:5].tolist():
            left, top = int((x - bw / 2.) * cols), int((y - bh / 2.) * rows)
            right = left + int(F32(bw) * F32(cols))
            bottom = top + int(F32(bh) * F32(rows))
            left, top = max(left, 0), max(top, 0)
            right, bottom = min(right, cols), min(bottom, rows)
            if right > left and bottom > top:
                out[top:bottom, left:right] = sized[top:bottom, left:right]
    return out
