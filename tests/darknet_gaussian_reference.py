"""A slow, literal, loop-by-loop transcription of Darknet's ``[Gaussian_yolo]`` training
pass, for tests only: ``forward_gaussian_yolo_layer`` (src/gaussian_yolo_layer.c, CPU
build, ``yolo_point=center``, no ``map``, not adversarial), ``delta_gaussian_yolo_box``,
``delta_gaussian_yolo_class`` and ``averages_gaussian_yolo_deltas``, in float32 scalars.
The box measures and ``dx_box_iou`` come from the ``[yolo]`` transcription.

Memory layout is Darknet's: ``output`` and ``delta`` are flat float32 arrays indexed by
``entry_gaussian_index``; ``truth`` is (batch, max_boxes * 5) rows of x, y, w, h, class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .darknet_yolo_reference import (FLT_MAX, Box, Layer, box_giou, box_iou, box_iou_kind,
                                     clip_value, dx_box_iou, f32, fix_nan_inf, truth_box)

SQRT_2PI = math.sqrt(math.pi * 2.0)


@dataclass
class GaussianLayer(Layer):
    """The fields of Darknet's ``layer`` the Gaussian pass reads."""

    uc_normalizer: float = 1.0
    scale_x_y: float = 1.0

    @property
    def outputs(self) -> int:
        return self.h * self.w * self.n * (self.classes + 9)


def entry_gaussian_index(l: GaussianLayer, batch: int, location: int,  # noqa: E741
                         entry: int) -> int:
    n = location // (l.w * l.h)
    loc = location % (l.w * l.h)
    return batch * l.outputs + n * l.w * l.h * (8 + l.classes + 1) + entry * l.w * l.h + loc


def _logistic(v):
    return f32(1 / (1 + np.exp(-np.float64(v))))


def forward_output(l: GaussianLayer, x: np.ndarray, batch: int) -> np.ndarray:  # noqa: E741
    """The forward pass's l.output: logistic on x, y (mu and sigma; the mu's scaled), the w
    and h sigmas, objectness and classes."""
    out = x.astype(np.float32).copy()
    cells = l.w * l.h
    s = f32(l.scale_x_y)
    for b in range(batch):
        for n in range(l.n):
            for entry, count, scaled in ((0, 2, True), (2, 2, True), (5, 1, False),
                                         (7, 1, False), (8, 1 + l.classes, False)):
                index = entry_gaussian_index(l, b, n * cells, entry)
                for k in range(count * cells):
                    out[index + k] = _logistic(out[index + k])
                if scaled:  # scal_add_cpu on the mu only
                    for k in range(cells):
                        out[index + k] = f32(out[index + k] * s + f32(-0.5 * (s - 1)))
    return out


def get_gaussian_yolo_box(x, biases, n, index, i, j, lw, lh, w, h, stride) -> Box:
    bw = f32(np.exp(x[index + 4 * stride]) * f32(biases[2 * n]) / f32(w))
    bh = f32(np.exp(x[index + 6 * stride]) * f32(biases[2 * n + 1]) / f32(h))
    bx = f32((i + x[index + 0 * stride]) / f32(lw))
    by = f32((j + x[index + 2 * stride]) / f32(lh))
    return Box(bx, by, bw, bh)


def delta_gaussian_yolo_box(truth: Box, x, biases, n, index, i, j, lw, lh, w, h, delta,
                            scale, stride, iou_normalizer, iou_loss, uc_normalizer,
                            max_delta):
    pred = get_gaussian_yolo_box(x, biases, n, index, i, j, lw, lh, w, h, stride)
    iou = box_iou(pred, truth)
    giou = box_giou(pred, truth)
    if pred.w == 0:
        pred.w = f32(1)
    if pred.h == 0:
        pred.h = f32(1)
    sigma_const, epsi = 0.3, 10.0 ** -9
    tx = f32(truth.x * lw - i)
    ty = f32(truth.y * lh - j)
    tw = f32(np.log(truth.w * w / f32(biases[2 * n])))
    th = f32(np.log(truth.h * h / f32(biases[2 * n + 1])))
    d = [f32(tx - x[index]), f32(ty - x[index + 2 * stride]),
         f32(tw - x[index + 4 * stride]), f32(th - x[index + 6 * stride])]
    box_d, uc_d = [], []
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for k in range(4):
            sigma = x[index + (2 * k + 1) * stride]
            in_exp = f32(d[k] / sigma)
            in_exp_2 = f32(np.float64(in_exp) ** 2)
            normal = f32(math.exp(in_exp_2 * (-1. / 2.)) / (SQRT_2PI * (sigma + sigma_const)))
            temp = f32((1. / 2.) * 1. / (normal + epsi) * normal * scale)
            box_d.append(f32(temp * in_exp * (1. / sigma)))
            uc_d.append(f32(temp * (in_exp_2 / sigma - 1. / (sigma + sigma_const))))
        if iou_loss != "mse":
            iou = giou
            dx, dy, dw, dh = dx_box_iou(pred, truth, iou_loss)
            dw = f32(dw * np.exp(x[index + 4 * stride]))
            dh = f32(dh * np.exp(x[index + 6 * stride]))
            box_d = [dx, dy, dw, dh]
        box_d = [f32(v * f32(iou_normalizer)) for v in box_d]
        uc_d = [f32(v * f32(uc_normalizer)) for v in uc_d]
    box_d = [fix_nan_inf(v) for v in box_d]
    uc_d = [fix_nan_inf(v) for v in uc_d]
    if max_delta != FLT_MAX:
        box_d = [clip_value(v, max_delta) for v in box_d]
        uc_d = [clip_value(v, max_delta) for v in uc_d]
    for k in range(4):
        delta[index + 2 * k * stride] += box_d[k]
        delta[index + (2 * k + 1) * stride] += uc_d[k]
    return iou


