"""Darknet's ``dx_box_iou``: the gradient of IoU, GIoU, DIoU and CIoU with respect to a
predicted box, as the ``[yolo]`` loss uses it for ``iou_loss`` other than mse.

Elementwise over (R, 4) cx, cy, w, h tensors, in their dtype (float32 gives Darknet's
float arithmetic); divisions by zero give inf/NaN, which the loss zeroes as Darknet's
``fix_nan_inf`` does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ops.boxes import ciou_aspect, corners


def _where(cond: Tensor, a, b) -> Tensor:
    return torch.where(cond, a, b)


def iou_gradient(pred: Tensor, truth: Tensor, kind: str) -> Tensor:
    """(R, 4) gradient of IoU / GIoU / DIoU / CIoU with respect to the predicted
    x, y, w, h, as Darknet's ``dx_box_iou`` computes it (its w, h terms are not halved)."""
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    pl_raw, pt_raw, pr_raw, pb_raw = corners(pred)
    pt, pb = torch.minimum(pt_raw, pb_raw), torch.maximum(pt_raw, pb_raw)
    pl, pr = torch.minimum(pl_raw, pr_raw), torch.maximum(pl_raw, pr_raw)
    tl, tt, tr, tb = corners(truth)

    area = (pb - pt) * (pr - pl)
    t_area = (tb - tt) * (tr - tl)
    ih = torch.minimum(pb, tb) - torch.maximum(pt, tt)
    iw = torch.minimum(pr, tr) - torch.maximum(pl, tl)
    inter = iw * ih
    union = area + t_area - inter
    gcw = torch.maximum(pr, tr) - torch.minimum(pl, tl)
    gch = torch.maximum(pb, tb) - torch.minimum(pt, tt)
    gc = gcw * gch

    # d(area)/d(edge), d(intersection)/d(edge), d(union) = d(area) - d(intersection)
    da = {"t": -(pr - pl), "b": pr - pl, "l": -(pb - pt), "r": pb - pt}
    di = {"t": _where(pt > tt, -iw, zero), "b": _where(pb < tb, iw, zero),
          "l": _where(pl > tl, -ih, zero), "r": _where(pr < tr, ih, zero)}
    du = {k: da[k] - di[k] for k in da}
    dc = {"t": _where(pt < tt, -gcw, zero), "b": _where(pb > tb, gcw, zero),
          "l": _where(pl < tl, -gch, zero), "r": _where(pr > tr, gch, zero)}
    g = {k: _where(union > 0, (union * di[k] - inter * du[k]) / (union * union), zero)
         for k in da}
    flip_y, flip_x = pt_raw >= pb_raw, pl_raw >= pr_raw
    # Darknet swaps in two sequential statements, so a flipped pair ends equal
    g["t"] = _where(flip_y, g["b"], g["t"])
    g["l"] = _where(flip_x, g["r"], g["l"])
    no_overlap = (iw <= 0) | (ih <= 0)
    if kind == "giou":
        for k in g:
            c_term = (gc * du[k] - union * dc[k]) / (gc * gc)
            g[k] = _where(gc > 0, g[k] + c_term, g[k])
            g[k] = _where(no_overlap, c_term, g[k])

    dx, dy = g["l"] + g["r"], g["t"] + g["b"]
    dw, dh = g["r"] - g["l"], g["b"] - g["t"]
    if kind in ("diou", "ciou"):
        ex, ey, ew, eh, c = _distance_gradient(pred, truth, kind, (pl, pt, pr, pb),
                                               (pl_raw, pt_raw, pr_raw, pb_raw),
                                               (tl, tt, tr, tb), inter / union)
        pos = c > 0
        dx = _where(no_overlap, ex, _where(pos, dx + ex, dx))
        dy = _where(no_overlap, ey, _where(pos, dy + ey, dy))
        dw = _where(no_overlap, ew, _where(pos, dw + ew, dw))
        dh = _where(no_overlap, eh, _where(pos, dh + eh, dh))
    return torch.stack([dx, dy, dw, dh], 1)


def _distance_gradient(pred: Tensor, truth: Tensor, kind: str, p_edges: tuple,
                       p_raw: tuple, t_edges: tuple, iou: Tensor) -> tuple:
    """The DIoU (and CIoU) terms of ``dx_box_iou``: the centre-distance penalty's derivatives
    by x, y, w, h, and the enclosing diagonal squared ``c`` (of the unsorted edges
    ``p_raw``, as Darknet's ``box_c`` takes them)."""
    px, py, pw, ph = pred.unbind(1)
    tx, ty = truth[:, 0], truth[:, 1]
    pl, pt, pr, pb = p_edges
    tl, tt, tr, tb = t_edges
    dist2 = (px - tx) ** 2 + (py - ty) ** 2
    cw = torch.maximum(p_raw[2], tr) - torch.minimum(p_raw[0], tl)
    ch = torch.maximum(p_raw[3], tb) - torch.minimum(p_raw[1], tt)
    c = cw * cw + ch * ch
    one = torch.ones((), dtype=pred.dtype, device=pred.device)
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    # derivatives of the enclosing width / height by x, y, w, h
    dcw_dx = _where(pr > tr, one, zero) - _where(pl < tl, one, zero)
    dcw_dw = _where(pr > tr, one / 2, zero) + _where(pl < tl, one / 2, zero)
    dch_dy = _where(pb > tb, one, zero) - _where(pt < tt, one, zero)
    dch_dh = _where(pb > tb, one / 2, zero) + _where(pt < tt, one / 2, zero)
    ex = (2 * (tx - px) * c - 2 * cw * dcw_dx * dist2) / (c * c)
    ey = (2 * (ty - py) * c - 2 * ch * dch_dy * dist2) / (c * c)
    ew = 2 * cw * dcw_dw * dist2 / (c * c)
    eh = 2 * ch * dch_dh * dist2 / (c * c)
    if kind == "ciou":
        atan_diff, _, alpha = ciou_aspect(pred, truth, iou)
        ew = ew + alpha * (8 / (math.pi ** 2) * atan_diff * ph)
        eh = eh + alpha * (-8 / (math.pi ** 2) * atan_diff * pw)
    return ex, ey, ew, eh, c
