"""mAP as ``darknet detector map`` computes it (``validate_detector_map``).

Per image: detections at threshold 0.005 after plain NMS 0.45, each (box,
class) pair with a probability matched to the same-class truth of highest IoU
above ``iou_thresh``.  Over the set: pairs sorted by probability, a truth
counts once (later matches are false positives), and per class the area under
the precision/recall curve (``points=0``) or the mean of ``points`` interpolated
precisions (11 for VOC2007, 101 for COCO).  TP, FP and the average IoU are
counted at ``conf_thresh`` with Darknet's per-image rule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..image.decode import DEFAULT_DECODER
from ..infer.detector import Detector, DetectorConfig
from ..io.data import LabelFiles, class_name, read_labels
from ..nn.model import Darknet
from ..ops.boxes import pairwise_iou

log = logging.getLogger(__name__)

MAP_THRESH = 0.005  # candidate threshold of validate_detector_map
MAP_NMS = 0.45


@dataclass
class MapResult:
    """What ``detector map`` reports.  Arrays are per class."""

    ap: np.ndarray  # average precision, float64
    tp: np.ndarray  # true positives at conf_thresh
    fp: np.ndarray  # false positives at conf_thresh
    truths: np.ndarray  # ground-truth objects
    avg_iou: float  # mean IoU of the TP at conf_thresh over TP + FP (Darknet's definition)
    detections: int  # (box, class) pairs ranked
    iou_thresh: float
    conf_thresh: float
    points: int

    @property
    def map(self) -> float:
        return float(self.ap.mean()) if self.ap.size else 0.0

    @property
    def total_tp(self) -> int:
        return int(self.tp.sum())

    @property
    def total_fp(self) -> int:
        return int(self.fp.sum())

    @property
    def total_truths(self) -> int:
        return int(self.truths.sum())

    @property
    def precision(self) -> float:
        tp, fp = np.float32(self.total_tp), np.float32(self.total_fp)
        return float(tp / (tp + fp)) if tp + fp else float("nan")

    @property
    def recall(self) -> float:
        tp, n = np.float32(self.total_tp), np.float32(self.total_truths)
        return float(tp / n) if n else float("nan")

    @property
    def f1(self) -> float:
        p, r = np.float32(self.precision), np.float32(self.recall)
        return float(np.float32(2) * p * r / (p + r)) if p + r else float("nan")

    def report(self, names: Sequence[str]) -> list[str]:
        """The lines Darknet prints for this result."""
        lines = [f" detections_count = {self.detections}, "
                 f"unique_truth_count = {self.total_truths}  "]
        for i, ap in enumerate(self.ap):
            name = class_name(names, i)
            lines.append(f"class_id = {i}, name = {name}, ap = {ap * 100:2.2f}%   \t "
                         f"(TP = {self.tp[i]}, FP = {self.fp[i]}) ")
        c = self.conf_thresh
        lines += ["",
                  f" for conf_thresh = {c:1.2f}, precision = {self.precision:1.2f}, "
                  f"recall = {self.recall:1.2f}, F1-score = {self.f1:1.2f} ",
                  f" for conf_thresh = {c:0.2f}, TP = {self.total_tp}, FP = {self.total_fp}, "
                  f"FN = {self.total_truths - self.total_tp}, "
                  f"average IoU = {self.avg_iou * 100:2.2f} % ",
                  "",
                  f" IoU threshold = {self.iou_thresh * 100:2.0f} %, "
                  + (f"used {self.points} Recall-points " if self.points
                     else "used Area-Under-Curve for each unique Recall "),
                  f" mean average precision (mAP@{self.iou_thresh:0.2f}) = {self.map:f}, "
                  f"or {self.map * 100:2.2f} % "]
        return lines


class MapAccumulator:
    """Collects detections and labels image by image, then computes ``MapResult``."""

    def __init__(self, classes: int, iou_thresh: float = 0.5, conf_thresh: float = 0.25):
        self.classes = classes
        self.iou_thresh = iou_thresh
        self.conf_thresh = conf_thresh
        self.truths = np.zeros(classes, dtype=np.int64)
        self.tp = np.zeros(classes, dtype=np.int64)
        self.fp = np.zeros(classes, dtype=np.int64)
        self._iou_sum = np.float32(0)
        self._unique_truths = 0
        # one row per (box, class) pair: probability, class, global truth index or -1
        self._prob: list[np.ndarray] = []
        self._cls: list[np.ndarray] = []
        self._truth: list[np.ndarray] = []

    def add(self, boxes: Tensor | np.ndarray, probs: Tensor | np.ndarray,
            labels: np.ndarray) -> None:
        """One image: ``boxes`` (N, 4) cx,cy,w,h and ``probs`` (N, C) after NMS, rows in
        Darknet's order; ``labels`` (M, 5) class, cx, cy, w, h, all relative to the image."""
        boxes = torch.as_tensor(boxes, dtype=torch.float32).cpu()
        probs = np.asarray(torch.as_tensor(probs, dtype=torch.float32).cpu())
        labels = np.asarray(labels, dtype=np.float32).reshape(-1, 5)
        truth_cls = labels[:, 0].astype(np.int64)
        np.add.at(self.truths, truth_cls, 1)
        rows, cls = np.nonzero(probs > 0)  # row-major: Darknet's (box, class) loop order
        prob = probs[rows, cls]
        match = np.full(rows.size, -1, dtype=np.int64)
        match_iou = np.zeros(rows.size, dtype=np.float32)
        if labels.shape[0] and rows.size:
            iou = pairwise_iou(boxes, torch.from_numpy(labels[:, 1:])).numpy()[rows]
            ok = (iou > self.iou_thresh) & (cls[:, None] == truth_cls[None, :])
            scored = np.where(ok, iou, -1.0)
            best = scored.argmax(1)  # first of equal maxima, as Darknet's strict '>'
            hit = ok[np.arange(rows.size), best]
            match[hit] = best[hit]
            match_iou[hit] = iou[np.arange(rows.size), best][hit]
        # TP/FP at conf_thresh: a match counts only if no earlier pair of this image,
        # at any probability, took the same truth (Darknet's per-image "found" scan).
        first = _first_claims(match)
        above = prob > self.conf_thresh
        np.add.at(self.tp, cls[above & first], 1)
        np.add.at(self.fp, cls[above & ~first], 1)
        for v in match_iou[above & first]:  # Darknet's float sum, in its order
            self._iou_sum += v
        self._prob.append(prob.astype(np.float32))
        self._cls.append(cls)
        self._truth.append(np.where(match >= 0, match + self._unique_truths, -1))
        self._unique_truths += labels.shape[0]

    def result(self, points: int = 0) -> MapResult:
        """Average precision per class: area under the curve (``points=0``) or the mean of
        ``points`` interpolated precisions."""
        prob = np.concatenate(self._prob) if self._prob else np.zeros(0, np.float32)
        cls = np.concatenate(self._cls) if self._cls else np.zeros(0, np.int64)
        truth = np.concatenate(self._truth) if self._truth else np.zeros(0, np.int64)
        order = np.argsort(-prob, kind="stable")
        cls, truth = cls[order], truth[order]
        first = _first_claims(truth)  # a ranked pair is a TP if it takes its truth first
        # a class's curve only moves at its own pairs, so each class ranks its own
        by_class = np.argsort(cls, kind="stable")
        bounds = np.searchsorted(cls[by_class], np.arange(self.classes + 1))
        ap = np.array([_average_precision(first[by_class[bounds[c]:bounds[c + 1]]],
                                          int(self.truths[c]), points)
                       for c in range(self.classes)], dtype=np.float64)
        n = int(self.tp.sum() + self.fp.sum())
        avg_iou = float(self._iou_sum / np.float32(n)) if n else 0.0
        return MapResult(ap, self.tp.copy(), self.fp.copy(), self.truths.copy(), avg_iou,
                         int(prob.size), self.iou_thresh, self.conf_thresh, points)


