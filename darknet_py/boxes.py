"""Model outputs -> detections: thresholding, box correction and Darknet's NMS kinds.

Boxes are ``(cx, cy, w, h)``.  The functions mirror Darknet's
``get_yolo_detections`` (keep a candidate if objectness > thresh; class
probability = objectness * class, zeroed when <= thresh),
``correct_yolo_boxes`` (undo the letterbox) and ``do_nms_sort`` /
``diounms_sort`` (per class, sorted by probability, a box suppresses lower
ones whose overlap measure exceeds the NMS threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .image import letterbox_size

NMS_KINDS = ("default", "greedynms", "diounms", "cornersnms")


@dataclass
class Detections:
    """Detections of one image after NMS.

    ``boxes``: (N, 4) cx, cy, w, h relative to the image (Darknet's ``bbox``);
    ``objectness``: (N,); ``probs``: (N, C) objectness * class probability, 0
    where at or below the threshold or suppressed by NMS.  Rows are in
    Darknet's order after NMS.  ``image_size`` is (width, height).
    """

    boxes: Tensor
    objectness: Tensor
    probs: Tensor
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def boxes_pixels(self) -> Tensor:
        """Boxes as (left, top, width, height) in image pixels."""
        w, h = self.image_size
        b = self.boxes
        return torch.stack([(b[:, 0] - b[:, 2] / 2) * w, (b[:, 1] - b[:, 3] / 2) * h,
                            b[:, 2] * w, b[:, 3] * h], 1)

    def boxes_pixels_center(self) -> np.ndarray:
        """Boxes as (cx, cy, w, h) in image pixels, float32 products as Darknet's
        ``correct_yolo_boxes``, returned as float64 for the corner arithmetic."""
        w, h = self.image_size
        scale = np.array([w, h, w, h], dtype=np.float32)
        return (self.boxes.float().numpy() * scale).astype(np.float64)

    def labels(self, thresh: float) -> list[tuple[int, int, float]]:
        """(row, class_id, prob) for every probability above ``thresh``, row by row."""
        rows, classes = torch.nonzero(self.probs > thresh, as_tuple=True)
        p = self.probs[rows, classes]
        return [(int(r), int(c), float(v)) for r, c, v in zip(rows, classes, p)]


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
               letter_box: bool) -> tuple[Tensor, Tensor, Tensor]:
    """One image's decoded predictions (B, 5+C) -> boxes relative to the image, objectness, probs.

    ``net_size`` and ``image_size`` are (width, height).
    """
    obj = pred[:, 4]
    keep = obj > thresh
    p = pred[keep].float()
    net_w, net_h = net_size
    im_w, im_h = image_size
    boxes = p[:, :4] / torch.tensor([net_w, net_h, net_w, net_h], dtype=p.dtype, device=p.device)
    if letter_box:
        new_w, new_h = letterbox_size(im_w, im_h, net_w, net_h)
        dw, dh = (net_w - new_w) / 2.0 / net_w, (net_h - new_h) / 2.0 / net_h
        rw, rh = new_w / net_w, new_h / net_h
        boxes = torch.stack([(boxes[:, 0] - dw) / rw, (boxes[:, 1] - dh) / rh,
                             boxes[:, 2] / rw, boxes[:, 3] / rh], 1)
    probs = p[:, 4:5] * p[:, 5:]
    probs = torch.where(probs > thresh, probs, torch.zeros_like(probs))
    return boxes, p[:, 4], probs


def _corners(b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
    return b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU (Darknet's ``box_iou``) of (N, 4) and (M, 4) cx,cy,w,h boxes -> (N, M)."""
    al, at, ar, ab = (t[:, None] for t in _corners(a))
    bl, bt, br, bb = (t[None, :] for t in _corners(b))
    iw = torch.minimum(ar, br) - torch.maximum(al, bl)
    ih = torch.minimum(ab, bb) - torch.maximum(at, bt)
    inter = torch.where((iw < 0) | (ih < 0), torch.zeros_like(iw), iw * ih)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    iou = inter / torch.where(union == 0, torch.ones_like(union), union)
    return torch.where((inter == 0) | (union == 0), torch.zeros_like(iou), iou)


def box_diou_nms(a: Tensor, b: Tensor, beta: float) -> Tensor:
    """Pairwise ``iou - (d^2/c^2)^beta`` (Darknet's ``box_diounms``; ``box_diou`` is beta 0.6)."""
    iou = box_iou(a, b)
    al, at, ar, ab = (t[:, None] for t in _corners(a))
    bl, bt, br, bb = (t[None, :] for t in _corners(b))
    cw = torch.maximum(ar, br) - torch.minimum(al, bl)
    ch = torch.maximum(ab, bb) - torch.minimum(at, bt)
    c = cw * cw + ch * ch
    d = (a[:, None, 0] - b[None, :, 0]) ** 2 + (a[:, None, 1] - b[None, :, 1]) ** 2
    term = torch.pow(d / torch.where(c == 0, torch.ones_like(c), c), beta)
    return torch.where(c == 0, iou, iou - term)


def nms(boxes: Tensor, probs: Tensor, thresh: float, kind: str = "default",
        beta: float = 0.6) -> Tensor:
    """Darknet's per-class NMS; returns ``probs`` with suppressed entries set to 0.

    ``default`` (do_nms_sort) compares IoU; ``greedynms`` compares DIoU with
    Darknet's fixed exponent 0.6 (``box_diou``); ``diounms`` uses ``beta``
    (``box_diounms``); ``cornersnms`` falls back to IoU.
    """
    if kind not in NMS_KINDS:
        raise ValueError(f"unknown NMS kind {kind!r}; expected one of {', '.join(NMS_KINDS)}")
    probs = probs.clone()
    if boxes.shape[0] == 0 or thresh <= 0:
        return probs
    for k in torch.nonzero((probs > 0).any(0)).flatten().tolist():
        idx = torch.nonzero(probs[:, k] > 0).flatten()
        order = torch.sort(probs[idx, k], descending=True, stable=True).indices
        idx = idx[order]
        b = boxes[idx]
        if kind == "greedynms":
            overlap = box_diou_nms(b, b, 0.6)
        elif kind == "diounms":
            overlap = box_diou_nms(b, b, beta)
        else:
            overlap = box_iou(b, b)
        over = (overlap > thresh).cpu()
        n = idx.numel()
        removed = torch.zeros(n, dtype=torch.bool)
        later = torch.ones(n, n, dtype=torch.bool).triu(1)
        over &= later
        for i in range(n):
            if not removed[i]:
                removed |= over[i]
        probs[idx[removed.to(idx.device)], k] = 0
    return probs


def sort_like_darknet(probs: Tensor) -> Tensor:
    """Row order that Darknet's per-class sorts leave (stable sorts by class 0..C-1, last wins)."""
    order = torch.arange(probs.shape[0], device=probs.device)
    for k in range(probs.shape[1]):
        col = probs[order, k]
        if bool((col > 0).any()):
            order = order[torch.sort(col, descending=True, stable=True).indices]
    return order
