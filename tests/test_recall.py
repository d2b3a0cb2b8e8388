"""``detector recall`` against a literal, loop-by-loop port of Darknet's
``validate_detector_recall`` and ``do_nms_obj`` on the same network outputs."""

from __future__ import annotations

import shutil

import pytest
import torch

from darknet_py import Darknet
from darknet_py.cli import main
from darknet_py.eval.recall import recall_lines
from darknet_py.image import load_image, network_input
from darknet_py.io.data import read_labels

from .conftest import COCO128, ROOT

SAMPLE = ROOT / "darknet_py" / "assets" / "astronaut.jpg"


def _iou(a, b):
    def overlap(x1, w1, x2, w2):
        left = max(x1 - w1 / 2, x2 - w2 / 2)
        right = min(x1 + w1 / 2, x2 + w2 / 2)
        return right - left

    w = overlap(a[0], a[2], b[0], b[2])
    h = overlap(a[1], a[3], b[1], b[3])
    inter = 0 if w < 0 or h < 0 else w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def darknet_recall(model, images):
    """The C loop, transcribed: candidates above .001, do_nms_obj at .4 (sorted by
    objectness, a later box overlapping a kept one by more than .4 is zeroed), then the
    best IoU of each truth among proposals still above .001."""
    total = correct = proposals = 0
    avg_iou = 0.0
    lines = []
    for i, path in enumerate(images):
        x = torch.from_numpy(network_input(load_image(path), model.width, model.height,
                                           False)).permute(2, 0, 1)[None]
        with torch.no_grad():
            pred = model(x)[0]
        dets = [[float(v) for v in row[:4] / torch.tensor([model.width, model.height] * 2)]
                + [float(row[4])] for row in pred if float(row[4]) > 0.001]
        dets.sort(key=lambda d: -d[4])
        for a in range(len(dets)):
            if dets[a][4] == 0:
                continue
            for b in range(a + 1, len(dets)):
                if dets[b][4] != 0 and _iou(dets[a], dets[b]) > 0.4:
                    dets[b][4] = 0
        truth = read_labels([path])[0]
        proposals += sum(1 for d in dets if d[4] > 0.001)
        for t in truth[:, 1:].tolist():
            total += 1
            best = 0.0
            for d in dets:
                iou = _iou(d, t)
                if d[4] > 0.001 and iou > best:
                    best = iou
            avg_iou += best
            correct += best > 0.5
        lines.append((i, correct, total, proposals, avg_iou))
    return lines


@pytest.fixture
def images(tmp_path):
    coco = sorted((COCO128 / "images" / "train2017").glob("*.jpg"))[:4]
    if coco:
        return [str(p) for p in coco]
    shutil.copy(SAMPLE, tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.8 0.9\n0 0.2 0.2 0.1 0.1\n")
    return [str(tmp_path / "a.jpg")]


def test_recall_equals_darknets_loop(images):
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg")
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    model.eval()
    ours = [(r.index, r.correct, r.total, r.proposals) for r in recall_lines(model, images)]
    theirs = darknet_recall(model, images)
    assert ours == [t[:4] for t in theirs]
    last = list(recall_lines(model, images))[-1]
    assert last.iou_sum == pytest.approx(theirs[-1][4], rel=1e-5)
    assert "RPs/Img: " in last.line() and last.line().endswith("%")


def test_recall_command(images, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("".join(f"{p}\n" for p in images))
    (tmp_path / "r.data").write_text(f"classes=80\nvalid=list.txt\n"
                                     f"names={ROOT / 'cfg' / 'coco.names'}\n")
    assert main(["detector", "recall", "r.data", str(ROOT / "cfg" / "yolov4-tiny.cfg"),
                 str(ROOT / "weights" / "yolov4-tiny.weights"), "-dont_show", "-thresh",
                 "0.3", "--device", "cpu"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(images) and "Recall:" in err[-1]
