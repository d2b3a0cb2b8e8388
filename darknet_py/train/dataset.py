"""Training samples as Darknet's ``load_data_detection`` makes them (OpenCV build).

Each sample is one augmented image (``augment.py``), two blended ones (``mixup=1``) or
four around a random cut (``mosaic=1``); mosaic and mixup are each used for half of the
samples.  Images are drawn with replacement, as Darknet does.  The draws of a sample
(``draws.py``) come from its seed only, so results do not depend on the number of worker
processes and a resumed run continues the same stream.

Samples are uint8 (float32 with mixup, whose blend has half levels); the trainer divides
by 255 on its device.

Where darknet-py knowingly differs from Darknet:
- mosaic labels are always clipped to their own quarter of the input, as Darknet does
  with ``mosaic_bound=1``.  With Darknet's default ``mosaic_bound=0`` a box that crosses
  the cut keeps its full size over the neighbouring image's pixels (``blend_truth_mosaic``
  clips to the whole input only), so it lies partly on another object or on background;
- ``letter_box=1`` with ``mosaic=1`` letterboxes each mosaic piece, where Darknet's loader
  stops with an error.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch

from ..errors import ImageError
from ..image.decode import load_rgb8
from ..io.data import LabelFiles, read_labels
from .augment import Crop, augment_pixels, blur_of, crop_of, fill_truth
from .draws import F32, MIXUP, MOSAIC, PieceDraws, SampleDraws, draw_sample, rand_scale

log = logging.getLogger(__name__)


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
    mixup: int = 0
    blur: int = 0
    gaussian_noise: int = 0

    @classmethod
    def from_model(cls, model) -> Augment:
        if not model.head_sections:
            model.require_head("train")
        return cls.from_sections(model.net, model.head_sections[-1])

    @classmethod
    def from_sections(cls, net, last) -> Augment:
        """From a parsed ``[net]`` and the last head's section (Darknet's train_detector
        reads jitter, resize and max from the last ``[yolo]``, ``[region]`` or
        ``[Gaussian_yolo]``)."""
        aug = cls(jitter=last.jitter, resize=last.resize, flip=bool(net.flip), hue=net.hue,
                  saturation=net.saturation, exposure=net.exposure, mosaic=bool(net.mosaic),
                  letter_box=bool(net.letter_box), max_boxes=last.max, mixup=net.mixup,
                  blur=net.blur, gaussian_noise=net.gaussian_noise)
        if aug.mosaic and aug.letter_box:
            log.info("letter_box=1 with mosaic=1: each mosaic piece is letterboxed (Darknet's "
                     "OpenCV loader refuses this combination)")
        if aug.mosaic and not net.mosaic_bound:
            log.info("mosaic labels are clipped to their own quarter, as Darknet does with "
                     "mosaic_bound=1 (its default 0 leaves boxes across the cut)")
        return aug


@dataclass
class Piece:
    """One image of a sample, cropped and labelled, before its pixels are made."""

    image: np.ndarray  # RGB uint8, as decoded
    draws: PieceDraws
    crop: Crop
    truth: np.ndarray  # (N, 5) labels of the crop
    blur: int

    def pixels(self, w: int, h: int, window: tuple[int, int, int, int] | None = None):
        """The augmented (h, w, 3) uint8 image, or its ``window`` (x, y, width, height)."""
        return augment_pixels(self.image, self.draws, self.crop, w, h, self.truth, self.blur,
                              window)


class DetectionDataset(torch.utils.data.Dataset):
    """Augmented training samples; an item is keyed by ``(index, width, height, seed)``.

    ``sample(draws, w, h)`` makes the sample of given draws: a (3, h, w) RGB tensor (uint8,
    or float32 in [0, 1] with mixup) and (N, 5) float32 labels ``class cx cy w h``.
    """

    def __init__(self, images: Sequence[str], classes: int, augment: Augment,
                 files: LabelFiles | None = None):
        self.images = list(images)
        self.labels = read_labels(self.images, classes, files)
        self.box_counts = [len(x) for x in self.labels]
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int, int, int]):
        index, w, h, seed = key
        draws = draw_sample(np.random.default_rng(seed), self.augment, index, self.box_counts,
                            w, h)
        return self.sample(draws, w, h)

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as RGB uint8; an unreadable one is Darknet's blank image."""
        try:
            return load_rgb8(self.images[index], decoder="opencv")  # Darknet's OpenCV build
        except ImageError as err:
            log.error("%s; trained on as a blank image, as Darknet does", err)
            return np.zeros((10, 10, 3), np.uint8)

    def prepare(self, draws: SampleDraws, k: int, w: int, h: int) -> Piece:
        """Piece ``k`` of a sample before its pixels: its image, crop and labels."""
        d, a = draws.pieces[k], self.augment
        image = self.load(d.index)
        oh, ow = image.shape[:2]
        crop = crop_of(d, ow, oh, w, h, a, draws.mode, k)
        truth, min_w_h = fill_truth(self.labels[d.index], d, crop, ow, oh, w, h, a.max_boxes)
        return Piece(image, d, crop, truth, blur_of(d, min_w_h))

    def piece(self, draws: SampleDraws, k: int, w: int, h: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """Piece ``k``: (h, w, 3) uint8 pixels and its (N, 5) labels."""
        p = self.prepare(draws, k, w, h)
        return p.pixels(w, h), p.truth

    def sample(self, draws: SampleDraws, w: int, h: int) -> tuple[torch.Tensor, torch.Tensor]:
        if draws.mode == MOSAIC:
            image, labels = self._mosaic(draws, w, h)
        else:
            image, labels = self.piece(draws, 0, w, h)
        if self.augment.mixup == 1 and not self.augment.mosaic:  # float for every sample
            image = image.astype(F32) / F32(255)
            if draws.mode == MIXUP:  # blend_images_cv: the second image over the first
                second, more = self.piece(draws, 1, w, h)
                image = (second.astype(F32) / F32(255)) * F32(0.5) + image * F32(0.5)
                labels = np.concatenate([labels, more])[: self.augment.max_boxes]
        return torch.from_numpy(planar(image)), torch.from_numpy(labels.astype(F32))

    def _mosaic(self, draws: SampleDraws, w: int, h: int):
        """Four pieces around the cut, each showing the part nearest its corner."""
        out = np.zeros((h, w, 3), np.uint8)
        pieces, windows, labels = self.mosaic_layout(draws, w, h)
        for p, win in zip(pieces, windows):
            out[win.y0:win.y1, win.x0:win.x1] = p.pixels(w, h, win.source)
        return out, labels

    def mosaic_layout(self, draws: SampleDraws, w: int, h: int
                      ) -> tuple[list[Piece], list[Window], np.ndarray]:
        """A mosaic sample before its pixels: its four pieces, where each shows, and the
        labels (``blend_truth_mosaic``, ``max_boxes`` in all)."""
        pieces, windows, labels = [], [], np.zeros((0, 5), F32)
        for k in range(4):
            p = self.prepare(draws, k, w, h)
            win = mosaic_window(p, k, w, h, draws.cut_x, draws.cut_y)
            room = self.augment.max_boxes - len(labels)
            labels = np.concatenate([labels, mosaic_truth(p.truth[:room], k, w, h,
                                                          draws.cut_x, draws.cut_y,
                                                          win.shifts)])
            pieces.append(p)
            windows.append(win)
        return pieces, windows, labels


@dataclass(frozen=True)
class Window:
    """Where a piece shows in its sample: the input's ``[x0, x1) x [y0, y1)`` shows the
    piece's augmented image from ``(sx, sy)`` on; ``shifts`` are Darknet's mosaic shifts
    (left, right, top, bottom) that move its labels."""

    x0: int
    y0: int
    x1: int
    y1: int
    sx: int
    sy: int
    shifts: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def source(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of the part of the piece's image that shows."""
        return self.sx, self.sy, self.x1 - self.x0, self.y1 - self.y0

    @classmethod
    def whole(cls, w: int, h: int) -> Window:
        return cls(0, 0, w, h, 0, 0)


def mosaic_window(p: Piece, k: int, w: int, h: int, cut_x: int, cut_y: int) -> Window:
    """Mosaic piece ``k`` (0 top left, 1 top right, 2 bottom left, 3 bottom right): its
    quarter of the input, the part of its image nearest the cut, and Darknet's shifts."""
    oh, ow = p.image.shape[:2]
    left, right = p.crop.left, p.crop.right
    if p.draws.flip:
        left, right = right, left
    shifts = (min(cut_x, max(0, -left * w // ow)), min(w - cut_x, max(0, -right * w // ow)),
              min(cut_y, max(0, -p.crop.top * h // oh)),
              min(h - cut_y, max(0, -p.crop.bottom * h // oh)))
    ls, rs, ts, bs = shifts
    x0, x1, sx = (0, cut_x, w - cut_x - rs) if k in (0, 2) else (cut_x, w, ls)
    y0, y1, sy = (0, cut_y, h - cut_y - bs) if k < 2 else (cut_y, h, ts)
    return Window(x0, y0, x1, y1, sx, sy, shifts)


def planar(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> a contiguous (3, H, W) copy (``cv2.split``: 10 times numpy's transpose)."""
    out = np.empty((3,) + image.shape[:2], image.dtype)
    cv2.split(image, list(out))
    return out


def mosaic_truth(truth: np.ndarray, k: int, w: int, h: int, cut_x: int, cut_y: int,
                 shifts: tuple[int, int, int, int]) -> np.ndarray:
    """``blend_truth_mosaic`` with ``mosaic_bound=1``: piece ``k``'s labels moved into its
    quarter, their edges truncated to whole pixels and clipped to the quarter."""
    if not len(truth):
        return truth
    ls, rs, ts, bs = shifts
    x, y, bw, bh = (truth[:, j].astype(F32) for j in range(1, 5))
    x = x - F32(w - cut_x - rs) / F32(w) if k in (0, 2) else x + F32(cut_x - ls) / F32(w)
    y = y - F32(h - cut_y - bs) / F32(h) if k < 2 else y + F32(cut_y - ts) / F32(h)
    lo_x, hi_x = (0, cut_x) if k in (0, 2) else (cut_x, w)
    lo_y, hi_y = (0, cut_y) if k < 2 else (cut_y, h)
    left = np.maximum(((x - bw / 2) * w).astype(np.int64), lo_x)  # astype truncates as C
    right = np.minimum(((x + bw / 2) * w).astype(np.int64), hi_x)
    top = np.maximum(((y - bh / 2) * h).astype(np.int64), lo_y)
    bot = np.minimum(((y + bh / 2) * h).astype(np.int64), hi_y)
    x = ((right + left).astype(F32) / 2) / F32(w)
    bw = (right - left).astype(F32) / F32(w)
    y = ((bot + top).astype(F32) / 2) / F32(h)
    bh = (bot - top).astype(F32) / F32(h)
    keep = (left >= 0) & (right <= w) & (top >= 0) & (bot <= h)
    for v, lowest in ((bw, F32(1) / F32(w)), (bh, F32(1) / F32(h))):
        keep &= (v > 0) & (v < 1) & (v > lowest)
    for v in (x, y):
        keep &= (v > 0) & (v < 1)
    return np.stack([truth[:, 0], x, y, bw, bh], 1)[keep].astype(F32)


def collate(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples -> (N, 3, H, W) images and (M, 6) targets ``[image, class, cx, cy, w, h]``."""
    images = torch.stack([x for x, _ in batch])
    rows = [torch.cat([torch.full((lab.shape[0], 1), float(i)), lab], 1)
            for i, (_, lab) in enumerate(batch)]
    return images, torch.cat(rows) if rows else torch.zeros(0, 6)


def to_input(x: torch.Tensor) -> torch.Tensor:
    """A batch as the network takes it: uint8 divided by 255 (Darknet's ``/ 255.0f``)."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def network_size(iteration: int, max_batches: int, width: int, height: int, random: float,
                 seed: int, step: float = 32) -> tuple[int, int]:
    """Input size for ``iteration`` (0-based), as ``train_detector`` picks it: with
    ``random`` a new size every 10 iterations, a multiple of ``resize_step`` up to
    ``random`` (1.4 for 1) times either way; the largest at the start and in the last
    100; a smaller scale never gives a size above the cfg's."""
    if not random:
        return width, height
    scale = 1.4 if random == 1 else float(random)
    block = iteration // 10

    def size(f: float, init: int) -> int:
        return int(math.floor(f * init / step + 1 + 0.5) * step)  # C's roundl

    if block == 0 or iteration + 100 >= max_batches:
        w, h = size(scale, width), size(scale, height)
    else:
        f = float(rand_scale(np.random.default_rng([seed, 7, block]), scale))
        w, h = size(f, width), size(f, height)
        if f < 1 and (w > width or h > height):
            w, h = width, height
    return max(w, int(step)), max(h, int(step))


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


class SampledLoader:
    """``batches(start)``: a dataset keyed by ``TrainSampler`` as a ``DataLoader`` of the
    mini-batches from iteration ``start`` on; ``size(iteration)`` gives each iteration's
    network size and ``collate`` makes the batches.  The common part of the detector's and
    the classifier's loaders."""

    def __init__(self, dataset, collate, schedule, seed: int, workers: int,
                 device: torch.device, rank: int = 0, world: int = 1):
        self.dataset, self.collate = dataset, collate
        self.schedule, self.seed, self.workers = schedule, seed, max(0, workers)
        self.pin = device.type == "cuda"
        self.rank, self.world = rank, world

    def size(self, iteration: int) -> tuple[int, int]:
        raise NotImplementedError

    def batches(self, start: int) -> torch.utils.data.DataLoader:
        s = self.schedule
        sampler = TrainSampler(len(self.dataset), s.mini_batch, s.subdivisions, self.size,
                               self.seed, start, s.max_batches, self.rank, self.world)
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=sampler, collate_fn=self.collate,
            num_workers=self.workers, pin_memory=self.pin, persistent_workers=False,
            prefetch_factor=2 if self.workers else None)
