"""A literal, loop-by-loop port of ``forward_region_layer``'s training branch (AlexeyAB
``src/region_layer.c``, CPU build, no softmax tree or map), for randomized checks of
``train/region_deltas.py``.  One image, flat Python lists, slow on purpose."""

from __future__ import annotations

import math


def _logistic(v):
    return 1 / (1 + math.exp(-v))


def _overlap(x1, w1, x2, w2):
    left = max(x1 - w1 / 2, x2 - w2 / 2)
    right = min(x1 + w1 / 2, x2 + w2 / 2)
    return right - left


def box_iou(a, b):
    w, h = _overlap(a[0], a[2], b[0], b[2]), _overlap(a[1], a[3], b[1], b[3])
    inter = 0 if w < 0 or h < 0 else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return 0 if inter == 0 or union == 0 else inter / union


def forward_output(x, w, h, n, classes, softmax):
    """forward_region_layer's l.output: flatten, logistic objectness, softmax classes."""
    size = 5 + classes
    layers, cells = size * n, w * h
    out = [0.0] * len(x)
    for c in range(layers):
        for i in range(cells):
            out[i * layers + c] = x[c * cells + i]
    for i in range(cells * n):
        out[size * i + 4] = _logistic(out[size * i + 4])
        if softmax:
            vals = out[size * i + 5: size * i + 5 + classes]
            top = max(vals)
            e = [math.exp(v - top) for v in vals]
            out[size * i + 5: size * i + 5 + classes] = [v / sum(e) for v in e]
    return out


def region_box(x, biases, n, index, i, j, w, h):
    return ((i + _logistic(x[index])) / w, (j + _logistic(x[index + 1])) / h,
            math.exp(x[index + 2]) * biases[2 * n] / w,
            math.exp(x[index + 3]) * biases[2 * n + 1] / h)


def delta_region_box(truth, x, biases, n, index, i, j, w, h, delta, scale):
    pred = region_box(x, biases, n, index, i, j, w, h)
    iou = box_iou(pred, truth)
    tx, ty = truth[0] * w - i, truth[1] * h - j
    tw = math.log(truth[2] * w / biases[2 * n])
    th = math.log(truth[3] * h / biases[2 * n + 1])
    sx, sy = _logistic(x[index]), _logistic(x[index + 1])
    delta[index] = scale * (tx - sx) * ((1 - sx) * sx)
    delta[index + 1] = scale * (ty - sy) * ((1 - sy) * sy)
    delta[index + 2] = scale * (tw - x[index + 2])
    delta[index + 3] = scale * (th - x[index + 3])
    return iou


def delta_region_class(output, delta, index, class_id, classes, scale, avg_cat, focal_loss):
    """delta_region_class without a softmax tree."""
    if focal_loss:
        alpha = 0.5
        pt = output[index + class_id] + 0.000000000000001
        grad = -(1 - pt) * (2 * pt * math.log(pt) + pt - 1)
        for c in range(classes):
            delta[index + c] = scale * ((1 if c == class_id else 0) - output[index + c])
            delta[index + c] *= alpha * grad
            if c == class_id:
                avg_cat[0] += output[index + c]
        return
    for c in range(classes):
        delta[index + c] = scale * ((1 if c == class_id else 0) - output[index + c])
        if c == class_id:
            avg_cat[0] += output[index + c]


def region_delta(x, truths, w, h, n, classes, biases, opts, seen, figures=None):
    """``l.delta`` in the input's layout for raw input ``x`` (flat, C x H x W) and truth
    rows (x, y, w, h, class).  ``opts``: softmax, thresh, classfix, noobject_scale,
    object_scale, class_scale, coord_scale, rescore, bias_match, focal_loss.  ``figures``
    (a dict), if given, gets the sums Darknet prints: iou, recall, cat, obj, anyobj,
    count, class_count."""
    size = 5 + classes
    out = forward_output(x, w, h, n, classes, opts["softmax"])
    delta = [0.0] * len(out)
    focal = opts.get("focal_loss", 0)
    avg_cat = [0.0]
    sums = {"iou": 0.0, "recall": 0, "obj": 0.0, "anyobj": 0.0, "count": 0, "class_count": 0}
    for j in range(h):
        for i in range(w):
            for k in range(n):
                index = size * (j * w * n + i * n + k)
                pred = region_box(out, biases, k, index, i, j, w, h)
                best_iou, best_class_id = 0, -1
                for t in truths:
                    if int(t[4]) >= classes:
                        continue
                    if not t[0]:
                        break
                    iou = box_iou(pred, t[:4])
                    if iou > best_iou:
                        best_iou, best_class_id = iou, int(t[4])
                obj = out[index + 4]
                sums["anyobj"] += obj
                delta[index + 4] = opts["noobject_scale"] * ((0 - obj) * ((1 - obj) * obj))
                if opts["classfix"] == -1:
                    delta[index + 4] = opts["noobject_scale"] * ((best_iou - obj)
                                                                 * ((1 - obj) * obj))
                elif best_iou > opts["thresh"]:
                    delta[index + 4] = 0
                    if opts["classfix"] > 0:
                        scale = opts["class_scale"] * (obj if opts["classfix"] == 2 else 1)
                        delta_region_class(out, delta, index + 5, best_class_id, classes,
                                           scale, avg_cat, focal)
                        sums["class_count"] += 1
                if seen < 12800:
                    prior = ((i + .5) / w, (j + .5) / h, biases[2 * k] / w,
                             biases[2 * k + 1] / h)
                    delta_region_box(prior, out, biases, k, index, i, j, w, h, delta, .01)
    for t in truths:
        if int(t[4]) >= classes:
            continue
        if not t[0]:
            break
        i, j = int(t[0] * w), int(t[1] * h)
        best_iou, best_index, best_n = 0, 0, 0
        for k in range(n):
            index = size * (j * w * n + i * n + k)
            pred = list(region_box(out, biases, k, index, i, j, w, h))
            if opts["bias_match"]:
                pred[2], pred[3] = biases[2 * k] / w, biases[2 * k + 1] / h
            pred[0] = pred[1] = 0
            iou = box_iou(pred, (0, 0, t[2], t[3]))
            if iou > best_iou:
                best_index, best_iou, best_n = index, iou, k
        iou = delta_region_box(t[:4], out, biases, best_n, best_index, i, j, w, h, delta,
                               opts["coord_scale"])
        sums["recall"] += iou > .5
        sums["iou"] += iou
        obj = out[best_index + 4]
        sums["obj"] += obj
        target = iou if opts["rescore"] else 1
        delta[best_index + 4] = opts["object_scale"] * (target - obj) * ((1 - obj) * obj)
        delta_region_class(out, delta, best_index + 5, int(t[4]), classes,
                           opts["class_scale"], avg_cat, focal)
        sums["count"] += 1
        sums["class_count"] += 1
    if figures is not None:
        figures.update(sums, cat=avg_cat[0])
    layers, cells = size * n, w * h  # flatten(l.delta, w*h, size*n, batch, 0)
    back = [0.0] * len(delta)
    for c in range(layers):
        for i in range(cells):
            back[c * cells + i] = delta[i * layers + c]
    return back
