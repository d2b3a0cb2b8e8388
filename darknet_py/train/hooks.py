"""What happens around each training step, one hook each: Darknet's checkpoints, ``-map``
with ``_best``, EMA, the chart, and the NaN guard.

A hook sees the loop's ``TrainState`` at ``before_train``, ``after_backward`` (before the
update; returning False drops the step), ``after_step`` and ``after_train``; whatever else
it needs (the model, a way to save, to compute the mAP, to print) it is given when it is
made.  ``state_dict()`` is what a checkpoint keeps of it.  Hooks run in the order the
trainer lists them.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable

import torch

from ..errors import DarknetError
from .chart import draw_chart
from .state import TrainState

log = logging.getLogger(__name__)
Save = Callable[[str], Path]  # writes <backup>/<cfg>_<name>.weights, returns its path
Say = Callable[[str], None]


class TrainingDiverged(DarknetError):
    """The loss or a gradient became NaN or infinite."""


class HookBase:
    """A training hook; every method does nothing unless overridden."""

    def before_train(self, state: TrainState) -> None:
        pass

    def after_backward(self, state: TrainState, loss: float, x: torch.Tensor) -> bool:
        """Called with the iteration's loss and last input before the update; False skips
        the update (the iteration is run again)."""
        return True

    def after_step(self, state: TrainState) -> None:
        pass

    def after_train(self, state: TrainState) -> None:
        pass

    def state_dict(self) -> dict:
        """What a checkpoint keeps of this hook (merged into the ``.pt``)."""
        return {}


class EmaHook(HookBase):
    """Darknet's EMA (``ema_alpha``): from half of max_batches keep an average of the
    trainable tensors, ``ema = alpha * ema + (1 - alpha) * w``; 1000 iterations before the
    end copy it into the model once (training then goes on from there)."""

    def __init__(self, model: torch.nn.Module, alpha: float, max_batches: int, say: Say,
                 state: dict | None = None):
        self.model, self.alpha, self.max_batches, self.say = model, alpha, max_batches, say
        self.ema = state

    def update(self, iteration: int) -> None:
        if not self.alpha or iteration < self.max_batches // 2:
            return
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            if self.ema is None:
                self.ema = {k: p.detach().clone() for k, p in params.items()}
            elif iteration == self.max_batches - 1000:
                for k, p in params.items():
                    p.copy_(self.ema[k])
                self.say("EMA applied")
            elif iteration < self.max_batches - 1000:
                for k, p in params.items():
                    self.ema[k].mul_(self.alpha).add_(p.detach(), alpha=1 - self.alpha)

    def after_step(self, state: TrainState) -> None:
        self.update(state.iteration)

    def state_dict(self) -> dict:
        return {"ema": self.ema}


class MapHook(HookBase):
    """``-map``: mAP (at ``-iou_thresh``) on the valid list every ``-mAP_epochs`` epochs
    (at least 100 iterations apart, not before burn_in or iteration 400) and at the end; a
    new best is saved as ``_best``."""

    def __init__(self, compute_map: Callable[[], float], every: int, burn_in: int,
                 max_batches: int, save: Save, say: Say, start: int, is_main: bool = True,
                 iou_thresh: float = 0.5):
        self.compute_map, self.every, self.burn_in = compute_map, max(every, 100), burn_in
        self.max_batches, self.save, self.say, self.is_main = max_batches, save, say, is_main
        self.last, self.iou_thresh = start, iou_thresh

    def after_step(self, state: TrainState) -> None:
        it = state.iteration
        if not (it >= max(self.last + self.every, self.burn_in, 400) or it == self.max_batches):
            return
        self.last = it
        if not self.is_main:
            return
        m = self.compute_map()
        state.maps.append((it, m))
        self.say(f"mean_average_precision (mAP@{self.iou_thresh:0.2f}) = {m:f}")  # Darknet's
        if m > state.best_map:
            state.best_map = m
            self.say("New best mAP!")
            self.save("best")


class TopkHook(HookBase):
    """``classifier train -topk``: the top-k accuracy on the valid list every two epochs
    (at least 100 iterations apart and not before burn_in) and at the end, printed as
    Darknet prints it."""

    def __init__(self, compute: Callable[[], float], every: int, burn_in: int,
                 max_batches: int, say: Say, start: int, top: int, is_main: bool = True):
        self.compute, self.every, self.burn_in = compute, every, burn_in
        self.max_batches, self.say, self.last, self.top = max_batches, say, start, top
        self.is_main = is_main

    def after_step(self, state: TrainState) -> None:
        it = state.iteration
        if not (it >= max(self.last + self.every, self.burn_in, 100) or it == self.max_batches):
            return
        self.last = it
        if self.is_main:
            self.say(f"accuracy top{self.top} = {self.compute():f}")


class CheckpointHook(HookBase):
    """Darknet's checkpoint names and rules: ``_<N>`` every 1000 iterations, ``_last``
    every 100 and at the end, ``_final`` when max_batches is reached."""

    def __init__(self, save: Save, max_batches: int, is_main: bool = True):
        self.save, self.max_batches, self.is_main = save, max_batches, is_main
        self.last_numbered = self.last_last = 0

    def before_train(self, state: TrainState) -> None:
        self.last_numbered = self.last_last = state.iteration

    def after_step(self, state: TrainState) -> None:
        it = state.iteration
        if not self.is_main:
            return
        if it >= self.last_numbered + 1000 or it % 1000 == 0:
            self.last_numbered = it
            self.save(str(it))
        if it >= self.last_last + 100 or it % 100 == 0:
            self.last_last = it
            self.save("last")

    def after_train(self, state: TrainState) -> None:
        if not self.is_main:
            return
        self.save("last")
        if state.iteration >= self.max_batches and not state.stopped:
            state.final = self.save("final")


class ChartHook(HookBase):
    """Redraws ``chart.png`` every 10 iterations and when training ends or stops, from
    the run's whole history (kept across resumes), at each point's iteration."""

    def __init__(self, path: str, max_batches: int, is_main: bool = True,
                 iou_thresh: float = 0.5):
        self.path, self.max_batches, self.is_main = path, max_batches, is_main
        self.iou_thresh = iou_thresh

    def after_step(self, state: TrainState) -> None:
        if self.is_main and state.iteration % 10 == 0:
            self.draw(state)

    def after_train(self, state: TrainState) -> None:
        if self.is_main:
            self.draw(state)

    def draw(self, state: TrainState) -> None:
        draw_chart(state.loss_history, state.maps, self.max_batches, self.path,
                   iou_thresh=self.iou_thresh)


class NanGuard(HookBase):
    """Stops before an update whose loss or gradient is not finite, naming the iteration
    and the first layer whose output (else gradient) went non-finite; nothing is saved.
    With ``recover`` (a function that reloads the last good state) it does that at a
    tenth of the rate instead, at most ``tries`` times."""

    def __init__(self, model, fp16: bool, say: Say, recover: Callable[[], None] | None = None,
                 tries: int = 3):
        self.model, self.fp16, self.say = model, fp16, say
        self.recover, self.tries = recover, tries
        self.recoveries = 0

    def after_backward(self, state: TrainState, loss: float, x: torch.Tensor) -> bool:
        # one check of the loss and the gradient norm; the layer search only on failure.
        # With fp16 the grad scaler skips steps whose gradients overflow.
        grads_ok = self.fp16 or math.isfinite(state.grad_norm)
        if math.isfinite(loss) and grads_ok:
            return True
        bad_grad = None if grads_ok else first_non_finite_grad(self.model)
        layer = first_non_finite_layer(self.model, x)
        layer = layer if layer is not None else bad_grad
        where = (f"layer {layer} ([{self.model.cfg.layers[layer].kind}])"
                 if layer is not None else "the loss")
        message = (f"iteration {state.iteration + 1}: the loss is {loss} and {where} is "
                   "the first to go non-finite")
        if self.recover is not None and self.recoveries < self.tries:
            self.recoveries += 1
            state.lr_factor *= 0.1
            self.recover()
            self.say(message + f"; reloaded the last good weights, rate x{state.lr_factor:g}")
            return False
        raise TrainingDiverged(message + "; stopped without saving (the last checkpoint is "
                               "the last good state)")


def first_non_finite_layer(model, x: torch.Tensor) -> int | None:
    """Index of the first layer whose output is not finite (re-runs the forward)."""
    found: list[int] = []
    hooks = [layer.register_forward_hook(
        lambda m, a, o, i=i: found.append(i) if not found and not torch.isfinite(o).all()
        else None) for i, layer in enumerate(model.layers)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return found[0] if found else None


def first_non_finite_grad(model) -> int | None:
    """Index of the first layer with a non-finite gradient."""
    for i, layer in enumerate(model.layers):
        for p in layer.parameters():
            if p.grad is not None and not torch.isfinite(p.grad).all():
                return i
    return None
