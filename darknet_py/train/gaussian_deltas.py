"""One ``[Gaussian_yolo]`` head's deltas as ``forward_gaussian_yolo_layer`` (CPU build)
writes them.

Per image, on Darknet's ``l.output`` (anchors x (9 + C) x cells: x, y, w, h each as
mu then sigma, objectness, classes):

1. every cell: objectness pushed to 0, unless its box overlaps a truth by more than
   ``ignore_thresh`` (and some class scores > 0.25); above ``truth_thresh`` the cell is
   trained as the truth it overlaps best;
2. each truth, in order: the anchor of best shape, if this head has it, and with
   ``iou_thresh`` every other masked anchor above it, gets the box deltas (``mse``: the
   Gaussian negative log-likelihood's, with the sigmas' deltas; else the IoU kind's),
   objectness 1 and the class deltas; box deltas of several truths add up;
3. every cell's eight box deltas are divided by its number of positive class deltas.

The delta is returned in the head input's layout, (N, A*(9+C), H, W), as for ``[yolo]``.
Truth rows follow Darknet's: a row with x = 0 ends the image's truths.  Known difference:
a label whose class is beyond ``classes`` is left out here with a warning; Darknet's
second pass still trains it and reads its class multiplier past the end of the list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..cfg import FLT_MAX
from ..cfg.layers import GaussianYoloSection
from ..nn.heads import GaussianYolo
from ..ops.boxes import box_iou
from .host_deltas import HostHeadDeltas, truth_rows
from .iou_grad import iou_gradient
from .stats import GaussianStats
from .yolo_deltas import class_multipliers

SIGMA_CONST = 0.3
EPSILON = 1e-9


def _boxes(p: Tensor, anchors: Tensor, gx: Tensor, gy: Tensor,
           net: tuple[int, int]) -> Tensor:
    """get_gaussian_yolo_box for output ``p`` (..., 9+C, H, W): (..., H, W, 4) boxes."""
    h, w = p.shape[-2:]
    return torch.stack([(gx + p[..., 0, :, :]) / w, (gy + p[..., 2, :, :]) / h,
                        torch.exp(p[..., 4, :, :]) * anchors[..., 0, None, None] / net[0],
                        torch.exp(p[..., 6, :, :]) * anchors[..., 1, None, None] / net[1]],
                       -1)


def box_delta(p: Tensor, truth: Tensor, anchor: Tensor, i: Tensor, j: Tensor,
              grid: tuple[int, int], net: tuple[int, int], s: GaussianYoloSection,
              mult: Tensor) -> tuple[Tensor, Tensor]:
    """delta_gaussian_yolo_box of K cells' outputs ``p`` (K, 9+C) at columns ``i`` and rows
    ``j`` (K,) toward ``truth`` (K, 4) with their anchors (K, 2) and class multipliers
    (K,): the eight deltas (K, 8: x, ux, y, uy, w, uw, h, uh) and the IoU it returns (GIoU
    for the IoU losses)."""
    w, h = grid
    i, j = i.to(p.dtype), j.to(p.dtype)
    pred = torch.stack([(i + p[:, 0]) / w, (j + p[:, 2]) / h,
                        torch.exp(p[:, 4]) * anchor[:, 0] / net[0],
                        torch.exp(p[:, 6]) * anchor[:, 1] / net[1]], -1)
    iou = box_iou(pred, truth, "iou" if s.iou_loss == "mse" else "giou")
    target = torch.stack([truth[:, 0] * w - i, truth[:, 1] * h - j,
                          torch.log(truth[:, 2] * net[0] / anchor[:, 0]),
                          torch.log(truth[:, 3] * net[1] / anchor[:, 1])], -1)
    mu, sigma = p[:, [0, 2, 4, 6]], p[:, [1, 3, 5, 7]]
    scale = (2 - truth[:, 2] * truth[:, 3])[:, None]
    z = (target - mu) / sigma
    density = torch.exp(z * z * -0.5) / (math.sqrt(2 * math.pi) * (sigma + SIGMA_CONST))
    temp = 0.5 / (density + EPSILON) * density * scale
    box = temp * z / sigma
    uncertainty = temp * (z * z / sigma - 1 / (sigma + SIGMA_CONST))
    if s.iou_loss != "mse":
        pred = torch.where(pred == 0, torch.ones_like(pred), pred)
        box = iou_gradient(pred, truth, s.iou_loss)
        box = torch.cat([box[:, :2], box[:, 2:] * torch.exp(p[:, [4, 6]])], 1)
    box = box * (s.iou_normalizer * mult)[:, None]
    uncertainty = uncertainty * s.uc_normalizer
    d = torch.stack([box, uncertainty], -1).reshape(-1, 8)  # x, ux, y, uy, ...
    d = torch.where(torch.isfinite(d), d, torch.zeros_like(d))  # fix_nan_inf
    if s.max_delta != FLT_MAX:
        d = d.clamp(-s.max_delta, s.max_delta)
    return d, iou


def gaussian_deltas(layer: GaussianYolo, section: GaussianYoloSection, x: Tensor,
                    truths: list[Tensor], net_size: tuple[int, int]
                    ) -> tuple[Tensor, dict[str, float]]:
    """Darknet's ``l.delta`` of a ``[Gaussian_yolo]`` head for raw input ``x``
    (N, A*(9+C), H, W) and per image a (T, 5) tensor of truth rows ``x, y, w, h, class``
    (relative), with the network input (width, height).  Also returns the sums Darknet's
    training line is made of: ``count``, ``iou``, ``recall`` (> .5), ``recall75``, ``cat``,
    ``obj``, ``anyobj``, ``cost`` (sum of delta^2) and its parts without the box entries
    (``class``) and without entries 4..7 (``except_uc``)."""
    s = section
    n = x.shape[0]
    with torch.no_grad():
        out = layer.activate(x.detach().float())  # N, A, 9+C, H, W
    delta = torch.zeros_like(out)
    masked = layer.anchors.float()
    anchors = _Anchors.of(s, net_size, x.device)
    mult = class_multipliers(s)
    mult = torch.as_tensor(mult, device=x.device) if mult is not None else None
    gx, gy, _, _ = layer.grid(x.float())
    sums = dict.fromkeys(("iou", "recall", "recall75", "cat", "obj", "anyobj", "count"), 0.0)
    for b in range(n):
        p, d = out[b], delta[b]
        rows = truth_rows(truths[b].to(x.device, torch.float32), s.classes)
        sums["anyobj"] += float(p[:, 8].sum())
        _objectness(p, d, rows, _boxes(p, masked, gx, gy, net_size), masked, net_size, s, mult)
        if len(rows):
            _train_truths(p, d, rows, anchors, net_size, s, mult, sums)
        positive = (d[:, 9:] > 0).sum(1, keepdim=True)  # averages_gaussian_yolo_deltas
        d[:, :8] = torch.where(positive > 0, d[:, :8] / positive.clamp(min=1), d[:, :8])
    square = delta.double().square()
    sums.update(cost=float(square.sum()), **{
        "class": float(square[:, :, 8:].sum()),
        "except_uc": float(square.sum() - square[:, :, 4:8].sum())})
    return delta.reshape(x.shape).to(x.dtype), sums


def _objectness(p: Tensor, d: Tensor, rows: Tensor, pred: Tensor, masked: Tensor,
                net_size: tuple[int, int], s: GaussianYoloSection,
                mult: Tensor | None) -> None:
    """Step 1 on one image's output ``p`` and delta ``d`` (A, 9+C, H, W), with its boxes
    ``pred`` (A, H, W, 4)."""
    obj = p[:, 8]
    d[:, 8] = s.obj_normalizer * (0 - obj)
    if not len(rows):
        return
    best, best_t = box_iou(pred[..., None, :], rows[:, :4]).max(-1)  # first maximum
    match = torch.where((p[:, 9:] > 0.25).any(1), best, torch.zeros_like(best))
    above = match > s.ignore_thresh
    if s.objectness_smooth:
        d[:, 8] = torch.where(above, s.obj_normalizer * (match ** 2 - obj), d[:, 8])
        at = torch.nonzero(above, as_tuple=True)  # distinct cells: one pass
        view, cells = d.permute(0, 2, 3, 1), p.permute(0, 2, 3, 1)
        view[at] = _class_rows(view[at], cells[at][:, 9:], rows[best_t[at], 4].long(), s, mult)
    else:
        d[:, 8] = torch.where(above, torch.zeros_like(obj), d[:, 8])
    if s.truth_thresh < 1:
        _truth_cells(p, d, best, best_t, rows, masked, net_size, s, mult)


@dataclass(frozen=True)
class _Anchors:
    """A head's anchors as the truth pass reads them, made once per loss: all of them in
    pixels (total, 2), as boxes at the origin relative to the network (total, 4), and
    each one's slot in this head's mask (-1 when not masked)."""

    every: Tensor
    shapes: Tensor
    slot: Tensor

    @classmethod
    def of(cls, s: GaussianYoloSection, net_size: tuple[int, int],
           device: torch.device) -> _Anchors:
        every = torch.tensor(s.anchors, dtype=torch.float32, device=device).reshape(-1, 2)
        shapes = torch.cat([torch.zeros_like(every), every / every.new_tensor(net_size)], 1)
        slot = torch.full((len(every),), -1, dtype=torch.long, device=device)
        slot[torch.tensor(s.mask, device=device)] = torch.arange(len(s.mask), device=device)
        return cls(every, shapes, slot)


def _train_truths(p: Tensor, d: Tensor, rows: Tensor, anchors: _Anchors,
                  net_size: tuple[int, int], s: GaussianYoloSection, mult: Tensor | None,
                  sums: dict) -> None:
    """Step 2 for an image's truth rows (T, 5): each truth's anchors (of all the head's
    anchors) in its cell, in Darknet's order: truth by truth, the best-shaped anchor
    first.  Box deltas add up; objectness and class deltas are written in rounds (the
    r-th assignment of each cell), so a cell trained by several truths ends as Darknet's."""
    h, w = p.shape[-2:]
    dev = p.device
    i = (rows[:, 0] * w).long().clamp(max=w - 1)  # float, truncated; Darknet writes past
    j = (rows[:, 1] * h).long().clamp(max=h - 1)  # the row at x or y = 1
    cls = rows[:, 4].long()
    every, shapes, slot = anchors.every, anchors.shapes, anchors.slot
    total = every.shape[0]
    shift = torch.cat([torch.zeros_like(rows[:, :2]), rows[:, 2:4]], 1)
    ious = box_iou(shapes[None], shift[:, None])  # T, total
    best = ious.argmax(1)  # the first best; 0 when none overlaps
    n = torch.arange(total, device=dev)
    chosen = (n == best[:, None]) & (slot >= 0)
    if s.iou_thresh < 1:
        kind = box_iou(shapes[None], shift[:, None], s.iou_thresh_kind)
        chosen |= (slot >= 0) & (n != best[:, None]) & (kind > s.iou_thresh)
    t, a = torch.nonzero(chosen, as_tuple=True)
    order = torch.argsort(t * (total + 1) + torch.where(a == best[t], 0, a + 1))
    t, a = t[order], a[order]
    k, ii, jj, c = slot[a], i[t], j[t], cls[t]
    cm = mult[c] if mult is not None else torch.ones(len(t), device=dev)
    view = d.permute(0, 2, 3, 1)  # A, H, W, 9+C, writing into d
    cells = p.permute(0, 2, 3, 1)[k, jj, ii]  # K, 9+C
    box, iou = box_delta(cells, rows[t, :4], every[a], ii, jj, (w, h), net_size, s, cm)
    view.index_put_((k, jj, ii), torch.cat([box, torch.zeros_like(cells[:, 8:])], 1),
                    accumulate=True)
    key = (k * h + jj) * w + ii
    rank = _ranks(key)
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        sel = rank == r
        at = (k[sel], jj[sel], ii[sel])
        view[at + (torch.full_like(at[0], 8),)] = (cm[sel] * s.obj_normalizer *
                                                   (1 - cells[sel, 8]))
        view[at] = _class_rows(view[at], cells[sel, 9:], c[sel], s, mult)
    sums["count"] += len(t)
    sums["iou"] += float(iou.sum())
    sums["recall"] += float((iou > .5).sum())
    sums["recall75"] += float((iou > .75).sum())
    sums["obj"] += float(cells[:, 8].sum())
    sums["cat"] += float(cells[torch.arange(len(c), device=dev), 9 + c].sum())


