"""Darknet's ``[yolo]`` training loss: the deltas of ``forward_yolo_layer``.

Darknet does not differentiate a scalar: each ``[yolo]`` layer writes a
``delta`` (the negative gradient on its input) and reports a cost.  Here the
deltas are computed the same way and attached to the graph by an autograd
function whose backward returns exactly ``-delta``, so ``loss.backward()``
gives Darknet's gradients and ``loss`` is the value Darknet's
``train_network`` returns (mean ``[yolo]`` cost over the mini-batch size).

Per image and head (``process_batch`` in Darknet's yolo_layer.c):

1. every cell: objectness pushed to 0, unless its box overlaps a truth by more
   than ``ignore_thresh`` (and some class scores > 0.25); a box overlapping a
   truth by more than ``truth_thresh`` is trained as that truth;
2. every truth: the anchor of best shape (and, with ``iou_thresh``, every
   other masked anchor of IoU above it) in the truth's cell gets box, objectness
   and class deltas; several truths in one cell add their box deltas;
3. with ``iou_thresh`` the box deltas of a cell are averaged over its classes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cfg import YoloSection
from ..nn.layers import Yolo
from .stats import HeadStats
from .yolo_deltas import YoloDeltas


class _DarknetLoss(torch.autograd.Function):
    """Returns ``value``; its backward gives each head input ``-delta`` (times the
    incoming gradient), as Darknet's backward_yolo_layer adds ``delta``."""

    @staticmethod
    def forward(ctx, value: Tensor, *heads_and_deltas: Tensor) -> Tensor:
        ctx.save_for_backward(*heads_and_deltas[1::2])
        return value.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        out: list[Tensor | None] = [None]  # no gradient for value
        for d in ctx.saved_tensors:
            out += [-d * grad.to(d.dtype), None]  # (head, delta) pairs
        return tuple(out)


def split_targets(targets: Tensor, batch: int) -> list[Tensor]:
    """(M, 6) ``[image, class, cx, cy, w, h]`` rows -> per image (T, 5), rows kept in order."""
    targets = targets.detach()
    image = targets[:, 0].long() if targets.numel() else targets.new_zeros(0, dtype=torch.long)
    return [targets[image == b, 1:6] for b in range(batch)]


class DarknetLoss:
    """Darknet's loss over a model's ``[yolo]`` heads (``Darknet.darknet_loss()`` builds it).

    Calling it with the raw ``[yolo]`` inputs ``heads``, ``targets`` (M, 6) and the
    network input ``net_size`` (width, height) returns the value ``train_network``
    returns (``mean(l.cost) / batch``), whose gradient on each head is ``-delta``, and
    each head's printed figures.
    """

    def __init__(self, layers: list[Yolo], sections: list[YoloSection], indices: list[int]):
        self.heads = [YoloDeltas(layer, section, index)
                      for layer, section, index in zip(layers, sections, indices)]

    def __call__(self, heads: list[Tensor], targets: Tensor,
                 net_size: tuple[int, int]) -> tuple[Tensor, list[HeadStats]]:
        batch = heads[0].shape[0]
        truths = split_targets(targets, batch)
        pairs: list[Tensor] = []
        stats = []
        for x, head in zip(heads, self.heads):
            d, st = head(x, truths, net_size)
            pairs += [x, d]
            stats.append(st)
        value = torch.tensor(sum(st.cost for st in stats) / len(stats) / batch,
                             dtype=torch.float32, device=heads[0].device)
        return _DarknetLoss.apply(value, *pairs), stats
