"""Box formulas, one implementation each, shared by layers, loss, NMS, evaluation and anchors.

Boxes are tensors ``(..., 4)``: cx, cy, w, h (any unit, any float dtype; the
arithmetic is done in the input's dtype, so float32 inputs give Darknet's float
results).  ``box_iou`` is elementwise with broadcasting: pass ``a[:, None]`` and
``b[None]`` (or use ``pairwise_iou``) for an N x M matrix.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..cfg.base import IOU_KINDS


def corners(b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(left, top, right, bottom) of cx, cy, w, h boxes."""
    half_w, half_h = b[..., 2] / 2, b[..., 3] / 2
    return b[..., 0] - half_w, b[..., 1] - half_h, b[..., 0] + half_w, b[..., 1] + half_h


def box_iou(a: Tensor, b: Tensor, kind: str = "iou", beta: float = 0.6) -> Tensor:
    """Darknet's overlap measures, elementwise over broadcast boxes.

    ``iou`` (``box_iou``; 0 where the boxes do not overlap or the union is 0),
    ``giou`` (``box_giou``), ``diou`` (``iou - (d^2/c^2)^beta``: ``box_diou`` with
    Darknet's beta 0.6, ``box_diounms`` with the cfg's ``beta_nms``) and ``ciou``
    (``box_ciou``).  Where the enclosing box is empty every kind is the IoU.
    """
    al, at, ar, ab = corners(a)
    bl, bt, br, bb = corners(b)
    iw = torch.minimum(ar, br) - torch.maximum(al, bl)
    ih = torch.minimum(ab, bb) - torch.maximum(at, bt)
    inter = torch.where((iw < 0) | (ih < 0), torch.zeros_like(iw), iw * ih)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    iou = inter / torch.where(union == 0, torch.ones_like(union), union)
    iou = torch.where((inter == 0) | (union == 0), torch.zeros_like(iou), iou)
    if kind == "iou":
        return iou
    cw = torch.maximum(ar, br) - torch.minimum(al, bl)
    ch = torch.maximum(ab, bb) - torch.minimum(at, bt)
    if kind == "giou":
        c = cw * ch
        return torch.where(c == 0, iou, iou - (c - union) / torch.where(c == 0, 1, c))
    c = cw * cw + ch * ch
    safe_c = torch.where(c == 0, torch.ones_like(c), c)
    d = (a[..., 0] - b[..., 0]) ** 2 + (a[..., 1] - b[..., 1]) ** 2
    if kind == "diou":
        return torch.where(c == 0, iou, iou - torch.pow(d / safe_c, beta))
    if kind == "ciou":
        _, v, alpha = ciou_aspect(a, b, iou)
        return torch.where(c == 0, iou, iou - (d / safe_c + alpha * v))
    raise ValueError(f"unknown IoU kind {kind!r}; expected one of {', '.join(IOU_KINDS)}")


