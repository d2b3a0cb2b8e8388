"""``detector valid``: Darknet's per-class result files and COCO JSON."""

from __future__ import annotations

import json

import pytest
import torch

from darknet_py.eval.coco import coco_results
from darknet_py.eval.valid import VALID_NMS, VALID_THRESH, validate_detector, voc_lines
from darknet_py.infer.detections import Detections
from darknet_py.infer.detector import Detector, DetectorConfig

from .conftest import IMAGES, requires_shared


def test_voc_lines_are_one_based_and_clipped():
    dets = Detections(boxes=torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.05, 0.9, 0.2, 0.4]]),
                      objectness=torch.tensor([0.9, 0.8]),
                      probs=torch.tensor([[0.7, 0.0], [0.0, 0.25]]), image_size=(100, 50))
    assert voc_lines("img", dets) == [
        (0, "img 0.700000 26.000000 13.500000 76.000000 38.500000"),
        (1, "img 0.250000 1.000000 36.000000 16.000000 50.000000"),
    ]


@requires_shared
def test_valid_writes_every_detection_of_the_valid_path(real_model, coco_names, tmp_path):
    images = [str(p) for p in IMAGES[:2]]
    config = DetectorConfig(thresh=VALID_THRESH, nms=VALID_NMS)
    dets = Detector(real_model, config, fast=True)(images)  # valid detects on the fused path

    files = validate_detector(real_model, images, tmp_path / "voc", coco_names)
    assert [f.name for f in files] == [f"comp4_det_test_{n}.txt" for n in coco_names]
    lines = [line for f in files for line in f.read_text().splitlines()]
    assert len(lines) == sum(int((d.probs > 0).sum()) for d in dets)
    person = (tmp_path / "voc" / "comp4_det_test_person.txt").read_text().splitlines()
    assert {line.split()[0] for line in person} <= {p.split("/")[-1][:-4] for p in images}

    [js] = validate_detector(real_model, images, tmp_path / "coco", coco_names, "coco", "out")
    assert js.name == "out.json"
    loaded = json.loads(js.read_text())
    expected = [r for p, d in zip(images, dets) for r in coco_results(p, d)]
    assert len(loaded) == len(expected)
    assert [(r["category_id"], r["score"]) for r in loaded[:5]] == \
        [(r["category_id"], round(r["score"], 6)) for r in expected[:5]]


@pytest.mark.parametrize("writer", ["detector test -out", "detector valid"])
def test_result_files_are_written_atomically(tmp_path, monkeypatch, writer):
    """A full disk is one error naming the file, and the previous file stays whole."""
    import errno
    import os

    from darknet_py import DarknetError
    from darknet_py.eval import valid
    from darknet_py.infer.report import write_json
    from darknet_py import files

    path = tmp_path / "result.json"
    path.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(DarknetError, match="result.json.*No space left"):
        if writer == "detector valid":
            valid._write(path, "new")
        else:
            write_json([{"frame_id": 1, "objects": []}], path)
    assert path.read_text() == "old"
