"""mAP: Darknet's counting rules on hand-worked cases, and Darknet's figures on coco128."""

from __future__ import annotations

import numpy as np
import pytest

from darknet_py.eval.map import MapAccumulator, evaluate_map
from darknet_py.io.data import read_image_list

from .conftest import requires_shared

T0 = [0.25, 0.25, 0.2, 0.2]
T1 = [0.75, 0.75, 0.2, 0.2]
FAR = [0.5, 0.5, 0.1, 0.1]


def _probs(rows):
    """(prob of class 0, prob of class 1) per detection row."""
    return np.array(rows, dtype=np.float32)


def _two_truths() -> MapAccumulator:
    # class 0: truths T0, T1; class 1: one truth and no detection
    acc = MapAccumulator(classes=2)
    boxes = np.array([T0, FAR, T1], dtype=np.float32)
    probs = _probs([[0.9, 0], [0.8, 0], [0.3, 0]])
    labels = np.array([[0, *T0], [0, *T1], [1, *FAR]], dtype=np.float32)
    acc.add(boxes, probs, labels)
    return acc


def test_area_under_curve_hand_worked():
    # ranked: TP (p .9), FP (.8), TP (.3) -> precision 1, .5, 2/3; recall .5, .5, 1
    # Darknet: recall[0] * best precision from rank 0 (1) + step .5 * best from rank 1 (2/3)
    r = _two_truths().result(points=0)
    assert r.ap[0] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-12)
    assert r.ap[1] == 0.0
    assert r.map == pytest.approx((0.5 + 0.5 * 2 / 3) / 2, abs=1e-12)
    assert (r.total_tp, r.total_fp, r.total_truths, r.detections) == (2, 1, 3, 3)
    assert r.avg_iou == pytest.approx(2 / 3, abs=1e-6)  # IoU 1 + 1 over TP + FP, float32


@pytest.mark.parametrize("points, expected", [
    (11, (6 * 1 + 5 * 2 / 3) / 11),    # recall .0-.5: precision 1; .6-1.0: 2/3
    (101, (51 * 1 + 50 * 2 / 3) / 101),
])
def test_interpolated_points_hand_worked(points, expected):
    assert _two_truths().result(points).ap[0] == pytest.approx(expected, abs=1e-12)


def test_earlier_low_probability_match_makes_a_later_one_false_positive():
    # Darknet's per-image scan: D0 (p .1, below conf) takes T0 first, so D1 (p .9) is an FP
    # at conf .25, though D1 ranks first in the AP ranking and is a TP there.
    acc = MapAccumulator(classes=1)
    shifted = [0.26, 0.25, 0.2, 0.2]
    acc.add(np.array([T0, shifted], np.float32), _probs([[0.1], [0.9]]),
            np.array([[0, *T0]], np.float32))
    r = acc.result()
    assert (r.total_tp, r.total_fp) == (0, 1)
    assert r.ap[0] == pytest.approx(1.0)


def test_one_truth_counts_once_and_iou_must_exceed_threshold():
    acc = MapAccumulator(classes=1, iou_thresh=0.5)
    half = [0.25, 0.25, 0.2, 0.1]  # inside T0 with IoU exactly 0.5: not a match
    acc.add(np.array([T0, T0, half], np.float32), _probs([[0.9], [0.8], [0.7]]),
            np.array([[0, *T0]], np.float32))
    r = acc.result()
    assert (r.total_tp, r.total_fp) == (1, 2)


def test_report_lines_have_darknets_format():
    lines = _two_truths().result().report(["cat", "dog"])
    assert lines[0] == " detections_count = 3, unique_truth_count = 3  "
    assert lines[1] == "class_id = 0, name = cat, ap = 83.33%   \t (TP = 2, FP = 1) "
    assert lines[-1] == " mean average precision (mAP@0.50) = 0.416667, or 41.67 % "
    assert " for conf_thresh = 0.25, precision = 0.67, recall = 0.67, F1-score = 0.67 " in lines


@requires_shared
def test_coco128_map_matches_darknet(real_model, coco128_list, coco_names):
    """Darknet C's `detector map` on coco128 (yolov4-tiny, 416, -points 0, iou .5, conf .25),
    each build against the decoder that reads images as it does:
    - built without OpenCV (``--decoder stb``): mAP@0.50 0.460449; precision 0.67, recall
      0.40, F1 0.50, TP 371, FP 182, avg IoU 52.19 %;
    - built with OpenCV (the default ``opencv``; AlexeyAB HEAD, OPENCV=1, system OpenCV
      4.6): mAP@0.50 0.460312, TP 371, FP 183.
    """
    images = read_image_list(coco128_list)
    r = evaluate_map(real_model, images, decoder="stb")
    assert r.total_truths == 929
    assert r.detections > 5000
    assert r.map == pytest.approx(0.460449, abs=1e-6)
    assert (r.total_tp, r.total_fp) == (371, 182)
    assert r.avg_iou * 100 == pytest.approx(52.19, abs=0.005)
    opencv = evaluate_map(real_model, images)
    assert opencv.map == pytest.approx(0.460312, abs=1e-6)
    assert (opencv.total_tp, opencv.total_fp) == (371, 183)
    lines = r.report(coco_names)
    assert " for conf_thresh = 0.25, precision = 0.67, recall = 0.40, F1-score = 0.50 " in lines
