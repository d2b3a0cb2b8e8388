"""The ``Darknet`` model: a cfg built into an ``nn.Module``, layer by layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..cfg import Cfg, NetSection, YoloSection, parse_cfg, read_cfg
from ..errors import CfgError
from .builder import Shape, build_layers
from .heads import DECODED_HEADS, Yolo
from .weights import LoadReport, WeightsHeader, load_weights, save_weights

if TYPE_CHECKING:
    from ..train.loss import DarknetLoss, HeadStats


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for one with neither):
    the default device of everything that is handed a model."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


@dataclass(frozen=True)
class LayerPlan:
    """How outputs flow between layers: which outputs a later layer reads (``keep``),
    which outputs each layer is the last to read (``release``, freed once it has run),
    and which layers are detection heads (``[yolo]``, ``[region]``, ``[Gaussian_yolo]``:
    modules with ``decode``)."""

    keep: tuple[bool, ...]
    release: tuple[tuple[int, ...], ...]
    head: tuple[bool, ...]
    output: int = -1  # without heads: the layer whose output ``run`` returns

    @classmethod
    def of(cls, modules: list[nn.Module]) -> LayerPlan:
        last_use: dict[int, int] = {}
        for k, m in enumerate(modules):
            for i in getattr(m, "sources", ()):
                last_use[i] = k
        release: list[list[int]] = [[] for _ in modules]
        for i, k in last_use.items():
            release[k].append(i)
        # get_network_output: the last layer that is not a [cost]
        output = max((k for k, m in enumerate(modules) if getattr(m, "kind", "") != "cost"),
                     default=-1)
        return cls(tuple(i in last_use for i in range(len(modules))),
                   tuple(tuple(r) for r in release),
                   tuple(hasattr(m, "decode") for m in modules), output)

    def run(self, layers: nn.ModuleList, x: Tensor) -> list[Tensor]:
        """The outputs of the detection heads for input ``x``, in cfg order; for a cfg
        without them, the network's output (``output``) alone."""
        outputs: list[Tensor | None] = []
        heads: list[Tensor] = []
        headless = not any(self.head)
        for k, (layer, keep, release, is_head) in enumerate(zip(layers, self.keep,
                                                                self.release, self.head)):
            x = layer(x, outputs)
            outputs.append(x if keep else None)
            for i in release:
                outputs[i] = None
            if is_head or (headless and k == self.output):
                heads.append(x)
        return heads


class CfgDescribed:
    """What a module made from a cfg tells about itself (needs ``self.cfg``)."""

    cfg: Cfg

    @property
    def net(self) -> NetSection:
        """The parsed ``[net]`` section."""
        return self.cfg.net

    @property
    def yolo_sections(self) -> list[YoloSection]:
        return self.cfg.yolo_layers

    @property
    def head_sections(self) -> list:
        """The sections of the detection heads (``[yolo]``, ``[region]``,
        ``[Gaussian_yolo]``), in cfg order."""
        return [s for s in self.cfg.layers if s.kind in DECODED_HEADS]

    @property
    def num_classes(self) -> int:
        """Classes of the detection heads (a classifier's: its output values)."""
        if self.head_sections:
            return self.head_sections[0].classes
        return self.require_head("count classes")

    def require_head(self, purpose: str):
        """Raise the one-line ``CfgError`` of a cfg without a ``[yolo]`` head."""
        raise CfgError(f"the cfg has no [yolo] layer; darknet-py needs one to {purpose} "
                       "(model(x) gives the network's output)", self.cfg.path)


class LayersDescribed(CfgDescribed):
    """Also where the heads are (needs ``self.layers``, ``self.shapes``, ``self.plan``)."""

    plan: LayerPlan
    shapes: list[Shape]

    @property
    def head_indices(self) -> list[int]:
        """Layer indices of the detection heads, in cfg order."""
        return [i for i, y in enumerate(self.plan.head) if y]

    @property
    def yolo_indices(self) -> list[int]:
        """Layer indices of the ``[yolo]`` heads (the ones darknet-py trains)."""
        return [i for i in self.head_indices if isinstance(self.layers[i], Yolo)]

    def final_scores(self) -> Tensor:
        """(B,) bool over ``model(x)``'s candidates: True where the class columns are
        final probabilities that the objectness column only gates (a softmax tree)."""
        flags = [torch.full((a * h * w,), bool(getattr(self.layers[i], "final_scores", False)))
                 for i, (a, h, w) in zip(self.head_indices, self.head_shapes)]
        return torch.cat(flags) if flags else torch.zeros(0, dtype=torch.bool)

    @property
    def head_shapes(self) -> list[tuple[int, int, int]]:
        """(anchors, rows, columns) of each detection head, in cfg order."""
        shapes = []
        for i in self.head_indices:
            layer, shape = self.layers[i], self.shapes[i]
            shapes.append(layer.head_shape(shape) if hasattr(layer, "head_shape")
                          else (layer.num_anchors, shape.h, shape.w))
        return shapes


