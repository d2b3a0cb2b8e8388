"""``darknet detector train``: Darknet's training loop.

One iteration (``run_step``) is ``subdivisions`` mini-batches whose gradients
(Darknet's deltas) add up, then one SGD step at Darknet's rate for that iteration.
Around it, hooks (``hooks.py``) keep Darknet's checkpoints in the ``.data`` file's
backup folder (``<cfg>_last.weights`` every 100 iterations, ``<cfg>_<N>.weights``
every 1000, ``<cfg>_best.weights`` when ``-map`` improves, ``<cfg>_final.weights`` at
the end), the EMA, the chart and the NaN guard; they see the loop's ``TrainState``.
``Trainer.from_config`` does the reading and checking (``setup.py``).  ``seen`` in the
header carries the schedule into a restart; beside ``_last`` a ``.pt`` keeps the
optimizer momentum (and EMA) so a resume continues exactly.

Every file is written to a temporary name and renamed.  Ctrl-C or SIGTERM ends the
current iteration, saves ``_last`` and returns normally.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from ..io import checkpoint
from ..io.data import read_data_cfg
from ..nn.model import Darknet
from .dataset import to_input
from .hooks import (ChartHook, CheckpointHook, EmaHook, HookBase, MapHook, NanGuard, TopkHook,
                    TrainingDiverged)
from .loss import LossFigures
from .optim import learning_rate, make_optimizer, set_learning_rate
from .safety import StopFlag, check_writable
from .setup import TASKS, Schedule, Start, state_path
from .show import show_first
from .state import TrainState

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """What ``detector train`` (or ``classifier train``, ``task="classifier"``) is asked
    to do."""

    data: str
    cfg: str
    weights: str | None = None
    clear: bool = False  # -clear: seen = 0, the schedule starts over
    calc_map: bool = False  # -map
    calc_topk: bool = False  # classifier train -topk
    map_epochs: int = 4  # -mAP_epochs
    map_iou_thresh: float = 0.5  # -iou_thresh: IoU a detection needs for the mAP
    map_thresh: float = 0.25  # -thresh: the TP/FP threshold of the mAP report
    device: str | None = None  # default: cuda when a GPU is there, else cpu (as the CLI)
    workers: int = 2
    seed: int = 0
    max_batches: int | None = None
    backup: str | None = None  # default: the .data file's backup=
    nan_recovery: bool = False
    amp: str | None = None  # "bf16" or "fp16" (CUDA)
    chart: str | None = "chart.png"  # loss / mAP plot, rewritten every 10 iterations
    channels_last: bool = False
    sync_bn: bool = False  # batch statistics over all processes (torch's SyncBatchNorm)
    show_imgs: str | None = None  # -show_imgs: the first iteration's batches as JPEGs here
    device_augment: bool = False  # crop, resize, flip, HSV and mosaic on the device
    task: str = "detector"  # or "classifier" (classifier train)
    rank: int = 0
    world: int = 1

    def __post_init__(self):
        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class IterationReport:
    """One of Darknet's per-iteration lines."""

    iteration: int
    loss: float
    avg_loss: float
    rate: float
    seconds: float
    images: int
    hours_left: float
    size: tuple[int, int]
    layer_lines: list[str] = field(default_factory=list)  # Darknet's per-head lines
    epoch_images: int = 0  # classifier train: the training list's length, for its epoch

    def line(self) -> str:
        if self.epoch_images:  # train_classifier's line
            return (f"{self.iteration}, {self.images / self.epoch_images:.3f}: {self.loss:f}, "
                    f"{self.avg_loss:f} avg, {self.rate:f} rate, {self.seconds:f} seconds, "
                    f"{self.images} images, {self.hours_left:f} hours left")
        return (f" {self.iteration}: {self.loss:f}, {self.avg_loss:f} avg loss, {self.rate:f} "
                f"rate, {self.seconds:f} seconds, {self.images} images, {self.hours_left:f} "
                "hours left")


