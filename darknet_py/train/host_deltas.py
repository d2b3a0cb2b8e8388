"""What the ``[region]`` and ``[Gaussian_yolo]`` losses share: the truth rows their
``forward_*_layer`` reads, and their place in ``DarknetLoss`` (deltas computed image by
image on the head's device, the figures packed into one vector for one transfer)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from .assign import image_truths

log = logging.getLogger(__name__)


def truth_rows(rows: Tensor, classes: int) -> Tensor:
    """The rows Darknet reads: up to the first with x = 0, classes beyond the cfg's left
    out with Darknet's warning."""
    kept = []
    for r in rows:
        if int(r[4]) >= classes:
            log.warning("a label has class_id=%d >= classes=%d; left out", int(r[4]), classes)
            continue
        if float(r[0]) == 0:
            break
        kept.append(r)
    return torch.stack(kept) if kept else rows.new_zeros((0, 5))


class HostHeadDeltas:
    """One head in ``DarknetLoss`` whose deltas a function computes (``deltas``): its
    ``FIGURES`` (the sums it returns, in order, with ``cost`` among them), the entries
    per anchor before the classes (``ENTRIES``), and ``l.cost``."""

    FIGURES: tuple[str, ...] = ()
    ENTRIES = 5

    def __init__(self, layer, section, index: int):
        self.layer, self.s, self.index = layer, section, index

    def deltas(self, x: Tensor, truths: list[Tensor], net_size: tuple[int, int],
               seen: int) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError

    def __call__(self, x: Tensor, targets: Tensor, plan, net_size: tuple[int, int],
                 seen: int) -> tuple[Tensor, Tensor, int]:
        """Delta shaped like ``x``, the figures (``FIGURES`` order, float64 on ``x``'s
        device) and the assignment count."""
        delta, sums = self.deltas(x, image_truths(targets, x.shape[0], self.s.max), net_size,
                                  seen)
        sums["cells"] = delta.numel() / (self.ENTRIES + self.s.classes)
        values = torch.tensor([sums[k] for k in self.FIGURES], dtype=torch.float64,
                              device=x.device)
        return delta, values, int(sums["count"])

    def cost(self, count: int, sums: Tensor) -> Tensor:
        """``l.cost``: sum(delta^2)."""
        return sums[self.FIGURES.index("cost")]
