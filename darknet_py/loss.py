"""Darknet's ``[yolo]`` training loss: the deltas of ``forward_yolo_layer``.

Darknet does not differentiate a scalar: each ``[yolo]`` layer writes a
``delta`` (the negative gradient on its input) and reports a cost.  Here the
deltas are computed the same way and attached to the graph by an autograd
function whose backward returns exactly ``-delta``, so ``loss.backward()``
gives Darknet's gradients and ``loss`` is the value Darknet's
``train_network`` returns (mean ``[yolo]`` cost over the mini-batch size).

Per image and head (``process_batch`` in Darknet's yolo_layer.c):

1. every cell: objectness pushed to 0, unless its box overlaps a truth by more
   than ``ignore_thresh`` (and some class scores > 0.25); a box overlapping a
   truth by more than ``truth_thresh`` is trained as that truth;
2. every truth: the anchor of best shape (and, with ``iou_thresh``, every
   other masked anchor of IoU above it) in the truth's cell gets box, objectness
   and class deltas; several truths in one cell add their box deltas;
3. with ``iou_thresh`` the box deltas of a cell are averaged over its classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .boxes import box_iou
from .cfg import YoloSection
from .layers import Yolo

FLT_MAX = 3.4028234663852886e38


@dataclass
class HeadStats:
    """What Darknet prints for one ``[yolo]`` layer in one iteration."""

    index: int  # layer index
    avg_iou: float  # mean IoU of the assigned boxes
    count: int  # truth-to-anchor assignments
    class_loss: float  # obj_normalizer * sum(delta^2) without box entries / batch
    iou_loss: float  # total_loss - class_loss
    total_loss: float  # sum(delta^2) / batch
    cost: float  # Darknet's l.cost

    def line(self, section: YoloSection) -> str:
        """Darknet's per-layer training line."""
        kind = {"mse": "mse", "giou": "giou"}.get(section.iou_loss, "iou")
        return (f"v3 ({kind} loss, Normalizer: (iou: {section.iou_normalizer:.2f}, obj: "
                f"{section.obj_normalizer:.2f}, cls: {section.cls_normalizer:.2f}) Region "
                f"{self.index} Avg (IOU: {self.avg_iou:f}), count: {self.count}, class_loss = "
                f"{self.class_loss:f}, iou_loss = {self.iou_loss:f}, total_loss = "
                f"{self.total_loss:f} ")


# --------------------------------------------------------------------------- box algebra
# Boxes are float64 arrays (..., 4): cx, cy, w, h.

def _edges(b: np.ndarray):
    return (b[..., 1] - b[..., 3] / 2, b[..., 1] + b[..., 3] / 2,
            b[..., 0] - b[..., 2] / 2, b[..., 0] + b[..., 2] / 2)  # top, bottom, left, right


