"""One ``[region]`` head's deltas as ``forward_region_layer`` (CPU build) writes them.

Per image, on Darknet's ``l.output`` (cells x anchors x (5 + C): raw x, y, w, h, logistic
objectness, softmax classes):

1. every cell and anchor: objectness pushed to 0 (``noobject_scale``), unless its box
   overlaps a truth by more than ``thresh`` (``classfix=-1``: pushed to the best IoU);
   while ``seen < 12800`` its box is pulled to its anchor at the cell centre (scale .01);
2. each truth, in order: the anchor of its cell whose shape fits it best (``bias_match``:
   the anchor's own shape) gets the box delta (``coord_scale``), objectness 1 (or the IoU
   with ``rescore``) and the class delta, overwriting what step 1 wrote.

The delta is returned in the head input's layout, (N, A*(5+C), H, W): the gradient of
Darknet's loss is its negative, as for ``[yolo]``.  Truth rows follow Darknet's: a row
with x = 0 ends the image's truths.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cfg.yolov2 import RegionSection
from ..nn.heads import Region
from ..ops.boxes import box_iou
from .host_deltas import HostHeadDeltas, truth_rows
from .stats import RegionStats


def _boxes(p: Tensor, anchors: Tensor, col: Tensor, row: Tensor, w: int, h: int) -> Tensor:
    """get_region_box for (H*W, A, 5+C) output ``p`` with each cell's (H*W, 1) column and
    row: (H*W, A, 4) relative boxes."""
    return torch.stack([(col + torch.sigmoid(p[..., 0])) / w,
                        (row + torch.sigmoid(p[..., 1])) / h,
                        torch.exp(p[..., 2]) * anchors[:, 0] / w,
                        torch.exp(p[..., 3]) * anchors[:, 1] / h], -1)


def _box_delta(p: Tensor, truth: Tensor, anchor: Tensor, col, row, w: int, h: int,
               scale: float) -> Tensor:
    """delta_region_box: the (..., 4) x, y, w, h deltas of outputs ``p`` toward ``truth``."""
    sx, sy = torch.sigmoid(p[..., 0]), torch.sigmoid(p[..., 1])
    tx, ty = truth[..., 0] * w - col, truth[..., 1] * h - row
    tw = torch.log(truth[..., 2] * w / anchor[..., 0])
    th = torch.log(truth[..., 3] * h / anchor[..., 1])
    return torch.stack([scale * (tx - sx) * ((1 - sx) * sx),
                        scale * (ty - sy) * ((1 - sy) * sy),
                        scale * (tw - p[..., 2]), scale * (th - p[..., 3])], -1)


def _class_delta(p: Tensor, cls: Tensor, scale, focal: bool) -> Tensor:
    """delta_region_class (no tree) of K cells' class outputs ``p`` (K, C) for classes
    ``cls`` (K,), ``scale`` a number or (K, 1)."""
    onehot = torch.zeros_like(p).scatter_(1, cls[:, None], 1.0)
    d = scale * (onehot - p)
    if focal:  # Darknet's focal loss: alpha 0.5, gamma 2 in its closed form
        pt = p.gather(1, cls[:, None]) + 1e-15
        d = d * (0.5 * -(1 - pt) * (2 * pt * torch.log(pt) + pt - 1))
    return d


def region_deltas(layer: Region, section: RegionSection, x: Tensor, truths: list[Tensor],
                  seen: int) -> tuple[Tensor, dict[str, float]]:
    """Darknet's ``l.delta`` of a ``[region]`` head for raw input ``x`` (N, A*(5+C), H, W)
    and per image a (T, 5) tensor of truth rows ``x, y, w, h, class`` (relative), with
    the sums Darknet's training line is made of: ``iou``, ``recall``, ``cat``, ``obj``,
    ``anyobj``, ``count``, ``class_count`` and ``cost`` (sum of delta^2)."""
    s = section
    n, _, h, w = x.shape
    a = layer.num_anchors
    with torch.no_grad():
        out = layer.activate(x.detach().float()).reshape(n, h * w, a, -1)  # l.output
    delta = torch.zeros_like(out)
    anchors = layer.anchors.float()
    cells = torch.arange(h * w, device=x.device)
    col = (cells % w).float()[:, None]
    row = torch.div(cells, w, rounding_mode="floor").float()[:, None]
    prior = None  # below 12800 images every box is pulled to its anchor at the cell centre
    if seen < 12800:
        prior = torch.stack([((col + .5) / w).expand(-1, a), ((row + .5) / h).expand(-1, a),
                             (anchors[:, 0] / w).expand(h * w, -1),
                             (anchors[:, 1] / h).expand(h * w, -1)], -1)
    sums = dict.fromkeys(("iou", "recall", "cat", "obj", "anyobj", "count", "class_count"), 0.0)
    for b in range(n):
        p, d = out[b], delta[b]
        rows = truth_rows(truths[b].to(x.device, torch.float32), s.classes)
        sums["anyobj"] += float(p[..., 4].sum())
        boxes = _boxes(p, anchors, col, row, w, h)
        _objectness(p, d, rows, boxes, s, sums)
        if prior is not None:
            d[..., :4] = _box_delta(p, prior, anchors, col, row, w, h, .01)
        if len(rows):
            _train_truths(p, d, rows, boxes, anchors, (w, h), s, sums)
    square = delta.double().square()
    sums["cost"] = float(square.sum())
    sums["no_box"] = sums["cost"] - float(square[..., :4].sum())
    # back to the input's layout (flatten(l.delta, w*h, size*n, batch, 0))
    return delta.reshape(n, h * w, -1).transpose(1, 2).reshape(x.shape).to(x.dtype), sums


def _objectness(p: Tensor, d: Tensor, rows: Tensor, boxes: Tensor, s: RegionSection,
                sums: dict) -> None:
    """Step 1's objectness (and with ``classfix > 0`` class) deltas of one image's output
    ``p`` (cells, A, 5+C) with its boxes (cells, A, 4)."""
    obj = p[..., 4]
    grad = (1 - obj) * obj  # logistic_gradient
    if len(rows):
        best, best_t = box_iou(boxes[:, :, None], rows[None, None, :, :4]).max(-1)
    else:
        best, best_t = torch.zeros_like(obj), torch.zeros_like(obj, dtype=torch.long)
    if s.classfix == -1:
        d[..., 4] = s.noobject_scale * ((best - obj) * grad)
        return
    above = best > s.thresh
    d[..., 4] = torch.where(above, torch.zeros_like(obj), s.noobject_scale * ((0 - obj) * grad))
    if s.classfix > 0:  # the classes of cells above thresh, as their best truth's
        at = torch.nonzero(above, as_tuple=True)
        cells, cls = p[at], rows[best_t[at], 4].long()
        scale = s.class_scale * (cells[:, 4:5] if s.classfix == 2 else 1)
        d[at + (slice(5, None),)] = _class_delta(cells[:, 5:], cls, scale, bool(s.focal_loss))
        sums["cat"] += float(cells[:, 5:].gather(1, cls[:, None]).sum())
        sums["class_count"] += len(cls)


def _train_truths(p: Tensor, d: Tensor, rows: Tensor, boxes: Tensor, anchors: Tensor,
                  grid: tuple[int, int], s: RegionSection, sums: dict) -> None:
    """Step 2 for an image's truth rows (T, 5): each truth's best-shaped anchor of its
    cell gets its whole row of deltas; where truths share a cell and anchor, the last one
    written stays, as in Darknet's loop."""
    w, h = grid
    i, j = (rows[:, 0] * w).long(), (rows[:, 1] * h).long()  # float, then truncated
    cell = (j * w + i).clamp(max=h * w - 1)
    shapes = boxes[cell].clone()  # T, A, 4
    if s.bias_match:
        shapes[..., 2], shapes[..., 3] = anchors[:, 0] / w, anchors[:, 1] / h
    shapes[..., :2] = 0
    shift = torch.cat([torch.zeros_like(rows[:, :2]), rows[:, 2:4]], 1)
    k = box_iou(shapes, shift[:, None]).argmax(1)  # the first best; 0 when none overlaps
    cells = p[cell, k]  # T, 5+C
    box = _box_delta(cells, rows[:, :4], anchors[k], i.to(p.dtype), j.to(p.dtype), w, h,
                     s.coord_scale)
    iou = box_iou(boxes[cell, k], rows[:, :4])
    o = cells[:, 4]
    target = iou if s.rescore else torch.ones_like(o)
    cls = rows[:, 4].long()
    new = torch.cat([box, (s.object_scale * (target - o) * ((1 - o) * o))[:, None],
                     _class_delta(cells[:, 5:], cls, s.class_scale, bool(s.focal_loss))], 1)
    key = cell * boxes.shape[1] + k
    order = torch.arange(len(key), device=key.device)
    last = key.new_full((boxes.shape[0] * boxes.shape[1],), -1)
    last = last.scatter_reduce(0, key, order, "amax")
    keep = last[key] == order  # each cell and anchor's last truth
    d[cell[keep], k[keep]] = new[keep]
    sums["iou"] += float(iou.sum())
    sums["recall"] += float((iou > .5).sum())
    sums["obj"] += float(o.sum())
    sums["cat"] += float(cells[:, 5:].gather(1, cls[:, None]).sum())
    sums["count"] += len(cls)
    sums["class_count"] += len(cls)