def averages_gaussian_yolo_deltas(class_index, box_index, stride, classes, delta):
    in_box = sum(1 for c in range(classes) if delta[class_index + stride * c] > 0)
    if in_box > 0:
        for k in range(8):
            delta[box_index + k * stride] = f32(delta[box_index + k * stride] / in_box)


def delta_gaussian_yolo_class(output, delta, index, class_id, classes, stride, avg_cat,
                              label_smooth_eps, multipliers, cls_normalizer):
    eps = f32(label_smooth_eps)
    if delta[index]:  # Darknet looks at the first class's delta here
        y_true = f32(1)
        if eps:
            y_true = f32(y_true * (1 - eps) + f32(0.5) * eps)
        delta[index + stride * class_id] = f32(y_true - output[index + stride * class_id])
        if multipliers is not None:
            delta[index + stride * class_id] *= f32(multipliers[class_id])
        if avg_cat is not None:
            avg_cat[0] += output[index + stride * class_id]
        return
    for n in range(classes):
        y_true = f32(1 if n == class_id else 0)
        if eps:
            y_true = f32(y_true * (1 - eps) + f32(0.5) * eps)
        delta[index + stride * n] = f32(y_true - output[index + stride * n])
        if multipliers is not None and n == class_id:
            delta[index + stride * class_id] *= f32(multipliers[class_id] * cls_normalizer)
        if n == class_id and avg_cat is not None:
            avg_cat[0] += output[index + stride * n]


