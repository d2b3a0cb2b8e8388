"""CUDA graph replay for a forward-only module (``for_inference(cuda_graphs=True)``).

At batch 1 a GPU mostly waits for Python to launch the next kernel.  A CUDA graph
records the whole forward once per input shape and then launches it as one unit.  The
wrapper keeps one graph per (shape, dtype, device, strides); inputs that are not on a
CUDA device, or calls with autograd on, run the module as it is.  A capture that fails
(an operation CUDA graphs do not allow) is logged once and that shape runs eagerly.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

_WARMUP_CALLS = 3  # cuDNN picks its algorithms on the first calls; capture after them


class CudaGraphReplay(nn.Module):
    """Runs ``module(x)`` for CUDA inputs by replaying a graph captured per input shape.

    Each call returns a new tensor (a copy of the graph's static output), so results of
    earlier calls are never overwritten.  Attributes the module has (``width``,
    ``head_shapes``, ...) read through.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self._graphs: dict[tuple, Any] = {}
        self._pool = None

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    @staticmethod
    def _key(x: Tensor) -> tuple:
        return tuple(x.shape), x.dtype, x.device, x.stride()

    def forward(self, x: Tensor) -> Tensor:
        if not x.is_cuda or torch.is_grad_enabled():
            return self.module(x)
        key = self._key(x)
        if key not in self._graphs:
            self._graphs[key] = self._capture(x)
        entry = self._graphs[key]
        if entry is None:  # capture failed for this shape
            return self.module(x)
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()

    def _capture(self, x: Tensor):
        static_in = x.clone()
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        try:
            with torch.cuda.stream(side):
                for _ in range(_WARMUP_CALLS):
                    self.module(static_in)
            torch.cuda.current_stream(x.device).wait_stream(side)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                static_out = self.module(static_in)
        except RuntimeError as err:
            log.warning("CUDA graph capture failed for input %s (%s); running eagerly",
                        tuple(x.shape), err)
            torch.cuda.synchronize(x.device)
            return None
        log.debug("captured a CUDA graph for input %s", tuple(x.shape))
        return graph, static_in, static_out
