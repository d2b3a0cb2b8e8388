"""Darknet C's CPU batch norm as its build trains it, for trajectory tests only.

A literal port of ``forward_batchnorm_layer`` (training branch) and
``backward_batchnorm_layer`` with ``mean_delta_cpu``, ``variance_delta_cpu`` and
``normalize_delta_cpu`` (AlexeyAB ``src/batchnorm_layer.c``), as a torch autograd function.
It reproduces three things in which Darknet's CPU build differs from its GPU/cuDNN build
and from darknet-py:
- the batch-norm biases get no gradient (``backward_batchnorm_layer`` never calls
  ``backward_bias``, and ``backward_convolutional_layer`` calls it only without batch
  norm), so on the CPU they stay at their initial values;
- ``normalize_delta_cpu`` divides by ``sqrt(variance) + .00001`` where the forward divides
  by ``sqrt(variance + .00001)``: for a channel whose batch variance is far below 1e-5 the
  gradient is up to ~300 times the forward's scale;
- the rolling statistics move by 0.1 per mini-batch (``.9 * rolling + .1 * batch``), where
  the GPU code moves them by 0.01.
(Also, ``variance_delta`` is applied with 1 / N while the forward's variance divides by
N - 1; darknet-py's autograd is exact for its own forward.)
"""

from __future__ import annotations

import contextlib

import torch

from darknet_py.nn.layers import DarknetBatchNorm2d

EPS = 1e-5


class _CpuBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gamma, beta):
        n = x.shape[0] * x.shape[2] * x.shape[3]
        mean = x.mean((0, 2, 3), keepdim=True)
        var = ((x - mean) ** 2).sum((0, 2, 3), keepdim=True) / (n - 1)  # variance_cpu
        x_norm = (x - mean) / torch.sqrt(var + EPS)  # normalize_cpu
        ctx.save_for_backward(x, mean, var, x_norm, gamma)
        return x_norm * gamma[None, :, None, None] + beta[None, :, None, None]

    @staticmethod
    def backward(ctx, dy):
        x, mean, var, x_norm, gamma = ctx.saved_tensors
        n = x.shape[0] * x.shape[2] * x.shape[3]
        grad_gamma = (dy * x_norm).sum((0, 2, 3))  # backward_scale_cpu
        grad_beta = torch.zeros_like(gamma)  # no backward_bias on the CPU
        d = dy * gamma[None, :, None, None]  # scale_bias(l.delta, l.scales, ...)
        mean_delta = d.sum((0, 2, 3), keepdim=True) * (-1. / torch.sqrt(var + EPS))
        variance_delta = (d * (x - mean)).sum((0, 2, 3), keepdim=True) * (
            -.5 * torch.pow(var + EPS, -3. / 2.))
        dx = (d * (1. / (torch.sqrt(var) + EPS)) + variance_delta * 2. * (x - mean) / n
              + mean_delta / n)  # normalize_delta_cpu
        return dx, grad_gamma, grad_beta


def _cpu_forward(self: DarknetBatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    if not self.training:
        return torch.nn.BatchNorm2d.forward(self, x)
    with torch.no_grad():
        mean = x.mean((0, 2, 3))
        var = x.var((0, 2, 3), correction=1)
        self.running_mean.mul_(.9).add_(mean, alpha=.1)
        self.running_var.mul_(.9).add_(var, alpha=.1)
    return _CpuBatchNorm.apply(x, self.weight, self.bias)


@contextlib.contextmanager
def darknet_cpu_batchnorm():
    """Within the block, every ``DarknetBatchNorm2d`` trains as Darknet's CPU build."""
    saved = DarknetBatchNorm2d.forward
    DarknetBatchNorm2d.forward = _cpu_forward
    try:
        yield
    finally:
        DarknetBatchNorm2d.forward = saved


def conv_updates(model) -> torch.Tensor:
    """Minus the gradients of every convolution in Darknet's ``weight_updates`` dump order:
    per layer bias (batch-norm beta) updates, scale updates (with batch norm), weight
    updates; a tensor without a gradient (the CPU build's betas) counts zeros."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "conv"):
            tensors = [layer.conv.bias] if layer.bn is None else [layer.bn.bias, layer.bn.weight]
            out += [-t.grad.reshape(-1) if t.grad is not None else torch.zeros(t.numel())
                    for t in tensors + [layer.conv.weight]]
    return torch.cat(out)
