"""Darknet's classifier training data (``load_data_augment`` with ``CLASSIFICATION_DATA``,
AlexeyAB ``src/data.c``, OpenCV build): per image ``random_augment_image`` (a random
aspect, scale ``r`` in [min_crop, max_crop] of the shorter side, rotation within
``angle`` degrees and shift, by ``rotate_crop_image`` to a square of the larger network
side), the flip, ``random_distort_image`` and ``resize_image`` to the network size; the
truth is ``fill_truth_smooth``: 1 (or ``1 - label_smooth_eps``) for every label found in
the image's path, the rest 0 (``eps / (classes - 1)``).

As for detection, the random values are drawn from a numpy generator seeded per sample,
in Darknet's order and with its formulas (``ClassifierDraws``), so the pixels follow from
the draws alone and tests can replay them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import ImageError
from ..image.decode import DEFAULT_DECODER, load_image
from ..image.float_augment import distort_image, flip_image, rotate_crop_image
from ..image.resize import resize_image
from .dataset import SampledLoader
from .draws import rand_int, rand_scale, rand_uniform_strong, random_float, uniform_at

log = logging.getLogger(__name__)

F32 = np.float32


@dataclass(frozen=True)
class ClassifierAugment:
    """The ``[net]`` keys of ``train_classifier``'s ``load_args``."""

    width: int
    height: int
    min_crop: int
    max_crop: int
    angle: float = 0.0
    aspect: float = 1.0
    flip: bool = True
    hue: float = 0.0
    saturation: float = 1.0
    exposure: float = 1.0
    label_smooth_eps: float = 0.0

    @classmethod
    def from_net(cls, net) -> ClassifierAugment:
        return cls(net.width, net.height, net.min_crop, net.max_crop, net.angle, net.aspect,
                   bool(net.flip), net.hue, net.saturation, net.exposure, net.label_smooth_eps)

    @property
    def size(self) -> int:
        """The side of the square crop (``args.size``: the larger network side)."""
        return max(self.width, self.height)


@dataclass(frozen=True)
class ClassifierDraws:
    """The draws of one sample, in Darknet's order, as the values its functions use."""

    index: int
    aspect: float
    r: int
    rad: float
    dx_u: float  # the shift's uniforms: the range depends on the image size
    dy_u: float
    flip: bool
    dhue: float
    dsat: float
    dexp: float

    @classmethod
    def draw(cls, rng: np.random.Generator, a: ClassifierAugment, index: int
             ) -> ClassifierDraws:
        aspect = rand_scale(rng, a.aspect)
        r = rand_int(rng, a.min_crop, a.max_crop)
        rad = F32(float(rand_uniform_strong(rng, -a.angle, a.angle)) * 2.0 * math.pi / 360.)
        dx_u, dy_u = random_float(rng), random_float(rng)
        flip = bool(rng.integers(2)) and a.flip
        return cls(index, float(aspect), r, float(rad), float(dx_u), float(dy_u), flip,
                   float(rand_uniform_strong(rng, -a.hue, a.hue)),
                   float(rand_scale(rng, a.saturation)), float(rand_scale(rng, a.exposure)))


def random_augment(im: np.ndarray, d: ClassifierDraws, size: int) -> np.ndarray:
    """``random_augment_image`` with the draws ``d``: (size, size, 3) float32."""
    h, w = im.shape[:2]
    aspect = F32(d.aspect)
    wide = F32(w) * aspect
    shorter = h if h < wide else int(wide)  # Darknet's int min
    scale = F32(F32(d.r) / F32(shorter))
    dx = F32(np.float64(F32(F32(w) * scale) / aspect - F32(size)) / 2.)
    dy = F32(np.float64(F32(h) * scale - F32(size)) / 2.)
    dx, dy = max(dx, F32(0)), max(dy, F32(0))
    return rotate_crop_image(im, d.rad, scale, size, size, uniform_at(d.dx_u, -dx, dx),
                             uniform_at(d.dy_u, -dy, dy), aspect)


def fill_truth_smooth(path: str, labels: Sequence[str], classes: int,
                      eps: float = 0.0) -> np.ndarray:
    """Darknet's truth of ``path``: every of the first ``classes`` labels found in it."""
    truth = np.zeros(classes, F32)
    found = [i for i, label in enumerate(labels[:classes]) if label in path]
    if eps:
        truth[:] = F32(eps / (classes - 1)) if classes > 1 else F32(0)
    truth[found] = F32(1 - eps)
    if len(found) != 1:
        log.warning("Too many or too few labels: %d, %s", len(found), path)
    return truth


class ClassificationDataset(torch.utils.data.Dataset):
    """``dataset[(index, w, h, seed)]``: a (3, H, W) float32 image and its (classes,)
    truth, as Darknet's classifier loader makes them (``w``, ``h`` are the network's)."""

    def __init__(self, images: Sequence[str], labels: Sequence[str], classes: int,
                 augment: ClassifierAugment, decoder: str = DEFAULT_DECODER):
        self.images, self.labels, self.classes = list(images), list(labels), classes
        self.augment, self.decoder = augment, decoder

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, _, _, seed = key
        return self.sample(ClassifierDraws.draw(np.random.default_rng(seed), self.augment,
                                                index))

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as float RGB; an unreadable one is Darknet's blank image."""
        try:
            return load_image(self.images[index], self.decoder)
        except ImageError as err:
            log.error("%s; trained on as a blank image, as Darknet does", err)
            return np.zeros((10, 10, 3), F32)

    def sample(self, d: ClassifierDraws) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.augment
        crop = random_augment(self.load(d.index), d, a.size)
        if d.flip:
            crop = flip_image(crop)
        crop = distort_image(crop, d.dhue, d.dsat, d.dexp)
        sized = resize_image(crop, a.width, a.height)
        truth = fill_truth_smooth(self.images[d.index], self.labels, self.classes,
                                  a.label_smooth_eps)
        return (torch.from_numpy(np.ascontiguousarray(sized.transpose(2, 0, 1))),
                torch.from_numpy(truth))


def collate_classes(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples -> (N, 3, H, W) images and (N, classes) truths."""
    return torch.stack([x for x, _ in batch]), torch.stack([t for _, t in batch])


class ClassifierLoader(SampledLoader):
    """``loader(start)``: the classifier's mini-batches from iteration ``start`` on, as
    ``(images, truths)``; images drawn with replacement as ``get_random_paths`` does, at
    the network size (no multi-scale)."""

    def __init__(self, model, images: Sequence[str], labels: Sequence[str], classes: int,
                 schedule, seed: int, workers: int, device: torch.device, rank: int = 0,
                 world: int = 1):
        dataset = ClassificationDataset(images, labels, classes,
                                        ClassifierAugment.from_net(model.net))
        super().__init__(dataset, collate_classes, schedule, seed, workers, device, rank,
                         world)
        self.net_size = (model.net.width, model.net.height)

    def size(self, iteration: int) -> tuple[int, int]:
        return self.net_size

    def __call__(self, start: int) -> torch.utils.data.DataLoader:
        return self.batches(start)