class RegionDeltas(HostHeadDeltas):
    """One ``[region]`` head in ``DarknetLoss``: its deltas, ``l.cost`` and printed line."""

    FIGURES = ("iou", "recall", "cat", "obj", "anyobj", "cells", "class_count", "cost",
               "no_box")

    def __init__(self, layer: Region, section: RegionSection, index: int):
        if layer.tree is not None:
            raise section.error("training with a softmax tree (tree=) is not implemented by "
                                "darknet-py; its detection is", "tree")
        super().__init__(layer, section, index)

    def deltas(self, x: Tensor, truths: list[Tensor], net_size: tuple[int, int],
               seen: int) -> tuple[Tensor, dict[str, float]]:
        return region_deltas(self.layer, self.s, x, truths, seen)

    def stats(self, count: int, values: list[float], batch: int) -> RegionStats:
        """The figures as Darknet prints them (means over assignments and cells)."""
        f = dict(zip(self.FIGURES, values))
        n = max(count, 1)
        return RegionStats(self.index, f["iou"] / n, count, f["no_box"] / batch,
                           (f["cost"] - f["no_box"]) / batch, f["cost"] / batch, f["cost"],
                           f["cat"] / max(f["class_count"], 1), f["obj"] / n,
                           f["anyobj"] / max(f["cells"], 1), f["recall"] / n)