def ciou_aspect(a: Tensor, b: Tensor, iou: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """CIoU's aspect-ratio term of boxes ``a`` (predicted) and ``b`` (truth) with IoU
    ``iou``, as ``box_ciou`` and ``dx_box_iou`` compute it: the difference of the
    ``atan(w / h)`` (truth minus predicted), ``v`` and its weight ``alpha``."""
    atan_diff = torch.atan(b[..., 2] / b[..., 3]) - torch.atan(a[..., 2] / a[..., 3])
    v = 4 / (math.pi ** 2) * atan_diff ** 2
    return atan_diff, v, v / (1 - iou + v + 0.000001)


def pairwise_iou(a: Tensor, b: Tensor, kind: str = "iou", beta: float = 0.6) -> Tensor:
    """``box_iou`` of every box in (N, 4) ``a`` with every box in (M, 4) ``b`` -> (N, M)."""
    return box_iou(a[:, None], b[None, :], kind, beta)


def shape_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of (N, 2) and (M, 2) width/height pairs placed on one centre -> (N, M).

    Anchor matching (``forward_yolo_layer``'s best anchor) and ``calc_anchors``'
    k-means distance both compare shapes only."""
    zeros_a, zeros_b = torch.zeros_like(a), torch.zeros_like(b)
    return pairwise_iou(torch.cat([zeros_a, a], -1), torch.cat([zeros_b, b], -1))


def yolo_boxes(p: Tensor, anchors: Tensor, net_w: float, net_h: float,
               new_coords: bool) -> Tensor:
    """Darknet's ``get_yolo_box`` for every cell of a ``[yolo]`` output.

    ``p``: the layer's activated output (N, A, 5+C, H, W) (``Yolo.activate``);
    ``anchors``: (A, 2) width, height in network-input pixels.  Returns (N, A, H, W, 4)
    cx, cy, w, h relative to the network input: ``((col, row) + xy) / grid`` and
    ``exp(t) * anchor / net`` (``new_coords``: ``t * t * 4 * anchor / net``).
    """
    _, na, _, h, w = p.shape
    gy, gx = torch.meshgrid(torch.arange(h, device=p.device, dtype=p.dtype),
                            torch.arange(w, device=p.device, dtype=p.dtype), indexing="ij")
    anchors = anchors.to(device=p.device, dtype=p.dtype)
    aw = anchors[:, 0].view(1, na, 1, 1) / net_w
    ah = anchors[:, 1].view(1, na, 1, 1) / net_h
    tw, th = p[:, :, 2], p[:, :, 3]
    if new_coords:
        bw, bh = tw * tw * 4 * aw, th * th * 4 * ah
    else:
        bw, bh = torch.exp(tw) * aw, torch.exp(th) * ah
    return torch.stack([(gx + p[:, :, 0]) / w, (gy + p[:, :, 1]) / h, bw, bh], -1)


def letterbox_size(im_w: int, im_h: int, w: int, h: int) -> tuple[int, int]:
    """Size of an ``im_w x im_h`` image inside a ``w x h`` letterbox (Darknet's integers)."""
    if w / im_w < h / im_h:
        return w, (im_h * w) // im_w
    return (im_w * h) // im_h, h


def correct_boxes(boxes: Tensor, net_size: tuple[int, int], image_size: tuple[int, int],
                  letter_box: bool) -> Tensor:
    """Darknet's ``correct_yolo_boxes``: boxes relative to the network input -> relative to
    the image, undoing the letterbox.  Sizes are (width, height)."""
    if not letter_box:
        return boxes
    net_w, net_h = net_size
    new_w, new_h = letterbox_size(image_size[0], image_size[1], net_w, net_h)
    dw, dh = (net_w - new_w) / 2.0 / net_w, (net_h - new_h) / 2.0 / net_h
    rw, rh = new_w / net_w, new_h / net_h
    return torch.stack([(boxes[:, 0] - dw) / rw, (boxes[:, 1] - dh) / rh,
                        boxes[:, 2] / rw, boxes[:, 3] / rh], 1)


def clip_corners(boxes: Tensor, size: tuple[float, float], one_based: bool = False
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Corners of cx, cy, w, h boxes clipped to an image of ``size`` (width, height), as
    Darknet's result writers do: 0-based (COCO JSON) or 1-based (VOC files) pixels."""
    lo = 1.0 if one_based else 0.0
    left, top, right, bottom = corners(boxes)
    return (torch.clamp(left + lo, min=lo), torch.clamp(top + lo, min=lo),
            torch.clamp(right + lo, max=size[0]), torch.clamp(bottom + lo, max=size[1]))


def clip_non_finite(boxes: Tensor) -> Tensor:
    """(N, 4) relative cx, cy, w, h: a row with a NaN or infinite value becomes the part of
    its box inside the image (edges clipped to [0, 1]; a NaN edge is the image's edge), as
    Darknet's ``draw_detections`` clips boxes to the image.  Finite rows are unchanged.
    (An untrained head or a flipped bit makes ``exp(tw)`` overflow to inf.)"""
    bad = ~torch.isfinite(boxes).all(1)
    if not bool(bad.any()):
        return boxes
    left, top, right, bottom = corners(boxes[bad].double())
    left, top = (torch.nan_to_num(v, nan=0.0).clamp(0, 1) for v in (left, top))
    right, bottom = (torch.nan_to_num(v, nan=1.0).clamp(0, 1) for v in (right, bottom))
    out = boxes.clone()
    out[bad] = torch.stack([(left + right) / 2, (top + bottom) / 2, right - left,
                            bottom - top], 1).to(boxes.dtype)
    return out
