"""calc_anchors: k-means with 1 - IoU distance."""

from __future__ import annotations

import numpy as np
import pytest

from darknet_py import DataError
from darknet_py.eval.anchors import calc_anchors, draw_anchors, kmeans_anchors, wh_iou
from darknet_py.io.data import read_image_list


def test_wh_iou_hand_worked():
    iou = wh_iou(np.array([[10.0, 10.0], [20.0, 5.0]]), np.array([[10.0, 10.0], [5.0, 20.0]]))
    # (20,5) vs (10,10): inter 10*5 = 50, union 100 + 100 - 50 = 150
    np.testing.assert_allclose(iou, [[1.0, 50 / 150], [50 / 150, 25 / 175]])


def test_two_clear_clusters_hand_worked():
    boxes = np.array([[10, 10], [11, 11], [100, 100], [110, 110]], dtype=float)
    for seed in range(4):
        r = kmeans_anchors(boxes, 2, seed=seed)
        np.testing.assert_allclose(r.anchors, [[10.5, 10.5], [105, 105]])
        # best IoUs: 100/110.25, 110.25/121, 10000/11025, 11025/12100
        expected = np.mean([100 / 110.25, 110.25 / 121, 10000 / 11025, 11025 / 12100])
        assert r.avg_iou == pytest.approx(expected, abs=1e-12)
    assert r.cfg_line(416) == "anchors =  10, 10, 105,105"  # %3.0f rounds half to even
    assert r.cfg_line(32) == "anchors = 10.5000,10.5000, 105.0000,105.0000"


def test_too_few_boxes_is_an_error():
    with pytest.raises(DataError, match="2 labelled boxes are too few for 3 clusters"):
        kmeans_anchors(np.ones((2, 2)), 3)


def test_coco128_anchors_are_reproducible(coco128_list):
    images = read_image_list(coco128_list)
    a = calc_anchors(images, 9, 416, 416, classes=80, seed=1)
    b = calc_anchors(images, 9, 416, 416, classes=80, seed=1)
    np.testing.assert_array_equal(a.anchors, b.anchors)
    assert a.boxes.shape == (929, 2)
    areas = a.anchors.prod(1)
    assert np.all(np.diff(areas) > 0)  # sorted by area, as Darknet prints them
    assert 0.55 < a.avg_iou < 0.8
    picture = draw_anchors(a, 416, 416, size=200)
    assert picture.shape == (200, 200, 3) and picture.min() < 255
