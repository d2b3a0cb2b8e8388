"""A slow, literal, loop-by-loop transcription of Darknet's ``[yolo]`` training pass, for
tests only: ``process_batch`` / ``forward_yolo_layer`` (src/yolo_layer.c), ``delta_yolo_box``,
``delta_yolo_class``, ``averages_yolo_deltas`` and ``dx_box_iou`` / ``box_iou`` and friends
(src/box.c), in float32 scalars as the C code computes them.

Memory layout is Darknet's: ``output`` and ``delta`` are flat float32 arrays indexed by
``entry_index``; ``truth`` is (batch, max_boxes * 5) rows of x, y, w, h, class.
Nothing here is shared with darknet_py's own loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

f32 = np.float32
FLT_MAX = 3.4028234663852886e38
PI = f32(math.pi)


@dataclass
class Box:
    x: np.float32
    y: np.float32
    w: np.float32
    h: np.float32


@dataclass
class Layer:
    """The fields of Darknet's ``layer`` the yolo pass reads."""

    w: int
    h: int
    n: int  # anchors in this head
    classes: int
    mask: list[int]
    biases: list[float]  # all anchors, w, h pairs
    max_boxes: int
    ignore_thresh: float = 0.5
    truth_thresh: float = 1.0
    iou_thresh: float = 1.0
    iou_thresh_kind: str = "iou"
    iou_loss: str = "mse"
    iou_normalizer: float = 0.75
    obj_normalizer: float = 1.0
    cls_normalizer: float = 1.0
    max_delta: float = FLT_MAX
    objectness_smooth: int = 0
    label_smooth_eps: float = 0.0
    new_coords: int = 0
    classes_multipliers: list[float] | None = None
    show_details: int = 1

    @property
    def total(self) -> int:
        return len(self.biases) // 2

    @property
    def outputs(self) -> int:
        return self.h * self.w * self.n * (self.classes + 5)


def entry_index(l: Layer, batch: int, location: int, entry: int) -> int:  # noqa: E741
    n = location // (l.w * l.h)
    loc = location % (l.w * l.h)
    return batch * l.outputs + n * l.w * l.h * (4 + l.classes + 1) + entry * l.w * l.h + loc


# --------------------------------------------------------------------------- box.c

def overlap(x1, w1, x2, w2):
    l1 = x1 - w1 / f32(2)
    l2 = x2 - w2 / f32(2)
    left = l1 if l1 > l2 else l2
    r1 = x1 + w1 / f32(2)
    r2 = x2 + w2 / f32(2)
    right = r1 if r1 < r2 else r2
    return f32(right - left)


def box_intersection(a: Box, b: Box):
    w = overlap(a.x, a.w, b.x, b.w)
    h = overlap(a.y, a.h, b.y, b.h)
    if w < 0 or h < 0:
        return f32(0)
    return f32(w * h)


def box_union(a: Box, b: Box):
    i = box_intersection(a, b)
    return f32(a.w * a.h + b.w * b.h - i)


def box_iou(a: Box, b: Box):
    inter = box_intersection(a, b)
    union = box_union(a, b)
    if inter == 0 or union == 0:
        return f32(0)
    return f32(inter / union)


def box_c(a: Box, b: Box):
    top = min(a.y - a.h / f32(2), b.y - b.h / f32(2))
    bot = max(a.y + a.h / f32(2), b.y + b.h / f32(2))
    left = min(a.x - a.w / f32(2), b.x - b.w / f32(2))
    right = max(a.x + a.w / f32(2), b.x + b.w / f32(2))
    return top, bot, left, right


def box_giou(a: Box, b: Box):
    top, bot, left, right = box_c(a, b)
    c = f32((right - left) * (bot - top))
    iou = box_iou(a, b)
    if c == 0:
        return iou
    u = box_union(a, b)
    return f32(iou - (c - u) / c)