def iou_kind(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """Darknet's ``box_iou`` / ``box_giou`` / ``box_diou`` (exponent 0.6) / ``box_ciou``."""
    at, ab, al, ar = _edges(a)
    bt, bb, bl, br = _edges(b)
    iw = np.minimum(ar, br) - np.maximum(al, bl)
    ih = np.minimum(ab, bb) - np.maximum(at, bt)
    inter = np.where((iw < 0) | (ih < 0), 0.0, iw * ih)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where((inter == 0) | (union == 0), 0.0, inter / union)
        if kind == "iou" or kind == "mse":
            return iou
        cw = np.maximum(ar, br) - np.minimum(al, bl)
        ch = np.maximum(ab, bb) - np.minimum(at, bt)
        if kind == "giou":
            c = cw * ch
            return np.where(c == 0, iou, iou - (c - union) / c)
        c = cw * cw + ch * ch
        d = (a[..., 0] - b[..., 0]) ** 2 + (a[..., 1] - b[..., 1]) ** 2
        if kind == "diou":
            return np.where(c == 0, iou, iou - np.power(d / c, 0.6))
        v = 4 / (math.pi ** 2) * (np.arctan(b[..., 2] / b[..., 3])
                                  - np.arctan(a[..., 2] / a[..., 3])) ** 2
        alpha = v / (1 - iou + v + 0.000001)
        return np.where(c == 0, iou, iou - (d / c + alpha * v))


def iou_gradient(pred: np.ndarray, truth: np.ndarray, kind: str) -> np.ndarray:
    """(R, 4) gradient of IoU / GIoU / DIoU / CIoU with respect to the predicted
    x, y, w, h, as Darknet's ``dx_box_iou`` computes it (its w, h terms are not halved)."""
    px, py, pw, ph = (pred[:, k] for k in range(4))
    tx, ty = truth[:, 0], truth[:, 1]
    pt_raw, pb_raw, pl_raw, pr_raw = _edges(pred)
    pt, pb = np.minimum(pt_raw, pb_raw), np.maximum(pt_raw, pb_raw)
    pl, pr = np.minimum(pl_raw, pr_raw), np.maximum(pl_raw, pr_raw)
    tt, tb, tl, tr = _edges(truth)

    area = (pb - pt) * (pr - pl)
    t_area = (tb - tt) * (tr - tl)
    ih = np.minimum(pb, tb) - np.maximum(pt, tt)
    iw = np.minimum(pr, tr) - np.maximum(pl, tl)
    inter = iw * ih
    union = area + t_area - inter
    dist2 = (px - tx) ** 2 + (py - ty) ** 2
    gcw = np.maximum(pr, tr) - np.minimum(pl, tl)
    gch = np.maximum(pb, tb) - np.minimum(pt, tt)
    gc = gcw * gch

    # d(area)/d(edge), d(intersection)/d(edge), d(union) = d(area) - d(intersection)
    da = {"t": -(pr - pl), "b": pr - pl, "l": -(pb - pt), "r": pb - pt}
    di = {"t": np.where(pt > tt, -iw, 0.0), "b": np.where(pb < tb, iw, 0.0),
          "l": np.where(pl > tl, -ih, 0.0), "r": np.where(pr < tr, ih, 0.0)}
    du = {k: da[k] - di[k] for k in da}
    dc = {"t": np.where(pt < tt, -gcw, 0.0), "b": np.where(pb > tb, gcw, 0.0),
          "l": np.where(pl < tl, -gch, 0.0), "r": np.where(pr > tr, gch, 0.0)}
    with np.errstate(divide="ignore", invalid="ignore"):
        g = {k: np.where(union > 0, (union * di[k] - inter * du[k]) / (union * union), 0.0)
             for k in da}
        flip_y, flip_x = pt_raw >= pb_raw, pl_raw >= pr_raw
        g["t"], g["b"] = np.where(flip_y, g["b"], g["t"]), np.where(flip_y, g["t"], g["b"])
        g["l"], g["r"] = np.where(flip_x, g["r"], g["l"]), np.where(flip_x, g["l"], g["r"])
        # note: Darknet swaps in two sequential statements, so a flipped pair ends equal
        g["b"] = np.where(flip_y, g["t"], g["b"])
        g["r"] = np.where(flip_x, g["l"], g["r"])
        if kind == "giou":
            for k in g:
                c_term = (gc * du[k] - union * dc[k]) / (gc * gc)
                g[k] = np.where(gc > 0, g[k] + c_term, g[k])
                g[k] = np.where((iw <= 0) | (ih <= 0), c_term, g[k])

        dx, dy = g["l"] + g["r"], g["t"] + g["b"]
        dw, dh = g["r"] - g["l"], g["b"] - g["t"]
        if kind in ("diou", "ciou"):
            ct = np.minimum(py - ph / 2, ty - truth[:, 3] / 2)
            cb = np.maximum(py + ph / 2, ty + truth[:, 3] / 2)
            cl = np.minimum(px - pw / 2, tx - truth[:, 2] / 2)
            cr = np.maximum(px + pw / 2, tx + truth[:, 2] / 2)
            cw, ch = cr - cl, cb - ct
            c = cw * cw + ch * ch
            # derivatives of the enclosing width / height by x, y, w, h
            dcw_dx = (pr > tr).astype(float) - (pl < tl).astype(float)
            dcw_dw = 0.5 * (pr > tr) + 0.5 * (pl < tl)
            dch_dy = (pb > tb).astype(float) - (pt < tt).astype(float)
            dch_dh = 0.5 * (pb > tb) + 0.5 * (pt < tt)
            ex = (2 * (tx - px) * c - 2 * cw * dcw_dx * dist2) / (c * c)
            ey = (2 * (ty - py) * c - 2 * ch * dch_dy * dist2) / (c * c)
            ew = 2 * cw * dcw_dw * dist2 / (c * c)
            eh = 2 * ch * dch_dh * dist2 / (c * c)
            if kind == "ciou":
                atan_diff = np.arctan(truth[:, 2] / truth[:, 3]) - np.arctan(pw / ph)
                v = 4 / (math.pi ** 2) * atan_diff ** 2
                alpha = v / (1 - inter / union + v + 0.000001)
                ew = ew + alpha * (8 / (math.pi ** 2) * atan_diff * ph)
                eh = eh + alpha * (-8 / (math.pi ** 2) * atan_diff * pw)
            no_overlap = (iw <= 0) | (ih <= 0)
            pos = c > 0
            dx = np.where(no_overlap, ex, np.where(pos, dx + ex, dx))
            dy = np.where(no_overlap, ey, np.where(pos, dy + ey, dy))
            dw = np.where(no_overlap, ew, np.where(pos, dw + ew, dw))
            dh = np.where(no_overlap, eh, np.where(pos, dh + eh, dh))
    return np.stack([dx, dy, dw, dh], 1)


# --------------------------------------------------------------------------- deltas

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
        pred = self._pred_boxes(out)  # N, A, H, W, 4
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
            iou = box_iou(pred[b].reshape(-1, 4), t[:, 1:5]).view(na, h, w, -1)
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
    def _pred_boxes(self, out: Tensor) -> Tensor:
        """get_yolo_box for every cell: (N, A, H, W, 4) relative to the network input."""
        _, na, _, h, w = out.shape
        gy, gx = torch.meshgrid(torch.arange(h, device=out.device, dtype=out.dtype),
                                torch.arange(w, device=out.device, dtype=out.dtype),
                                indexing="ij")
        anchors = torch.as_tensor(self.anchors[self.mask], device=out.device)
        aw = anchors[:, 0].view(1, na, 1, 1) / self.net_w
        ah = anchors[:, 1].view(1, na, 1, 1) / self.net_h
        tw, th = out[:, :, 2], out[:, :, 3]
        if self.s.new_coords:
            bw, bh = tw * tw * 4 * aw, th * th * 4 * ah
        else:
            bw, bh = torch.exp(tw) * aw, torch.exp(th) * ah
        return torch.stack([(gx + out[:, :, 0]) / w, (gy + out[:, :, 1]) / h, bw, bh], -1)

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
            ious = iou_kind(anchor_boxes, shift[None], "iou")
            best_n = int(np.argmax(ious)) if ious.max() > 0 else 0
            if best_n in self.mask:
                jobs.append(_Assignment(b, self.mask.index(best_n), j, i, t, best_n, False))
            if s.iou_thresh < 1.0:
                kind_ious = iou_kind(anchor_boxes, shift[None], s.iou_thresh_kind)
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
            ious = iou_kind(boxes, tbox, "iou")
            gious = iou_kind(boxes, tbox, "giou")
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


class _DarknetLoss(torch.autograd.Function):
    """Returns ``value``; its backward gives each head input ``-delta`` (times the
    incoming gradient), as Darknet's backward_yolo_layer adds ``delta``."""

    @staticmethod
    def forward(ctx, value: Tensor, *heads_and_deltas: Tensor) -> Tensor:
        ctx.save_for_backward(*heads_and_deltas[1::2])
        return value.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        out: list[Tensor | None] = [None]  # no gradient for value
        for d in ctx.saved_tensors:
            out += [-d * grad.to(d.dtype), None]  # (head, delta) pairs
        return tuple(out)


def split_targets(targets: Tensor, batch: int) -> list[Tensor]:
    """(M, 6) ``[image, class, cx, cy, w, h]`` rows -> per image (T, 5), rows kept in order."""
    targets = targets.detach()
    image = targets[:, 0].long() if targets.numel() else targets.new_zeros(0, dtype=torch.long)
    return [targets[image == b, 1:6] for b in range(batch)]


def darknet_loss(heads: list[Tensor], deltas: list[YoloDeltas], targets: Tensor,
                 net_size: tuple[int, int]) -> tuple[Tensor, list[HeadStats]]:
    """Darknet's loss for the raw ``[yolo]`` inputs ``heads`` and ``targets`` (M, 6) of a
    network whose input is ``net_size`` (width, height).

    The value is ``mean(l.cost) / batch`` (what ``train_network`` returns); the gradient
    on each head is ``-delta``.
    """
    batch = heads[0].shape[0]
    truths = split_targets(targets, batch)
    pairs: list[Tensor] = []
    stats = []
    for x, head in zip(heads, deltas):
        d, st = head(x, truths, net_size)
        pairs += [x, d]
        stats.append(st)
    value = torch.tensor(sum(st.cost for st in stats) / len(stats) / batch,
                         dtype=torch.float32, device=heads[0].device)
    return _DarknetLoss.apply(value, *pairs), stats