class Darknet(LayersDescribed, nn.Module):
    """A Darknet network built from a cfg.

    ``layers[i]`` is the module of cfg layer ``i`` (``[net]`` not counted), so
    Darknet's layer numbers work unchanged.  In eval mode ``model(x)`` with ``x``
    an ``N x 3 x H x W`` RGB tensor in [0, 1] returns ``N x B x (5+C)``: every
    ``[yolo]`` head in cfg order, each in Darknet's order (anchor, row, column),
    columns cx, cy, w, h in input pixels, objectness and class probabilities.
    In train mode it returns the list of raw ``[yolo]`` input maps, or with
    targets Darknet's loss.  ``forward`` changes nothing on the module.
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
        self.plan = LayerPlan.of(modules)

    @classmethod
    def from_text(cls, text: str, path: str = "<string>", **kw) -> Darknet:
        """Build a model from cfg text."""
        return cls(parse_cfg(text, path), **kw)

    def resized(self, width: int, height: int) -> Darknet:
        """A new model of the same cfg and weights for a ``width`` x ``height`` input."""
        model = Darknet(self.cfg, width, height)
        model.load_state_dict(self.state_dict())
        model.header = WeightsHeader(**vars(self.header))
        model.names = self.names
        p = next(self.parameters(), None)
        return model.to(p.device) if p is not None else model

    # ------------------------------------------------------------------ info
    @property
    def cfg_text(self) -> str:
        """The cfg as text (as read, or written from the sections)."""
        return self.cfg.source_text

    @property
    def seen(self) -> int:
        """Images seen in training, as stored in the ``.weights`` header."""
        return self.header.seen

    @seen.setter
    def seen(self, value: int) -> None:
        self.header.seen = int(value)

    def for_inference(self, dtype: torch.dtype = torch.float32, channels_last: bool = True,
                      compile: bool = False, exact: bool = True,
                      device: torch.device | str | None = None,
                      cuda_graphs: bool = False) -> nn.Module:
        """A new, forward-only module with this model's eval-mode contract, made for speed:
        batch norm folded, ``channels_last``, outputs released after their last use,
        optionally ``torch.compile``-d or replayed as CUDA graphs, on ``device`` (default:
        this model's; see ``darknet_py.infer.accelerate``).  This model is not changed."""
        from ..infer.accelerate import for_inference

        return for_inference(self, dtype, channels_last, compile, exact, device, cuda_graphs)

    # ------------------------------------------------------------------ weights
    def load_weights(self, path: str | Path, upto: int | None = None) -> LoadReport:
        """Load a Darknet ``.weights`` file (see ``darknet_py.nn.weights.load_weights``)."""
        return load_weights(self, path, upto)

    def save_weights(self, path: str | Path, upto: int | None = None) -> None:
        """Save as a Darknet ``.weights`` file, byte-identical to what was loaded if unchanged."""
        save_weights(self, path, upto)

    # ------------------------------------------------------------------ forward
    def darknet_loss(self) -> DarknetLoss:
        """Darknet's loss for this model's heads (``darknet_py.train.loss``)."""
        from ..train.loss import HEAD_DELTAS, DarknetLoss

        if not self.head_indices:
            self.require_head("train")
        other = {self.cfg.layers[i].kind for i in self.head_indices} - set(HEAD_DELTAS)
        if other:
            raise CfgError(f"training [{'], ['.join(sorted(other))}] heads is not "
                           "implemented by darknet-py ([yolo], [region] and [Gaussian_yolo] "
                           "heads train)", self.cfg.path)
        return DarknetLoss([self.layers[i] for i in self.head_indices],
                           [self.cfg.layers[i] for i in self.head_indices], self.head_indices)

    def loss(self, heads: list[Tensor], targets: Tensor,
             net_size: tuple[int, int] | None = None,
             seen: int | None = None) -> tuple[Tensor, list[HeadStats]]:
        """Darknet's loss of raw head inputs ``heads`` (train-mode ``model(x)``) for
        ``targets`` (M, 6) ``[image, class, cx, cy, w, h]``: the value ``train_network``
        returns, gradient ``-delta`` on each head, and the figures Darknet prints.
        ``net_size`` (width, height) defaults to the model's input size, ``seen`` (images
        trained, for ``[region]``) to the model's ``seen``."""
        return self.darknet_loss()(heads, targets, net_size or (self.width, self.height),
                                   self.seen if seen is None else seen)

    def forward(self, x: Tensor, targets: Tensor | None = None) -> Tensor | list[Tensor]:
        """Eval: decoded detections.  Train: the raw ``[yolo]`` inputs, or with ``targets``
        ((M, 6) rows ``[image, class, cx, cy, w, h]``, relative) Darknet's loss (use
        ``loss()`` for the per-layer figures too)."""
        if targets is not None and not self.training:
            raise ValueError("targets are for train mode (model.train())")
        heads = self.heads(x)
        if not self.training:
            return torch.cat(heads, 1)
        if targets is None:
            return heads
        return self.loss(heads, targets, (x.shape[3], x.shape[2]))[0]

    def layer_outputs(self, x: Tensor) -> list[Tensor]:
        """For every cfg layer, Darknet's ``l.output`` for input ``x``: (N, outputs) in
        Darknet's memory order (heads: what ``forward_*_layer`` leaves there at inference).
        Every output is kept, so this is for parity checks, not for speed."""
        outputs: list[Tensor | None] = []
        result = []
        for layer in self.layers:
            y = layer(x, outputs)
            result.append(layer.darknet_output(x, y))
            outputs.append(y)
            x = y
        return result

    def heads(self, x: Tensor) -> list[Tensor]:
        """The outputs of the ``[yolo]`` layers, in cfg order; earlier outputs are kept only
        until the last route/shortcut/sam that reads them."""
        return self.plan.run(self.layers, x)
