"""The ``Darknet`` model: a cfg built into an ``nn.Module``, layer by layer."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .builder import Shape, build_layers
from .cfg import Cfg, NetSection, YoloSection, parse_cfg, read_cfg
from .layers import Yolo
from .loss import HeadStats, YoloDeltas, darknet_loss
from .weights import LoadReport, WeightsHeader, load_weights, save_weights


class Darknet(nn.Module):
    """A Darknet network built from a cfg.

    ``layers[i]`` is the module of cfg layer ``i`` (``[net]`` not counted), so
    Darknet's layer numbers work unchanged.  In eval mode ``model(x)`` with ``x``
    an ``N x 3 x H x W`` RGB tensor in [0, 1] returns ``N x B x (5+C)``: every
    ``[yolo]`` head in cfg order, each in Darknet's order (anchor, row, column),
    columns cx, cy, w, h in input pixels, objectness and class probabilities.
    In train mode it returns the list of raw ``[yolo]`` input maps.
    """

    def __init__(self, cfg: str | Path | Cfg, width: int | None = None, height: int | None = None):
        super().__init__()
        self.cfg = cfg if isinstance(cfg, Cfg) else read_cfg(cfg)
        modules, shapes = build_layers(self.cfg, width, height)
        self.layers = nn.ModuleList(modules)
        self.shapes: list[Shape] = shapes
        self.width = width or self.cfg.net.width
        self.height = height or self.cfg.net.height
        self.header = WeightsHeader()
        self.names: list[str] | None = None  # class names, when a checkpoint carries them
        referenced = {i for m in modules for i in getattr(m, "sources", ())}
        self._keep = tuple(i in referenced for i in range(len(modules)))
        self._yolo = tuple(isinstance(m, Yolo) for m in modules)
        self._deltas = [YoloDeltas(modules[i], sec, i)
                        for i, sec in zip(self.yolo_indices, self.yolo_sections)]
        self.loss_stats: list[HeadStats] = []  # figures of the last loss computed

    @classmethod
    def from_text(cls, text: str, path: str = "<string>", **kw) -> Darknet:
        """Build a model from cfg text."""
        return cls(parse_cfg(text, path), **kw)

    # ------------------------------------------------------------------ info
    @property
    def net(self) -> NetSection:
        """The parsed ``[net]`` section."""
        return self.cfg.net

    @property
    def cfg_text(self) -> str:
        return self.cfg.text

    @property
    def seen(self) -> int:
        """Images seen in training, as stored in the ``.weights`` header."""
        return self.header.seen

    @seen.setter
    def seen(self, value: int) -> None:
        self.header.seen = int(value)

    @property
    def num_classes(self) -> int:
        return self.yolo_sections[0].classes

    @property
    def yolo_indices(self) -> list[int]:
        return [i for i, y in enumerate(self._yolo) if y]

    @property
    def yolo_sections(self) -> list[YoloSection]:
        return self.cfg.yolo_layers

    # ------------------------------------------------------------------ weights
    def load_weights(self, path: str | Path, upto: int | None = None) -> LoadReport:
        """Load a Darknet ``.weights`` file (see ``darknet_py.weights.load_weights``)."""
        return load_weights(self, path, upto)

    def save_weights(self, path: str | Path, upto: int | None = None) -> None:
        """Save as a Darknet ``.weights`` file, byte-identical to what was loaded if unchanged."""
        save_weights(self, path, upto)

    # ------------------------------------------------------------------ forward
    def loss(self, heads: list[Tensor], targets: Tensor,
             net_size: tuple[int, int]) -> tuple[Tensor, list[HeadStats]]:
        """Darknet's loss of raw ``[yolo]`` inputs (see ``darknet_py.loss``): the value
        ``train_network`` returns, gradient ``-delta`` on each head, and the figures."""
        return darknet_loss(heads, self._deltas, targets, net_size)

    def forward(self, x: Tensor, targets: Tensor | None = None) -> Tensor | list[Tensor]:
        """Eval: decoded detections.  Train: the raw ``[yolo]`` inputs, or with ``targets``
        ((M, 6) rows ``[image, class, cx, cy, w, h]``, relative) Darknet's loss."""
        if targets is not None and not self.training:
            raise ValueError("targets are for train mode (model.train())")
        net_size = (x.shape[3], x.shape[2])
        outputs: list[Tensor | None] = []
        heads: list[Tensor] = []
        for layer, keep, is_yolo in zip(self.layers, self._keep, self._yolo):
            x = layer(x, outputs)
            outputs.append(x if keep else None)
            if is_yolo:
                heads.append(x)
        if self.training:
            if targets is None:
                return heads
            loss, self.loss_stats = self.loss(heads, targets, net_size)
            return loss
        return torch.cat(heads, 1)