def _ranks(key: Tensor) -> Tensor:
    """Each entry's count of earlier entries with the same key."""
    same = key[:, None] == key[None, :]
    return torch.tril(same, -1).sum(1)


def _class_rows(cur: Tensor, p: Tensor, cls: Tensor, s: GaussianYoloSection,
                mult: Tensor | None) -> Tensor:
    """delta_gaussian_yolo_class for distinct cells: ``cur`` (R, 9+C) their deltas, ``p``
    (R, C) their class outputs.  Returns the new deltas."""
    out = cur.clone()
    d = out[:, 9:]
    rows = torch.arange(len(cls), device=cls.device)
    eps = s.label_smooth_eps
    y1 = 1.0 * (1 - eps) + 0.5 * eps if eps else 1.0
    m = mult[cls] if mult is not None else None
    single = (y1 - p[rows, cls]) * (m if m is not None else 1)
    y = torch.zeros_like(p)
    y[rows, cls] = 1
    if eps:
        y = y * (1 - eps) + 0.5 * eps
    full = y - p
    if m is not None:
        full[rows, cls] = full[rows, cls] * (m * s.cls_normalizer)
    seen = d[:, 0] != 0  # Darknet looks at the first class's delta
    fresh = torch.where(seen[:, None], d, full)
    fresh[rows, cls] = torch.where(seen, single, fresh[rows, cls])
    out[:, 9:] = fresh
    return out