def box_diou(a: Box, b: Box):
    top, bot, left, right = box_c(a, b)
    w, h = f32(right - left), f32(bot - top)
    c = f32(w * w + h * h)
    iou = box_iou(a, b)
    if c == 0:
        return iou
    d = f32((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y))
    return f32(iou - f32(math.pow(d / c, 0.6)))


def box_ciou(a: Box, b: Box):
    top, bot, left, right = box_c(a, b)
    w, h = f32(right - left), f32(bot - top)
    c = f32(w * w + h * h)
    iou = box_iou(a, b)
    if c == 0:
        return iou
    u = f32((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y))
    d = f32(u / c)
    ar_gt, ar_pred = f32(b.w / b.h), f32(a.w / a.h)
    diff = f32(np.arctan(ar_gt) - np.arctan(ar_pred))
    ar_loss = f32(4 / (PI * PI) * diff * diff)
    alpha = f32(ar_loss / (1 - iou + ar_loss + f32(0.000001)))
    return f32(iou - (d + alpha * ar_loss))


def box_iou_kind(a: Box, b: Box, kind: str):
    return {"iou": box_iou, "giou": box_giou, "diou": box_diou, "ciou": box_ciou}[kind](a, b)


def dx_box_iou(pred: Box, truth: Box, iou_loss: str):
    """(dx, dy, dw, dh) as Darknet returns them in dt, db, dl, dr."""
    two, half = f32(2), f32(0.5)
    p_top, p_bot = pred.y - pred.h / two, pred.y + pred.h / two
    p_left, p_right = pred.x - pred.w / two, pred.x + pred.w / two
    pred_t, pred_b = min(p_top, p_bot), max(p_top, p_bot)
    pred_l, pred_r = min(p_left, p_right), max(p_left, p_right)
    t_top, t_bot = truth.y - truth.h / two, truth.y + truth.h / two
    t_left, t_right = truth.x - truth.w / two, truth.x + truth.w / two
    X = f32((pred_b - pred_t) * (pred_r - pred_l))
    Xhat = f32((t_bot - t_top) * (t_right - t_left))
    Ih = f32(min(pred_b, t_bot) - max(pred_t, t_top))
    Iw = f32(min(pred_r, t_right) - max(pred_l, t_left))
    I = f32(Iw * Ih)  # noqa: E741
    U = f32(X + Xhat - I)
    S = f32((pred.x - truth.x) * (pred.x - truth.x) + (pred.y - truth.y) * (pred.y - truth.y))
    giou_Cw = f32(max(pred_r, t_right) - min(pred_l, t_left))
    giou_Ch = f32(max(pred_b, t_bot) - min(pred_t, t_top))
    giou_C = f32(giou_Cw * giou_Ch)
    dX = {"t": -(pred_r - pred_l), "b": pred_r - pred_l, "l": -(pred_b - pred_t),
          "r": pred_b - pred_t}
    dI = {"t": -Iw if pred_t > t_top else f32(0), "b": Iw if pred_b < t_bot else f32(0),
          "l": -Ih if pred_l > t_left else f32(0), "r": Ih if pred_r < t_right else f32(0)}
    dU = {k: f32(dX[k] - dI[k]) for k in dX}
    dC = {"t": -giou_Cw if pred_t < t_top else f32(0),
          "b": giou_Cw if pred_b > t_bot else f32(0),
          "l": -giou_Ch if pred_l < t_left else f32(0),
          "r": giou_Ch if pred_r > t_right else f32(0)}
    p = {k: f32(0) for k in dX}
    if U > 0:
        for k in p:
            p[k] = f32((U * dI[k] - I * dU[k]) / (U * U))
    p["t"] = p["t"] if p_top < p_bot else p["b"]
    p["b"] = p["b"] if p_top < p_bot else p["t"]
    p["l"] = p["l"] if p_left < p_right else p["r"]
    p["r"] = p["r"] if p_left < p_right else p["l"]
    with np.errstate(divide="ignore", invalid="ignore"):
        if iou_loss == "giou":
            if giou_C > 0:
                for k in p:
                    p[k] = f32(p[k] + (giou_C * dU[k] - U * dC[k]) / (giou_C * giou_C))
            if Iw <= 0 or Ih <= 0:
                for k in p:
                    p[k] = f32((giou_C * dU[k] - U * dC[k]) / (giou_C * giou_C))
        Ct = min(pred.y - pred.h / two, truth.y - truth.h / two)
        Cb = max(pred.y + pred.h / two, truth.y + truth.h / two)
        Cl = min(pred.x - pred.w / two, truth.x - truth.w / two)
        Cr = max(pred.x + pred.w / two, truth.x + truth.w / two)
        Cw, Ch = f32(Cr - Cl), f32(Cb - Ct)
        C = f32(Cw * Cw + Ch * Ch)
        dCt_dy = f32(1) if pred_t < t_top else f32(0)
        dCt_dh = -half if pred_t < t_top else f32(0)
        dCb_dy = f32(1) if pred_b > t_bot else f32(0)
        dCb_dh = half if pred_b > t_bot else f32(0)
        dCl_dx = f32(1) if pred_l < t_left else f32(0)
        dCl_dw = -half if pred_l < t_left else f32(0)
        dCr_dx = f32(1) if pred_r > t_right else f32(0)
        dCr_dw = half if pred_r > t_right else f32(0)
        dCw_dx, dCw_dw = dCr_dx - dCl_dx, dCr_dw - dCl_dw
        dCh_dy, dCh_dh = dCb_dy - dCt_dy, dCb_dh - dCt_dh
        p_dx = f32(p["l"] + p["r"])
        p_dy = f32(p["t"] + p["b"])
        p_dw = f32(p["r"] - p["l"])
        p_dh = f32(p["b"] - p["t"])
        if iou_loss in ("diou", "ciou"):
            ex = f32((2 * (truth.x - pred.x) * C - (2 * Cw * dCw_dx) * S) / (C * C))
            ey = f32((2 * (truth.y - pred.y) * C - (2 * Ch * dCh_dy) * S) / (C * C))
            ew = f32((2 * Cw * dCw_dw) * S / (C * C))
            eh = f32((2 * Ch * dCh_dh) * S / (C * C))
            if iou_loss == "ciou":
                ar_gt, ar_pred = f32(truth.w / truth.h), f32(pred.w / pred.h)
                diff = f32(np.arctan(ar_gt) - np.arctan(ar_pred))
                ar_loss = f32(4 / (PI * PI) * diff * diff)
                alpha = f32(ar_loss / (1 - I / U + ar_loss + f32(0.000001)))
                ew = f32(ew + alpha * f32(8 / (PI * PI) * diff * pred.h))
                eh = f32(eh + alpha * f32(-8 / (PI * PI) * diff * pred.w))
            if C > 0:
                p_dx, p_dy, p_dw, p_dh = p_dx + ex, p_dy + ey, p_dw + ew, p_dh + eh
            if Iw <= 0 or Ih <= 0:
                p_dx, p_dy, p_dw, p_dh = ex, ey, ew, eh
    return f32(p_dx), f32(p_dy), f32(p_dw), f32(p_dh)


