"""What happens around each training step, one hook each: Darknet's checkpoints, ``-map``
with ``_best``, EMA, the chart, and the NaN guard.

A hook sees the ``Trainer`` (its ``model``, ``optimizer``, ``iteration``, ``losses``...)
at ``before_train``, ``after_backward`` (before the update; returning False drops the
step), ``after_step`` and ``after_train``.  Hooks run in the order the trainer lists
them.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import torch

from ..errors import DarknetError
from .chart import draw_chart

if TYPE_CHECKING:
    from .trainer import Trainer

log = logging.getLogger(__name__)


class TrainingDiverged(DarknetError):
    """The loss or a gradient became NaN or infinite."""


class HookBase:
    """A training hook; every method does nothing unless overridden."""

    def before_train(self, trainer: Trainer) -> None:
        pass

    def after_backward(self, trainer: Trainer, loss: float, x: torch.Tensor) -> bool:
        """Called with the iteration's loss and last input before the update; False skips
        the update (the iteration is run again)."""
        return True

    def after_step(self, trainer: Trainer) -> None:
        pass

    def after_train(self, trainer: Trainer) -> None:
        pass


class EmaHook(HookBase):
    """Darknet's EMA (``ema_alpha``): from half of max_batches keep an average of the
    trainable tensors, ``ema = alpha * ema + (1 - alpha) * w``; 1000 iterations before the
    end copy it into the model once (training then goes on from there)."""

    def __init__(self, trainer: Trainer, state: dict | None = None):
        self.trainer = trainer
        self.ema = state

    def update(self, iteration: int) -> None:
        t = self.trainer
        alpha = t.net.ema_alpha
        if not alpha or iteration < t.max_batches // 2:
            return
        params = dict(t.model.named_parameters())
        with torch.no_grad():
            if self.ema is None:
                self.ema = {k: p.detach().clone() for k, p in params.items()}
            elif iteration == t.max_batches - 1000:
                for k, p in params.items():
                    p.copy_(self.ema[k])
                t.on_message("EMA applied")
            elif iteration < t.max_batches - 1000:
                for k, p in params.items():
                    self.ema[k].mul_(alpha).add_(p.detach(), alpha=1 - alpha)

    def after_step(self, trainer: Trainer) -> None:
        self.update(trainer.iteration)


class MapHook(HookBase):
    """``-map``: mAP@0.5 on the valid list every ``-mAP_epochs`` epochs (at least 100
    iterations apart, not before burn_in or iteration 400) and at the end; a new best is
    saved as ``_best``."""

    def __init__(self, trainer: Trainer):
        c = trainer.c
        self.per_map = max(c.map_epochs * len(trainer.train_images) // trainer.batch, 100)
        self.last = trainer.iteration

    def after_step(self, trainer: Trainer) -> None:
        it = trainer.iteration
        if not (it >= max(self.last + self.per_map, trainer.net.burn_in, 400)
                or it == trainer.max_batches):
            return
        self.last = it
        if not trainer.is_main:
            return
        m = trainer.compute_map()
        trainer.maps.append((it, m))
        trainer.on_message(f"mean_average_precision (mAP@0.5) = {m:f}")
        if m > trainer.best_map:
            trainer.best_map = m
            trainer.on_message("New best mAP!")
            trainer.save("best")


class CheckpointHook(HookBase):
    """Darknet's checkpoint names and rules: ``_<N>`` every 1000 iterations, ``_last``
    every 100 and at the end, ``_final`` when max_batches is reached."""

    def before_train(self, trainer: Trainer) -> None:
        self.last_numbered = self.last_last = trainer.iteration

    def after_step(self, trainer: Trainer) -> None:
        it = trainer.iteration
        if not trainer.is_main:
            return
        if it >= self.last_numbered + 1000 or it % 1000 == 0:
            self.last_numbered = it
            trainer.save(str(it))
        if it >= self.last_last + 100 or it % 100 == 0:
            self.last_last = it
            trainer.save("last")

    def after_train(self, trainer: Trainer) -> None:
        if not trainer.is_main:
            return
        trainer.save("last")
        if trainer.iteration >= trainer.max_batches and not trainer.stopped:
            trainer.final = trainer.save("final")


class ChartHook(HookBase):
    """Redraws ``chart.png`` every 10 iterations and when training ends or stops, from
    the run's whole history (kept across resumes), at each point's iteration."""

    def __init__(self, path: str):
        self.path = path

    def after_step(self, trainer: Trainer) -> None:
        if trainer.is_main and trainer.iteration % 10 == 0:
            self.draw(trainer)

    def after_train(self, trainer: Trainer) -> None:
        if trainer.is_main:
            self.draw(trainer)

    def draw(self, trainer: Trainer) -> None:
        draw_chart(trainer.loss_history, trainer.maps, trainer.max_batches, self.path)


class NanGuard(HookBase):
    """Stops before an update whose loss or gradient is not finite, naming the iteration
    and the first layer whose output (else gradient) went non-finite; nothing is saved.
    With ``recover`` it reloads the last good state at a tenth of the rate instead, at
    most ``tries`` times."""

    def __init__(self, recover: bool = False, tries: int = 3):
        self.recover = recover
        self.tries = tries
        self.recoveries = 0

    def after_backward(self, trainer: Trainer, loss: float, x: torch.Tensor) -> bool:
        # one check of the loss and the gradient norm; the layer search only on failure.
        # With fp16 the grad scaler skips steps whose gradients overflow.
        grads_ok = trainer.c.amp == "fp16" or math.isfinite(trainer.grad_norm)
        if math.isfinite(loss) and grads_ok:
            return True
        bad_grad = None if grads_ok else first_non_finite_grad(trainer.model)
        layer = first_non_finite_layer(trainer.model, x)
        layer = layer if layer is not None else bad_grad
        where = (f"layer {layer} ([{trainer.model.cfg.layers[layer].kind}])"
                 if layer is not None else "the loss")
        message = (f"iteration {trainer.iteration + 1}: the loss is {loss} and {where} is "
                   "the first to go non-finite")
        if self.recover and self.recoveries < self.tries:
            self.recoveries += 1
            trainer.lr_factor *= 0.1
            trainer.recover()
            trainer.on_message(message + f"; reloaded the last good weights, rate x"
                               f"{trainer.lr_factor:g}")
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