@dataclass
class TrainResult:
    iterations: int  # the iteration count reached
    stopped: bool  # by a signal
    final: Path | None  # _final.weights when training ran to max_batches
    best_map: float
    losses: list[float]


class Trainer:
    """Runs ``detector train`` (and ``classifier train``): ``run()`` trains to ``schedule.max_batches`` and returns
    ``TrainResult``.  Made from its parts (a model on its device, its optimizer, a
    ``loader(start)`` of mini-batches, the schedule), or from a ``TrainConfig`` by
    ``from_config``, which does the reading and checking.  ``state`` is the loop's
    ``TrainState``; every attribute is set here."""

    def __init__(self, model: Darknet, optimizer: torch.optim.Optimizer,
                 loader: Callable[[int], Iterable], schedule: Schedule, config: TrainConfig,
                 *, backup: Path, valid_images: list[str] | None = None, epoch: int = 0,
                 start: Start | None = None, initial_state: dict | None = None,
                 on_iteration: Callable[[IterationReport], None] | None = None,
                 on_message: Callable[[str], None] | None = None, loss_fn=None,
                 accuracy: tuple[Callable[[Darknet], float], int] | None = None):
        self.c = config
        self.accuracy = accuracy  # classifier -topk: (model -> top-k accuracy, k)
        self.model, self.optimizer, self.loader, self.schedule = model, optimizer, loader, schedule
        self.net = model.net
        self.device = torch.device(config.device)
        self.is_main = config.rank == 0
        self.backup, self.base = backup, Path(config.cfg).stem
        self.valid_images = list(valid_images or [])
        self.epoch = epoch  # images in the training list, for -mAP_epochs
        self.on_iteration = on_iteration or (lambda r: log.info("%s", r.line()))
        self.on_message = on_message or (lambda m: log.info("%s", m))
        start = start or Start()
        if start.optimizer:
            optimizer.load_state_dict(start.optimizer)
        self.initial_state = initial_state  # what --nan-recovery falls back to at first
        self.state = TrainState(iteration=model.seen // schedule.batch,
                                loss_history=list(start.history.get("losses", [])),
                                maps=list(start.history.get("maps", [])))
        self.ema = EmaHook(model, self.net.ema_alpha, schedule.max_batches, self.on_message,
                           {k: v.to(self.device) for k, v in start.ema.items()}
                           if start.ema else None)
        self.hooks = self.build_hooks()
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        self.train_model: torch.nn.Module = model
        if config.world > 1:
            if config.sync_bn:
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.loss_fn = loss_fn or model.darknet_loss()  # Darknet's detection loss by default
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp == "fp16")
        self.batches: Iterator | None = None
        self.start_iteration = self.state.iteration
        self.t_start = time.time()

    @classmethod
    def from_config(cls, config: TrainConfig, on_iteration=None, on_message=None) -> Trainer:
        """Read the ``.data`` file, the cfg and the start weights, check the backup folder
        and the image list, and make the trainer (a one-line ``DarknetError`` on bad
        input).  Layers without weights get Darknet's random init from ``config.seed``
        (the global torch RNG is left as it was)."""
        say = on_message or (lambda m: log.info("%s", m))
        data = read_data_cfg(config.data)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = Darknet(checkpoint.model_cfg(config.cfg))
        schedule = Schedule.of(model, config.cfg, config.max_batches, config.world)
        device = torch.device(config.device)
        backup = Path(config.backup or data.get("backup", "backup/"))
        if config.rank == 0:
            check_writable(backup)
        task = TASKS[config.task](config, model, data, schedule, device, say)
        start = Start.load(model, config.weights, config.clear, say)
        model.to(device)
        initial = copy.deepcopy(model.state_dict()) if config.nan_recovery else None
        return cls(model, make_optimizer(model), task.loader, schedule, config, backup=backup,
                   valid_images=task.valid, epoch=len(task.images), start=start,
                   initial_state=initial, on_iteration=on_iteration, on_message=say,
                   loss_fn=task.loss_fn,
                   accuracy=(task.accuracy, task.top) if task.accuracy else None)

    def build_hooks(self) -> list[HookBase]:
        """The hooks of this run, in the order they act after each step."""
        c, s = self.c, self.schedule
        recover = self.recover if c.nan_recovery else None
        hooks: list[HookBase] = [NanGuard(self.model, c.amp == "fp16", self.on_message,
                                          recover), self.ema]
        if c.calc_map:
            hooks.append(MapHook(self.compute_map, c.map_epochs * self.epoch // s.batch,
                                 self.net.burn_in, s.max_batches, self.save, self.on_message,
                                 self.state.iteration, self.is_main, c.map_iou_thresh))
        if c.calc_topk and self.accuracy is not None:
            measure, top = self.accuracy
            hooks.append(TopkHook(lambda: measure(self.model), 2 * self.epoch // s.batch,
                                  self.net.burn_in, s.max_batches, self.on_message,
                                  self.state.iteration, top, self.is_main))
        hooks.append(CheckpointHook(self.save, s.max_batches, self.is_main))
        if c.chart:
            hooks.append(ChartHook(c.chart, s.max_batches, self.is_main, c.map_iou_thresh))
        return hooks

    def _amp(self):
        if not self.c.amp:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.c.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    # ------------------------------------------------------------------ saving
    def save(self, name: str) -> Path:
        """Write ``<backup>/<cfg>_<name>.weights`` (and for ``last`` the resume ``.pt``)."""
        path = self.backup / f"{self.base}_{name}.weights"
        bad = next((n for n, p in self.model.named_parameters()
                    if not bool(torch.isfinite(p).all())), None)
        if bad is not None:
            raise TrainingDiverged(f"iteration {self.state.iteration}: {bad} went NaN or "
                                   f"infinite in the update; {path.name} was not written "
                                   "(the last checkpoint is the last good state)")
        if name == "last":  # the resume state first: a .weights never outruns its .pt
            extra = {"optimizer": self.optimizer.state_dict(),
                     "chart": {"losses": self.state.loss_history, "maps": self.state.maps}}
            for hook in self.hooks:
                extra.update(hook.state_dict())
            checkpoint.save(self.model, state_path(path), extra=extra)
        self.model.save_weights(path)
        return path

    def recover(self) -> None:
        """Go back to the last good state: ``_last`` and its optimizer state, else the
        start; the data stream restarts at the current iteration."""
        last = self.backup / f"{self.base}_last.weights"
        state = state_path(last)
        if state.exists():
            ckpt = checkpoint.read_checkpoint(state)
            checkpoint.restore(self.model, ckpt, state)
            self.optimizer.load_state_dict(ckpt["optimizer"])
        else:
            self.model.load_state_dict(self.initial_state)
            for st in self.optimizer.state.values():
                st.clear()
        self.batches = iter(self.loader(self.state.iteration))

    def compute_map(self) -> float:
        """mAP (at -iou_thresh, 0.5 by default) of the model as it is now on the valid list
        (the model is not changed)."""
        from ..eval.map import evaluate_map

        return evaluate_map(self.model, self.valid_images, self.model.num_classes,
                            self.c.map_iou_thresh, self.c.map_thresh,
                            device=str(self.device)).map

    # ------------------------------------------------------------------ loop
    def run(self, stop: StopFlag | None = None) -> TrainResult:
        """Train to max_batches (or a signal); returns what happened.  ``stop`` is a flag
        already listening for signals (``train`` installs it before the setup)."""
        if stop is None:
            with StopFlag() as own:
                return self.run(own)
        state = self.state
        self.model.train()
        self.batches = iter(self.loader(state.iteration))
        if self.c.show_imgs and self.is_main:
            self.batches = show_first(self.batches, self.schedule.subdivisions,
                                      Path(self.c.show_imgs))
        self.start_iteration, self.t_start = state.iteration, time.time()
        for hook in self.hooks:
            hook.before_train(state)
        while state.iteration < self.schedule.max_batches and not stop.set:
            if not self.run_step():
                continue
            for hook in self.hooks:
                hook.after_step(state)
        state.stopped = stop.set
        for hook in self.hooks:
            hook.after_train(state)
        return TrainResult(state.iteration, state.stopped, state.final, state.best_map,
                           state.losses)

    def run_step(self) -> bool:
        """One iteration: forward/backward over the subdivisions, then the update.  False
        when a hook dropped the update (the iteration is run again).  The host waits for
        the device once: for the loss, the gradient norm and the printed figures."""
        t0 = time.time()
        state, s = self.state, self.schedule
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, figures, x = self._accumulate()
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        grad_norm = (torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
                     if grads else torch.zeros((), device=self.device))
        fetched = torch.cat([torch.stack([loss_sum.double(), grad_norm.double()]),
                             figures.flat()]).tolist()
        loss_value = fetched[0] / s.subdivisions / self.c.world
        state.grad_norm = fetched[1]
        state.last_stats = figures.stats(fetched[2:])
        for hook in self.hooks:
            if not hook.after_backward(state, loss_value, x):
                return False
        state.iteration += 1
        self.model.seen = state.iteration * s.batch
        rate = learning_rate(self.net, state.iteration, s.max_batches) * state.lr_factor
        set_learning_rate(self.optimizer, rate, s.batch)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        state.avg_loss = (loss_value if state.avg_loss < 0
                          else state.avg_loss * 0.9 + loss_value * 0.1)
        state.losses.append(loss_value)
        state.loss_history.append((state.iteration, loss_value))
        if self.is_main:
            self.on_iteration(self._report(loss_value, rate, time.time() - t0, x))
        return True

    def _accumulate(self) -> tuple[torch.Tensor, LossFigures, torch.Tensor]:
        """Forward and backward over the iteration's mini-batches, gradients all-reduced
        once (with the last one).  Returns the loss summed over mini-batches and
        processes (a device tensor), the last mini-batch's figures and its input."""
        c, n = self.c, self.schedule.subdivisions
        assert self.batches is not None, "run() starts the batches"
        loss_sum = torch.zeros((), device=self.device)
        figures, x = None, None
        for sub in range(n):
            x, targets = next(self.batches)  # targets stay on the CPU for the loss plan
            x = to_input(x.to(self.device, non_blocking=True))
            if c.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            last = sub == n - 1
            sync = (self.train_model.no_sync() if c.world > 1 and not last
                    else contextlib.nullcontext())
            with sync:
                with self._amp():
                    heads = self.train_model(x)
                seen = self.state.iteration * self.schedule.batch + (sub + 1) * x.shape[0]
                loss, figures = self.loss_fn.compute(heads, targets, (x.shape[3], x.shape[2]),
                                                     seen)
                # gradients add up over processes as over subdivisions (Darknet's sum)
                self.scaler.scale(loss * c.world).backward()
            loss_sum = loss_sum + loss.detach()
        if c.world > 1:
            torch.distributed.all_reduce(loss_sum)
        self.scaler.unscale_(self.optimizer)
        return loss_sum, figures, x

    def _report(self, loss: float, rate: float, seconds: float,
                x: torch.Tensor) -> IterationReport:
        state, s = self.state, self.schedule
        done = state.iteration - self.start_iteration
        elapsed = time.time() - self.t_start
        left = (s.max_batches - state.iteration) * elapsed / max(done, 1) / 3600
        lines = [st.line(sec) for st, sec in zip(state.last_stats, self.model.head_sections)]
        return IterationReport(state.iteration, loss, state.avg_loss, rate, seconds,
                               state.iteration * s.batch, left, (x.shape[3], x.shape[2]),
                               lines, self.epoch if self.c.task == "classifier" else 0)


def train(config: TrainConfig, on_iteration=None, on_message=None) -> TrainResult:
    """Train as ``darknet detector train`` (see ``Trainer``).  SIGINT and SIGTERM are
    caught from the first moment: one during setup stops before the first iteration and
    still saves ``_last``."""
    with StopFlag() as stop:
        return Trainer.from_config(config, on_iteration, on_message).run(stop)