# --------------------------------------------------------------------------- yolo_layer.c

def get_yolo_box(x, biases, n, index, i, j, lw, lh, w, h, stride, new_coords) -> Box:
    bx = f32((i + x[index + 0 * stride]) / f32(lw))
    by = f32((j + x[index + 1 * stride]) / f32(lh))
    tw, th = x[index + 2 * stride], x[index + 3 * stride]
    if new_coords:
        bw = f32(tw * tw * f32(4) * f32(biases[2 * n]) / f32(w))
        bh = f32(th * th * f32(4) * f32(biases[2 * n + 1]) / f32(h))
    else:
        bw = f32(np.exp(tw) * f32(biases[2 * n]) / f32(w))
        bh = f32(np.exp(th) * f32(biases[2 * n + 1]) / f32(h))
    return Box(bx, by, bw, bh)


def fix_nan_inf(v):
    return f32(0) if not np.isfinite(v) else v


def clip_value(v, m):
    return f32(m) if v > m else (f32(-m) if v < -m else v)


def delta_yolo_box(truth, x, biases, n, index, i, j, lw, lh, w, h, delta, scale, stride,
                   iou_normalizer, iou_loss, max_delta, new_coords):
    pred = get_yolo_box(x, biases, n, index, i, j, lw, lh, w, h, stride, new_coords)
    ious = {"iou": box_iou(pred, truth), "giou": box_giou(pred, truth)}
    if pred.w == 0:
        pred.w = f32(1)
    if pred.h == 0:
        pred.h = f32(1)
    norm = f32(iou_normalizer)
    if iou_loss == "mse":
        tx = f32(truth.x * lw - i)
        ty = f32(truth.y * lh - j)
        if new_coords:
            tw = f32(np.sqrt(truth.w * w / (4 * f32(biases[2 * n]))))
            th = f32(np.sqrt(truth.h * h / (4 * f32(biases[2 * n + 1]))))
        else:
            tw = f32(np.log(truth.w * w / f32(biases[2 * n])))
            th = f32(np.log(truth.h * h / f32(biases[2 * n + 1])))
        for k, t in enumerate((tx, ty, tw, th)):
            delta[index + k * stride] += f32(scale * (t - x[index + k * stride]) * norm)
        return ious
    with np.errstate(over="ignore", invalid="ignore"):
        dx, dy, dw, dh = dx_box_iou(pred, truth, iou_loss)
        if not new_coords:
            dw = f32(dw * np.exp(x[index + 2 * stride]))
            dh = f32(dh * np.exp(x[index + 3 * stride]))
        d = [f32(v * norm) for v in (dx, dy, dw, dh)]
    d = [fix_nan_inf(v) for v in d]
    if max_delta != FLT_MAX:
        d = [clip_value(v, max_delta) for v in d]
    for k in range(4):
        delta[index + k * stride] += d[k]
    return ious