def _truth_cells(p: Tensor, d: Tensor, best: Tensor, best_t: Tensor, rows: Tensor,
                 masked: Tensor, net_size: tuple[int, int], s: GaussianYoloSection,
                 mult: Tensor | None) -> None:
    """The cells whose box overlaps a truth above ``truth_thresh``, trained as it (each
    cell once, so in one pass)."""
    h, w = p.shape[-2:]
    k, j, i = torch.nonzero(best > s.truth_thresh, as_tuple=True)
    if not len(k):
        return
    t = rows[best_t[k, j, i]]
    cls = t[:, 4].long()
    cm = mult[cls] if mult is not None else torch.ones(len(cls), device=p.device)
    iou_mult = best[k, j, i] ** 2
    view, cells = d.permute(0, 2, 3, 1), p.permute(0, 2, 3, 1)[k, j, i]
    cur = view[k, j, i]
    cur[:, 8] = s.obj_normalizer * ((iou_mult if s.objectness_smooth else 1) - cells[:, 8])
    cur = _class_rows(cur, cells[:, 9:], cls, s, mult)
    if s.objectness_smooth:
        r = torch.arange(len(cls), device=p.device)
        cur[r, 9 + cls] = cm * (iou_mult - cells[r, 9 + cls])
    bd, _ = box_delta(cells, t[:, :4], masked[k], i, j, (w, h), net_size, s, cm)
    cur[:, :8] = cur[:, :8] + bd
    view[k, j, i] = cur


class GaussianDeltas(HostHeadDeltas):
    """One ``[Gaussian_yolo]`` head in ``DarknetLoss``: deltas, ``l.cost`` and its line."""

    FIGURES = ("iou", "recall", "recall75", "cat", "obj", "anyobj", "cells", "cost", "class",
               "except_uc")
    ENTRIES = 9

    def deltas(self, x: Tensor, truths: list[Tensor], net_size: tuple[int, int],
               seen: int) -> tuple[Tensor, dict[str, float]]:
        return gaussian_deltas(self.layer, self.s, x, truths, net_size)

    def stats(self, count: int, values: list[float], batch: int) -> GaussianStats:
        """The figures as Darknet prints them."""
        f = dict(zip(self.FIGURES, values))
        n = max(count, 1)
        return GaussianStats(self.index, f["iou"] / n, count, f["class"] / batch,
                             (f["except_uc"] - f["class"]) / batch, f["cost"] / batch,
                             f["cost"], f["cat"] / n, f["obj"] / n,
                             f["anyobj"] / max(f["cells"], 1), f["recall"] / n,
                             f["recall75"] / n, (f["cost"] - f["except_uc"]) / batch)
