"""One ``[yolo]`` head's deltas, as ``forward_yolo_layer`` writes them (see ``loss``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..cfg import FLT_MAX, YoloSection
from ..nn.layers import Yolo
from ..ops.boxes import box_iou, pairwise_iou, yolo_boxes
from .iou_grad import iou_gradient
from .stats import HeadStats


def _iou(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """``box_iou`` of float64 arrays (the loss's host-side arithmetic)."""
    return box_iou(torch.from_numpy(np.asarray(a, np.float64)),
                   torch.from_numpy(np.asarray(b, np.float64)), kind).numpy()


@dataclass
class _Assignment:
    b: int
    a: int  # anchor slot in this head (mask index)
    j: int
    i: int
    t: int  # truth row of this image
    anchor: int  # anchor number (in the full anchor list)
    from_cell: bool  # a cell trained as the truth it overlaps above truth_thresh


class YoloDeltas:
    """Computes one ``[yolo]`` head's deltas and Darknet's printed figures."""

    def __init__(self, layer: Yolo, section: YoloSection, index: int):
        self.layer = layer
        self.s = section
        self.index = index
        self.net_w, self.net_h = 0, 0
        self.anchors = np.asarray(section.anchors, dtype=np.float32).reshape(-1, 2)
        self.mask = list(section.mask)
        counters = section.counters_per_class
        self.multipliers = (np.max(counters) / np.asarray(counters, dtype=np.float64)
                            if counters else None)

    def __call__(self, x: Tensor, truths: list[Tensor],
                 net_size: tuple[int, int]) -> tuple[Tensor, HeadStats]:
        """``x``: the layer input (N, A*(5+C), H, W); ``truths``: per image (T, 5) class, cx,
        cy, w, h; ``net_size``: the network input (width, height).  Returns delta shaped
        like ``x`` and the figures."""
        s, layer = self.s, self.layer
        self.net_w, self.net_h = net_size
        n, _, h, w = x.shape
        na = layer.num_anchors
        out = layer.activate(x.detach().float())  # N, A, 5+C, H, W
        delta = torch.zeros_like(out)
        anchors = torch.as_tensor(self.anchors[self.mask])
        pred = yolo_boxes(out, anchors, self.net_w, self.net_h, bool(s.new_coords))
        # 1. objectness of every cell; cells that overlap a truth well are not pushed to 0
        delta[:, :, 4] = s.obj_normalizer * (0 - out[:, :, 4])
        class_match = (out[:, :, 5:] > 0.25).any(2)  # compare_yolo_class
        # per image, Darknet visits the cells above truth_thresh first, then the truths
        jobs: list[_Assignment] = []
        best_t_iou: dict[tuple[int, int, int, int], float] = {}
        truths_np = [t.cpu().numpy().astype(np.float32) for t in truths]
        for b, truth in enumerate(truths):
            if truth.shape[0] == 0:
                continue
            t = truth.to(out.device, torch.float32)
            iou = pairwise_iou(pred[b].reshape(-1, 4), t[:, 1:5]).view(na, h, w, -1)
            best_match = torch.where(class_match[b], iou.max(-1).values,
                                     torch.zeros_like(iou[..., 0]))
            best_match = best_match.clamp(min=0)
            best_iou, best_t = iou.max(-1).values, iou.argmax(-1)
            ignore = best_match > s.ignore_thresh
            obj = out[b, :, 4]
            if s.objectness_smooth:
                smooth = s.obj_normalizer * (best_match - obj)
                delta[b, :, 4] = torch.where(ignore, torch.maximum(delta[b, :, 4], smooth),
                                             delta[b, :, 4])
            else:
                delta[b, :, 4] = torch.where(ignore, torch.zeros_like(obj), delta[b, :, 4])
            cells = torch.nonzero(best_iou > s.truth_thresh).tolist()
            for a, j, i in sorted(cells, key=lambda c: (c[1], c[2], c[0])):  # Darknet: j, i, n
                jobs.append(_Assignment(b, a, j, i, int(best_t[a, j, i]), self.mask[a], True))
                best_t_iou[(b, a, j, i)] = float(best_iou[a, j, i])
            jobs.extend(self._truth_jobs(b, truths_np[b], w, h))
        stats = self._apply(out, delta, pred, truths_np, jobs, best_t_iou)
        return delta.view_as(x).to(x.dtype), stats

    # ---------------------------------------------------------------- helpers
    def _truth_jobs(self, b: int, truth: np.ndarray, w: int, h: int) -> list[_Assignment]:
        """The anchors each truth trains (best shape; others above iou_thresh)."""
        s = self.s
        jobs = []
        anchor_boxes = np.zeros((len(self.anchors), 4), dtype=np.float64)
        anchor_boxes[:, 2] = self.anchors[:, 0] / np.float32(self.net_w)
        anchor_boxes[:, 3] = self.anchors[:, 1] / np.float32(self.net_h)
        for t, (_cls, cx, cy, tw, th) in enumerate(truth):
            i = min(int(np.float32(cx) * np.float32(w)), w - 1)
            j = min(int(np.float32(cy) * np.float32(h)), h - 1)
            shift = np.array([0.0, 0.0, tw, th])
            ious = _iou(anchor_boxes, shift[None], "iou")
            best_n = int(np.argmax(ious)) if ious.max() > 0 else 0
            if best_n in self.mask:
                jobs.append(_Assignment(b, self.mask.index(best_n), j, i, t, best_n, False))
            if s.iou_thresh < 1.0:
                kind_ious = _iou(anchor_boxes, shift[None], s.iou_thresh_kind)
                for a, anchor in enumerate(self.mask):
                    if anchor != best_n and kind_ious[anchor] > s.iou_thresh:
                        jobs.append(_Assignment(b, a, j, i, t, anchor, False))
        return jobs

    def _apply(self, out: Tensor, delta: Tensor, pred: Tensor, truths: list[np.ndarray],
               jobs: list[_Assignment], best_t_iou: dict) -> HeadStats:
        s = self.s
        n = out.shape[0]
        tot_iou, tot_iou_loss, tot_giou_loss, count = 0.0, 0.0, 0.0, 0
        if jobs:
            idx = torch.tensor([[jb.b, jb.a, jb.j, jb.i] for jb in jobs], device=out.device)
            cells = out[idx[:, 0], idx[:, 1], :, idx[:, 2], idx[:, 3]].cpu().double().numpy()
            boxes = pred[idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3]].cpu().double().numpy()
            start = delta[idx[:, 0], idx[:, 1], :, idx[:, 2], idx[:, 3]].cpu().double().numpy()
            tbox = np.stack([truths[jb.b][jb.t] for jb in jobs])  # float32, as Darknet's truth
            cls = tbox[:, 0].astype(np.int64)
            tbox = tbox[:, 1:5].astype(np.float64)
            mult = self.multipliers[cls] if self.multipliers is not None else np.ones(len(jobs))
            box_d = self._box_deltas(cells, boxes, tbox, jobs, mult, out.shape[-1],
                                     out.shape[-2])
            ious = _iou(boxes, tbox, "iou")
            gious = _iou(boxes, tbox, "giou")
            state: dict[tuple[int, int, int, int], np.ndarray] = {}
            for k, jb in enumerate(jobs):
                key = (jb.b, jb.a, jb.j, jb.i)
                d = state.get(key)
                if d is None:
                    d = state[key] = start[k].copy()
                self._cell_update(d, cells[k], box_d[k], int(cls[k]), mult[k], jb,
                                  best_t_iou.get(key, 0.0))
                if not jb.from_cell:
                    tot_iou += ious[k]
                    tot_iou_loss += 1 - ious[k]
                    tot_giou_loss += 1 - gious[k]
                    count += 1
            if s.iou_thresh < 1.0:
                for d in state.values():
                    if d[4] != 0:
                        positive = int((d[5:] > 0).sum())
                        if positive > 0:
                            d[:4] /= positive
            keys = list(state)
            at = torch.tensor(keys, device=out.device)
            values = torch.tensor(np.stack([state[k] for k in keys]), dtype=delta.dtype,
                                  device=out.device)
            delta[at[:, 0], at[:, 1], :, at[:, 2], at[:, 3]] = values
        count_div = max(count, 1)
        total = float((delta.double() ** 2).sum())
        no_box = float((delta[:, :, 4:].double() ** 2).sum())
        class_loss = s.obj_normalizer * no_box
        if s.iou_loss == "mse" or not s.show_details:
            cost = total
        else:
            iou_part = tot_giou_loss if s.iou_loss == "giou" else tot_iou_loss
            cost = s.iou_normalizer * (iou_part / count_div) + class_loss
        return HeadStats(self.index, tot_iou / count_div, count, class_loss / n,
                         (total - class_loss) / n, total / n, cost)

    def _box_deltas(self, cells: np.ndarray, boxes: np.ndarray, truth: np.ndarray,
                    jobs: list[_Assignment], mult: np.ndarray, w: int, h: int) -> np.ndarray:
        """delta_yolo_box for each assignment, before accumulation."""
        s = self.s
        norm = s.iou_normalizer * mult
        if s.iou_loss == "mse":
            i = np.array([jb.i for jb in jobs], dtype=np.float64)
            j = np.array([jb.j for jb in jobs], dtype=np.float64)
            anchors = self.anchors[[jb.anchor for jb in jobs]].astype(np.float64)
            tx = truth[:, 0] * w - i
            ty = truth[:, 1] * h - j
            if s.new_coords:
                tw = np.sqrt(truth[:, 2] * self.net_w / (4 * anchors[:, 0]))
                th = np.sqrt(truth[:, 3] * self.net_h / (4 * anchors[:, 1]))
            else:
                tw = np.log(truth[:, 2] * self.net_w / anchors[:, 0])
                th = np.log(truth[:, 3] * self.net_h / anchors[:, 1])
            scale = 2 - truth[:, 2] * truth[:, 3]
            target = np.stack([tx, ty, tw, th], 1)
            return (scale * norm)[:, None] * (target - cells[:, :4])
        p = boxes.copy()
        p[:, 2] = np.where(p[:, 2] == 0, 1.0, p[:, 2])  # avoid NaN, as Darknet
        p[:, 3] = np.where(p[:, 3] == 0, 1.0, p[:, 3])
        g = iou_gradient(p, truth, s.iou_loss)
        if not s.new_coords:
            g[:, 2] *= np.exp(cells[:, 2])
            g[:, 3] *= np.exp(cells[:, 3])
        g *= norm[:, None]
        g = np.where(np.isfinite(g), g, 0.0)
        if s.max_delta != FLT_MAX:
            g = np.clip(g, -s.max_delta, s.max_delta)
        return g

    def _cell_update(self, d: np.ndarray, cell: np.ndarray, box_delta: np.ndarray, cls: int,
                     mult: float, job: _Assignment, cell_iou: float) -> None:
        """Objectness and class deltas of one assignment, in Darknet's order of writes."""
        s = self.s
        d[:4] += box_delta
        obj = cell[4]
        if job.from_cell:
            if s.objectness_smooth:
                d[4] = s.obj_normalizer * (cell_iou * cell_iou - obj)
            else:
                d[4] = s.obj_normalizer * (1 - obj)
        elif s.objectness_smooth:
            if d[4] == 0:
                d[4] = mult * s.obj_normalizer * (1 - obj)
        else:
            d[4] = mult * s.obj_normalizer * (1 - obj)
        self._class_delta(d[5:], cell[5:], cls)
        if job.from_cell and s.objectness_smooth:
            d[5 + cls] = mult * (cell_iou * cell_iou - cell[5 + cls])

    def _class_delta(self, d: np.ndarray, probs: np.ndarray, cls: int) -> None:
        """delta_yolo_class: a cell trained before only gets this truth's class set."""
        s = self.s
        eps = s.label_smooth_eps
        m = self.multipliers
        if d[cls] != 0:
            y = 1.0 * (1 - eps) + 0.5 * eps if eps else 1.0
            r = y - probs[cls]
            if np.isfinite(r):
                d[cls] = r
            if m is not None:
                d[cls] *= m[cls]
            return
        y = np.zeros_like(probs)
        y[cls] = 1.0
        if eps:
            y = y * (1 - eps) + 0.5 * eps
        r = y - probs
        d[:] = np.where(np.isfinite(r), r, d)
        if m is not None:
            d[cls] *= m[cls] * s.cls_normalizer
