"""``darknet detector calc_anchors``: k-means on label sizes with 1 - IoU as distance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from ..errors import DataError
from ..io.data import read_labels
from ..ops.boxes import shape_iou

log = logging.getLogger(__name__)


def wh_iou(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of (N, 2) and (K, 2) width/height pairs placed on a common centre -> (N, K)."""
    as_tensor = (lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64)))
    return shape_iou(as_tensor(boxes), as_tensor(anchors)).numpy()


@dataclass
class AnchorResult:
    """Anchors sorted by area (K, 2) in network pixels, the mean best IoU of the boxes (0..1),
    the box sizes clustered (N, 2), each box's cluster and the k-means iterations run."""

    anchors: np.ndarray
    avg_iou: float
    boxes: np.ndarray
    assignment: np.ndarray
    iterations: int

    def cfg_line(self, width: int = 416) -> str:
        """``anchors = ...`` as Darknet prints it (whole pixels for a network wider than 32)."""
        big = width > 32
        parts = [f"{w:3.0f},{h:3.0f}" if big else f"{w:2.4f},{h:2.4f}" for w, h in self.anchors]
        return "anchors = " + ", ".join(parts)


def kmeans_anchors(boxes: np.ndarray, k: int, seed: int = 0,
                   max_iterations: int = 1000) -> AnchorResult:
    """Cluster (N, 2) box sizes into ``k`` anchors: Lloyd's k-means, distance 1 - IoU,
    centres started at ``k`` distinct random boxes (``seed``), empty clusters kept."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2)
    if k < 1:
        raise DataError(f"the number of clusters must be at least 1, got {k}")
    if boxes.shape[0] < k:
        raise DataError(f"{boxes.shape[0]} labelled boxes are too few for {k} clusters")
    rng = np.random.default_rng(seed)
    centers = boxes[rng.choice(boxes.shape[0], k, replace=False)].copy()
    assignment = np.full(boxes.shape[0], -1)
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        new = np.argmax(wh_iou(boxes, centers), 1)  # nearest = highest IoU
        if np.array_equal(new, assignment):
            break
        assignment = new
        for j in range(k):
            members = boxes[assignment == j]
            if members.size:
                centers[j] = members.mean(0)
    order = np.argsort(centers[:, 0] * centers[:, 1], kind="stable")
    centers = centers[order]
    best = wh_iou(boxes, centers)
    return AnchorResult(centers, float(best.max(1).mean()), boxes, np.argmax(best, 1),
                        iterations)


def calc_anchors(images: Sequence[str], k: int, width: int, height: int,
                 classes: int | None = None, seed: int = 0) -> AnchorResult:
    """Anchors for a network of ``width`` x ``height`` from the labels of ``images``."""
    if width <= 0 or height <= 0:
        raise DataError("calc_anchors needs -width and -height (the network input size)")
    labels = read_labels(list(images), classes)
    sizes = np.concatenate([lab[:, 3:5] for lab in labels]) if labels else np.zeros((0, 2))
    if sizes.shape[0] == 0:
        raise DataError("no labelled boxes found for calc_anchors")
    return kmeans_anchors(sizes * np.array([width, height], dtype=np.float64), k, seed)


def draw_anchors(result: AnchorResult, width: int, height: int, size: int = 800) -> np.ndarray:
    """A BGR picture of the box sizes (points coloured by cluster) and the anchors
    (rectangles from the corner), as Darknet's ``-show`` window."""
    img = np.full((size, size, 3), 255, np.uint8)
    sx, sy = size / max(width, 1), size / max(height, 1)
    k = len(result.anchors)
    hues = (np.arange(k) * 180 // max(k, 1)).astype(np.uint8)
    colors = cv2.cvtColor(np.stack([hues, np.full(k, 200, np.uint8), np.full(k, 220, np.uint8)],
                                   1)[None], cv2.COLOR_HSV2BGR)[0]
    for (w, h), j in zip(result.boxes, result.assignment):
        cv2.circle(img, (int(w * sx), int(h * sy)), 2, colors[j].tolist(), -1)
    for (w, h), c in zip(result.anchors, colors):
        cv2.rectangle(img, (0, 0), (int(w * sx), int(h * sy)), c.tolist(), 2)
    return img
