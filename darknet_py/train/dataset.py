"""Training data as Darknet's ``load_data_detection`` makes it (OpenCV path).

Each image: a jitter crop (each side moved by up to ``jitter`` of the image, plus
the ``resize`` zoom), border pixels repeated where the crop leaves the image,
stretched to the network size (or letterboxed), flipped, and distorted in hue,
saturation and exposure; with ``mosaic`` four such images share the input,
split at a random point.  Labels follow the crop; boxes smaller than a pixel
are dropped.  Images are drawn with replacement, as Darknet does.

Randomness comes from the seed, the iteration and the sample's position only,
so results do not depend on the number of worker processes and a resumed run
continues the same stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch

from ..errors import ImageError
from ..image import load_image
from ..io.data import read_labels
from ..ops.boxes import corners

log = logging.getLogger(__name__)

MOSAIC_MIN_OFFSET = 0.2  # the mosaic cut lies in [0.2, 0.8] of the input


@dataclass
class Augment:
    """Augmentation settings, from ``[net]`` and the last ``[yolo]`` as Darknet takes them."""

    jitter: float = 0.0
    resize: float = 1.0
    flip: bool = False
    hue: float = 0.0
    saturation: float = 1.0
    exposure: float = 1.0
    mosaic: bool = False
    letter_box: bool = False
    max_boxes: int = 200

    @classmethod
    def from_model(cls, model) -> Augment:
        net, last = model.net, model.yolo_sections[-1]
        aug = cls(jitter=last.jitter, resize=last.resize, flip=bool(net.flip), hue=net.hue,
                  saturation=net.saturation, exposure=net.exposure, mosaic=bool(net.mosaic),
                  letter_box=bool(net.letter_box), max_boxes=last.max)
        if aug.mosaic and aug.letter_box:
            log.info("letter_box=1 with mosaic=1: each mosaic piece is letterboxed (Darknet's "
                     "OpenCV loader refuses this combination)")
        return aug


def rand_scale(rng: np.random.Generator, s: float) -> float:
    """Darknet's ``rand_scale``: uniform in [1, s], inverted half of the time."""
    v = rng.uniform(1, s) if s > 1 else 1.0
    return v if rng.integers(2) else 1.0 / v


def _crop(image: np.ndarray, left: int, top: int, width: int, height: int) -> np.ndarray:
    """``image[top:top+height, left:left+width]`` with edge pixels repeated outside."""
    h, w = image.shape[:2]
    pad = (max(0, -top), max(0, top + height - h), max(0, -left), max(0, left + width - w))
    if any(pad):
        image = cv2.copyMakeBorder(image, *pad, cv2.BORDER_REPLICATE)
        left, top = left + pad[2], top + pad[0]
    return image[top: top + height, left: left + width]


