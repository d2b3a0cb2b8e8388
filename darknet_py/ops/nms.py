"""Darknet's per-class non-maximum suppression and the row order its sorts leave."""

from __future__ import annotations

import torch
from torch import Tensor

from ..cfg.base import NMS_KINDS
from .boxes import box_iou, corners


#: candidate pairs compared at once when looking for overlaps
PAIR_CHUNK = 1 << 22


def nms(boxes: Tensor, probs: Tensor, thresh: float, kind: str = "default",
        beta: float = 0.6) -> Tensor:
    """Darknet's per-class NMS; returns ``probs`` with suppressed entries set to 0.

    ``default`` (do_nms_sort) compares IoU; ``greedynms`` compares DIoU with
    Darknet's fixed exponent 0.6 (``box_diou``); ``diounms`` uses ``beta``
    (``box_diounms``); ``cornersnms`` falls back to IoU.  Per class the candidates are
    sorted by probability (ties keep their order) and each one still standing removes
    the later ones it overlaps by more than ``thresh``, exactly as Darknet's loop does.
    The overlapping pairs are found once for all classes (a sweep over left edges, in
    chunks); each class then resolves its order in a few vectorized rounds
    (``greedy_keep``).
    """
    if kind not in NMS_KINDS:
        raise ValueError(f"unknown NMS kind {kind!r}; expected one of {', '.join(NMS_KINDS)}")
    probs = probs.clone()
    if boxes.shape[0] == 0 or thresh <= 0:
        return probs
    rows = torch.nonzero((probs > 0).any(1)).flatten()
    members = (probs[rows] > 0).sum(0)
    # pairs are found once for all classes when the classes share most candidates (their
    # summed squared counts, a guide to the pairs each would compare, exceed all rows')
    shared = int((members.double() ** 2).sum()) > rows.numel() ** 2
    if shared:
        i, j = overlapping_pairs(boxes[rows], thresh, kind, beta)
    for k in torch.nonzero(members).flatten().tolist():
        p = probs[rows, k]
        member = p > 0
        if not shared:
            sub = torch.nonzero(member).flatten()
            i, j = (sub[t] for t in overlapping_pairs(boxes[rows[sub]], thresh, kind, beta))
        order = torch.sort(torch.where(member, p, torch.full_like(p, -1.0)), descending=True,
                           stable=True).indices
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=order.device)
        both = member[i] & member[j]
        a, b = i[both], j[both]
        first = rank[a] < rank[b]
        keep = greedy_keep(rank.numel(), torch.where(first, a, b), torch.where(first, b, a))
        probs[rows[member & ~keep], k] = 0
    return probs


def overlapping_pairs(boxes: Tensor, thresh: float, kind: str = "default",
                      beta: float = 0.6) -> tuple[Tensor, Tensor]:
    """Every pair (i, j), i < j, of (N, 4) cx, cy, w, h boxes whose NMS measure exceeds
    ``thresh`` (> 0, so only boxes that intersect qualify).  A sweep over the left edges
    lists the pairs that overlap in x, a chunk at a time; IoU sorts them out (every
    measure is at most the IoU), then the kind's own measure."""
    n = boxes.shape[0]
    left, _, right, _ = corners(boxes)
    by_left = torch.argsort(left, stable=True)
    # in left-edge order, box p can only meet the boxes after it that start before it ends
    end = torch.searchsorted(left[by_left], right[by_left], side="left")
    counts = (end - torch.arange(1, n + 1, device=boxes.device)).clamp(min=0)
    ends = torch.cumsum(counts, 0)
    found_i, found_j = [], []
    start, total = 0, int(ends[-1]) if n else 0
    while start < n and total:
        done = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(torch.searchsorted(ends, done + PAIR_CHUNK, side="right")))
        stop = min(stop, n)
        c = counts[start:stop]
        p = torch.repeat_interleave(torch.arange(start, stop, device=boxes.device), c)
        offsets = torch.cumsum(c, 0) - c
        q = p + 1 + torch.arange(p.numel(), device=boxes.device) - offsets[p - start]
        a, b = by_left[p], by_left[q]
        hit = box_iou(boxes[a], boxes[b]) > thresh
        a, b = a[hit], b[hit]
        diou_beta = {"greedynms": 0.6, "diounms": beta}.get(kind)  # box_diou's 0.6, beta_nms
        if diou_beta is not None:
            hit = box_iou(boxes[a], boxes[b], "diou", diou_beta)
            a, b = a[hit > thresh], b[hit > thresh]
        found_i.append(torch.minimum(a, b))
        found_j.append(torch.maximum(a, b))
        start = stop
    if not found_i:
        empty = torch.zeros(0, dtype=torch.long, device=boxes.device)
        return empty, empty
    return torch.cat(found_i), torch.cat(found_j)


def greedy_keep(n: int, first: Tensor, second: Tensor) -> Tensor:
    """Which of ``n`` ranked candidates survive greedy suppression, given the pairs where
    ``first`` (the better ranked) would remove ``second``.

    A candidate survives if no earlier survivor overlaps it.  That rule has one solution,
    and applying it to every candidate at once from "all survive" reaches it after as many
    rounds as the longest chain of overlapping candidates, each round one scatter.
    """
    keep = torch.ones(n, dtype=torch.bool, device=first.device)
    for _ in range(n):
        hits = torch.zeros(n, dtype=torch.int32, device=first.device)
        new = hits.index_add_(0, second, keep[first].int()) == 0
        if torch.equal(new, keep):
            break
        keep = new
    return keep


def sort_like_darknet(probs: Tensor) -> Tensor:
    """Row order that Darknet's per-class sorts leave (stable sorts by class 0..C-1, last wins)."""
    order = torch.arange(probs.shape[0], device=probs.device)
    for k in range(probs.shape[1]):
        col = probs[order, k]
        if bool((col > 0).any()):
            order = order[torch.sort(col, descending=True, stable=True).indices]
    return order
