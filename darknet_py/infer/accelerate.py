"""A forward-only copy of a model for fast inference (``Darknet.for_inference``).

The copy computes what the model computes in eval mode, with:

- batch norm folded into the convolution (in float64, then cast), so each
  ``[convolutional]`` is one conv with a bias and its activation;
- an optional memory format (``channels_last`` suits CPU and tensor cores) and dtype;
- every intermediate output released right after the last layer that reads it;
- optionally ``torch.compile`` with inductor's weight freezing;
- optionally CUDA graphs, captured per input shape and replayed (``infer.graphs``).

The model it is made from is not changed.  In float32 the outputs stay within Darknet's
parity gates (folding moves them by about 1e-6 relative); keep TF32 off on CUDA for that
(``exact=True`` does, for the duration of each call).
"""

from __future__ import annotations

import contextlib
import copy
import logging

import torch
from torch import Tensor, nn

from ..nn.layers import Convolutional, DarknetLayer
from ..nn.model import Darknet, LayerPlan, LayersDescribed
from .graphs import CudaGraphReplay

log = logging.getLogger(__name__)


class FusedConv(DarknetLayer):
    """A ``[convolutional]`` with its batch norm folded in: ``act(conv(x) + bias)``."""

    def __init__(self, layer: Convolutional):
        super().__init__()
        conv = layer.conv
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                              conv.stride, conv.padding, dilation=conv.dilation,
                              groups=conv.groups, bias=True)
        with torch.no_grad():
            w = conv.weight.detach().double()
            if layer.bn is None:
                b = conv.bias.detach().double()
            else:
                bn = layer.bn
                scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
                w = w * scale[:, None, None, None]
                b = bn.bias.double() - bn.running_mean.double() * scale
            self.conv.weight.copy_(w.float())
            self.conv.bias.copy_(b.float())
        self.act = copy.deepcopy(layer.act)

    def forward(self, x: Tensor, outputs: list[Tensor | None]) -> Tensor:
        return self.act(self.conv(x))


class InferenceDarknet(LayersDescribed, nn.Module):
    """The eval-mode forward of a ``Darknet`` model, made for speed (see the module doc).

    ``model(x)`` returns what the source model returns in eval mode: ``N x B x (5+C)``.
    ``width``, ``height``, ``head_shapes``, ``yolo_sections`` and ``net`` are the source's.
    """

    def __init__(self, model: Darknet, dtype: torch.dtype = torch.float32,
                 memory_format: torch.memory_format = torch.channels_last,
                 exact: bool = True, device: torch.device | str | None = None):
        super().__init__()
        # an XNOR layer binarizes its own weights: batch norm cannot be folded into them
        layers = [FusedConv(m) if isinstance(m, Convolutional) and not m.xnor
                  else copy.deepcopy(m) for m in model.layers]
        self.layers = nn.ModuleList(layers)
        self.plan = LayerPlan.of(layers)
        self.memory_format = memory_format
        self.exact = exact
        self.cfg = model.cfg
        self.width, self.height = model.width, model.height
        self.shapes = model.shapes
        self.header, self.names = model.header, model.names
        if device is None:
            p = next(model.parameters(), None)
            device = p.device if p is not None else "cpu"
        self.to(device=device, dtype=dtype, memory_format=memory_format)
        self.eval()

    def _precision(self, x: Tensor):
        if self.exact and x.is_cuda and torch.backends.cudnn.allow_tf32:
            return _tf32_off()
        return contextlib.nullcontext()

    def forward(self, x: Tensor) -> Tensor:
        with self._precision(x):
            heads = self.plan.run(self.layers, x.to(memory_format=self.memory_format))
        return torch.cat(heads, 1)


@contextlib.contextmanager
def _tf32_off():
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def for_inference(model: Darknet, dtype: torch.dtype = torch.float32,
                  channels_last: bool = True, compile: bool = False, exact: bool = True,
                  device: torch.device | str | None = None,
                  cuda_graphs: bool = False) -> nn.Module:
    """A new module with ``model``'s eval-mode contract, made for speed, on ``device``
    (default: the model's); ``compile`` wraps it in ``torch.compile`` (inductor, weights
    frozen into the graph); ``cuda_graphs`` replays a CUDA graph per input shape for
    inputs on a CUDA device.  Attributes (``width``, ``head_shapes``, ...) read through
    the wrappers."""
    fast: nn.Module = InferenceDarknet(
        model, dtype, torch.channels_last if channels_last else torch.contiguous_format,
        exact, device)
    if compile:
        fast = torch.compile(fast, options={"freezing": True})
    if cuda_graphs:
        fast = CudaGraphReplay(fast)
    return fast