def averages_yolo_deltas(class_index, box_index, stride, classes, delta):
    in_box = sum(1 for c in range(classes) if delta[class_index + stride * c] > 0)
    if in_box > 0:
        for k in range(4):
            delta[box_index + k * stride] = f32(delta[box_index + k * stride] / in_box)


def delta_yolo_class(output, delta, index, class_id, classes, stride, label_smooth_eps,
                     multipliers, cls_normalizer):
    eps = f32(label_smooth_eps)
    if delta[index + stride * class_id]:
        y_true = f32(1)
        if eps:
            y_true = f32(y_true * (1 - eps) + f32(0.5) * eps)
        r = f32(y_true - output[index + stride * class_id])
        if np.isfinite(r):
            delta[index + stride * class_id] = r
        if multipliers is not None:
            delta[index + stride * class_id] *= f32(multipliers[class_id])
        return
    for n in range(classes):
        y_true = f32(1 if n == class_id else 0)
        if eps:
            y_true = f32(y_true * (1 - eps) + f32(0.5) * eps)
        r = f32(y_true - output[index + stride * n])
        if np.isfinite(r):
            delta[index + stride * n] = r
        if multipliers is not None and n == class_id:
            delta[index + stride * class_id] *= f32(multipliers[class_id] * cls_normalizer)


def compare_yolo_class(output, classes, class_index, stride, conf_thresh):
    return any(output[class_index + stride * j] > conf_thresh for j in range(classes))


def truth_box(truth_row, t) -> Box:
    return Box(*(f32(v) for v in truth_row[t * 5: t * 5 + 4]))