def distort_hsv(image: np.ndarray, dhue: float, dsat: float, dexp: float) -> np.ndarray:
    """Shift hue by ``dhue`` of a turn, scale saturation and value (RGB float in [0, 1])."""
    if dhue == 0 and dsat == 1 and dexp == 1:
        return image
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)  # float: H in [0, 360)
    hsv[..., 0] = (hsv[..., 0] + 360 * dhue) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * dsat, 0, 1)
    hsv[..., 2] = np.clip(hsv[..., 2] * dexp, 0, 1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def transform_labels(labels: np.ndarray, ow: int, oh: int, left: float, top: float,
                     width: float, height: float, flip: bool, net_w: int,
                     net_h: int) -> np.ndarray:
    """Labels of an image -> labels of its crop (``fill_truth_detection``): edges moved and
    clipped to [0, 1], mirrored with ``flip``, boxes under one network pixel dropped."""
    if labels.shape[0] == 0:
        return labels
    labels = labels.astype(np.float64)
    l_, t_, r_, b_ = corners(labels[:, 1:5])
    lft = np.clip((l_ * ow - left) / width, 0, 1)
    rgt = np.clip((r_ * ow - left) / width, 0, 1)
    top_ = np.clip((t_ * oh - top) / height, 0, 1)
    bot = np.clip((b_ * oh - top) / height, 0, 1)
    if flip:
        lft, rgt = 1 - rgt, 1 - lft
    return _labels_from_edges(labels[:, 0], lft, top_, rgt, bot, 1.0 / net_w, 1.0 / net_h)


def _labels_from_edges(cls: np.ndarray, left: np.ndarray, top: np.ndarray, right: np.ndarray,
                       bottom: np.ndarray, min_w: float, min_h: float) -> np.ndarray:
    """(N, 5) float32 labels of boxes given by their edges, those under ``min_w`` wide or
    ``min_h`` high dropped."""
    out = np.stack([cls, (left + right) / 2, (top + bottom) / 2, right - left, bottom - top], 1)
    keep = (out[:, 3] >= min_w) & (out[:, 4] >= min_h)
    return out[keep].astype(np.float32)


class DetectionDataset(torch.utils.data.Dataset):
    """Augmented training samples; an item is keyed by ``(index, width, height, seed)``."""

    def __init__(self, images: Sequence[str], classes: int, augment: Augment):
        self.images = list(images)
        self.labels = read_labels(self.images, classes)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def _piece(self, index: int, w: int, h: int, rng: np.random.Generator):
        a = self.augment
        try:
            image = load_image(self.images[index], decoder="opencv")  # augmented: speed
        except ImageError as err:  # Darknet goes on with a blank 10x10 image
            log.error("%s; trained on as a blank image, as Darknet does", err)
            image = np.zeros((10, 10, 3), np.float32)
        oh, ow = image.shape[:2]
        dw, dh = int(ow * a.jitter), int(oh * a.jitter)
        down = 1 / a.resize if a.resize > 1 else a.resize
        up = 1 / a.resize if a.resize < 1 else a.resize
        min_rdw, min_rdh = int(ow * (1 - 1 / down) / 2), int(oh * (1 - 1 / down) / 2)
        max_rdw, max_rdh = int(ow * (1 - 1 / up) / 2), int(oh * (1 - 1 / up) / 2)
        pl, pr = (int(rng.uniform(-dw, dw)) if dw else 0 for _ in range(2))
        pt, pb = (int(rng.uniform(-dh, dh)) if dh else 0 for _ in range(2))
        r1, r2 = rng.random(2)
        hi_w, hi_h = (0, 0) if a.resize < 1 else (max_rdw, max_rdh)
        pl += int(min_rdw + (hi_w - min_rdw) * r1)
        pr += int(min_rdw + (hi_w - min_rdw) * r2)
        pt += int(min_rdh + (hi_h - min_rdh) * r1)
        pb += int(min_rdh + (hi_h - min_rdh) * r2)
        if a.letter_box:  # widen the crop to the network's aspect ratio
            net_ar, img_ar = w / h, ow / oh
            if img_ar / net_ar > 1:
                delta = (ow / net_ar - oh) / 2
                pt, pb = int(pt - delta), int(pb - delta)
            else:
                delta = (oh * net_ar - ow) / 2
                pl, pr = int(pl - delta), int(pr - delta)
        flip = bool(a.flip and rng.integers(2))
        dhue = rng.uniform(-a.hue, a.hue) if a.hue else 0.0
        dsat, dexp = rand_scale(rng, a.saturation), rand_scale(rng, a.exposure)
        sw, sh = max(1, ow - pl - pr), max(1, oh - pt - pb)
        crop = _crop(image, pl, pt, sw, sh)
        sized = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
        if flip:
            sized = sized[:, ::-1]
        sized = distort_hsv(np.ascontiguousarray(sized), dhue, dsat, dexp)
        labels = transform_labels(self.labels[index], ow, oh, pl, pt, sw, sh, flip, w, h)
        return sized, labels, (pl, pr, pt, pb, ow, oh)

    def __getitem__(self, key: tuple[int, int, int, int]):
        index, w, h, seed = key
        rng = np.random.default_rng(seed)
        if not self.augment.mosaic:
            image, labels, _ = self._piece(index, w, h, rng)
        else:
            image, labels = self._mosaic(index, w, h, rng)
        labels = labels[rng.permutation(labels.shape[0])][: self.augment.max_boxes]
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
        return x, torch.from_numpy(labels)

    def _mosaic(self, index: int, w: int, h: int, rng: np.random.Generator):
        """Four pieces around a random cut, each showing the part nearest its corner."""
        cut_x = int(rng.integers(int(w * MOSAIC_MIN_OFFSET), int(w * (1 - MOSAIC_MIN_OFFSET))))
        cut_y = int(rng.integers(int(h * MOSAIC_MIN_OFFSET), int(h * (1 - MOSAIC_MIN_OFFSET))))
        out = np.zeros((h, w, 3), np.float32)
        all_labels = []
        indices = [index] + [int(i) for i in rng.integers(0, len(self.images), 3)]
        for k, i in enumerate(indices):
            piece, labels, (pl, pr, pt, pb, ow, oh) = self._piece(i, w, h, rng)
            # shifts keep the repeated border out of view where the crop went outside
            ls = min(cut_x, max(0, -pl * w // ow))
            rs = min(w - cut_x, max(0, -pr * w // ow))
            ts = min(cut_y, max(0, -pt * h // oh))
            bs = min(h - cut_y, max(0, -pb * h // oh))
            right, bottom = k in (1, 3), k in (2, 3)
            dst_x0, dst_x1 = (cut_x, w) if right else (0, cut_x)
            dst_y0, dst_y1 = (cut_y, h) if bottom else (0, cut_y)
            src_x0 = ls if right else w - cut_x - rs
            src_y0 = ts if bottom else h - cut_y - bs
            pw, ph = dst_x1 - dst_x0, dst_y1 - dst_y0
            out[dst_y0:dst_y1, dst_x0:dst_x1] = piece[src_y0: src_y0 + ph, src_x0: src_x0 + pw]
            if labels.shape[0]:
                labels = transform_labels(labels, w, h, src_x0 - dst_x0, src_y0 - dst_y0, w, h,
                                          False, w, h)
                # keep what lies inside this quarter
                l_, t_, r_, b_ = corners(labels[:, 1:5])
                all_labels.append(_labels_from_edges(
                    labels[:, 0], np.clip(l_, dst_x0 / w, dst_x1 / w),
                    np.clip(t_, dst_y0 / h, dst_y1 / h), np.clip(r_, dst_x0 / w, dst_x1 / w),
                    np.clip(b_, dst_y0 / h, dst_y1 / h), 1.0 / w, 1.0 / h))
        labels = np.concatenate(all_labels) if all_labels else np.zeros((0, 5), np.float32)
        return out, labels


def collate(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples -> (N, 3, H, W) images and (M, 6) targets ``[image, class, cx, cy, w, h]``."""
    images = torch.stack([x for x, _ in batch])
    rows = [torch.cat([torch.full((lab.shape[0], 1), float(i)), lab], 1)
            for i, (_, lab) in enumerate(batch)]
    return images, torch.cat(rows) if rows else torch.zeros(0, 6)


def network_size(iteration: int, max_batches: int, width: int, height: int, random: float,
                 seed: int) -> tuple[int, int]:
    """Input size for ``iteration`` (0-based): with ``random`` a new size every 10 iterations
    (step 32, up to 1.4x either way), the largest at the start and in the last 100."""
    if not random:
        return width, height
    scale = 1.4 if random == 1 else float(random)
    block = iteration // 10
    if block == 0 or iteration + 100 >= max_batches:
        f = scale
    else:
        f = rand_scale(np.random.default_rng([seed, 7, block]), scale)
    return (max(32, int(round(f * width / 32 + 1)) * 32),
            max(32, int(round(f * height / 32 + 1)) * 32))


class TrainSampler(torch.utils.data.Sampler):
    """Mini-batches of ``(index, width, height, seed)`` keys, from ``start`` iteration on.

    Iteration ``k`` draws ``subdivisions`` mini-batches; with ``world`` processes each
    takes its share of every mini-batch, so the images per update stay the cfg's batch.
    """

    def __init__(self, n_images: int, mini_batch: int, subdivisions: int, sizes, seed: int,
                 start: int = 0, stop: int | None = None, rank: int = 0, world: int = 1):
        self.n = n_images
        self.mini_batch = mini_batch
        self.subdivisions = subdivisions
        self.sizes = sizes  # iteration -> (w, h)
        self.seed = seed
        self.start = start
        self.stop = stop
        self.rank, self.world = rank, world

    def __iter__(self) -> Iterator[list[tuple[int, int, int, int]]]:
        iteration = self.start
        while self.stop is None or iteration < self.stop:
            w, h = self.sizes(iteration)
            for sub in range(self.subdivisions):
                rng = np.random.default_rng([self.seed, iteration, sub])
                idx = rng.integers(0, self.n, self.mini_batch)
                seeds = rng.integers(0, 2 ** 31, self.mini_batch)
                share = self.mini_batch // self.world
                mine = slice(self.rank * share, (self.rank + 1) * share)
                yield [(int(i), w, h, int(s)) for i, s in zip(idx[mine], seeds[mine])]
            iteration += 1

    def __len__(self) -> int:
        return (0 if self.stop is None else self.stop - self.start) * self.subdivisions
