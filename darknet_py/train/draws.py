"""The random draws of one training sample, made in the order Darknet's loader makes them.

Darknet's ``load_data_detection`` (AlexeyAB ``src/data.c``, OpenCV build) draws, for each
image: two resize fractions, four jitter fractions, the flip, the hue, saturation and
exposure factors, the blur and noise switches, (with mosaic) whether to push the crop to
its corner, and one swap per box (``randomize_boxes``).  ``SampleDraws`` holds exactly those
values, so the fast loader and the slow reference in ``tests/`` consume the same draws and
can be compared pixel by pixel.

Darknet draws from C's ``rand()``; darknet-py draws from a ``numpy`` generator seeded per
sample, so a sample depends only on its seed.  Darknet decides mosaic or mixup (each half of
the time) once per loader thread, for its share of a batch (``batch / 6`` images per GPU);
darknet-py decides it per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F32 = np.float32
MOSAIC_MIN_OFFSET = F32(0.2)  # the mosaic cut lies in [0.2, 0.8] of the input
PLAIN, MIXUP, MOSAIC = 0, 1, 3  # Darknet's use_mixup values


@dataclass(frozen=True)
class PieceDraws:
    """The draws for one image of a sample (one ``i_mixup`` round of Darknet's loop)."""

    index: int  # which image of the list
    resize_r1: float
    resize_r2: float
    r1: float
    r2: float
    r3: float
    r4: float
    flip: bool
    dhue: float
    dsat: float
    dexp: float
    blur: int  # 0: none, 1: the background, else Darknet's blur value (the whole image)
    gaussian_noise: int  # the noise's standard deviation, 0 for none
    corner: bool  # mosaic: the crop's slack moved to the side away from the cut
    box_swaps: tuple[int, ...]  # randomize_boxes: box i is swapped with box box_swaps[i]
    noise_seed: int  # seeds ``noise_image`` (Darknet's cv::randn)


@dataclass(frozen=True)
class SampleDraws:
    """All draws of one sample: PLAIN (one piece), MIXUP (two) or MOSAIC (four)."""

    mode: int
    cut_x: int
    cut_y: int
    pieces: tuple[PieceDraws, ...]


def random_float(rng: np.random.Generator) -> F32:
    """Darknet's ``random_float``: uniform in [0, 1], a C float."""
    return F32(rng.random())


def uniform_at(u: float, lo: float, hi: float) -> F32:
    """Darknet's ``rand_uniform`` / ``rand_uniform_strong`` for the unit draw ``u``
    (``random_float``), in float arithmetic."""
    lo, hi = sorted((F32(lo), F32(hi)))
    return F32(F32(u) * (hi - lo) + lo)


def rand_uniform_strong(rng: np.random.Generator, lo: float, hi: float) -> F32:
    """Darknet's ``rand_uniform_strong`` in float arithmetic."""
    return uniform_at(random_float(rng), lo, hi)


def rand_scale(rng: np.random.Generator, s: float) -> F32:
    """Darknet's ``rand_scale``: uniform in [1, s], inverted half of the time."""
    scale = rand_uniform_strong(rng, 1, s)
    return scale if rng.integers(2) else F32(1.0 / float(scale))


def rand_int(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Darknet's ``rand_int``: uniform in [lo, hi], both ends included."""
    lo, hi = sorted((int(lo), int(hi)))
    return int(rng.integers(lo, hi + 1))


def sample_mode(augment) -> int:
    """Darknet's use_mixup for the cfg: mosaic wins over mixup; cutmix is not used by the
    detector (Darknet prints that it is not supported and goes on without it)."""
    if augment.mosaic:
        return MOSAIC
    return MIXUP if augment.mixup == 1 else PLAIN


def draw_piece(rng: np.random.Generator, augment, index: int, n_boxes: int,
               mode: int) -> PieceDraws:
    """One image's draws, in ``load_data_detection``'s order."""
    a = augment
    resize_r1, resize_r2 = random_float(rng), random_float(rng)
    r1, r2, r3, r4 = (random_float(rng) for _ in range(4))
    flip = bool(a.flip and rng.integers(2))
    dhue = rand_uniform_strong(rng, -a.hue, a.hue)
    dsat, dexp = rand_scale(rng, a.saturation), rand_scale(rng, a.exposure)
    blur = 0
    if a.blur:
        blur = (0, 1, a.blur)[rand_int(rng, 0, 2)]
    noise = a.gaussian_noise if a.gaussian_noise and rand_int(rng, 0, 1) == 1 else 0
    corner = bool(mode == MOSAIC and rng.integers(2) == 0)
    swaps = tuple(int(s) for s in rng.integers(0, max(n_boxes, 1), n_boxes))
    return PieceDraws(index, float(resize_r1), float(resize_r2), float(r1), float(r2),
                      float(r3), float(r4), flip, float(dhue), float(dsat), float(dexp), blur,
                      int(noise), corner, swaps, int(rng.integers(2 ** 31)))


def draw_sample(rng: np.random.Generator, augment, index: int, box_counts,
                w: int, h: int) -> SampleDraws:
    """The draws of one ``w`` x ``h`` sample whose first image is ``index``; the others are
    drawn from all ``len(box_counts)`` images.  Mosaic and mixup are each used for half
    of the samples, as Darknet does."""
    mode = sample_mode(augment)
    if mode != PLAIN and rng.integers(2) == 0:
        mode = PLAIN
    cut_x = cut_y = 0
    if mode == MOSAIC:
        cut_x = rand_int(rng, int(w * MOSAIC_MIN_OFFSET), int(w * (1 - MOSAIC_MIN_OFFSET)))
        cut_y = rand_int(rng, int(h * MOSAIC_MIN_OFFSET), int(h * (1 - MOSAIC_MIN_OFFSET)))
    indices = [index] + [int(i) for i in rng.integers(0, len(box_counts), mode)]
    pieces = tuple(draw_piece(rng, augment, i, int(box_counts[i]), mode) for i in indices)
    return SampleDraws(mode, cut_x, cut_y, pieces)


def noise_image(seed: int, shape: tuple[int, ...], sigma: int) -> np.ndarray:
    """Darknet's noise: ``cv::randn`` into a uint8 image, so N(0, sigma) rounded and
    saturated, which keeps only the positive half (sigma at most 127)."""
    sigma = max(0, min(int(sigma), 127))
    values = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * sigma
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