def process_batch(l: Layer, output, delta, truth, b: int, net_w: int,  # noqa: E741
                  net_h: int, totals):
    """One image (Darknet's process_batch); ``totals`` collects tot_iou, tot_iou_loss,
    tot_giou_loss and count."""
    stride = l.w * l.h
    tr = truth[b]
    mult = l.classes_multipliers
    for j in range(l.h):
        for i in range(l.w):
            for n in range(l.n):
                class_index = entry_index(l, b, n * stride + j * l.w + i, 5)
                obj_index = entry_index(l, b, n * stride + j * l.w + i, 4)
                box_index = entry_index(l, b, n * stride + j * l.w + i, 0)
                pred = get_yolo_box(output, l.biases, l.mask[n], box_index, i, j, l.w, l.h,
                                    net_w, net_h, stride, l.new_coords)
                best_match_iou, best_iou, best_t = f32(0), f32(0), 0
                for t in range(l.max_boxes):
                    t_box = truth_box(tr, t)
                    if not t_box.x:
                        break
                    class_id = int(tr[t * 5 + 4])
                    if class_id >= l.classes or class_id < 0:
                        continue
                    match = compare_yolo_class(output, l.classes, class_index, stride, 0.25)
                    iou = box_iou(pred, t_box)
                    if iou > best_match_iou and match:
                        best_match_iou = iou
                    if iou > best_iou:
                        best_iou, best_t = iou, t
                delta[obj_index] = f32(f32(l.obj_normalizer) * (0 - output[obj_index]))
                if best_match_iou > l.ignore_thresh:
                    if l.objectness_smooth:
                        d = f32(f32(l.obj_normalizer) * (best_match_iou - output[obj_index]))
                        if d > delta[obj_index]:
                            delta[obj_index] = d
                    else:
                        delta[obj_index] = 0
                if best_iou > l.truth_thresh:
                    iou_multiplier = f32(best_iou * best_iou)
                    if l.objectness_smooth:
                        delta[obj_index] = f32(l.obj_normalizer) * (
                            iou_multiplier - output[obj_index])
                    else:
                        delta[obj_index] = f32(l.obj_normalizer) * (1 - output[obj_index])
                    class_id = int(tr[best_t * 5 + 4])
                    delta_yolo_class(output, delta, class_index, class_id, l.classes, stride,
                                     l.label_smooth_eps, mult, l.cls_normalizer)
                    cm = f32(mult[class_id]) if mult is not None else f32(1)
                    if l.objectness_smooth:
                        delta[class_index + stride * class_id] = cm * (
                            iou_multiplier - output[class_index + stride * class_id])
                    t_box = truth_box(tr, best_t)
                    delta_yolo_box(t_box, output, l.biases, l.mask[n], box_index, i, j, l.w,
                                   l.h, net_w, net_h, delta, f32(2 - t_box.w * t_box.h),
                                   stride, f32(l.iou_normalizer) * cm, l.iou_loss, l.max_delta,
                                   l.new_coords)
    for t in range(l.max_boxes):
        t_box = truth_box(tr, t)
        if not t_box.x:
            break
        class_id = int(tr[t * 5 + 4])
        if class_id >= l.classes or class_id < 0:
            continue
        best_iou, best_n = f32(0), 0
        i = int(t_box.x * f32(l.w))
        j = int(t_box.y * f32(l.h))
        shift = Box(f32(0), f32(0), t_box.w, t_box.h)
        for n in range(l.total):
            anchor = Box(f32(0), f32(0), f32(f32(l.biases[2 * n]) / f32(net_w)),
                         f32(f32(l.biases[2 * n + 1]) / f32(net_h)))
            iou = box_iou(anchor, shift)
            if iou > best_iou:
                best_iou, best_n = iou, n
        cm = f32(mult[class_id]) if mult is not None else f32(1)
        candidates = [best_n] if best_n in l.mask else []
        if l.iou_thresh < 1.0:
            for n in range(l.total):
                if n in l.mask and n != best_n:
                    anchor = Box(f32(0), f32(0), f32(f32(l.biases[2 * n]) / f32(net_w)),
                                 f32(f32(l.biases[2 * n + 1]) / f32(net_h)))
                    if box_iou_kind(anchor, shift, l.iou_thresh_kind) > l.iou_thresh:
                        candidates.append(n)
        for n in candidates:
            mask_n = l.mask.index(n)
            box_index = entry_index(l, b, mask_n * stride + j * l.w + i, 0)
            ious = delta_yolo_box(t_box, output, l.biases, n, box_index, i, j, l.w, l.h,
                                  net_w, net_h, delta, f32(2 - t_box.w * t_box.h), stride,
                                  f32(l.iou_normalizer) * cm, l.iou_loss, l.max_delta,
                                  l.new_coords)
            totals["tot_iou"] += ious["iou"]
            totals["tot_iou_loss"] += 1 - ious["iou"]
            totals["tot_giou_loss"] += 1 - ious["giou"]
            totals["count"] += 1
            obj_index = entry_index(l, b, mask_n * stride + j * l.w + i, 4)
            if l.objectness_smooth:
                d = f32(cm * f32(l.obj_normalizer) * (1 - output[obj_index]))
                if delta[obj_index] == 0:
                    delta[obj_index] = d
            else:
                delta[obj_index] = f32(cm * f32(l.obj_normalizer) * (1 - output[obj_index]))
            class_index = entry_index(l, b, mask_n * stride + j * l.w + i, 5)
            delta_yolo_class(output, delta, class_index, class_id, l.classes, stride,
                             l.label_smooth_eps, mult, l.cls_normalizer)
    if l.iou_thresh < 1.0:
        for j in range(l.h):
            for i in range(l.w):
                for n in range(l.n):
                    obj_index = entry_index(l, b, n * stride + j * l.w + i, 4)
                    box_index = entry_index(l, b, n * stride + j * l.w + i, 0)
                    class_index = entry_index(l, b, n * stride + j * l.w + i, 5)
                    if delta[obj_index] != 0:
                        averages_yolo_deltas(class_index, box_index, stride, l.classes, delta)


