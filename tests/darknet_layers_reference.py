"""Literal, loop-by-loop ports of Darknet C's inference forwards of the classifier,
YOLOv2 and attention layers (AlexeyAB ``src/*.c``), for randomized checks of the fast
modules.  Plain Python over flat float32 lists in Darknet's memory order (one image);
slow on purpose.  Never used by the package.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32


def avgpool(x: list[float], c: int, h: int, w: int) -> list[float]:
    """forward_avgpool_layer."""
    out = []
    for k in range(c):
        total = F32(0)
        for i in range(h * w):
            total = F32(total + F32(x[i + h * w * k]))
        out.append(float(total / F32(h * w)))
    return out


def softmax(x: list[float], n: int, temp: float) -> list[float]:
    """blas.c softmax (stride 1)."""
    largest = max(x[:n])
    e = [math.exp(v / temp - largest / temp) for v in x[:n]]
    total = sum(e)
    return [v / total for v in e]


def softmax_layer(x: list[float], groups: int, temp: float) -> list[float]:
    """forward_softmax_layer without a tree: softmax_cpu over ``groups`` slices."""
    size = len(x) // groups
    out = []
    for g in range(groups):
        out += softmax(x[g * size:(g + 1) * size], size, temp)
    return out


def connected(x: list[float], weights: np.ndarray, biases: np.ndarray,
              bn: tuple | None, act) -> list[float]:
    """forward_connected_layer at inference: gemm(0, 1) with weights (outputs x inputs),
    normalize_cpu with the rolling statistics, scale_bias, add biases, activation."""
    out = []
    for o in range(weights.shape[0]):
        v = 0.0
        for i in range(weights.shape[1]):
            v += x[i] * float(weights[o, i])
        if bn is not None:
            scales, mean, var = bn
            v = (v - float(mean[o])) / math.sqrt(float(var[o]) + .00001)
            v *= float(scales[o])
        out.append(act(v + float(biases[o])))
    return out


def crop(x: list[float], c: int, h: int, w: int, out_h: int, out_w: int,
         noadjust: bool) -> list[float]:
    """forward_crop_layer at inference (no flip, centred)."""
    scale, trans = (1.0, 0.0) if noadjust else (2.0, -1.0)
    dh, dw = (h - out_h) // 2, (w - out_w) // 2
    out = []
    for k in range(c):
        for i in range(out_h):
            for j in range(out_w):
                out.append(x[(j + dw) + w * ((i + dh) + h * k)] * scale + trans)
    return out


def reorg_cpu(x: list[float], out_w: int, out_h: int, out_c: int, stride: int,
              forward: int) -> list[float]:
    """blas.c reorg_cpu for one image."""
    out = [0.0] * len(x)
    in_c = out_c // (stride * stride)
    for k in range(out_c):
        for j in range(out_h):
            for i in range(out_w):
                in_index = i + out_w * (j + out_h * k)
                c2 = k % in_c
                offset = k // in_c
                w2 = i * stride + offset % stride
                h2 = j * stride + offset // stride
                out_index = w2 + out_w * stride * (h2 + out_h * stride * c2)
                if forward:
                    out[out_index] = x[in_index]
                else:
                    out[in_index] = x[out_index]
    return out


def reorg_old(x, c, h, w, stride):
    """forward_reorg_old_layer (reverse 0): reorg_cpu given the input's own sizes."""
    return reorg_cpu(x, w, h, c, stride, 0)


