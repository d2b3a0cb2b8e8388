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

from .assign import Truths, ship
from .gaussian_deltas import GaussianDeltas
from .region_deltas import RegionDeltas
from .stats import HeadStats
from .yolo_deltas import YoloDeltas


class DeltaGradient(torch.autograd.Function):
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
    """The figures of one loss evaluation, still on the device: per head a float64 vector
    of sums (its kind's layout: ``[yolo]``'s tot_iou, tot_iou_loss, tot_giou_loss,
    sum(delta^2) and its part without box entries), with the assignment counts known on
    the host.  ``stats()`` fetches them."""

    sums: list[Tensor]
    counts: list[int]
    heads: list
    batch: int

    def flat(self) -> Tensor:
        """Every head's sums in one vector, to fetch with one device transfer."""
        return torch.cat([s.reshape(-1) for s in self.sums])

    def costs(self) -> Tensor:
        """Darknet's ``l.cost`` of each head, as a tensor."""
        return torch.stack([head.cost(count, sums) for head, count, sums in
                            zip(self.heads, self.counts, self.sums)])

    def stats(self, values: list[float] | None = None) -> list[HeadStats]:
        """The per-head figures as numbers (``values``: ``flat().tolist()`` if already
        fetched, to share one device transfer)."""
        values = self.flat().tolist() if values is None else values
        out, k = [], 0
        for head, count, sums in zip(self.heads, self.counts, self.sums):
            out.append(head.stats(count, values[k: k + sums.numel()], self.batch))
            k += sums.numel()
        return out


#: the deltas of each head kind that trains, by section kind
HEAD_DELTAS = {"yolo": YoloDeltas, "region": RegionDeltas, "Gaussian_yolo": GaussianDeltas}


class DarknetLoss:
    """Darknet's loss over a model's detection heads (``Darknet.darknet_loss()`` builds
    it): ``[yolo]``, ``[region]`` and ``[Gaussian_yolo]``, each as its ``forward_*_layer``
    writes ``l.delta`` and ``l.cost``.

    ``compute(heads, targets, net_size, seen)`` takes the raw head inputs, ``targets``
    (M, 6) ``[image, class, cx, cy, w, h]`` (best left on the CPU, where the assignment
    is planned), the network input (width, height) and Darknet's ``net.seen`` (images
    trained so far, counting this mini-batch; ``[region]`` pulls boxes to their anchors
    below 12800); it returns the value ``train_network`` returns (``mean(l.cost) / batch``,
    a tensor whose gradient on each head is ``-delta``) and the ``LossFigures``.  The
    ``[yolo]`` heads do not wait for the device; the others loop over truths on the host.
    Calling the loss does the same and fetches the figures as ``HeadStats``.
    """

    def __init__(self, layers: list, sections: list, indices: list[int]):
        self.sections = sections
        self.indices = indices
        self.heads = [HEAD_DELTAS[section.kind](layer, section, index)
                      for layer, section, index in zip(layers, sections, indices)]

    def compute(self, heads: list[Tensor], targets: Tensor, net_size: tuple[int, int],
                seen: int = 0) -> tuple[Tensor, LossFigures]:
        batch = heads[0].shape[0]
        plans = self._plan(heads, targets, net_size)
        pairs: list[Tensor] = []
        sums, counts = [], []
        for x, head, plan in zip(heads, self.heads, plans):
            d, head_sums, count = head(x, targets, plan, net_size, seen)
            pairs += [x, d]
            sums.append(head_sums)
            counts.append(count)
        figures = LossFigures(sums, counts, self.heads, batch)
        value = (figures.costs().mean() / batch).float()
        return DeltaGradient.apply(value, *pairs), figures

    def _plan(self, heads: list[Tensor], targets: Tensor, net_size: tuple[int, int]) -> list:
        """Per ``[yolo]`` head: the batch's truths and its assignments, on the host and
        shipped to the device (one copy for the heads that share a truth list)."""
        batch, device = heads[0].shape[0], heads[0].device
        groups: dict[tuple[int, int], list[int]] = {}
        for k, head in enumerate(self.heads):
            if isinstance(head, YoloDeltas):  # the others read the targets themselves
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

    def __call__(self, heads: list[Tensor], targets: Tensor, net_size: tuple[int, int],
                 seen: int = 0) -> tuple[Tensor, list[HeadStats]]:
        loss, figures = self.compute(heads, targets, net_size, seen)
        return loss, figures.stats()
