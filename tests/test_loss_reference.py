"""The device loss against the literal transcription of Darknet's ``forward_yolo_layer``
(tests/darknet_yolo_reference.py), on randomized cases built from every ``[yolo]``
section of every cfg, with deliberate collisions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from darknet_py import Darknet, read_cfg
from darknet_py.cfg import YoloSection
from darknet_py.nn.heads import Yolo
from darknet_py.train.assign import Truths
from darknet_py.train.loss import DarknetLoss

from . import darknet_yolo_reference as ref
from .conftest import ROOT, SHARED_CFGS

CFGS = SHARED_CFGS or sorted((ROOT / "cfg").glob("*.cfg"))
LOSS_KEYS = ("mask", "anchors", "scale_x_y", "new_coords", "iou_loss", "iou_normalizer",
             "obj_normalizer", "cls_normalizer", "ignore_thresh", "truth_thresh",
             "iou_thresh", "iou_thresh_kind", "max_delta", "objectness_smooth",
             "label_smooth_eps")


def _sections() -> list[tuple[str, YoloSection]]:
    """Every distinct [yolo] section (by what the loss reads) of the cfgs."""
    seen, out = set(), []
    for path in CFGS:
        for s in read_cfg(path).yolo_layers:
            key = tuple(str(getattr(s, k)) for k in LOSS_KEYS)
            if key not in seen:
                seen.add(key)
                out.append((f"{path.stem}-{s.index}", s))
    return out


SECTIONS = _sections()


def _layer(section: YoloSection, net: tuple[int, int]) -> Yolo:
    return Yolo(section.masked_anchors, section.classes, net, section.scale_x_y,
                bool(section.new_coords))


def _truths(rng, layer: Yolo, x: torch.Tensor, grid, classes, case: str) -> list[np.ndarray]:
    """Per image (T, 5) class, cx, cy, w, h with the collisions asked for."""
    n = x.shape[0]
    w, h = grid
    with torch.no_grad():
        pred = layer.boxes(layer.activate(x)).numpy()  # N, A, H, W, 4
    out = []
    for b in range(n):
        if case == "empty" and b == 0:
            out.append(np.zeros((0, 5), np.float32))
            continue
        count = 90 if case == "crowd" else int(rng.integers(3, 9))
        wh = rng.uniform(0.02, 0.6, (count, 2))
        lo = 0.2 if case == "letterbox" else 0.0  # a letterboxed image fills y in .2-.8
        c = rng.uniform(wh / 2 + [0, lo], 1 - wh / 2 - [0, lo], (count, 2))
        rows = np.column_stack([rng.integers(0, classes, count), c, wh])
        # two truths in one cell and anchor (one of another class), a truth on a cell
        # border, a box under a pixel, a truth that some cell predicts well
        rows[1, 1:5] = rows[0, 1:5] + rng.uniform(-0.2, 0.2, 4) / max(w, h) * [1, 1, 0.1, 0.1]
        rows[2, 1:3] = [int(rng.integers(1, w)) / w, int(rng.integers(1, h)) / h]
        rows[-1, 3:5] = [0.3 / 416, 0.4 / 416]
        a, j, i = (int(rng.integers(0, s)) for s in pred.shape[1:4])
        rows[min(3, count - 1), 1:5] = pred[b, a, j, i] * rng.uniform(0.97, 1.03, 4)
        rows[:, 1:3] = rows[:, 1:3].clip(1e-3, 0.999)
        if case == "plain":
            rows[min(4, count - 1), 0] = classes  # a class the cfg does not have: skipped
        out.append(rows.astype(np.float32))
    return out


def _variant(section: YoloSection, case: str) -> YoloSection:
    changes = {"classes": 3, "counters_per_class": None, "max": 100}
    if case == "smooth":
        changes.update(objectness_smooth=1, label_smooth_eps=0.1, truth_thresh=0.8)
    elif case == "mse":
        changes.update(iou_loss="mse", iou_thresh=0.3, counters_per_class=[5, 20, 10])
    elif case == "giou":
        changes.update(iou_loss="giou", iou_thresh=0.15, iou_thresh_kind="giou", max_delta=0.5)
    elif case == "truth_thresh":
        changes.update(truth_thresh=0.7, ignore_thresh=0.6)
    elif case == "mask_order":  # extra anchors are visited in anchor order, not mask order
        changes.update(mask=list(reversed(section.mask)), iou_thresh=0.1)
    return dataclasses.replace(section, **changes)


def _reference(section: YoloSection, layer: Yolo, x, truths, net) -> dict:
    n, _, h, w = x.shape
    with torch.no_grad():
        output = layer.activate(x).numpy().reshape(n, -1).ravel()
    max_boxes = max(section.max, 1)
    table = np.zeros((n, max_boxes * 5), np.float32)
    for b, t in enumerate(truths):
        t = t[:max_boxes]
        table[b, : t.size] = np.column_stack([t[:, 1:5], t[:, 0]]).ravel()
    multipliers = None
    if section.counters_per_class:
        counters = np.asarray(section.counters_per_class, np.float32)
        multipliers = list(counters.max() / counters)
    lay = ref.Layer(w, h, len(section.mask), section.classes, list(section.mask),
                    list(section.anchors), max_boxes, section.ignore_thresh,
                    section.truth_thresh, section.iou_thresh, section.iou_thresh_kind,
                    section.iou_loss, section.iou_normalizer, section.obj_normalizer,
                    section.cls_normalizer, section.max_delta, section.objectness_smooth,
                    section.label_smooth_eps, section.new_coords, multipliers)
    return ref.forward_yolo_layer(lay, output, table, n, *net)


CASES = ["plain", "letterbox", "empty", "smooth", "mse", "giou", "truth_thresh", "mask_order"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name, section", SECTIONS, ids=[s[0] for s in SECTIONS])
def test_device_loss_equals_darknets_loops(name, section, case):
    rng = np.random.default_rng(abs(hash((name, case))) % 2 ** 32)
    s = _variant(section, case)
    grid = (int(rng.integers(4, 8)), int(rng.integers(3, 7)))
    stride = int(rng.choice([8, 16, 32]))
    net = (grid[0] * stride, grid[1] * stride)
    layer = _layer(s, net)
    shape = (2, len(s.mask) * (5 + s.classes), grid[1], grid[0])
    x = torch.from_numpy(rng.normal(0, 1.5, shape).astype(np.float32))
    if s.new_coords:
        x = torch.sigmoid(x)  # new_coords heads end in a logistic conv
    truths = _truths(rng, layer, x, grid, s.classes, case)
    expected = _reference(s, layer, x, truths, net)
    targets = torch.from_numpy(np.concatenate(
        [np.column_stack([np.full(len(t), b), t]) for b, t in enumerate(truths)])
        .astype(np.float32))
    head = x.clone().requires_grad_()
    loss, (stats,) = DarknetLoss([layer], [s], [7])([head], targets, net)
    loss.backward()
    delta = expected["delta"].reshape(x.shape)
    np.testing.assert_allclose(-head.grad.numpy(), delta, rtol=0,
                               atol=1e-5 * max(np.abs(delta).max(), 1e-6))
    assert stats.count == expected["count"]
    for key in ("avg_iou", "class_loss", "iou_loss", "total_loss"):
        assert getattr(stats, key) == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key
    assert stats.cost == pytest.approx(expected["cost"], rel=1e-5)


@pytest.mark.slow
def test_crowded_image_and_model_heads():
    """90 truths in an image, through a whole model's heads (yolov4-tiny at 64 px)."""
    rng = np.random.default_rng(5)
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg", 64, 64).train()
    s = model.yolo_sections[0]
    layer = model.layers[model.yolo_indices[0]]
    x = torch.from_numpy(rng.normal(0, 1.5, (2, 255, 2, 2)).astype(np.float32))
    truths = _truths(rng, layer, x, (2, 2), 80, "crowd")
    expected = _reference(s, layer, x, truths, (64, 64))
    targets = torch.from_numpy(np.concatenate(
        [np.column_stack([np.full(len(t), b), t]) for b, t in enumerate(truths)])
        .astype(np.float32))
    head = x.clone().requires_grad_()
    loss, stats = DarknetLoss([layer], [s], [30])([head], targets, (64, 64))
    loss.backward()
    delta = expected["delta"].reshape(x.shape)
    np.testing.assert_allclose(-head.grad.numpy(), delta, rtol=0, atol=1e-5 * np.abs(delta).max())
    assert stats[0].count == expected["count"]


def test_truth_list_follows_darknets_rules():
    """Rows stay in order per image; a truth with x == 0 ends the list; classes outside
    the cfg are skipped; at most max_boxes slots are read."""
    t = torch.tensor([[1, 3, .5, .5, .1, .1], [0, 2, .4, .4, .2, .2], [1, 1, .3, .3, .1, .1],
                      [0, 9, .2, .2, .1, .1], [0, 1, 0, .3, .1, .1], [0, 0, .6, .6, .1, .1],
                      [2, 0, .1, .1, .1, .1], [2, 1, .2, .2, .1, .1], [2, 2, .3, .3, .1, .1]])
    truths = Truths.from_targets(t, 3, classes=5, max_boxes=2)
    assert truths.rows[:, 0].tolist() == [2.0, 3.0, 1.0, 0.0, 1.0]
    assert truths.image.tolist() == [0, 1, 1, 2, 2]
    assert truths.valid.sum(1).tolist() == [1, 2, 2]
