"""One ``[yolo]`` head's deltas as ``forward_yolo_layer`` writes them, on the head's device.

1. Objectness of every cell is pushed to 0, unless its box overlaps a truth of its
   image by more than ``ignore_thresh`` (and some class of the cell scores > 0.25):
   one batched IoU of every cell against its image's truths.
2. The assignments of ``assign.py`` are applied in rounds: round r writes the r-th
   assignment of every cell, so the cells of a round are distinct and the writes follow
   Darknet's order (box deltas add up, objectness and class deltas are set as
   ``delta_yolo_class`` sets them).  ``truth_thresh < 1`` adds the cells that overlap a
   truth above it, first in their image's order (one host synchronization).
3. With ``iou_thresh`` the box deltas of a cell are averaged over its positive classes.

Everything stays on the device in float32; the figures Darknet prints are returned as
one tensor, to be fetched once per iteration.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..cfg import FLT_MAX, YoloSection
from ..nn.heads import Yolo
from ..ops.boxes import box_iou, yolo_boxes
from .assign import (Assignments, DeviceJobs, DeviceTruths, Truths, assign, cell_ranks,
                     ship_jobs)
from .iou_grad import iou_gradient
from .stats import HeadStats

#: cells x truths compared at once in the objectness pass
IGNORE_CHUNK = 1 << 24


def class_multipliers(section: YoloSection) -> np.ndarray | None:
    """get_classes_multipliers: ``max(counters_per_class) / count`` per class (float32),
    None without ``counters_per_class``."""
    counters = section.counters_per_class
    if not counters:
        return None
    return np.float32(np.max(counters)) / np.asarray(counters, np.float32)


class YoloDeltas:
    """Computes one ``[yolo]`` head's deltas and Darknet's printed figures."""

    def __init__(self, layer: Yolo, section: YoloSection, index: int):
        self.layer = layer
        self.s = section
        self.index = index
        self.anchors = np.asarray(section.anchors, dtype=np.float32).reshape(-1, 2)
        self.mask = list(section.mask)
        self.multipliers = class_multipliers(section)
        self._constants: dict[torch.device, dict[str, Tensor | None]] = {}

    def constants(self, device: torch.device) -> dict[str, Tensor | None]:
        """The anchors (all, and this head's) and class multipliers on ``device``, copied
        there once."""
        if device not in self._constants:
            anchors = torch.as_tensor(self.anchors)
            mult = torch.as_tensor(self.multipliers) if self.multipliers is not None else None
            self._constants[device] = {
                "anchors": anchors.to(device), "masked": anchors[self.mask].to(device),
                "mult": mult.to(device) if mult is not None else None}
        return self._constants[device]

    def assign(self, truths: Truths, grid: tuple[int, int],
               net: tuple[int, int]) -> Assignments:
        """This head's truth-to-anchor assignments (host side)."""
        return assign(truths, self.anchors, self.mask, grid, net, self.s.iou_thresh,
                      self.s.iou_thresh_kind)

    def __call__(self, x: Tensor, targets: Tensor, plan: tuple, net_size: tuple[int, int],
                 seen: int) -> tuple[Tensor, Tensor, int]:
        """``DarknetLoss``'s call: ``plan`` is the (truths, device truths, assignments,
        device assignments) it made for this head.  Delta, figures and assignment count."""
        delta, sums = self.deltas(x, *plan, net_size)
        return delta, sums, len(plan[2])

    def cost(self, count: int, sums: Tensor) -> Tensor:
        """``l.cost`` from the figures: sum(delta^2) for mse (or without show_details),
        else the averaged IoU (GIoU) loss plus obj_normalizer * sum(delta^2) without the
        box entries."""
        return _cost(self.s, count, *sums)

    def stats(self, count: int, values: list[float], batch: int) -> HeadStats:
        """The figures as Darknet prints them."""
        s = self.s
        iou, _, _, total, no_box = values
        class_loss = s.obj_normalizer * no_box
        return HeadStats(self.index, iou / max(count, 1), count, class_loss / batch,
                         (total - class_loss) / batch, total / batch,
                         _cost(s, count, *values))

    def deltas(self, x: Tensor, truths: Truths, dev_truths: DeviceTruths, jobs: Assignments,
               dev_jobs: DeviceJobs, net_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """``x``: the layer input (N, A*(5+C), H, W); the batch's truths and this head's
        assignments, on the host and on ``x``'s device.  Returns delta shaped like ``x``
        and the figures (tot_iou, tot_iou_loss, tot_giou_loss, total, no_box) as a float64
        tensor on the device."""
        s = self.s
        net_w, net_h = net_size
        with torch.autocast(x.device.type, enabled=False):
            out = self.layer.activate(x.detach().float())  # N, A, 5+C, H, W
            masked = self.constants(x.device)["masked"]
            pred = yolo_boxes(out, masked, net_w, net_h, bool(s.new_coords))  # N,A,H,W,4
            delta = torch.zeros_like(out)
            best, best_t = self._best_truth(pred, dev_truths)
            delta[:, :, 4] = self._objectness(out, best)
            if s.truth_thresh < 1.0:
                dev_jobs = self._cell_jobs(out.shape, best, best_t, truths, jobs)
            sums = self._apply(out, delta, pred, dev_truths.rows, dev_jobs, best, net_size)
        return delta.view_as(x).to(x.dtype), sums

    # ---------------------------------------------------------------- 1. objectness
    def _best_truth(self, pred: Tensor, truths: DeviceTruths) -> tuple[Tensor, Tensor]:
        """Best IoU of each cell with its image's truths (N, A, H, W), and that truth's
        column in the padded table."""
        n = pred.shape[0]
        boxes, valid = truths.padded, truths.valid  # N, T, 4 and N, T
        cells = pred.reshape(n, -1, 4)
        best = torch.zeros(cells.shape[:2], device=pred.device)
        best_t = torch.zeros(cells.shape[:2], dtype=torch.long, device=pred.device)
        if boxes.shape[1]:
            step = max(1, IGNORE_CHUNK // (cells.shape[1] * boxes.shape[1]))
            for start in range(0, n, step):
                part = slice(start, start + step)
                iou = box_iou(cells[part, :, None], boxes[part, None])  # n, cells, T
                iou = torch.where(valid[part, None], iou, torch.zeros_like(iou))
                best[part], best_t[part] = iou.max(-1)  # first maximum, as Darknet's '>'
        return best.view(pred.shape[:4]), best_t.view(pred.shape[:4])

    def _objectness(self, out: Tensor, best: Tensor) -> Tensor:
        """Objectness deltas of every cell (N, A, H, W) from its best truth IoU."""
        s = self.s
        obj = out[:, :, 4]
        match = torch.where((out[:, :, 5:] > 0.25).any(2), best, torch.zeros_like(best))
        d = s.obj_normalizer * (0 - obj)
        ignore = match > s.ignore_thresh
        if s.objectness_smooth:
            return torch.where(ignore, torch.maximum(d, s.obj_normalizer * (match - obj)), d)
        return torch.where(ignore, torch.zeros_like(d), d)

    def _cell_jobs(self, shape: torch.Size, best: Tensor, best_t: Tensor, truths: Truths,
                   jobs: Assignments) -> DeviceJobs:
        """The assignments with the cells trained as the truth they overlap above
        ``truth_thresh`` put first (Darknet visits them first, in row, column, anchor
        order), flagged as such."""
        none = np.zeros(len(jobs), bool)
        hit = torch.nonzero(best > self.s.truth_thresh)  # the one host synchronization
        if hit.numel() == 0:
            return ship_jobs(jobs, none, best.device)
        col = best_t[tuple(hit.T)].cpu().numpy()
        hit = hit.cpu().numpy()
        order = np.lexsort((hit[:, 1], hit[:, 3], hit[:, 2], hit[:, 0]))
        hit, col = hit[order], col[order]
        b, a, j, i = hit.T
        offsets = np.r_[0, np.cumsum(truths.valid.sum(1))][b]
        cat = [np.concatenate([v, getattr(jobs, k)]) for k, v in
               (("b", b), ("a", a), ("j", j), ("i", i), ("t", offsets + col),
                ("anchor", np.asarray(self.mask)[a]))]
        h, w = shape[-2:]
        key = ((cat[0] * len(self.mask) + cat[1]) * h + cat[2]) * w + cat[3]
        merged = Assignments(*cat, cell_ranks(key))
        return ship_jobs(merged, np.r_[np.ones(len(hit), bool), none], best.device)

    # ---------------------------------------------------------------- 2. assignments
    def _apply(self, out: Tensor, delta: Tensor, pred: Tensor, rows: Tensor,
               jobs: DeviceJobs, best: Tensor, net_size: tuple[int, int]) -> Tensor:
        """Write every assignment into ``delta``; the sums the figures are made of."""
        s, dev = self.s, out.device
        zero = torch.zeros((), dtype=torch.float64, device=dev)
        tot_iou = tot_iou_loss = tot_giou_loss = zero
        if len(jobs):
            b, a, j, i, t, anchor, _rank, cell = jobs.idx
            cls = rows[t, 0].long()
            truth = rows[t, 1:5]
            boxes = pred[b, a, j, i]
            raw = out[b, a, :, j, i]  # K, 5+C
            multipliers = self.constants(dev)["mult"]
            mult = multipliers[cls] if multipliers is not None else torch.ones_like(truth[:, 0])
            box_d = self._box_deltas(raw, boxes, truth, anchor, (i, j), mult, out.shape,
                                     net_size)
            iou_mult = best[b, a, j, i] ** 2
            for r in range(len(jobs.offsets) - 1):
                sel = jobs.round(r)
                key = (b[sel], a[sel], j[sel], i[sel])
                cur = delta[key[0], key[1], :, key[2], key[3]]
                cur[:, :4] += box_d[sel]
                self._cell_update(cur, raw[sel], cls[sel], mult[sel], cell[sel].bool(),
                                  iou_mult[sel])
                delta[key[0], key[1], :, key[2], key[3]] = cur
            if s.iou_thresh < 1.0:
                self._average(delta, b, a, j, i)
            truth_jobs = ~cell.bool()
            ious = box_iou(boxes, truth).double()
            gious = box_iou(boxes, truth, "giou").double()
            tot_iou = torch.where(truth_jobs, ious, zero).sum()
            tot_iou_loss = torch.where(truth_jobs, 1 - ious, zero).sum()
            tot_giou_loss = torch.where(truth_jobs, 1 - gious, zero).sum()
        square = delta.square()
        total = square.sum(dtype=torch.float64)
        no_box = total - square[:, :, :4].sum(dtype=torch.float64)
        return torch.stack([tot_iou, tot_iou_loss, tot_giou_loss, total, no_box])

    def _box_deltas(self, raw: Tensor, boxes: Tensor, truth: Tensor, anchor: Tensor,
                    cell: tuple[Tensor, Tensor], mult: Tensor, shape: torch.Size,
                    net_size: tuple[int, int]) -> Tensor:
        """``delta_yolo_box`` of every assignment, before accumulation (K, 4)."""
        s = self.s
        i, j = cell
        h, w = shape[-2:]
        norm = s.iou_normalizer * mult
        if s.iou_loss == "mse":
            anchors = self.constants(raw.device)["anchors"][anchor]
            tx = truth[:, 0] * w - i
            ty = truth[:, 1] * h - j
            nw, nh = net_size
            if s.new_coords:
                tw = torch.sqrt(truth[:, 2] * nw / (4 * anchors[:, 0]))
                th = torch.sqrt(truth[:, 3] * nh / (4 * anchors[:, 1]))
            else:
                tw = torch.log(truth[:, 2] * nw / anchors[:, 0])
                th = torch.log(truth[:, 3] * nh / anchors[:, 1])
            scale = 2 - truth[:, 2] * truth[:, 3]
            target = torch.stack([tx, ty, tw, th], 1)
            return (scale * norm)[:, None] * (target - raw[:, :4])
        p = boxes.clone()
        p[:, 2:] = torch.where(p[:, 2:] == 0, torch.ones_like(p[:, 2:]), p[:, 2:])
        g = iou_gradient(p, truth, s.iou_loss)
        if not s.new_coords:
            g[:, 2:] = g[:, 2:] * torch.exp(raw[:, 2:4])
        g = g * norm[:, None]
        g = torch.where(torch.isfinite(g), g, torch.zeros_like(g))
        if s.max_delta != FLT_MAX:
            g = g.clamp(-s.max_delta, s.max_delta)
        return g

    def _cell_update(self, cur: Tensor, raw: Tensor, cls: Tensor, mult: Tensor,
                     from_cell: Tensor, iou_mult: Tensor) -> None:
        """Objectness and class deltas of one round of assignments (rows of distinct
        cells), in Darknet's order of writes."""
        s = self.s
        obj = raw[:, 4]
        truth_obj = mult * s.obj_normalizer * (1 - obj)
        if s.objectness_smooth:
            truth_obj = torch.where(cur[:, 4] == 0, truth_obj, cur[:, 4])
            cell_obj = s.obj_normalizer * (iou_mult - obj)
        else:
            cell_obj = s.obj_normalizer * (1 - obj)
        cur[:, 4] = torch.where(from_cell, cell_obj, truth_obj)
        self._class_delta(cur[:, 5:], raw[:, 5:], cls)
        if s.objectness_smooth:
            rows = torch.arange(cls.numel(), device=cls.device)
            value = mult * (iou_mult - raw[rows, 5 + cls])
            cur[rows, 5 + cls] = torch.where(from_cell, value, cur[rows, 5 + cls])

    def _class_delta(self, d: Tensor, probs: Tensor, cls: Tensor) -> None:
        """``delta_yolo_class``: a cell whose delta for this class is already set only gets
        that class rewritten; otherwise every class is set."""
        eps = self.s.label_smooth_eps
        rows = torch.arange(cls.numel(), device=cls.device)
        multipliers = self.constants(d.device)["mult"]
        mult = multipliers[cls] if multipliers is not None else None
        one = torch.ones_like(cls, dtype=d.dtype)
        y1 = one * (1 - eps) + 0.5 * eps if eps else one
        seen = d[rows, cls] != 0
        single = y1 - probs[rows, cls]
        single = torch.where(torch.isfinite(single), single, d[rows, cls])
        if mult is not None:
            single = single * mult
        y = torch.zeros_like(probs)
        y[rows, cls] = 1.0
        if eps:
            y = y * (1 - eps) + 0.5 * eps
        full = torch.where(torch.isfinite(y - probs), y - probs, d)
        if mult is not None:
            full[rows, cls] = full[rows, cls] * mult * self.s.cls_normalizer
        d[:] = torch.where(seen[:, None], d, full)
        d[rows, cls] = torch.where(seen, single, d[rows, cls])

    def _average(self, delta: Tensor, b: Tensor, a: Tensor, j: Tensor, i: Tensor) -> None:
        """``averages_yolo_deltas`` for the cells the assignments touched."""
        cells = delta[b, a, :, j, i]
        positive = (cells[:, 5:] > 0).sum(1)
        divide = (cells[:, 4] != 0) & (positive > 0)
        box = torch.where(divide[:, None], cells[:, :4] / positive.clamp(min=1)[:, None],
                          cells[:, :4])
        delta[b, a, :4, j, i] = box


def _cost(s: YoloSection, count: int, iou, iou_loss, giou_loss, total, no_box):
    """``l.cost`` from a head's sums (numbers or tensors)."""
    if s.iou_loss == "mse" or not s.show_details:
        return total
    part = giou_loss if s.iou_loss == "giou" else iou_loss
    return s.iou_normalizer * part / max(count, 1) + s.obj_normalizer * no_box
