"""Darknet's per-class non-maximum suppression and the row order its sorts leave."""

from __future__ import annotations

import torch
from torch import Tensor

from .boxes import pairwise_iou

NMS_KINDS = ("default", "greedynms", "diounms", "cornersnms")


def _overlap(b: Tensor, kind: str, beta: float) -> Tensor:
    if kind == "greedynms":
        return pairwise_iou(b, b, "diou", 0.6)  # box_diou's fixed exponent
    if kind == "diounms":
        return pairwise_iou(b, b, "diou", beta)  # box_diounms
    return pairwise_iou(b, b)


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
        over = (_overlap(boxes[idx], kind, beta) > thresh).cpu()
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
