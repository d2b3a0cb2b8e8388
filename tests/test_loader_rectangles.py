"""Solid rectangles through every augmentation: no object pixel outside its box, and every
box on its object.

Each image holds non-overlapping rectangles, one pure colour per class, on black.  The
geometry of each sample is kept (crop, letterbox, resize, flip, mosaic) and the colour
draws are set to none, so an output pixel of exactly a class's colour is an object pixel.
Darknet's own mosaic (``mosaic_bound=0``, the literal port) leaves boxes across the cut;
darknet-py's does not.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from darknet_py.train.dataset import Augment, DetectionDataset
from darknet_py.train.draws import MOSAIC, draw_sample

from . import darknet_loader_reference as ref
from .conftest import SHARED_CFGS
from .test_loader_parity import _cfg_augment

COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)], np.uint8)
SIZES = [(120, 90), (75, 140), (200, 120), (97, 61)]


def _rectangles(tmp_path, rng) -> tuple[list[str], list[np.ndarray]]:
    """Images with 1-4 rectangles on a grid of cells (so none overlap); some cells lie on
    the image's borders."""
    paths, arrays = [], []
    for n, (w, h) in enumerate(SIZES):
        img = np.zeros((h, w, 3), np.uint8)
        lines = []
        cells = rng.permutation(4)[: int(rng.integers(1, 5))]
        for k, cell in enumerate(cells):
            cx0, cy0 = (cell % 2) * w // 2, (cell // 2) * h // 2
            x0 = cx0 + (0 if cell % 2 == 0 and rng.random() < 0.5 else int(rng.integers(0, w // 8)))
            y0 = cy0 + (0 if cell < 2 and rng.random() < 0.5 else int(rng.integers(0, h // 8)))
            x1 = cx0 + w // 2 - (0 if cell % 2 else int(rng.integers(0, w // 8)))
            y1 = cy0 + h // 2 - (0 if cell >= 2 else int(rng.integers(0, h // 8)))
            cls = int(rng.integers(0, 3))
            img[y0:y1, x0:x1] = COLOURS[cls]
            lines.append(f"{cls} {(x0 + x1) / 2 / w:.7f} {(y0 + y1) / 2 / h:.7f} "
                         f"{(x1 - x0) / w:.7f} {(y1 - y0) / h:.7f}")
        path = tmp_path / f"rect{n}.png"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        (tmp_path / f"rect{n}.txt").write_text("\n".join(lines) + "\n")
        paths.append(str(path))
        arrays.append(img)
    return paths, arrays


def _geometry_only(draws):
    pieces = tuple(dataclasses.replace(p, dhue=0.0, dsat=1.0, dexp=1.0, blur=0,
                                       gaussian_noise=0) for p in draws.pieces)
    return dataclasses.replace(draws, pieces=pieces)


def misplaced(image: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(the largest fraction of a class's object pixels outside all its boxes, the
    smallest fraction of a box's inner part that is its class's colour).  ``image`` is
    (H, W, 3) uint8, boxes are ``class cx cy w h``; a box edge may be a pixel off, and
    slivers up to 2 pixels thick are not counted (Darknet truncates box edges to whole
    pixels, so a box under a pixel high is dropped while its row still shows)."""
    h, w = image.shape[:2]
    outside, on = 0.0, 1.0
    for cls, colour in enumerate(COLOURS):
        mask = np.all(image == colour, axis=2)
        covered = np.zeros_like(mask)
        for _, cx, cy, bw, bh in labels[labels[:, 0] == cls]:
            x0, x1 = int(np.floor((cx - bw / 2) * w)) - 1, int(np.ceil((cx + bw / 2) * w)) + 1
            y0, y1 = int(np.floor((cy - bh / 2) * h)) - 1, int(np.ceil((cy + bh / 2) * h)) + 1
            covered[max(y0, 0):y1, max(x0, 0):x1] = True
            inner = mask[y0 + 3: y1 - 3, x0 + 3: x1 - 3]
            if inner.size:
                on = min(on, float(inner.mean()))
        solid = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8),
                          borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        if mask.any():
            outside = max(outside, float((solid & ~covered).sum() / mask.sum()))
    return outside, on


CASES = {p.stem: _cfg_augment(p)[0] for p in SHARED_CFGS} | {
    "jitter-flip": Augment(jitter=0.3, resize=1.5, flip=True),
    "mosaic": Augment(jitter=0.3, resize=1.5, flip=True, mosaic=True),
    "letterbox-shrink": Augment(jitter=0.2, resize=0.7, flip=True, letter_box=True),
    "mixup": Augment(jitter=0.2, flip=True, mixup=1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_objects_and_boxes_stay_together(name, tmp_path):
    aug = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    paths, _ = _rectangles(tmp_path, rng)
    data = DetectionDataset(paths, 3, aug)
    for case in range(40):
        draws = _geometry_only(draw_sample(rng, aug, case % len(paths), data.box_counts, 96, 80))
        if draws.mode == 1:  # mixup: two images in one, half each; check each piece
            for k in range(2):
                pixels, truth = data.piece(draws, k, 96, 80)
                assert _ok(pixels, truth), f"{name} case {case}: {misplaced(pixels, truth)}"
            continue
        x, labels = data.sample(draws, 96, 80)
        image = np.ascontiguousarray(x.numpy().transpose(1, 2, 0))
        if x.dtype.is_floating_point:  # mixup=1 makes every sample float
            image = np.rint(image * 255).astype(np.uint8)
        assert _ok(image, labels.numpy()), f"{name} case {case}: {misplaced(image, labels.numpy())}"


def _ok(image, labels) -> bool:
    outside, on = misplaced(image, labels)
    return outside == 0.0 and on >= 0.9  # edges blur over a few pixels when enlarged


def test_darknet_mosaic_bound_0_puts_boxes_off_their_objects(tmp_path):
    """Darknet's default mosaic keeps a box's full size across the cut; darknet-py's (and
    Darknet's with mosaic_bound=1) clips it to its quarter."""
    aug = CASES["mosaic"]
    rng = np.random.default_rng(5)
    paths, arrays = _rectangles(tmp_path, rng)
    data = DetectionDataset(paths, 3, aug)
    off = {0: 0, 1: 0}
    for _ in range(60):
        draws = _geometry_only(draw_sample(rng, aug, 0, data.box_counts, 96, 80))
        if draws.mode != MOSAIC:
            continue
        for bound in (0, 1):
            X, y = ref.load_data_detection(arrays, data.labels, draws, 96, 80, 90, 3,
                                           aug.jitter, aug.resize, False, mosaic_bound=bound)
            image = np.rint(X.reshape(3, 80, 96).transpose(1, 2, 0) * 255).astype(np.uint8)
            off[bound] += not _ok(image, ref.truth_rows(y))
    assert off[0] > 0 and off[1] == 0
