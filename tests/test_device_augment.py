"""The device pipeline (``--device-augment``) equals the CPU loader given the same draws.

Its parts are checked against OpenCV itself (resize bit for bit, RGB->HSV bit for bit on
every colour, HSV->RGB within one level and exact on nearly every value), and the whole
pipeline against ``DetectionDataset.sample`` for the augmentation settings of every cfg in
``../shared/cfg`` plus letterbox/shrink and mosaic cases: pixels within 1/255, labels
equal.  Run on the CPU here; the same code runs on CUDA.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from darknet_py.errors import DarknetError
from darknet_py.image.opencv8 import hsv8_to_rgb, resize_vertical, rgb_to_hsv8
from darknet_py.train.dataset import Augment, DetectionDataset
from darknet_py.train.device_augment import (DeviceAugment, PlannedDataset, check_supported,
                                             collate_plans, hsv_vector_width, resize_taps)
from darknet_py.train.draws import MOSAIC, PLAIN, draw_sample

from .test_loader_parity import CASES, NETS, _augment, _images


def _resize(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """cv::resize INTER_LINEAR from the taps and the torch passes."""
    x0, x1, a0, a1 = (torch.from_numpy(t) for t in resize_taps(image.shape[1], w, True))
    y0, y1, b0, b1 = (torch.from_numpy(t) for t in resize_taps(image.shape[0], h, False))
    img = torch.from_numpy(image).to(torch.int32)
    lines = [img[r][:, x0] * a0.view(1, -1, 1) + img[r][:, x1] * a1.view(1, -1, 1)
             for r in (y0, y1)]
    return resize_vertical(lines[0], lines[1], b0.view(-1, 1, 1), b1.view(-1, 1, 1)).numpy()


def test_resize_is_opencvs_bit_for_bit():
    rng = np.random.default_rng(0)
    sizes = [tuple(int(v) for v in rng.integers(1, 400, 4)) for _ in range(120)]
    sizes += [(200, 300, 100, 150), (100, 150, 200, 300), (77, 77, 77, 77), (1, 1, 5, 9),
              (64, 64, 32, 32), (33, 65, 66, 130), (5, 3, 1, 1)]
    for sh, sw, h, w in sizes:
        image = rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8)
        expect = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(_resize(image, w, h), expect, err_msg=f"{sh, sw, h, w}")


def _all_colours() -> np.ndarray:
    c = np.arange(256, dtype=np.uint8)
    return np.stack(np.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 255 + 1, 3)


def test_rgb_to_hsv_is_opencvs_on_every_colour():
    rgb = _all_colours()
    h, s, v = rgb_to_hsv8(torch.from_numpy(rgb))
    np.testing.assert_array_equal(torch.stack([h, s, v], -1).numpy(),
                                  cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))


def test_hsv_to_rgb_follows_opencvs_vector_and_scalar_code():
    hsv = _all_colours()[::4, :255]  # rows of 255: a vector part and a scalar tail
    expect = cv2.cvtColor(np.ascontiguousarray(hsv), cv2.COLOR_HSV2RGB).astype(np.int32)
    width = hsv_vector_width()
    column = torch.arange(255).view(1, 255)
    truncate = column < (255 // width) * width if width else False
    t = torch.from_numpy(hsv.astype(np.int32))
    got = hsv8_to_rgb(t[..., 0], t[..., 1], t[..., 2], truncate).numpy().astype(np.int32)
    diff = np.abs(got - expect)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff > 0).mean()
    rounded = hsv8_to_rgb(t[..., 0], t[..., 1], t[..., 2], False).numpy().astype(np.int32)
    if width:  # the vector rule matters: rounding everywhere misses a third of the values
        assert (rounded != expect).mean() > 0.1


DEVICE_CASES = {name: case for name, case in CASES.items()
                if not (_augment(case).blur or _augment(case).gaussian_noise
                        or _augment(case).mixup)}
DEVICE_CASES |= {
    "shrink-letterbox": Augment(jitter=0.1, resize=0.6, flip=True, letter_box=True, hue=0.1,
                                saturation=1.5, exposure=1.5),
    "mosaic-letterbox": Augment(jitter=0.3, resize=1.5, flip=True, mosaic=True,
                                letter_box=True, hue=0.05, saturation=1.3, max_boxes=5),
}


@pytest.mark.parametrize("name", sorted(DEVICE_CASES))
def test_device_pipeline_equals_the_cpu_loader(name, tmp_path):
    aug = _augment(DEVICE_CASES[name])
    rng = np.random.default_rng(sum(map(ord, name)))
    paths, _ = _images(tmp_path, rng)
    cpu, planned = DetectionDataset(paths, 3, aug), PlannedDataset(paths, 3, aug)
    on_device = DeviceAugment("cpu")
    modes, differing, total = set(), 0, 0
    for case in range(10):
        w, h = NETS[case % len(NETS)]
        draws = [draw_sample(rng, aug, (case + j) % len(paths), cpu.box_counts, w, h)
                 for j in range(3)]
        modes |= {d.mode for d in draws}
        samples = [cpu.sample(d, w, h) for d in draws]
        plans, targets = collate_plans([planned.plan(d, w, h) for d in draws])
        x = on_device(plans)
        expect = torch.stack([s[0] for s in samples])
        assert x.dtype == torch.uint8 and x.shape == expect.shape
        diff = (x.int() - expect.int()).abs()
        assert int(diff.max()) <= 1, f"{name} case {case}"
        differing, total = differing + int((diff > 0).sum()), total + diff.numel()
        assert torch.equal(targets[:, 1:], torch.cat([s[1] for s in samples]))
        assert targets[:, 0].tolist() == [float(i) for i, s in enumerate(samples)
                                          for _ in range(len(s[1]))]
    assert differing / total < 1e-3
    assert modes == ({MOSAIC, PLAIN} if aug.mosaic else {PLAIN})


def test_settings_it_does_not_make_are_refused_in_one_line():
    check_supported(Augment(jitter=0.3, mosaic=True, hue=0.1), "a.cfg")
    for key, value in (("blur", 1), ("gaussian_noise", 20), ("mixup", 1)):
        with pytest.raises(DarknetError, match=rf"a.cfg: --device-augment does not do "
                                               rf"{key}={value}") as err:
            check_supported(Augment(**{key: value}), "a.cfg")
        assert "\n" not in str(err.value)


def test_the_vector_width_probe_matches_opencv():
    width = hsv_vector_width()
    row = np.full((1, 255, 3), (0, 1, 1), np.uint8)
    green = cv2.cvtColor(row, cv2.COLOR_HSV2RGB)[0, :, 1]
    assert (green[: (255 // width) * width] == 0).all() if width else (green == 1).all()
    assert (green[(255 // width) * width:] == 1).all() if width else True
