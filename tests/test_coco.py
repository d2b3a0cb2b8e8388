"""COCO: image and category ids as Darknet writes them, ground truth from Darknet labels,
and pycocotools' COCOeval behind ``eval coco``."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
import torch

from darknet_py import DataError
from darknet_py.cli import main
from darknet_py.eval.coco import (COCO_IDS, category_id, coco_evaluate, coco_image_id, coco_results,
                                  ground_truth)
from darknet_py.eval.valid import validate_detector
from darknet_py.infer.detections import Detections
from darknet_py.io.data import read_image_list

from .conftest import requires_shared


@pytest.mark.parametrize("path, image_id", [
    ("/coco/images/val2017/000000000139.jpg", 139),
    ("/coco/images/val2014/COCO_val2014_000000000042.jpg", 42),
    ("data/dog.jpg", 0),
    ("12_34.png", 34),
])
def test_coco_image_id_as_darknet(path, image_id):
    assert coco_image_id(path) == image_id


def test_category_ids_are_cocos_91_ids():
    assert len(COCO_IDS) == 80 and list(COCO_IDS) == sorted(set(COCO_IDS))
    assert set(range(1, 91)) - set(COCO_IDS) == {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    assert category_id(0, 80) == 1 and category_id(60, 80) == 67 and category_id(79, 80) == 90
    assert category_id(5, 3) == COCO_IDS[5]
    assert category_id(85, 100) == 86  # more classes than COCO: class + 1


def test_coco_results_clip_to_the_image_and_list_each_class():
    dets = Detections(boxes=torch.tensor([[0.1, 0.5, 0.4, 0.2]]),  # left edge at -0.1
                      objectness=torch.tensor([0.9]),
                      probs=torch.tensor([[0.0, 0.6, 0.0, 0.3] + [0.0] * 76]),
                      image_size=(200, 100))
    out = coco_results("x/000000000007.jpg", dets)
    assert [(r["image_id"], r["category_id"], r["score"]) for r in out] == \
        [(7, 2, pytest.approx(0.6)), (7, 4, pytest.approx(0.3))]
    np.testing.assert_allclose(out[0]["bbox"], [0, 40, 60, 20], atol=1e-4)


def _independent_ground_truth(images: list[str]) -> dict:
    """COCO ground truth written out plainly, to check the project's builder against."""
    anns, imgs = [], []
    for path in images:
        h, w = cv2.imread(path).shape[:2]
        image_id = int(path.rsplit("/", 1)[1].split(".")[0])
        imgs.append({"id": image_id, "width": w, "height": h})
        label = path.replace("/images/", "/labels/").rsplit(".", 1)[0] + ".txt"
        try:
            lines = open(label).read().split("\n")
        except FileNotFoundError:
            lines = []
        for line in filter(None, lines):
            c, x, y, bw, bh = line.split()
            x, y, bw, bh = (float(v) for v in (x, y, bw, bh))
            anns.append({"id": len(anns) + 1, "image_id": image_id,
                         "category_id": COCO_IDS[int(c)], "iscrowd": 0, "area": bw * w * bh * h,
                         "bbox": [(x - bw / 2) * w, (y - bh / 2) * h, bw * w, bh * h]})
    return {"images": imgs, "annotations": anns,
            "categories": [{"id": i, "name": str(i)} for i in COCO_IDS]}


def _pycocotools_stats(results_path, gt: dict) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(str(results_path)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@requires_shared
def test_valid_json_through_eval_coco_equals_pycocotools(real_model, coco128_list, coco_names,
                                                         tmp_path, capsys):
    images = read_image_list(coco128_list)
    [results] = validate_detector(real_model, images, tmp_path, coco_names, "coco")
    expected = _pycocotools_stats(results, _independent_ground_truth(images))
    assert expected[0] > 0.2 and expected[1] > 0.4  # yolov4-tiny on its training images

    ours = coco_evaluate(results, ground_truth(images, 80, coco_names))
    np.testing.assert_array_equal(ours.stats, expected)
    assert len(ours.lines) == 12 and ours.lines[0].startswith(" Average Precision  (AP) @[ IoU")

    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(_independent_ground_truth(images)))
    for gt in (str(gt_file), str(coco128_list)):
        assert main(["eval", "coco", str(results), "--gt", gt]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert [float(line.rsplit("=", 1)[1]) for line in printed] == \
            [round(float(v), 3) for v in expected]


def _gt() -> dict:
    return {"images": [{"id": 1, "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5],
                             "area": 25, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "person"}]}


@pytest.mark.parametrize("results, message", [
    ([], "holds no detections"),
    ({"image_id": 1}, "must be a JSON list"),
    ([{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 1}], "entry 0 is not a detection"),
    ([{"image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1}],
     r"1 image ids are not in .*\[7\].* do not match"),
    ([{"image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 1}],
     r"category ids \[3\] are not in"),
])
def test_results_that_do_not_fit_the_ground_truth_are_one_line_errors(results, message, tmp_path):
    path = tmp_path / "res.json"
    path.write_text(json.dumps(results))
    with pytest.raises(DataError, match=message):
        coco_evaluate(path, _gt())


def test_bad_files_name_the_file(tmp_path):
    res = tmp_path / "res.json"
    res.write_text("[{not json")
    with pytest.raises(DataError, match="res.json: results file is not valid JSON"):
        coco_evaluate(res, _gt())
    with pytest.raises(DataError, match="missing.json: results file not found"):
        coco_evaluate(tmp_path / "missing.json", _gt())
    res.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5],
                                "score": 1}]))
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="gt.json: not COCO ground truth"):
        coco_evaluate(res, gt)


def test_ground_truth_rejects_colliding_image_ids(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="both have COCO image id 0"):
        ground_truth([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")])
