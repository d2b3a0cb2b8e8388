"""Box measures and NMS against hand-worked numbers and slow Darknet-style code."""

from __future__ import annotations

import math

import pytest
import torch

from darknet_py.infer.detections import candidates, darknet_order
from darknet_py.ops import nms, pairwise_iou, sort_like_darknet


def test_iou_hand_worked():
    a = torch.tensor([[2.0, 2.0, 2.0, 2.0]])  # [1,3] x [1,3]
    b = torch.tensor([[3.0, 3.0, 2.0, 2.0], [10.0, 10.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    assert pairwise_iou(a, b)[0].tolist() == pytest.approx([1 / 7, 0.0, 1.0])


def test_diou_hand_worked():
    a = torch.tensor([[2.0, 2.0, 2.0, 2.0]])
    b = torch.tensor([[3.0, 3.0, 2.0, 2.0]])
    # enclosing box [1,4]x[1,4]: c = 9 + 9, centre distance d = 2
    expected = 1 / 7 - (2 / 18) ** 0.6
    assert pairwise_iou(a, b, "diou", 0.6).item() == pytest.approx(expected, rel=1e-6)


def slow_nms(boxes, probs, thresh, measure):
    """do_nms_sort / diounms_sort written as Darknet's loops."""
    probs = [list(p) for p in probs]
    n, classes = len(boxes), len(probs[0])
    order = list(range(n))
    for k in range(classes):
        order.sort(key=lambda i: -probs[i][k])  # stable, like glibc's merge sort
        for ii, i in enumerate(order):
            if probs[i][k] == 0:
                continue
            for j in order[ii + 1:]:
                if measure(boxes[i], boxes[j]) > thresh:
                    probs[j][k] = 0
    return probs


def _iou(a, b):
    return pairwise_iou(torch.tensor([a]), torch.tensor([b])).item()


def _diou(beta):
    return lambda a, b: pairwise_iou(torch.tensor([a]), torch.tensor([b]), "diou", beta).item()


@pytest.mark.parametrize("kind, measure", [("default", _iou), ("greedynms", _diou(0.6)),
                                           ("diounms", _diou(0.3))])
def test_nms_matches_darknet_loops(kind, measure):
    g = torch.Generator().manual_seed(3)
    n, classes = 40, 3
    xy = torch.rand(n, 2, generator=g) * 0.5 + 0.25
    wh = torch.rand(n, 2, generator=g) * 0.3 + 0.05
    boxes = torch.cat([xy, wh], 1)
    probs = torch.rand(n, classes, generator=g)
    probs[probs < 0.4] = 0
    ours = nms(boxes, probs, 0.45, kind, beta=0.3)
    expected = slow_nms(boxes.tolist(), probs.tolist(), 0.45, measure)
    torch.testing.assert_close(ours, torch.tensor(expected))
    assert (ours > 0).sum() < (probs > 0).sum()


def row_loop_nms(boxes, probs, thresh, kind="default", beta=0.6):
    """The NMS darknet-py used before: per class, a Python loop over the sorted candidates
    with a full overlap matrix (the reference for larger randomized cases)."""
    probs = probs.clone()
    for k in torch.nonzero((probs > 0).any(0)).flatten().tolist():
        idx = torch.nonzero(probs[:, k] > 0).flatten()
        idx = idx[torch.sort(probs[idx, k], descending=True, stable=True).indices]
        b = boxes[idx]
        if kind == "default":
            overlap = pairwise_iou(b, b)
        else:
            overlap = pairwise_iou(b, b, "diou", 0.6 if kind == "greedynms" else beta)
        n = idx.numel()
        over = (overlap > thresh) & torch.ones(n, n, dtype=torch.bool).triu(1)
        removed = torch.zeros(n, dtype=torch.bool)
        for i in range(n):
            if not removed[i]:
                removed |= over[i]
        probs[idx[removed], k] = 0
    return probs


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", ["default", "greedynms", "diounms"])
def test_nms_equals_the_row_loop_on_random_scenes(seed, kind):
    """Clusters (long suppression chains), identical boxes, tied probabilities, tiny and
    huge boxes, up to 600 candidates; 5 classes shared by most candidates, or 40 classes
    with a few candidates each (the two ways pairs are found)."""
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 600, (1,), generator=g))
    centres = torch.rand(6, 2, generator=g)
    xy = centres[torch.randint(0, 6, (n,), generator=g)] + torch.randn(n, 2, generator=g) * 0.03
    wh = torch.rand(n, 2, generator=g) ** 3 * 0.5 + 1e-4
    boxes = torch.cat([xy, wh], 1)
    boxes[n // 2:n // 2 + 5] = boxes[n // 2]  # identical boxes
    dense = (torch.rand(n, 5, generator=g) * 8).floor() / 8  # many ties, many zeros
    sparse = dense.repeat(1, 8) * (torch.rand(n, 40, generator=g) < 0.05)  # few per class
    for probs in (dense, sparse):
        for thresh in (0.3, 0.45, 0.7):
            torch.testing.assert_close(nms(boxes, probs, thresh, kind, 0.35),
                                       row_loop_nms(boxes, probs, thresh, kind, 0.35),
                                       rtol=0, atol=0)


def test_candidates_threshold_and_letterbox():
    # one 416x416 net, image 832x416 letterboxed to 416x208 (dh = 104 px each side)
    pred = torch.tensor([[208.0, 208.0, 100.0, 50.0, 0.9, 0.5, 0.2],
                         [10.0, 10.0, 5.0, 5.0, 0.2, 1.0, 1.0]])
    boxes, obj, probs = candidates(pred, 0.25, (416, 416), (832, 416), letter_box=True)
    assert obj.tolist() == pytest.approx([0.9])
    torch.testing.assert_close(probs, torch.tensor([[0.45, 0.0]]))  # 0.18 <= 0.25 -> 0
    assert boxes[0].tolist() == pytest.approx([0.5, 0.5, 100 / 416, 50 / 208])


def test_darknet_order_is_row_col_anchor():
    order = darknet_order([(2, 2, 3)])
    # model order index = a*6 + r*3 + c; Darknet visits (r, c, a)
    assert order.tolist() == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]


def test_sort_like_darknet_last_class_is_primary():
    probs = torch.tensor([[0.9, 0.0], [0.5, 0.3], [0.7, 0.6]])
    assert sort_like_darknet(probs).tolist() == [2, 1, 0]
    assert math.isclose(float(probs[sort_like_darknet(probs)][0, 1]), 0.6, rel_tol=1e-6)


def test_non_finite_boxes_are_clipped_to_the_image_everywhere_they_are_reported():
    """exp(tw) overflowing (untrained heads, a flipped bit) gave OverflowError in drawing."""
    import json

    import numpy as np

    from darknet_py.infer.detections import Detections
    from darknet_py.infer.report import (draw_detections, json_frame, report_lines,
                                         yolo_label_lines)
    from darknet_py.ops.boxes import clip_non_finite

    inf, nan = float("inf"), float("nan")
    boxes = torch.tensor([[0.5, 0.5, inf, 0.2], [nan, 0.5, 0.1, 0.1], [0.3, 0.3, 0.2, 2.0]])
    clipped = clip_non_finite(boxes)
    assert torch.equal(clipped[0], torch.tensor([0.5, 0.5, 1.0, 0.2]))
    assert torch.equal(clipped[1], torch.tensor([0.5, 0.5, 1.0, 0.1]))  # NaN centre: image
    assert torch.equal(clipped[2], boxes[2])  # finite boxes keep Darknet's values
    dets = Detections(boxes, torch.ones(3), torch.full((3, 1), 0.9), (64, 48))
    assert torch.isfinite(dets.boxes).all()
    lines = report_lines(dets, ["thing"], 0.25, ext_output=True)
    assert len(lines) == 3 and "width:   64" in lines[0]
    json.dumps(json_frame(dets, ["thing"], 0.25, 1, "x.jpg"), allow_nan=False)
    assert yolo_label_lines(dets, 0.25)[0] == "0 0.5000 0.5000 1.0000 0.2000"
    assert draw_detections(np.zeros((48, 64, 3), np.float32), dets, ["thing"], 0.25).shape \
        == (48, 64, 3)