def reorg3d(x, c, h, w, stride):
    """forward_reorg_layer (reverse 0): reorg_cpu given the output's sizes."""
    return reorg_cpu(x, w // stride, h // stride, c * stride * stride, stride, 0)


def region(x: list[float], h: int, w: int, n: int, classes: int,
           use_softmax: bool) -> list[float]:
    """forward_region_layer at inference, CPU build: flatten (forward), logistic on the
    objectness, softmax over the classes."""
    size = 4 + classes + 1
    layers, cells = size * n, w * h
    out = [0.0] * len(x)
    for c in range(layers):  # flatten(x, w*h, size*n, batch, 1)
        for i in range(cells):
            out[i * layers + c] = x[c * cells + i]
    for i in range(cells * n):
        index = size * i
        out[index + 4] = 1 / (1 + math.exp(-out[index + 4]))
        if use_softmax:
            out[index + 5: index + 5 + classes] = softmax(out[index + 5:], classes, 1)
    return out


def scale_channels(x: list[float], source: list[float], c: int, h: int, w: int,
                   scale_wh: bool) -> list[float]:
    """forward_scale_channels_layer (linear activation); output shaped like ``source``."""
    channel_size, batch_size = w * h, c * w * h
    out = []
    for i in range(c * h * w):
        if scale_wh:
            out.append(x[i % channel_size + (i // batch_size) * channel_size] * source[i])
        else:
            out.append(x[i // channel_size] * source[i])
    return out


def conv_dilated(x: np.ndarray, weights: np.ndarray, biases: np.ndarray, size: int,
                 stride: int, pad: int, dilation: int) -> np.ndarray:
    """forward_convolutional_layer without batch norm, linear: im2col with padding
    ``pad * dilation`` and ``dilation``, output size ``(h + 2 pad - size) / stride + 1``."""
    c, h, w = x.shape
    out_h = (h + 2 * pad - size) // stride + 1
    out_w = (w + 2 * pad - size) // stride + 1
    p = pad * dilation
    out = np.zeros((weights.shape[0], out_h, out_w), np.float64)
    for f in range(weights.shape[0]):
        for oy in range(out_h):
            for ox in range(out_w):
                v = float(biases[f])
                for k in range(c):
                    for ky in range(size):
                        for kx in range(size):
                            iy = oy * stride + ky * dilation - p
                            ix = ox * stride + kx * dilation - p
                            if 0 <= iy < h and 0 <= ix < w:
                                v += float(weights[f, k, ky, kx]) * float(x[k, iy, ix])
                out[f, oy, ox] = v
    return out


def shortcut_multilayer(x: list[float], adds: list[list[float]], weights: list[float] | None,
                        layer_step: int, normalization: str) -> list[float]:
    """blas.c shortcut_multilayer_cpu for one image (linear activation): ``weights`` has
    ``(n + 1) * layer_step`` values (1 per input, or one per input and channel)."""
    src_outputs = len(x)
    n = len(adds)
    step = src_outputs // layer_step if weights else 0
    out = []
    for src_i in range(src_outputs):
        total, max_val = 1.0, -math.inf
        if weights and normalization != "none":
            idx = [src_i // step + i * layer_step for i in range(n + 1)]
            if normalization == "softmax":
                max_val = max(weights[j] for j in idx)
            total = 0.0001
            for j in idx:
                total += max(weights[j], 0) if normalization == "relu" else math.exp(
                    weights[j] - max_val)

        def weight(i):
            v = weights[src_i // step + i * layer_step]
            if normalization == "relu":
                return max(v, 0) / total
            if normalization == "softmax":
                return math.exp(v - max_val) / total
            return v
        v = x[src_i] * weight(0) if weights else x[src_i]
        for i, add in enumerate(adds):
            if src_i < len(add):
                v += add[src_i] * weight(i + 1) if weights else add[src_i]
        out.append(v)
    return out


def local_avgpool(x: list[float], c: int, h: int, w: int, size: int, stride: int,
                  pad: int) -> list[float]:
    """forward_local_avgpool_layer (stride_x = stride_y)."""
    out_h, out_w = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
    offset = -(pad // 2)  # C's -l.pad / 2 for pad >= 0
    out = []
    for k in range(c):
        for i in range(out_h):
            for j in range(out_w):
                total, count = 0.0, 0
                for n in range(size):
                    for m in range(size):
                        cur_h, cur_w = offset + i * stride + n, offset + j * stride + m
                        if 0 <= cur_h < h and 0 <= cur_w < w:
                            count += 1
                            total += x[cur_w + w * (cur_h + h * k)]
                out.append(total / count)
    return out


def conv_xnor(x: np.ndarray, weights: np.ndarray, size: int, stride: int,
              pad: int) -> np.ndarray:
    """forward_convolutional_layer with ``xnor`` (no align_bit_weights, linear, no bias):
    binarize_cpu on the input, binarize_weights per filter (its own c*k*k weights, not the
    layer's count that Darknet's CPU build passes), then im2col + gemm with zero padding."""
    f, c = weights.shape[:2]
    k = c * size * size
    binary = np.zeros_like(weights)
    for n in range(f):
        flat = weights[n].reshape(-1)
        mean = F32(0)
        for i in range(k):
            mean = F32(mean + F32(abs(flat[i])))
        mean = mean / F32(k)
        binary[n] = np.where(weights[n] > 0, mean, -mean)
    signs = np.where(x > 0, 1.0, -1.0)
    _, h, w = x.shape
    out_h, out_w = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    out = np.zeros((f, out_h, out_w))
    for n in range(f):
        for oy in range(out_h):
            for ox in range(out_w):
                v = 0.0
                for ch in range(c):
                    for ky in range(size):
                        for kx in range(size):
                            iy, ix = oy * stride + ky - pad, ox * stride + kx - pad
                            if 0 <= iy < h and 0 <= ix < w:
                                v += float(binary[n, ch, ky, kx]) * signs[ch, iy, ix]
                out[n, oy, ox] = v
    return out


def detection_candidates(predictions: list[float], side: int, num: int, classes: int,
                         sqrt: bool, thresh: float) -> list[tuple]:
    """get_detection_detections with w = h = 1 (relative boxes), in Darknet's order:
    (x, y, w, h, objectness, probs)."""
    out = []
    for i in range(side * side):
        row, col = i // side, i % side
        for n in range(num):
            scale = predictions[side * side * classes + i * num + n]
            box_index = side * side * (classes + num) + (i * num + n) * 4
            p = predictions[box_index: box_index + 4]
            box = ((p[0] + col) / side, (p[1] + row) / side, p[2] ** (2 if sqrt else 1),
                   p[3] ** (2 if sqrt else 1))
            probs = [scale * predictions[i * classes + j] for j in range(classes)]
            out.append(box + (scale, [v if v > thresh else 0.0 for v in probs]))
    return out
