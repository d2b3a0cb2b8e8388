"""Darknet's image resize and letterbox against loop-by-loop code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py import ImageError
from darknet_py.image import decode_image, letterbox_image, load_image, resize_image
from darknet_py.ops import letterbox_size

from .conftest import ROOT


def slow_resize(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """resize_image from image.c, pixel by pixel in float32."""
    f = np.float32
    in_h, in_w, ch = im.shape
    part = np.zeros((in_h, w, ch), np.float32)
    w_scale = f(in_w - 1) / f(w - 1)
    h_scale = f(in_h - 1) / f(h - 1)
    for k in range(ch):
        for r in range(in_h):
            for c in range(w):
                if c == w - 1 or in_w == 1:
                    val = im[r, in_w - 1, k]
                else:
                    sx = f(c) * w_scale
                    ix = int(sx)
                    dx = f(sx - f(ix))
                    val = f(f(1) - dx) * im[r, ix, k] + dx * im[r, ix + 1, k]
                part[r, c, k] = val
    out = np.zeros((h, w, ch), np.float32)
    for k in range(ch):
        for r in range(h):
            sy = f(r) * h_scale
            iy = int(sy)
            dy = f(sy - f(iy))
            for c in range(w):
                out[r, c, k] = f(f(1) - dy) * part[iy, c, k]
            if r == h - 1 or in_h == 1:
                continue
            for c in range(w):
                out[r, c, k] += dy * part[iy + 1, c, k]
    return out


@pytest.mark.parametrize("src, dst", [((7, 5), (11, 13)), ((20, 30), (9, 7)), ((6, 6), (6, 4)),
                                      ((1, 5), (3, 4))])
def test_resize_matches_darknet_loops(src, dst):
    rng = np.random.default_rng(0)
    im = rng.random((src[0], src[1], 3), dtype=np.float32)
    np.testing.assert_allclose(resize_image(im, *dst), slow_resize(im, *dst), rtol=0, atol=1e-6)


def test_letterbox_geometry():
    assert letterbox_size(810, 1080, 416, 416) == (312, 416)
    assert letterbox_size(1280, 720, 416, 416) == (416, 234)
    im = np.ones((720, 1280, 3), np.float32)
    boxed = letterbox_image(im, 416, 416)
    assert boxed.shape == (416, 416, 3)
    assert boxed[0, 0, 0] == 0.5 and boxed[90, 0, 0] == 0.5 and boxed[91, 0, 0] == 1.0
    assert boxed[324, 0, 0] == 1.0 and boxed[325, 0, 0] == 0.5


def test_decode_errors(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="cannot decode"):
        decode_image(b"not an image", "x.jpg")
    with pytest.raises(ImageError, match="cannot decode"):
        decode_image(b"", "empty.jpg")


@pytest.mark.parametrize("seed", range(8))
def test_tensor_resize_is_the_array_resize(seed):
    """One implementation for numpy arrays and tensors (any device): identical floats."""
    rng = np.random.default_rng(seed)
    h, w, oh, ow = (int(v) for v in rng.integers(1, 200, 4))
    im = rng.random((h, w, 3), dtype=np.float32)
    t = torch.from_numpy(im)
    assert np.array_equal(resize_image(t, ow, oh).numpy(), resize_image(im, ow, oh))
    assert np.array_equal(letterbox_image(t, ow, oh).numpy(), letterbox_image(im, ow, oh))


def test_resizing_on_the_device_detects_the_same(tmp_path):
    import cv2

    from darknet_py import Darknet, Detector

    rng = np.random.default_rng(0)
    paths = [str(ROOT / "darknet_py" / "assets" / "astronaut.jpg")]
    for k, (h, w) in enumerate([(300, 500), (480, 200)]):
        path = tmp_path / f"{k}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        paths.append(str(path))
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg", 160, 160)
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    on_host = list(Detector(model.eval()).detect_paths(paths, batch_size=2))
    on_device = list(Detector(model, resize_on_device=True).detect_paths(paths, batch_size=2))
    for (_, a), (_, b) in zip(on_host, on_device):
        assert torch.equal(a.probs, b.probs) and torch.equal(a.boxes, b.boxes)
