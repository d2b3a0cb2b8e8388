"""A softmax tree (``tree=``, yolo9000) as module buffers, for ``[softmax]`` and
``[region]``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..ops.tree import group_softmax, hierarchy_products


class TreeBuffers(nn.Module):
    """A softmax tree as tensors that move with the model: each class's group and parent,
    and the classes of each depth."""

    def __init__(self, tree, temperature: float = 1.0):
        super().__init__()
        self.groups, self.temperature = len(tree.group_size), temperature
        self.register_buffer("group", torch.tensor(tree.group_index()), persistent=False)
        self.register_buffer("parent", torch.tensor(tree.parent).clamp(min=0),
                             persistent=False)
        depth = torch.tensor(tree.depth())
        self.levels = int(depth.max()) if len(depth) else 0
        for d in range(1, self.levels + 1):
            self.register_buffer(f"level{d}", torch.nonzero(depth == d).flatten(),
                                 persistent=False)

    def softmax(self, x: Tensor) -> Tensor:
        """``softmax_tree`` over the last dim."""
        return group_softmax(x, self.group, self.groups, self.temperature)

    def top_class(self, p: Tensor) -> Tensor:
        """get_region_boxes without a map: the products along the parents
        (``hierarchy_predictions``), of which only the last above .5 stays."""
        levels = [getattr(self, f"level{d}") for d in range(1, self.levels + 1)]
        cum = hierarchy_products(p, self.parent, levels)
        index = torch.arange(cum.shape[-1], device=cum.device)
        last = torch.where(cum > .5, index, torch.full_like(index, -1)).amax(-1, keepdim=True)
        return torch.where(index == last, cum, torch.zeros_like(cum))
