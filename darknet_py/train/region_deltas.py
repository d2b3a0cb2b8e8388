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

import logging

import torch
from torch import Tensor

from ..cfg.yolov2 import RegionSection
from ..nn.heads import Region
from ..ops.boxes import box_iou

log = logging.getLogger(__name__)


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


def region_deltas(layer: Region, section: RegionSection, x: Tensor, truths: list[Tensor],
                  seen: int) -> Tensor:
    """Darknet's ``l.delta`` of a ``[region]`` head for raw input ``x`` (N, A*(5+C), H, W)
    and per image a (T, 5) tensor of truth rows ``x, y, w, h, class`` (relative)."""
    s = section
    n, _, h, w = x.shape
    a = layer.num_anchors
    out = layer.activate(x).reshape(n, h * w, a, -1)  # Darknet's l.output
    delta = torch.zeros_like(out)
    anchors = layer.anchors.to(x.dtype)
    cells = torch.arange(h * w, device=x.device)
    col = (cells % w).to(x.dtype)[:, None]
    row = torch.div(cells, w, rounding_mode="floor").to(x.dtype)[:, None]
    for b in range(n):
        p, d = out[b], delta[b]
        rows = _truth_rows(truths[b], s.classes)
        obj = p[..., 4]
        grad = (1 - obj) * obj  # logistic_gradient
        boxes = _boxes(p, anchors, col, row, w, h)
        best = (box_iou(boxes[:, :, None], rows[None, None, :, :4]).amax(-1) if len(rows)
                else torch.zeros_like(obj))
        if s.classfix == -1:
            d[..., 4] = s.noobject_scale * ((best - obj) * grad)
        else:
            d[..., 4] = torch.where(best > s.thresh, torch.zeros_like(obj),
                                    s.noobject_scale * ((0 - obj) * grad))
        if seen < 12800:
            prior = torch.stack([((col + .5) / w).expand(-1, a), ((row + .5) / h).expand(-1, a),
                                 (anchors[:, 0] / w).expand(h * w, -1),
                                 (anchors[:, 1] / h).expand(h * w, -1)], -1)
            d[..., :4] = _box_delta(p, prior, anchors, col, row, w, h, .01)
        for t in rows:
            i, j = int((t[0] * w).item()), int((t[1] * h).item())  # float, then truncated
            cell = min(j * w + i, h * w - 1)
            shapes = boxes[cell].clone()
            if s.bias_match:
                shapes[:, 2], shapes[:, 3] = anchors[:, 0] / w, anchors[:, 1] / h
            shapes[:, :2] = 0
            shift = torch.cat([t.new_zeros(2), t[2:4]])
            ious = box_iou(shapes, shift[None])
            k = int(torch.argmax(ious)) if bool((ious > 0).any()) else 0
            d[cell, k, :4] = _box_delta(p[cell, k], t[:4], anchors[k], i, j, w, h,
                                        s.coord_scale)
            iou = box_iou(boxes[cell, k][None], t[None, :4])[0]
            o = p[cell, k, 4]
            target = iou if s.rescore else torch.ones_like(o)
            d[cell, k, 4] = s.object_scale * (target - o) * ((1 - o) * o)
            onehot = torch.zeros(s.classes, dtype=x.dtype, device=x.device)
            onehot[int(t[4])] = 1
            d[cell, k, 5:] = s.class_scale * (onehot - p[cell, k, 5:])
    # back to the input's layout (flatten(l.delta, w*h, size*n, batch, 0))
    return delta.reshape(n, h * w, -1).transpose(1, 2).reshape(x.shape)


def _truth_rows(rows: Tensor, classes: int) -> Tensor:
    """The rows Darknet reads: up to the first with x = 0, classes beyond the cfg's left
    out with Darknet's warning."""
    kept = []
    for r in rows:
        if int(r[4]) >= classes:
            log.warning("a label has class_id=%d >= classes=%d; left out", int(r[4]), classes)
            continue
        if float(r[0]) == 0:
            break
        kept.append(r)
    return torch.stack(kept) if kept else rows.new_zeros((0, 5))
