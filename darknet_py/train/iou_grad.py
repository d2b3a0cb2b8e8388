"""Darknet's ``dx_box_iou``: the gradient of IoU, GIoU, DIoU and CIoU with respect to a
predicted box, as the ``[yolo]`` loss uses it for ``iou_loss`` other than mse."""

from __future__ import annotations

import math

import numpy as np

from ..ops.boxes import corners


def iou_gradient(pred: np.ndarray, truth: np.ndarray, kind: str) -> np.ndarray:
    """(R, 4) gradient of IoU / GIoU / DIoU / CIoU with respect to the predicted
    x, y, w, h, as Darknet's ``dx_box_iou`` computes it (its w, h terms are not halved)."""
    pl_raw, pt_raw, pr_raw, pb_raw = corners(pred)
    pt, pb = np.minimum(pt_raw, pb_raw), np.maximum(pt_raw, pb_raw)
    pl, pr = np.minimum(pl_raw, pr_raw), np.maximum(pl_raw, pr_raw)
    tl, tt, tr, tb = corners(truth)

    area = (pb - pt) * (pr - pl)
    t_area = (tb - tt) * (tr - tl)
    ih = np.minimum(pb, tb) - np.maximum(pt, tt)
    iw = np.minimum(pr, tr) - np.maximum(pl, tl)
    inter = iw * ih
    union = area + t_area - inter
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
            ex, ey, ew, eh, c = _distance_gradient(pred, truth, kind, (pl, pt, pr, pb),
                                                   (tl, tt, tr, tb), inter / union)
            no_overlap = (iw <= 0) | (ih <= 0)
            pos = c > 0
            dx = np.where(no_overlap, ex, np.where(pos, dx + ex, dx))
            dy = np.where(no_overlap, ey, np.where(pos, dy + ey, dy))
            dw = np.where(no_overlap, ew, np.where(pos, dw + ew, dw))
            dh = np.where(no_overlap, eh, np.where(pos, dh + eh, dh))
    return np.stack([dx, dy, dw, dh], 1)


def _distance_gradient(pred: np.ndarray, truth: np.ndarray, kind: str, p_edges: tuple,
                       t_edges: tuple, iou: np.ndarray) -> tuple:
    """The DIoU (and CIoU) terms of ``dx_box_iou``: the centre-distance penalty's derivatives
    by x, y, w, h, and the enclosing diagonal squared ``c``."""
    px, py, pw, ph = (pred[:, k] for k in range(4))
    tx, ty = truth[:, 0], truth[:, 1]
    pl, pt, pr, pb = p_edges
    tl, tt, tr, tb = t_edges
    dist2 = (px - tx) ** 2 + (py - ty) ** 2
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
        alpha = v / (1 - iou + v + 0.000001)
        ew = ew + alpha * (8 / (math.pi ** 2) * atan_diff * ph)
        eh = eh + alpha * (-8 / (math.pi ** 2) * atan_diff * pw)
    return ex, ey, ew, eh, c