def forward_gaussian_yolo_layer(l: GaussianLayer, output: np.ndarray,  # noqa: E741
                                truth: np.ndarray, batch: int, net_w: int,
                                net_h: int) -> dict:
    """Deltas and figures of one ``[Gaussian_yolo]`` layer: ``output`` is the activated
    layer output (flat float32), ``truth`` (batch, max_boxes * 5)."""
    output = output.astype(np.float32).copy()
    delta = np.zeros_like(output)
    stride = l.w * l.h
    mult = l.classes_multipliers
    avg_iou, count, avg_cat = f32(0), 0, [f32(0)]

    def assign(b, t, n, i, j, t_box, class_id):
        nonlocal avg_iou, count
        mask_n = l.mask.index(n)
        cm = f32(mult[class_id]) if mult is not None else f32(1)
        box_index = entry_gaussian_index(l, b, mask_n * stride + j * l.w + i, 0)
        iou = delta_gaussian_yolo_box(t_box, output, l.biases, n, box_index, i, j, l.w, l.h,
                                      net_w, net_h, delta, f32(2 - t_box.w * t_box.h), stride,
                                      f32(l.iou_normalizer) * cm, l.iou_loss, l.uc_normalizer,
                                      l.max_delta)
        obj_index = entry_gaussian_index(l, b, mask_n * stride + j * l.w + i, 8)
        delta[obj_index] = f32(cm * f32(l.obj_normalizer) * (1 - output[obj_index]))
        class_index = entry_gaussian_index(l, b, mask_n * stride + j * l.w + i, 9)
        delta_gaussian_yolo_class(output, delta, class_index, class_id, l.classes, stride,
                                  avg_cat, l.label_smooth_eps, mult, l.cls_normalizer)
        count += 1
        avg_iou += iou

    for b in range(batch):
        tr = truth[b]
        for j in range(l.h):
            for i in range(l.w):
                for n in range(l.n):
                    class_index = entry_gaussian_index(l, b, n * stride + j * l.w + i, 9)
                    obj_index = entry_gaussian_index(l, b, n * stride + j * l.w + i, 8)
                    box_index = entry_gaussian_index(l, b, n * stride + j * l.w + i, 0)
                    pred = get_gaussian_yolo_box(output, l.biases, l.mask[n], box_index, i, j,
                                                 l.w, l.h, net_w, net_h, stride)
                    best_match_iou, best_match_t, best_iou, best_t = f32(0), 0, f32(0), 0
                    for t in range(l.max_boxes):
                        t_box = truth_box(tr, t)
                        class_id = int(tr[t * 5 + 4])
                        if class_id >= l.classes:
                            continue
                        if not t_box.x:
                            break
                        match = any(output[class_index + stride * k] > 0.25
                                    for k in range(l.classes))
                        iou = box_iou(pred, t_box)
                        if iou > best_match_iou and match:
                            best_match_iou, best_match_t = iou, t
                        if iou > best_iou:
                            best_iou, best_t = iou, t
                    delta[obj_index] = f32(f32(l.obj_normalizer) * (0 - output[obj_index]))
                    if best_match_iou > l.ignore_thresh:
                        iou_multiplier = f32(best_match_iou * best_match_iou)
                        if l.objectness_smooth:
                            delta[obj_index] = f32(f32(l.obj_normalizer) * (
                                iou_multiplier - output[obj_index]))
                            class_id = int(tr[best_match_t * 5 + 4])
                            delta_gaussian_yolo_class(output, delta, class_index, class_id,
                                                      l.classes, stride, None,
                                                      l.label_smooth_eps, mult,
                                                      l.cls_normalizer)
                        else:
                            delta[obj_index] = 0
                    if best_iou > l.truth_thresh:
                        iou_multiplier = f32(best_iou * best_iou)
                        if l.objectness_smooth:
                            delta[obj_index] = f32(f32(l.obj_normalizer) * (
                                iou_multiplier - output[obj_index]))
                        else:
                            delta[obj_index] = f32(f32(l.obj_normalizer) * (
                                1 - output[obj_index]))
                        class_id = int(tr[best_t * 5 + 4])
                        delta_gaussian_yolo_class(output, delta, class_index, class_id,
                                                  l.classes, stride, None, l.label_smooth_eps,
                                                  mult, l.cls_normalizer)
                        cm = f32(mult[class_id]) if mult is not None else f32(1)
                        if l.objectness_smooth:
                            delta[class_index + stride * class_id] = f32(cm * (
                                iou_multiplier - output[class_index + stride * class_id]))
                        t_box = truth_box(tr, best_t)
                        delta_gaussian_yolo_box(t_box, output, l.biases, l.mask[n], box_index,
                                                i, j, l.w, l.h, net_w, net_h, delta,
                                                f32(2 - t_box.w * t_box.h), stride,
                                                f32(l.iou_normalizer) * cm, l.iou_loss,
                                                l.uc_normalizer, l.max_delta)
        for t in range(l.max_boxes):
            t_box = truth_box(tr, t)
            if not t_box.x:
                break
            i = int(t_box.x * f32(l.w))
            j = int(t_box.y * f32(l.h))
            shift = Box(f32(0), f32(0), t_box.w, t_box.h)
            best_iou, best_n = f32(0), 0
            for n in range(l.total):
                anchor = Box(f32(0), f32(0), f32(f32(l.biases[2 * n]) / f32(net_w)),
                             f32(f32(l.biases[2 * n + 1]) / f32(net_h)))
                iou = box_iou(anchor, shift)
                if iou > best_iou:
                    best_iou, best_n = iou, n
            class_id = int(tr[t * 5 + 4])
            if best_n in l.mask:
                assign(b, t, best_n, i, j, t_box, class_id)
            for n in range(l.total):
                if n in l.mask and n != best_n and l.iou_thresh < 1.0:
                    anchor = Box(f32(0), f32(0), f32(f32(l.biases[2 * n]) / f32(net_w)),
                                 f32(f32(l.biases[2 * n + 1]) / f32(net_h)))
                    if box_iou_kind(anchor, shift, l.iou_thresh_kind) > l.iou_thresh:
                        assign(b, t, n, i, j, t_box, class_id)
        for j in range(l.h):
            for i in range(l.w):
                for n in range(l.n):
                    box_index = entry_gaussian_index(l, b, n * stride + j * l.w + i, 0)
                    class_index = entry_gaussian_index(l, b, n * stride + j * l.w + i, 9)
                    averages_gaussian_yolo_deltas(class_index, box_index, stride, l.classes,
                                                  delta)
    no_box, no_uc = delta.copy(), delta.copy()
    for b in range(batch):
        for n in range(l.n):
            for loc in range(stride):
                index = entry_gaussian_index(l, b, n * stride + loc, 0)
                for k in range(8):
                    no_box[index + k * stride] = 0
                for k in range(4, 8):
                    no_uc[index + k * stride] = 0
    loss = float(np.sum(delta.astype(np.float64) ** 2))
    class_loss = float(np.sum(no_box.astype(np.float64) ** 2))
    except_uc = float(np.sum(no_uc.astype(np.float64) ** 2))
    return {"delta": delta, "cost": loss, "count": count,
            "avg_iou": float(avg_iou) / max(count, 1), "avg_cat": float(avg_cat[0]),
            "class_loss": class_loss / batch, "iou_loss": (except_uc - class_loss) / batch,
            "uc_loss": (loss - except_uc) / batch, "total_loss": loss / batch}
