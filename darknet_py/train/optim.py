"""Darknet's optimizer and learning-rate schedule.

Darknet's update (``update_convolutional_layer``) with ``B = batch * subdivisions``
and ``U`` the accumulated negative gradient::

    U -= decay * B * W          (weights only; not biases or batch-norm scales)
    W += (rate / B) * U
    U *= momentum

is SGD with momentum on the summed gradient, learning rate ``rate / B`` and weight
decay ``decay * B`` on the weights.  A layer's ``learning_rate`` scales its rate;
layers up to the last ``stopbackward=1`` do not train.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..cfg import NetSection
from ..nn.layers import Shortcut


def learning_rate(net: NetSection, batch_num: int, max_batches: int | None = None) -> float:
    """Darknet's ``get_current_rate`` for iteration ``batch_num`` (1 for the first update).

    ``max_batches`` is the run's length (``--max-batches``), the cfg's by default; ``poly``
    and ``sgdr`` (when the cfg has no ``sgdr_cycle``) schedule over it.
    """
    base = net.learning_rate
    if batch_num < net.burn_in:
        return base * math.pow(batch_num / net.burn_in, net.power)
    total = max_batches or net.max_batches
    policy = net.policy
    if policy == "constant":
        return base
    if policy == "step":
        return base * math.pow(net.scale, batch_num // net.step)
    if policy == "steps":
        rate = base
        for step, scale in zip(net.steps or [], net.scales or []):
            if step > batch_num:
                return rate
            rate *= scale
        return rate
    if policy == "exp":
        return base * math.pow(net.gamma, batch_num)
    if policy in ("poly", "sgdr") and total <= 0:
        raise ValueError(f"policy={policy} needs max_batches (in the cfg or --max-batches)")
    if policy == "poly":
        return base * math.pow(max(0.0, 1 - batch_num / total), net.power)
    if policy == "sigmoid":
        return base * (1.0 / (1.0 + math.exp(net.gamma * (batch_num - net.step))))
    if policy == "sgdr":
        explicit = "sgdr_cycle" in net.options
        start, cycle = 0, (net.sgdr_cycle if explicit else 0) or total
        while start + cycle < batch_num:
            start += cycle
            cycle *= max(net.sgdr_mult, 1)
        low = net.learning_rate_min
        return low + 0.5 * (base - low) * (1 + math.cos((batch_num - start) * math.pi / cycle))
    raise ValueError(f"learning-rate policy {policy!r} is not supported for training")


def schedule_warnings(net: NetSection, max_batches: int) -> list[str]:
    """What is odd about a schedule before training starts: a burn-in as long as the run
    (the rate stays near 0 throughout) or a short one for the rate (pretrained layers can
    be rewritten before the rate settles; the stock cfgs use 1000)."""
    out = []
    if net.burn_in >= max_batches:
        out.append(f"burn_in={net.burn_in} is not below max_batches={max_batches}: the "
                   "learning rate stays below its cfg value for the whole run")
    elif 0 < net.burn_in < 100 and net.learning_rate >= 0.001:
        out.append(f"burn_in={net.burn_in} is short for learning_rate={net.learning_rate:g}: "
                   "the first updates can rewrite pretrained layers (Darknet's cfgs use "
                   "burn_in=1000)")
    return out


def frozen_layers(model) -> int:
    """Number of leading layers that do not train (through the last ``stopbackward=1``)."""
    last = -1
    for i, section in enumerate(model.cfg.layers):
        if section.stopbackward:
            last = i
    return last + 1


def make_optimizer(model) -> torch.optim.SGD:
    """SGD with Darknet's semantics; one parameter group per (layer rate scale, decay)."""
    net = model.net
    batch = net.batch  # images per update (batch = mini-batch * subdivisions in the cfg)
    frozen = frozen_layers(model)
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for i, (layer, section) in enumerate(zip(model.layers, model.cfg.layers)):
        for name, p in layer.named_parameters():
            if i < frozen:
                p.requires_grad_(False)
                continue
            decays = name.endswith("conv.weight") or isinstance(layer, Shortcut)
            groups.setdefault((section.learning_rate, decays), []).append(p)
    param_groups = [{"params": ps, "rate_scale": scale,
                     "weight_decay": net.decay * batch if decays else 0.0}
                    for (scale, decays), ps in groups.items()]
    if not param_groups:
        raise ValueError("no layer trains: every layer is at or before a stopbackward=1 layer")
    return torch.optim.SGD(param_groups, lr=net.learning_rate / batch, momentum=net.momentum)


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float, batch: int) -> None:
    """Apply Darknet's ``rate`` (scaled per layer) as SGD's per-image learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = rate * group.get("rate_scale", 1.0) / batch
