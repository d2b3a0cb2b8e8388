"""Darknet's classifier cost: ``[softmax]`` (``softmax_x_ent``: delta ``truth - p``, cost
``-log p`` where the truth is not 0) and a ``[cost]`` layer after it (``l2``: delta and
cost from ``truth - p``; ``smooth``: ``smooth_l1``), as ``forward_softmax_layer`` and
``forward_cost_layer`` write them.

The ``[cost]`` layer adds ``scale`` times its delta to the softmax's, and the softmax
hands the sum to the layer before unchanged (``backward_softmax_layer``), so the logits
get ``(1 + scale) * (truth - p)`` with sse.  The value is ``train_network``'s: the mean
cost of the layers that have one, over the mini-batch size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import CfgError
from .loss import LossFigures, DeltaGradient
from .stats import HeadStats


def _cost_delta(kind: str, p: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """(delta, error) of forward_cost_layer: smooth_l1_cpu for ``smooth``, l2_cpu else."""
    diff = truth - p
    if kind == "smooth":
        small = diff.abs() < 1
        return (torch.where(small, diff, diff.sign()),
                torch.where(small, diff * diff, 2 * diff.abs() - 1))
    return diff, diff * diff


class ClassifierLoss:
    """The cost of a classifier cfg ending in ``[softmax]`` (and optionally ``[cost]``).

    ``compute(outputs, truth, net_size, seen)`` takes the train-mode model output (the
    softmax's, (N, classes)) and ``truth`` (N, classes); it returns the value (gradient on
    the output ``-delta``) and the ``LossFigures``, as ``DarknetLoss`` does.
    """

    def __init__(self, model):
        layers = model.cfg.layers
        last = len(layers) - 1
        self.cost = layers[last] if layers and layers[last].kind == "cost" else None
        index = last - 1 if self.cost is not None else last
        if index < 0 or layers[index].kind != "softmax":
            raise CfgError("classifier training needs a cfg that ends in [softmax] (and "
                           "optionally [cost]), as Darknet's classifier cfgs do", model.cfg.path)
        self.index = index

    def compute(self, outputs: list[Tensor], truth: Tensor, net_size: tuple[int, int],
                seen: int = 0) -> tuple[Tensor, LossFigures]:
        p = outputs[0]
        n = p.shape[0]
        with torch.autocast(p.device.type, enabled=False):
            prob = p.detach().float().reshape(n, -1)
            t = truth.to(prob.device, torch.float32).reshape(n, -1)
            if t.shape != prob.shape:
                raise ValueError(f"truth {tuple(t.shape)} does not fit the output "
                                 f"{tuple(prob.shape)}")
            delta = t - prob
            costs = [torch.where(t != 0, -torch.log(prob), torch.zeros_like(prob)).sum()]
            if self.cost is not None:
                d, error = _cost_delta(self.cost.type, prob, t)
                delta = delta + self.cost.scale * d
                costs.append(error.sum())
        sums = torch.stack(costs).double()
        figures = LossFigures([sums], [n], [self], n)
        value = (sums.mean() / n).float()
        return DeltaGradient.apply(value, p, delta.reshape(p.shape).to(p.dtype)), figures

    def cost(self, count: int, sums: Tensor) -> Tensor:
        """The mean of the softmax's and the cost layer's ``l.cost``."""
        return sums.mean()

    def stats(self, count: int, values: list[float], batch: int) -> HeadStats:
        """The costs per image: ``class_loss`` the softmax's, ``iou_loss`` the cost
        layer's (Darknet prints neither for classifiers)."""
        xent = values[0]
        other = values[1] if len(values) > 1 else 0.0
        return HeadStats(self.index, 0.0, count, xent / batch, other / batch,
                         (xent + other) / batch, sum(values) / len(values))
