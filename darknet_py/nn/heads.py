"""Detection heads: ``[yolo]``, ``[region]`` (YOLOv2), ``[Gaussian_yolo]`` and
``[detection]`` (YOLOv1).

A head's output is never read by another layer; in eval mode ``model(x)`` concatenates the
decoded heads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..ops.boxes import yolo_boxes
from .layers import DarknetLayer
from .registry import BuildContext, Shape, register
from .tree import TreeBuffers

#: head kinds whose ``decode`` gives detection candidates (``model(x)`` in eval mode)
DECODED_HEADS = ("yolo", "region", "Gaussian_yolo", "detection")


def _check_filters(s, inp: Shape, coords: int) -> None:
    """A one-line error unless the layer before has (classes + coords) filters per masked
    anchor."""
    expected = len(s.mask) * (s.classes + coords)
    if inp.c != expected:
        raise s.error(f"the layer before has filters={inp.c}, but classes={s.classes} and "
                      f"{len(s.mask)} masked anchors need filters=(classes+{coords})*"
                      f"{len(s.mask)}={expected}", "classes")


class _Head(DarknetLayer):
    """What every detection head does: the raw map in training (the loss reads it), its
    ``decode``d candidates at inference, and ``activate`` as Darknet's ``l.output``.
    ``final_scores``: the class columns are the probabilities as they are (the objectness
    column only gates them), not to be multiplied by the objectness."""

    final_scores = False

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        if self.training:
            return x
        return self.decode(x)

    def decode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def activate(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def darknet_output(self, x: Tensor, y: Tensor) -> Tensor:
        return self.activate(x).reshape(x.shape[0], -1)  # forward_*_layer's l.output


@register("yolo", head=True)
class Yolo(_Head):
    """``[yolo]``: a detection head.

    In training mode it returns its input (the raw map the loss reads).  In eval
    mode it returns ``(N, A*H*W, 5+C)`` in Darknet's memory order (anchor, row,
    column): cx, cy, w, h in network-input pixels, objectness and per-class
    probability, decoded as ``forward_yolo_layer`` + ``get_yolo_box``:
    ``new_coords=0`` applies the logistic to x, y, obj and classes and uses
    ``exp(t) * anchor`` for the size; ``new_coords=1`` takes the conv's logistic
    output as is and uses ``(2t)^2 * anchor``.  Both scale x, y by
    ``scale_x_y`` around the cell centre.
    """

    def __init__(self, anchors: list[tuple[float, float]], classes: int,
                 net_size: tuple[int, int], scale_x_y: float = 1.0, new_coords: bool = False,
                 grid: tuple[int, int] | None = None):
        super().__init__()
        self.num_anchors = len(anchors)
        self.classes = classes
        self.net_size = net_size  # (width, height) of the network input it was built for
        self.grid = grid  # (width, height) of its input at that size; None: not known
        self.scale_x_y = scale_x_y
        self.new_coords = bool(new_coords)
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32),
                             persistent=False)

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        _check_filters(s, inp, 5)
        module = cls(s.masked_anchors, s.classes, (ctx.net_w, ctx.net_h), s.scale_x_y,
                     bool(s.new_coords), (inp.w, inp.h))
        return module, inp

    def activate(self, x: Tensor) -> Tensor:
        """Darknet's ``l.output`` of this layer, shaped (N, A, 5+C, H, W)."""
        n, _, h, w = x.shape
        p = x.reshape(n, self.num_anchors, 5 + self.classes, h, w)
        if not self.new_coords:
            p = torch.cat([torch.sigmoid(p[:, :, 0:2]), p[:, :, 2:4],
                           torch.sigmoid(p[:, :, 4:])], 2)
        if self.scale_x_y != 1.0:
            s = self.scale_x_y
            p = torch.cat([p[:, :, 0:2] * s - 0.5 * (s - 1), p[:, :, 2:]], 2)
        return p

    def input_size(self, h: int, w: int) -> tuple[float, float]:
        """(width, height) of the network input that gives an ``h`` x ``w`` grid here: the
        built size scaled by the grid, as ``resize_network`` sets ``net.w``, ``net.h``."""
        net_w, net_h = self.net_size
        if self.grid is None or (w, h) == self.grid:
            return net_w, net_h
        return net_w * w / self.grid[0], net_h * h / self.grid[1]

    def boxes(self, p: Tensor) -> Tensor:
        """(N, A, H, W, 4) boxes relative to the network input of activated output ``p``
        (the input the grid came from, whatever size the model was built for)."""
        net_w, net_h = self.input_size(p.shape[3], p.shape[4])
        return yolo_boxes(p, self.anchors, net_w, net_h, self.new_coords)

    def decode(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        p = self.activate(x)
        net_w, net_h = self.input_size(h, w)
        b = self.boxes(p)
        boxes = torch.stack([b[..., 0] * net_w, b[..., 1] * net_h, b[..., 2] * net_w,
                             b[..., 3] * net_h], -1)  # N, A, H, W, 4 in input pixels
        out = torch.cat([boxes, p[:, :, 4:].permute(0, 1, 3, 4, 2)], -1)  # N, A, H, W, 5+C
        return out.reshape(n, self.num_anchors * h * w, 5 + self.classes)

    def extra_repr(self) -> str:
        return (f"anchors={self.anchors.tolist()}, classes={self.classes}, "
                f"net_size={self.net_size}, scale_x_y={self.scale_x_y}, "
                f"new_coords={int(self.new_coords)}")


class _AnchoredHead(_Head):
    """What ``[region]`` and ``[Gaussian_yolo]`` share: anchors, classes, the network size
    their boxes are scaled to, and their grid."""

    def __init__(self, anchors: list[tuple[float, float]], classes: int,
                 net_size: tuple[int, int]):
        super().__init__()
        self.num_anchors, self.classes, self.net_size = len(anchors), classes, net_size
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32),
                             persistent=False)

    def grid(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Column and row of each cell (H, W) and the anchors' widths and heights
        (1, A, 1, 1), in ``x``'s dtype."""
        h, w = x.shape[2:]
        gy, gx = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                                torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
        aw = self.anchors[:, 0].view(1, -1, 1, 1).to(x.dtype)
        ah = self.anchors[:, 1].view(1, -1, 1, 1).to(x.dtype)
        return gx, gy, aw, ah


@register("region", head=True)
class Region(_AnchoredHead):
    """``[region]``: YOLOv2's head.  Its ``l.output`` (forward_region_layer, CPU build)
    is the input transposed to cell-major order, (cells, anchors, 5 + C), with the
    logistic on the objectness and, with ``softmax=1``, the softmax over the classes (with
    ``tree=``, within each group of the softmax tree); x, y, w, h stay raw
    (``get_region_box`` activates them).  In eval mode ``model(x)`` gives its candidates
    as ``[yolo]``'s do (anchor, row, column order), decoded as
    ``custom_get_region_detections``: every cell and anchor is a candidate with
    objectness 1; boxes ``((col, row) + logistic(t)) / grid`` and ``exp(t) * anchor /
    grid`` (anchors in grid cells), class scores ``logistic(obj) * class``.  With a tree
    (``get_region_boxes``) each class is multiplied by its parents' products, only the
    last class above .5 is kept, unscaled, and the candidate counts only where its
    objectness is above the threshold: the objectness column then carries it and
    ``final_scores`` is set.  ``classfix=-1`` zeroes objectness below .5."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        expected = s.num * (s.coords + s.classes + 1)
        if inp.c != expected:
            raise s.error(f"the layer before has filters={inp.c}, but num={s.num} and "
                          f"classes={s.classes} need filters=num*(classes+5)={expected}",
                          "classes")
        anchors = [(s.anchors[2 * k], s.anchors[2 * k + 1]) for k in range(s.num)]
        return cls(anchors, s.classes, bool(s.softmax), (ctx.net_w, ctx.net_h),
                   getattr(s, "softmax_tree", None), s.classfix == -1), inp

    def __init__(self, anchors: list[tuple[float, float]], classes: int, softmax: bool,
                 net_size: tuple[int, int] = (416, 416), tree=None, classfix_gate=False):
        super().__init__(anchors, classes, net_size)
        self.softmax, self.classfix_gate = softmax, classfix_gate
        self.tree = TreeBuffers(tree) if tree is not None else None
        self.final_scores = tree is not None

    def decode(self, x: Tensor) -> Tensor:
        """(N, A*H*W, 5+C): cx, cy, w, h in input pixels, 1 (a tree: the objectness), and
        the class scores."""
        n, _, h, w = x.shape
        p = self.activate(x).reshape(n, h, w, self.num_anchors, -1).permute(0, 3, 1, 2, 4)
        gx, gy, aw, ah = self.grid(x)
        net_w, net_h = self.net_size
        boxes = torch.stack([(gx + torch.sigmoid(p[..., 0])) / w * net_w,
                             (gy + torch.sigmoid(p[..., 1])) / h * net_h,
                             torch.exp(p[..., 2]) * aw / w * net_w,
                             torch.exp(p[..., 3]) * ah / h * net_h], -1)
        scale = p[..., 4:5]
        if self.classfix_gate:
            scale = torch.where(scale < .5, torch.zeros_like(scale), scale)
        if self.tree is None:
            out = torch.cat([boxes, torch.ones_like(scale), scale * p[..., 5:]], -1)
        else:
            out = torch.cat([boxes, scale, self.tree.top_class(p[..., 5:])], -1)
        return out.reshape(n, -1, 5 + self.classes)

    def activate(self, x: Tensor) -> Tensor:
        """(N, H*W*A, 5+C): Darknet's ``l.output`` at inference, in its memory order."""
        n, c, h, w = x.shape
        p = x.reshape(n, c, h * w).transpose(1, 2).reshape(n, h * w * self.num_anchors, -1)
        parts = [p[..., :4], torch.sigmoid(p[..., 4:5])]
        if self.tree is not None:
            parts.append(self.tree.softmax(p[..., 5:]))
        else:
            parts.append(torch.softmax(p[..., 5:], -1) if self.softmax else p[..., 5:])
        return torch.cat(parts, -1)

    def extra_repr(self) -> str:
        return f"anchors={self.anchors.tolist()}, classes={self.classes}"


@register("Gaussian_yolo", head=True)
class GaussianYolo(_AnchoredHead):
    """``[Gaussian_yolo]``: Gaussian YOLOv3's head, per anchor 9 + C maps: x, y, w, h each
    with its uncertainty (mu, sigma), then objectness and classes.  Its ``l.output``
    (forward_gaussian_yolo_layer) has the logistic on every sigma, on x and y (scaled by
    ``scale_x_y`` around the cell centre) and on objectness and classes; w and h stay raw.
    In eval mode ``model(x)`` gives its candidates as ``[yolo]``'s do
    (get_gaussian_yolo_detections): boxes from the mu's, objectness, and class scores
    ``class * (1 - mean of the four sigmas)``."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        _check_filters(s, inp, 9)
        return cls(s.masked_anchors, s.classes, s.scale_x_y, (ctx.net_w, ctx.net_h)), inp

    def __init__(self, anchors: list[tuple[float, float]], classes: int,
                 scale_x_y: float = 1.0, net_size: tuple[int, int] = (416, 416)):
        super().__init__(anchors, classes, net_size)
        self.scale_x_y = scale_x_y

    def decode(self, x: Tensor) -> Tensor:
        """(N, A*H*W, 5+C): cx, cy, w, h in input pixels, objectness, class scores."""
        n, _, h, w = x.shape
        p = self.activate(x).permute(0, 1, 3, 4, 2)  # N, A, H, W, 9+C
        gx, gy, aw, ah = self.grid(x)
        net_w, net_h = self.net_size
        boxes = torch.stack([(gx + p[..., 0]) / w * net_w, (gy + p[..., 2]) / h * net_h,
                             torch.exp(p[..., 4]) * aw, torch.exp(p[..., 6]) * ah], -1)
        uncertainty = (p[..., 1] + p[..., 3] + p[..., 5] + p[..., 7]) / 4
        scores = p[..., 9:] * (1 - uncertainty).unsqueeze(-1)
        out = torch.cat([boxes, p[..., 8:9], scores], -1)
        return out.reshape(n, -1, 5 + self.classes)

    def activate(self, x: Tensor) -> Tensor:
        """(N, A, 9+C, H, W): Darknet's ``l.output`` at inference."""
        n, _, h, w = x.shape
        p = x.reshape(n, self.num_anchors, 9 + self.classes, h, w)
        s = self.scale_x_y
        sig = torch.sigmoid(p)
        xy = sig[:, :, [0, 2]] * s - 0.5 * (s - 1)
        parts = [xy[:, :, :1], sig[:, :, 1:2], xy[:, :, 1:], sig[:, :, 3:4], p[:, :, 4:5],
                 sig[:, :, 5:6], p[:, :, 6:7], sig[:, :, 7:]]
        return torch.cat(parts, 2)


@register("detection", head=True)
class Detection(_Head):
    """``[detection]``: YOLOv1's head.  Its ``l.output`` (forward_detection_layer) is the
    input, with ``softmax=1`` the softmax over each cell's classes: per cell the class
    probabilities, then ``num`` confidences, then ``num`` boxes.  In eval mode
    ``model(x)`` gives its candidates as the other heads do (get_detection_detections):
    box ``((col, row) + xy) / side`` and ``wh`` (squared with ``sqrt=1``), objectness the
    box's confidence, classes the cell's probabilities.  The boxes are relative, as every
    head's: Darknet multiplies them by the image size there and again when it draws
    (a Darknet bug left out)."""

    @classmethod
    def build(cls, s, ctx: BuildContext) -> tuple[nn.Module, Shape]:
        inp = ctx.previous
        expected = s.side * s.side * ((1 + s.coords) * s.num + s.classes)
        if inp.size != expected:
            raise s.error(f"the layer before gives {inp.size} values, but side={s.side}, "
                          f"num={s.num}, coords={s.coords} and classes={s.classes} need "
                          f"side*side*((1+coords)*num+classes)={expected}", "classes")
        if s.coords != 4:
            raise s.error(f"coords={s.coords} is not supported by darknet-py (4 is)", "coords")
        return cls(s.side, s.num, s.classes, bool(s.softmax), bool(s.sqrt),
                   (ctx.net_w, ctx.net_h)), inp

    def __init__(self, side: int, num: int, classes: int, softmax: bool, sqrt: bool,
                 net_size: tuple[int, int] = (448, 448)):
        super().__init__()
        self.side, self.num_anchors, self.classes = side, num, classes
        self.softmax, self.sqrt, self.net_size = softmax, sqrt, net_size

    def head_shape(self, shape: Shape) -> tuple[int, int, int]:
        return self.num_anchors, self.side, self.side

    def decode(self, x: Tensor) -> Tensor:
        """(N, num*side*side, 5+C) in (box, row, column) order: cx, cy, w, h in input
        pixels, the box's confidence, the cell's class probabilities."""
        flat = self.activate(x)
        n, cells, k, c = x.shape[0], self.side * self.side, self.num_anchors, self.classes
        probs = flat[:, : cells * c].reshape(n, 1, cells, c).expand(n, k, cells, c)
        scale = flat[:, cells * c: cells * (c + k)].reshape(n, cells, k).transpose(1, 2)
        boxes = flat[:, cells * (c + k):].reshape(n, cells, k, 4).transpose(1, 2)
        i = torch.arange(cells, device=x.device, dtype=x.dtype)
        col, row = i % self.side, torch.div(i, self.side, rounding_mode="floor")
        wh = boxes[..., 2:] ** 2 if self.sqrt else boxes[..., 2:]
        net_w, net_h = self.net_size
        out = torch.cat([((boxes[..., 0] + col) / self.side * net_w).unsqueeze(-1),
                         ((boxes[..., 1] + row) / self.side * net_h).unsqueeze(-1),
                         wh[..., :1] * net_w, wh[..., 1:] * net_h, scale.unsqueeze(-1),
                         probs], -1)
        return out.reshape(n, k * cells, 5 + c)

    def activate(self, x: Tensor) -> Tensor:
        """(N, outputs): Darknet's ``l.output`` at inference."""
        flat = x.reshape(x.shape[0], -1)
        if not self.softmax:
            return flat
        k = self.side * self.side * self.classes
        probs = torch.softmax(flat[:, :k].reshape(-1, self.side * self.side, self.classes), -1)
        return torch.cat([probs.reshape(-1, k), flat[:, k:]], 1)
