"""Softmax-tree arithmetic (yolo9000's WordTree, ``src/tree.c`` and ``softmax_tree``):
the softmax within each group of classes and the products along each class's parents."""

from __future__ import annotations

import torch
from torch import Tensor


def group_softmax(x: Tensor, group: Tensor, groups: int, temperature: float = 1.0) -> Tensor:
    """``softmax_tree``: Darknet's softmax (``exp(v/t - max)``, divided by the sum) within
    each group, over the last dim of ``x`` (..., C); ``group`` (C,) gives each class's
    group, a long tensor on ``x``'s device."""
    v = x / temperature if temperature != 1 else x
    index = group.expand(v.shape)
    shape = (*v.shape[:-1], groups)
    top = torch.full(shape, float("-inf"), dtype=v.dtype, device=v.device)
    top = top.scatter_reduce(-1, index, v, "amax")
    e = torch.exp(v - top.gather(-1, index))
    total = torch.zeros(shape, dtype=v.dtype, device=v.device).scatter_add(-1, index, e)
    return e / total.gather(-1, index)


def hierarchy_products(p: Tensor, parent: Tensor, levels: list[Tensor]) -> Tensor:
    """``hierarchy_predictions``: each class's probability times its parent's product, over
    the last dim of ``p`` (..., C).  ``levels`` lists the classes of each depth (from 1),
    so the products form in Darknet's order (parents first)."""
    out = p.clone()
    for members in levels:
        out[..., members] = out[..., members] * out[..., parent[members]]
    return out
