"""The fast loader equals the literal port of Darknet's loader given the same draws.

Pixels within 1/255 (OpenCV's rounding), labels within 1e-6, on synthetic images of odd
sizes with objects on the borders, for the augmentation settings of every cfg in
``../shared/cfg`` and for settings the cfgs do not use (blur, noise, mixup, resize < 1).

Known differences, named here and in the README:
- mosaic labels: darknet-py clips each box to its quarter (Darknet's ``mosaic_bound=1``);
  it is compared with the port run with ``mosaic_bound=1`` whatever the cfg says;
- letter_box=1 with mosaic=1 runs the port with ``allow_letterbox_mosaic`` (Darknet stops).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from darknet_py.cfg import parse_cfg
from darknet_py.train.augment import distort_hsv
from darknet_py.train.dataset import Augment, DetectionDataset
from darknet_py.train.draws import MIXUP, MOSAIC, PLAIN, draw_sample

from . import darknet_loader_reference as ref
from .conftest import SHARED_CFGS

SIZES = [(37, 53), (101, 67), (160, 120), (64, 97), (23, 200)]  # (w, h) of the images
NETS = [(64, 64), (96, 64), (48, 80)]


def _images(tmp_path, rng) -> tuple[list[str], list[np.ndarray]]:
    """PNG images (noise plus solid rectangles) with labels beside them; some boxes touch
    the borders, one file has none and one has a box at x = y = 0."""
    paths, arrays = [], []
    for n, (w, h) in enumerate(SIZES):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        lines = []
        for k in range(int(rng.integers(0, 6))):
            bw, bh = rng.uniform(0.05, 0.7, 2)
            cx = float(rng.choice([bw / 2, 1 - bw / 2, rng.uniform(bw / 2, 1 - bw / 2)]))
            cy = float(rng.choice([bh / 2, 1 - bh / 2, rng.uniform(bh / 2, 1 - bh / 2)]))
            x0, y0 = int((cx - bw / 2) * w), int((cy - bh / 2) * h)
            img[y0: int((cy + bh / 2) * h), x0: int((cx + bw / 2) * w)] = rng.integers(0, 256, 3)
            lines.append(f"{k % 3} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
        if n == 1:
            lines.append("1 0 0 0.2 0.2")
        path = tmp_path / f"img{n}.png"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if n != 2:
            (tmp_path / f"img{n}.txt").write_text("\n".join(lines) + "\n")
        paths.append(str(path))
        arrays.append(img)
    return paths, arrays


def _cfg_augment(path) -> tuple[Augment, int]:
    cfg = parse_cfg(path.read_text(), str(path))
    return Augment.from_sections(cfg.net, cfg.yolo_layers[-1]), cfg.net.mosaic_bound


EXTRA = {
    "blur-noise": Augment(jitter=0.3, resize=1.5, flip=True, hue=0.1, saturation=1.5,
                          exposure=1.5, blur=5, gaussian_noise=30, max_boxes=3),
    "mixup": Augment(jitter=0.2, flip=True, hue=0.05, saturation=1.2, exposure=1.2, mixup=1,
                     max_boxes=4),
    "shrink": Augment(jitter=0.1, resize=0.6, flip=True, letter_box=True, blur=1),
    "mosaic-blur": Augment(jitter=0.3, resize=1.3, flip=True, mosaic=True, blur=1,
                           max_boxes=5),
    "mosaic-noise": Augment(jitter=0.2, resize=1.5, flip=True, hue=0.1, saturation=1.5,
                            mosaic=True, gaussian_noise=40),
    "plain": Augment(),
}
CASES = {p.stem: p for p in SHARED_CFGS} | EXTRA


def _augment(case) -> Augment:
    return _cfg_augment(case)[0] if not isinstance(case, Augment) else case


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_loader_equals_darknet_port(name, tmp_path):
    aug = _augment(CASES[name])
    rng = np.random.default_rng(sum(map(ord, name)))
    paths, arrays = _images(tmp_path, rng)
    data = DetectionDataset(paths, 3, aug)
    modes = set()
    for case in range(24):
        w, h = NETS[case % len(NETS)]
        draws = draw_sample(rng, aug, case % len(paths), data.box_counts, w, h)
        modes.add(draws.mode)
        x, labels = data.sample(draws, w, h)
        X, y = ref.load_data_detection(
            arrays, data.labels, draws, w, h, aug.max_boxes, 3, aug.jitter, aug.resize,
            aug.letter_box, mosaic_bound=1, allow_letterbox_mosaic=True)
        fast = x.numpy().astype(np.float32)
        fast = fast / 255 if x.dtype.is_floating_point is False else fast
        np.testing.assert_allclose(fast, X.reshape(3, h, w), atol=1 / 255 + 1e-6, rtol=0,
                                   err_msg=f"{name} case {case}: pixels")
        np.testing.assert_allclose(labels.numpy(), ref.truth_rows(y), atol=1e-6, rtol=0,
                                   err_msg=f"{name} case {case}: labels")
    expected = {MOSAIC, PLAIN} if aug.mosaic else {MIXUP, PLAIN} if aug.mixup else {PLAIN}
    assert modes == expected  # each is drawn half of the time


def test_hsv_step_is_darknets_arithmetic():
    """``distort_hsv`` on every (H, S, V): the hue shift is rounded first and saturates at
    0 and 255 (no wrap); S and V are scaled in float, rounded half to even, saturated."""
    hsv = np.stack(np.meshgrid(np.arange(180), np.arange(0, 256, 5), np.arange(0, 256, 5),
                               indexing="ij"), -1).reshape(180, -1, 3).astype(np.uint8)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    base = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    rng = np.random.default_rng(0)
    for _ in range(40):
        dhue, dsat, dexp = rng.uniform(-0.5, 0.5), rng.uniform(0.3, 3), rng.uniform(0.3, 3)
        expect = np.stack([base[..., 0] + np.rint(np.float32(179) * np.float32(dhue)),
                           np.rint(base[..., 1] * np.float32(dsat)),
                           np.rint(base[..., 2] * np.float32(dexp))], -1)
        expect = cv2.cvtColor(np.clip(expect, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
        np.testing.assert_array_equal(distort_hsv(rgb, dhue, dsat, dexp), expect)


def test_darknet_refuses_letterbox_with_mosaic(tmp_path):
    aug = dataclasses.replace(EXTRA["mosaic-blur"], letter_box=True)
    paths, arrays = _images(tmp_path, np.random.default_rng(1))
    data = DetectionDataset(paths, 3, aug)
    rng = np.random.default_rng(2)
    draws = next(d for d in (draw_sample(rng, aug, 0, data.box_counts, 64, 64)
                             for _ in range(50)) if d.mode == MOSAIC)
    with pytest.raises(ValueError, match="letter_box=1 & mosaic=1"):
        ref.load_data_detection(arrays, data.labels, draws, 64, 64, 5, 3, aug.jitter,
                                aug.resize, True)
    assert data.sample(draws, 64, 64)[0].shape == (3, 64, 64)  # darknet-py goes on
