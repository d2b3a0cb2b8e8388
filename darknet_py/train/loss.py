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

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..cfg import YoloSection
from ..nn.heads import Yolo
from .assign import Truths, ship
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


@dataclass
class LossFigures:
    """The figures of one loss evaluation, still on the device: per head tot_iou,
    tot_iou_loss, tot_giou_loss, sum(delta^2) and its part without box entries (H, 5),
    with the assignment counts known on the host.  ``stats()`` fetches them."""

    sums: Tensor
    counts: list[int]
    sections: list[YoloSection]
    indices: list[int]
    batch: int

    def costs(self) -> Tensor:
        """Darknet's ``l.cost`` of each head, as a tensor."""
        return torch.stack([_cost(s, count, *sums) for sums, s, count in
                            zip(self.sums, self.sections, self.counts)])

    def stats(self, values: list[list[float]] | None = None) -> list[HeadStats]:
        """The per-head figures as numbers (``values``: ``sums.tolist()`` if already
        fetched, to share one device transfer)."""
        values = self.sums.tolist() if values is None else values
        out = []
        for sums, s, count, index in zip(values, self.sections, self.counts, self.indices):
            iou, _, _, total, no_box = sums
            class_loss = s.obj_normalizer * no_box
            out.append(HeadStats(index, iou / max(count, 1), count, class_loss / self.batch,
                                 (total - class_loss) / self.batch, total / self.batch,
                                 _cost(s, count, *sums)))
        return out


def _cost(s: YoloSection, count: int, iou, iou_loss, giou_loss, total, no_box):
    """``l.cost`` from a head's sums (numbers or tensors): sum(delta^2) for mse (or without
    show_details), else the averaged IoU (GIoU) loss plus obj_normalizer * sum(delta^2)
    without the box entries."""
    if s.iou_loss == "mse" or not s.show_details:
        return total
    part = giou_loss if s.iou_loss == "giou" else iou_loss
    return s.iou_normalizer * part / max(count, 1) + s.obj_normalizer * no_box


class DarknetLoss:
    """Darknet's loss over a model's ``[yolo]`` heads (``Darknet.darknet_loss()`` builds it).

    ``compute(heads, targets, net_size)`` takes the raw ``[yolo]`` inputs, ``targets``
    (M, 6) ``[image, class, cx, cy, w, h]`` (best left on the CPU, where the assignment
    is planned) and the network input (width, height); it returns the value
    ``train_network`` returns (``mean(l.cost) / batch``, a tensor whose gradient on each
    head is ``-delta``) and the ``LossFigures``, without waiting for the device.
    Calling the loss does the same and fetches the figures as ``HeadStats``.
    """

    def __init__(self, layers: list[Yolo], sections: list[YoloSection], indices: list[int]):
        self.sections = sections
        self.indices = indices
        self.heads = [YoloDeltas(layer, section, index)
                      for layer, section, index in zip(layers, sections, indices)]

    def compute(self, heads: list[Tensor], targets: Tensor,
                net_size: tuple[int, int]) -> tuple[Tensor, LossFigures]:
        batch = heads[0].shape[0]
        plans = self._plan(heads, targets, net_size)
        pairs: list[Tensor] = []
        sums, counts = [], []
        for x, head, (truths, dev_truths, jobs, dev_jobs) in zip(heads, self.heads, plans):
            d, head_sums = head(x, truths, dev_truths, jobs, dev_jobs, net_size)
            pairs += [x, d]
            sums.append(head_sums)
            counts.append(len(jobs))
        figures = LossFigures(torch.stack(sums), counts, self.sections, self.indices, batch)
        value = (figures.costs().mean() / batch).float()
        return _DarknetLoss.apply(value, *pairs), figures

    def _plan(self, heads: list[Tensor], targets: Tensor, net_size: tuple[int, int]) -> list:
        """Per head: the batch's truths and its assignments, on the host and shipped to the
        device (one copy for the heads that share a truth list)."""
        batch, device = heads[0].shape[0], heads[0].device
        groups: dict[tuple[int, int], list[int]] = {}
        for k, head in enumerate(self.heads):
            groups.setdefault((head.s.classes, head.s.max), []).append(k)
        plans: list = [None] * len(heads)
        for key, members in groups.items():
            truths = Truths.from_targets(targets, batch, *key)
            jobs = [self.heads[k].assign(truths, (heads[k].shape[3], heads[k].shape[2]),
                                         net_size) for k in members]
            dev_truths, dev_jobs = ship(truths, [(jb, np.zeros(len(jb), bool)) for jb in jobs],
                                        device)
            for k, jb, djb in zip(members, jobs, dev_jobs):
                plans[k] = (truths, dev_truths, jb, djb)
        return plans

    def __call__(self, heads: list[Tensor], targets: Tensor,
                 net_size: tuple[int, int]) -> tuple[Tensor, list[HeadStats]]:
        loss, figures = self.compute(heads, targets, net_size)
        return loss, figures.stats()
