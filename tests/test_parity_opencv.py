"""Parity with OpenCV's Darknet importer (cv2.dnn.readNetFromDarknet, OpenCV 4.x)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.image import load_image, resize_image
from darknet_py.infer.detections import darknet_order

from .conftest import (IMAGES, REAL_CFG, REAL_WEIGHTS, REFERENCE, SHARED, SHARED_CFGS,
                       requires_shared)

pytestmark = [requires_shared, pytest.mark.skipif(not hasattr(cv2.dnn, "readNetFromDarknet"),
                                                  reason="OpenCV without the Darknet importer")]

CV_THRESH = 0.2  # OpenCV zeroes obj*cls <= 0.2
TOL = 1e-3


def opencv_outputs(cfg, weights, x: np.ndarray) -> np.ndarray:
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(x)
    outs = net.forward(net.getUnconnectedOutLayersNames())
    return np.concatenate([o.reshape(-1, o.shape[-1]) for o in outs])


def ours_like_opencv(model: Darknet, x: np.ndarray) -> np.ndarray:
    """Our decoded output in OpenCV's layout: rows (y*W+x)*A+a, relative boxes, obj, obj*cls."""
    with torch.no_grad():
        out = model(torch.from_numpy(x))[0]
    shapes = [(model.layers[i].num_anchors, model.shapes[i].h, model.shapes[i].w)
              for i in model.yolo_indices]
    out = out[darknet_order(shapes)].numpy().copy()
    h, w = x.shape[2:]
    out[:, [0, 2]] /= w
    out[:, [1, 3]] /= h
    p = out[:, 4:5] * out[:, 5:]
    out[:, 5:] = np.where(p > CV_THRESH, p, 0)
    return out


def assert_close_to_opencv(ours: np.ndarray, cv: np.ndarray) -> float:
    assert ours.shape == cv.shape
    d = np.abs(ours - cv)
    # class scores may flip across OpenCV's 0.2 cut-off
    near = (np.abs(np.where(ours[:, 5:] > 0, ours[:, 5:], cv[:, 5:]) - CV_THRESH) < TOL)
    d[:, 5:][near] = 0
    assert d.max() <= TOL, f"max |ours - opencv| = {d.max():.2e}"
    return float(d.max())


@pytest.mark.parametrize("image", IMAGES, ids=lambda p: p.stem)
def test_real_yolov4_tiny_matches_opencv(real_model, image):
    x = resize_image(load_image(image), 416, 416).transpose(2, 0, 1)[None].copy()
    cv = opencv_outputs(REAL_CFG, REAL_WEIGHTS, x)
    assert_close_to_opencv(ours_like_opencv(real_model, x), cv)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", SHARED_CFGS, ids=lambda p: p.stem)
def test_random_weights_saved_by_us_load_in_opencv(cfg, tmp_path, layout_tool):
    """Every family cfg at 256 with random weights written by our save_weights."""
    edits = {"net": {"width": "256", "height": "256"}}
    if cfg.stem == "cspx-p7-mish":
        edits["yolo"] = {"num": "20"}  # the shipped file says 16 but lists 20 anchors
    edited = tmp_path / cfg.name
    layout_tool.edit_cfg(str(cfg), str(edited), edits)
    generated = tmp_path / "generated.weights"
    subprocess.run([sys.executable, str(REFERENCE / "gen_weights.py"), str(edited), str(generated),
                    "--seed", "7"], check=True, capture_output=True)
    model = Darknet(edited).eval()
    model.load_weights(generated)
    generated.unlink()
    ours_file = tmp_path / "ours.weights"
    model.save_weights(ours_file)
    x = resize_image(load_image(SHARED / "images" / "bus.jpg"), 256, 256).transpose(2, 0, 1)[None]
    x = x.copy()
    assert_close_to_opencv(ours_like_opencv(model, x), opencv_outputs(edited, ours_file, x))