def forward_yolo_layer(l: Layer, output: np.ndarray, truth: np.ndarray,  # noqa: E741
                       batch: int, net_w: int, net_h: int) -> dict:
    """Deltas and costs of one ``[yolo]`` layer: ``output`` is the activated layer output
    (flat float32), ``truth`` (batch, max_boxes * 5).  Returns delta, cost and the printed
    figures (avg_iou, count, class_loss, iou_loss, total_loss)."""
    output = output.astype(np.float32).copy()
    delta = np.zeros_like(output)
    totals = {"tot_iou": f32(0), "tot_iou_loss": f32(0), "tot_giou_loss": f32(0), "count": 0}
    for b in range(batch):
        process_batch(l, output, delta, truth, b, net_w, net_h, totals)
    count = totals["count"] or 1
    no_box = delta.copy()
    stride = l.w * l.h
    for b in range(batch):
        for n in range(l.n):
            for loc in range(stride):
                index = entry_index(l, b, n * stride + loc, 0)
                for k in range(4):
                    no_box[index + k * stride] = 0
    loss = float(np.sum(delta.astype(np.float64) ** 2))
    classification_loss = l.obj_normalizer * float(np.sum(no_box.astype(np.float64) ** 2))
    if l.iou_loss == "mse" or not l.show_details:
        cost = loss
    else:
        part = totals["tot_giou_loss"] if l.iou_loss == "giou" else totals["tot_iou_loss"]
        cost = l.iou_normalizer * float(part) / count + classification_loss
    return {"delta": delta, "cost": cost, "avg_iou": float(totals["tot_iou"]) / count,
            "count": totals["count"], "class_loss": classification_loss / batch,
            "iou_loss": (loss - classification_loss) / batch, "total_loss": loss / batch}