def _first_claims(truth: np.ndarray) -> np.ndarray:
    """For pairs in order, whether each is the first to claim its matched truth (-1: none)."""
    first = np.zeros(truth.size, dtype=bool)
    matched = np.flatnonzero(truth >= 0)
    _, first_idx = np.unique(truth[matched], return_index=True)
    first[matched[first_idx]] = True
    return first


def _average_precision(is_tp: np.ndarray, truths: int, points: int) -> float:
    """One class's AP from its pairs in rank order (TP or not), as Darknet's PR loop
    computes it over the global ranking (other classes' ranks leave the curve as is)."""
    n = is_tp.size
    if n == 0:
        return 0.0
    tp = np.cumsum(is_tp).astype(np.float64)
    fp = np.cumsum(~is_tp).astype(np.float64)
    precision = np.divide(tp, tp + fp, out=np.zeros(n), where=(tp + fp) > 0)
    recall = tp / truths if truths else np.zeros(n)
    best_after = np.maximum.accumulate(precision[::-1])[::-1]
    if points == 0:
        # Darknet walks back from the last rank: the recall step from rank r to r+1
        # times the best precision at rank r or later, plus recall[0] * best[0]
        steps = np.append(np.diff(recall), 0.0)
        return float(np.sum(steps * best_after) + recall[0] * best_after[0])
    total = 0.0
    for point in range(points):
        r = point * 1.0 / (points - 1)
        first = np.searchsorted(recall, r, side="left")  # recall is non-decreasing
        total += best_after[first] if first < n else 0.0
    return total / points


def evaluate_map(model: Darknet, images: Sequence[str], classes: int | None = None,
                 iou_thresh: float = 0.5, conf_thresh: float = 0.25, points: int = 0,
                 letter_box: bool | None = None, device: str | torch.device | None = None,
                 batch_size: int = 8, progress: bool = False, decoder: str = DEFAULT_DECODER,
                 label_files: LabelFiles | None = None) -> MapResult:
    """Darknet's ``detector map`` over image files whose labels follow Darknet's rule (or
    are given as ``label_files``); an image that cannot be read is logged and left out
    (with its labels).  ``device`` defaults to the model's."""
    if not images:
        raise DataError("the validation image list is empty")
    classes = classes or model.num_classes
    labels = read_labels(list(images), classes, label_files)
    config = DetectorConfig(thresh=MAP_THRESH, nms=MAP_NMS, letter_box=letter_box,
                            nms_kind=None)
    detector = Detector(model, config, device, fast=True,  # fused, as Darknet detects
                        decoder=decoder)
    acc = MapAccumulator(classes, iou_thresh, conf_thresh)
    truth_of = dict(zip(images, labels))
    results = detector.detect_paths(images, batch_size, progress="mAP" if progress else None)
    for path, dets in results:  # an unreadable image is logged and skipped
        acc.add(dets.boxes, dets.probs, truth_of[path])
    return acc.result(points)
