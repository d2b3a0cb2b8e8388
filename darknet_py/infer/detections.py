"""Model outputs -> per-image detections: Darknet's candidate order and thresholds, and
the ``Detections`` result with its pixel boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..io.data import class_name
from ..ops.boxes import clip_corners, clip_non_finite, corners, correct_boxes

@dataclass
class Detections:
    """Detections of one image after NMS.

    ``boxes``: (N, 4) cx, cy, w, h relative to the image (Darknet's ``bbox``);
    ``objectness``: (N,); ``probs``: (N, C) objectness * class probability, 0
    where at or below the threshold or suppressed by NMS.  Rows are in
    Darknet's order after NMS.  ``image_size`` is (width, height).  A box with a NaN or
    infinite value is clipped to the image (``ops.boxes.clip_non_finite``).
    """

    boxes: Tensor
    objectness: Tensor
    probs: Tensor
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        self.boxes = clip_non_finite(self.boxes)  # printable, drawable, writable

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def boxes_pixels(self) -> Tensor:
        """Boxes as (left, top, width, height) in image pixels."""
        w, h = self.image_size
        left, top, _, _ = corners(self.boxes)
        return torch.stack([left * w, top * h, self.boxes[:, 2] * w, self.boxes[:, 3] * h], 1)

    def boxes_pixels_center(self) -> np.ndarray:
        """Boxes as (cx, cy, w, h) in image pixels, float32 products as Darknet's
        ``correct_yolo_boxes``, returned as float64 for the corner arithmetic."""
        w, h = self.image_size
        scale = np.array([w, h, w, h], dtype=np.float32)
        return (self.boxes.float().numpy() * scale).astype(np.float64)

    def corners_clipped(self, one_based: bool = False) -> np.ndarray:
        """(N, 4) float32 left, top, right, bottom in image pixels, clipped to the image as
        Darknet's result writers do (``one_based``: the VOC files' 1-based pixels)."""
        b = torch.from_numpy(self.boxes_pixels_center())
        return torch.stack(clip_corners(b, self.image_size, one_based), 1).float().numpy()

    def labels(self, thresh: float) -> list[tuple[int, int, float]]:
        """(row, class_id, prob) for every probability above ``thresh``, row by row."""
        rows, classes = torch.nonzero(self.probs > thresh, as_tuple=True)
        p = self.probs[rows, classes]
        return [(int(r), int(c), float(v)) for r, c, v in zip(rows, classes, p)]

    def results(self, thresh: float = 0.25, names: Sequence[str] | None = None) -> Results:
        """The detections as a plain object: one entry per (box, class) whose probability
        is above ``thresh`` (the lines ``detector test`` prints), boxes in pixels."""
        rows = self.labels(thresh)
        index = torch.tensor([r for r, _, _ in rows], dtype=torch.long)
        b = self.boxes_pixels()[index] if rows else torch.zeros(0, 4)
        xyxy = torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)
        class_ids = np.array([c for _, c, _ in rows], dtype=np.int64)
        return Results(xyxy.numpy().astype(np.float32),
                       np.array([p for _, _, p in rows], dtype=np.float32), class_ids,
                       [class_name(names, int(c)) for c in class_ids], self.image_size)


@dataclass
class Results:
    """Detections of one image, one row per (box, class) above the threshold:
    ``boxes`` (N, 4) float32 x1, y1, x2, y2 in image pixels; ``scores`` (N,) objectness x
    class probability; ``class_ids`` (N,); ``names`` (N class names, or numbers);
    ``image_size`` (width, height).  Iterating gives ``(box, score, class_id, name)``."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: list[str]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self):
        return iter(zip(self.boxes, self.scores.tolist(), self.class_ids.tolist(), self.names))


def darknet_order(head_shapes: list[tuple[int, int, int]], device=None) -> Tensor:
    """Permutation from the model's (head, anchor, row, col) order to Darknet's
    ``get_network_boxes`` order (head, row, col, anchor)."""
    parts, offset = [], 0
    for a, h, w in head_shapes:
        idx = torch.arange(a * h * w, device=device).view(a, h, w).permute(1, 2, 0).reshape(-1)
        parts.append(idx + offset)
        offset += a * h * w
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long, device=device)


def candidates(pred: Tensor, thresh: float, net_size: tuple[int, int], image_size: tuple[int, int],
               letter_box: bool, final: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One image's decoded predictions (B, 5+C) -> boxes relative to the image, objectness
    and probabilities (``get_yolo_detections``: a candidate needs objectness > ``thresh``;
    class probability = objectness * class, 0 where not above ``thresh``).  ``final`` (B,)
    marks candidates whose class columns are already the probabilities (a softmax tree's,
    ``get_region_boxes``): the objectness only gates them.

    ``net_size`` and ``image_size`` are (width, height).
    """
    obj = pred[:, 4]
    keep = obj > thresh
    p = pred[keep].float()
    net_w, net_h = net_size
    boxes = p[:, :4] / torch.tensor([net_w, net_h, net_w, net_h], dtype=p.dtype, device=p.device)
    boxes = correct_boxes(boxes, net_size, image_size, letter_box)
    probs = p[:, 4:5] * p[:, 5:]
    if final is not None:
        probs = torch.where(final[keep, None], p[:, 5:], probs)
    probs = torch.where(probs > thresh, probs, torch.zeros_like(probs))
    return boxes, p[:, 4], probs
