"""``darknet detector train``: Darknet's training loop.

One iteration (``run_step``) is ``subdivisions`` mini-batches whose gradients
(Darknet's deltas) add up, then one SGD step at Darknet's rate for that iteration.
Around it, hooks (``hooks.py``) keep Darknet's checkpoints in the ``.data`` file's
backup folder (``<cfg>_last.weights`` every 100 iterations, ``<cfg>_<N>.weights``
every 1000, ``<cfg>_best.weights`` when ``-map`` improves, ``<cfg>_final.weights`` at
the end), the EMA, the chart and the NaN guard.  ``seen`` in the header carries the
schedule into a restart; beside ``_last`` a ``.pt`` keeps the optimizer momentum (and
EMA) so a resume continues exactly.

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
from typing import Callable

import torch

from ..errors import CfgError, DarknetError
from ..io import checkpoint
from ..io.data import LabelFiles, read_data_cfg
from ..nn.model import Darknet
from .dataset import (Augment, DetectionDataset, TrainSampler, collate, network_size,
                      to_input)
from .hooks import ChartHook, CheckpointHook, EmaHook, HookBase, MapHook, NanGuard, TrainingDiverged
from .loss import LossFigures
from .optim import learning_rate, make_optimizer, schedule_warnings, set_learning_rate
from .safety import StopFlag, check_writable
from .show import show_first
from .stats import HeadStats

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """What ``detector train`` is asked to do."""

    data: str
    cfg: str
    weights: str | None = None
    clear: bool = False  # -clear: seen = 0, the schedule starts over
    calc_map: bool = False  # -map
    map_epochs: int = 4  # -mAP_epochs
    map_iou_thresh: float = 0.5  # -iou_thresh: IoU a detection needs for the mAP
    map_thresh: float = 0.25  # -thresh: the TP/FP threshold of the mAP report
    device: str = "cpu"
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
    rank: int = 0
    world: int = 1


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
    layer_lines: list[str] = field(default_factory=list)  # Darknet's per-[yolo] lines

    def line(self) -> str:
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


def _state_path(weights: Path) -> Path:
    return weights.with_suffix(".pt")


class Trainer:
    """Runs ``detector train`` for a ``TrainConfig``; ``run()`` returns ``TrainResult``.

    ``last_stats`` holds the per-``[yolo]`` figures of the last mini-batch.
    """

    def __init__(self, config: TrainConfig, on_iteration: Callable[[IterationReport], None]
                 | None = None, on_message: Callable[[str], None] | None = None):
        self.c = config
        self.on_iteration = on_iteration or (lambda r: log.info("%s", r.line()))
        self.on_message = on_message or (lambda m: log.info("%s", m))
        self.data = read_data_cfg(config.data)
        torch.manual_seed(config.seed)  # Darknet's random init of layers without weights
        self.model = Darknet(checkpoint.model_cfg(config.cfg))
        self.net = net = self.model.net
        if net.adam:
            raise CfgError("[net] adam=1: Darknet's Adam update is not implemented by "
                           "darknet-py; remove it to train with Darknet's SGD", net.path,
                           net.options["adam"].line)
        self._set_batches()
        self.device = torch.device(config.device)
        self.is_main = config.rank == 0
        self.base = Path(config.cfg).stem
        self.backup = Path(config.backup or self.data.get("backup", "backup/"))
        if self.is_main:
            check_writable(self.backup)
        self.classes = self.model.num_classes
        self.train_images = self.data.image_list("train")
        self.train_labels = LabelFiles.find(self.train_images)
        self.on_message(self.train_labels.summary())
        self.valid_images = (self.data.image_list("valid", "train") if config.calc_map
                             else [])
        self.optimizer_state = None
        self.ema_state = None
        self._history: dict = {}
        self._load_start()
        # what --nan-recovery falls back to before the first _last exists
        self._initial_state = (copy.deepcopy(self.model.state_dict()) if config.nan_recovery
                               else None)
        self.optimizer = make_optimizer(self.model)
        if self.optimizer_state:
            self.optimizer.load_state_dict(self.optimizer_state)
        self.ema = EmaHook(self, {k: v.to(self.device) for k, v in self.ema_state.items()}
                           if self.ema_state else None)
        # loop state, read and written by the hooks
        self.iteration = self.model.seen // self.batch
        self.losses: list[float] = []
        # (iteration, loss) and (iteration, mAP) of the whole run, kept across resumes
        self.loss_history: list[tuple[int, float]] = list(self._history.get("losses", []))
        self.maps: list[tuple[int, float]] = list(self._history.get("maps", []))
        self.best_map = -1.0
        self.lr_factor = 1.0
        self.stopped = False
        self.final: Path | None = None
        self.last_stats: list[HeadStats] = []
        self.grad_norm = 0.0

    # ------------------------------------------------------------------ setup
    def _set_batches(self) -> None:
        """Batch, subdivisions, mini-batch and max_batches, checked."""
        net, config = self.net, self.c
        self.batch, self.subdivisions = net.batch, net.subdivisions
        if self.batch % self.subdivisions:
            raise DarknetError(f"{config.cfg}: batch={self.batch} is not a multiple of "
                               f"subdivisions={self.subdivisions}")
        self.mini_batch = self.batch // self.subdivisions
        if self.mini_batch % config.world:
            raise DarknetError(f"{config.cfg}: the mini-batch of {self.mini_batch} images "
                               f"(batch/subdivisions) does not split over {config.world} "
                               "processes")
        self.max_batches = config.max_batches or net.max_batches
        if self.max_batches <= 0:
            raise DarknetError(f"{config.cfg}: max_batches is not set (use --max-batches)")
        for warning in schedule_warnings(net, self.max_batches):
            log.warning("%s: %s", config.cfg, warning)

    def _load_start(self) -> None:
        c, model = self.c, self.model
        if c.weights:
            w = Path(c.weights)
            if w.suffix.lower() == ".pt":
                ckpt = checkpoint.read_checkpoint(w)
                checkpoint.restore(model, ckpt, w)
                self.optimizer_state = ckpt.get("optimizer")
                self.ema_state = ckpt.get("ema")
                self._history = ckpt.get("chart") or {}
            else:
                report = model.load_weights(w)
                if report.partial:
                    self.on_message(f"{w}: loaded layers 0..{report.layers_loaded - 1} "
                                    "(partial weights); the rest start from Darknet's init")
                checkpoint.check_finite(model, w)
                state = _state_path(w)
                if state.exists() and not c.clear:
                    ckpt = checkpoint.read_checkpoint(state)
                    seen = ckpt.get("header", {}).get("seen")
                    if seen == model.seen:
                        self.optimizer_state = ckpt.get("optimizer")
                        self.ema_state = ckpt.get("ema")
                        self._history = ckpt.get("chart") or {}
                        self.on_message(f"{state}: resuming optimizer momentum")
                    else:
                        self.on_message(f"{state} is from seen {seen}, {w} from seen "
                                        f"{model.seen}: the optimizer momentum, EMA and "
                                        "chart history start afresh")
        if c.clear:
            model.seen = 0
        model.to(self.device)

    def _loader(self, start: int) -> torch.utils.data.DataLoader:
        aug = Augment.from_model(self.model)
        dataset = DetectionDataset(self.train_images, self.classes, aug, self.train_labels)
        net, last = self.net, self.model.yolo_sections[-1]

        def sizes(it):
            return network_size(it, self.max_batches, net.width, net.height, last.random,
                                self.c.seed, net.resize_step)

        sampler = TrainSampler(len(dataset), self.mini_batch, self.subdivisions, sizes,
                               self.c.seed, start, self.max_batches, self.c.rank, self.c.world)
        workers = max(0, self.c.workers)
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
            prefetch_factor=2 if workers else None)

    def _amp(self):
        if not self.c.amp:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.c.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def build_hooks(self) -> list[HookBase]:
        """The hooks of this run, in the order they act after each step."""
        hooks: list[HookBase] = [NanGuard(self.c.nan_recovery), self.ema]
        if self.c.calc_map:
            hooks.append(MapHook(self))
        hooks.append(CheckpointHook())
        if self.c.chart:
            hooks.append(ChartHook(self.c.chart))
        return hooks

    # ------------------------------------------------------------------ saving
    def save(self, name: str) -> Path:
        """Write ``<backup>/<cfg>_<name>.weights`` (and for ``last`` the resume ``.pt``)."""
        path = self.backup / f"{self.base}_{name}.weights"
        bad = next((n for n, p in self.model.named_parameters()
                    if not bool(torch.isfinite(p).all())), None)
        if bad is not None:
            raise TrainingDiverged(f"iteration {self.iteration}: {bad} went NaN or infinite "
                                   f"in the update; {path.name} was not written (the last "
                                   "checkpoint is the last good state)")
        if name == "last":  # the resume state first: a .weights never outruns its .pt
            checkpoint.save(self.model, _state_path(path), extra={
                "optimizer": self.optimizer.state_dict(), "ema": self.ema.ema,
                "chart": {"losses": self.loss_history, "maps": self.maps}})
        self.model.save_weights(path)
        return path

    def recover(self) -> None:
        """Go back to the last good state: ``_last`` and its optimizer state, else the
        start; the data stream restarts at the current iteration."""
        last = self.backup / f"{self.base}_last.weights"
        state = _state_path(last)
        if state.exists():
            ckpt = checkpoint.read_checkpoint(state)
            checkpoint.restore(self.model, ckpt, state)
            self.optimizer.load_state_dict(ckpt["optimizer"])
        else:
            self.model.load_state_dict(self._initial_state)
            for st in self.optimizer.state.values():
                st.clear()
        self._batches = iter(self._loader(self.iteration))

    def compute_map(self) -> float:
        """mAP (at -iou_thresh, 0.5 by default) of the model as it is now on the valid list
        (the model is not changed)."""
        from ..eval.map import evaluate_map

        return evaluate_map(self.model, self.valid_images, self.classes, self.c.map_iou_thresh,
                            self.c.map_thresh, device=str(self.device)).map

    # ------------------------------------------------------------------ loop
    def run(self, stop: StopFlag | None = None) -> TrainResult:
        """Train to max_batches (or a signal); returns what happened.  ``stop`` is a flag
        already listening for signals (``train`` installs it before the setup)."""
        if stop is None:
            with StopFlag() as own:
                return self.run(own)
        if self.c.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._train_model = self.model
        if self.c.world > 1:
            if self.c.sync_bn:
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self._train_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                else None)
        self._loss = self.model.darknet_loss()
        self._scaler = torch.amp.GradScaler(self.device.type, enabled=self.c.amp == "fp16")
        self._hooks = self.build_hooks()
        self._start_iteration = self.iteration
        self._avg_loss = -1.0
        self.model.train()
        self._batches = iter(self._loader(self.iteration))
        if self.c.show_imgs and self.is_main:
            self._batches = show_first(self._batches, self.subdivisions, Path(self.c.show_imgs))
        self._t_start = time.time()
        for hook in self._hooks:
            hook.before_train(self)
        while self.iteration < self.max_batches and not stop.set:
            if not self.run_step():
                continue
            for hook in self._hooks:
                hook.after_step(self)
        self.stopped = stop.set
        for hook in self._hooks:
            hook.after_train(self)
        return TrainResult(self.iteration, self.stopped, self.final, self.best_map, self.losses)

    def run_step(self) -> bool:
        """One iteration: forward/backward over the subdivisions, then the update.  False
        when a hook dropped the update (the iteration is run again).  The host waits for
        the device once: for the loss, the gradient norm and the printed figures."""
        t0 = time.time()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, figures, x = self._accumulate()
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        grad_norm = (torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
                     if grads else torch.zeros((), device=self.device))
        fetched = torch.cat([torch.stack([loss_sum.double(), grad_norm.double()]),
                             figures.sums.flatten()]).tolist()
        loss_value = fetched[0] / self.subdivisions / self.c.world
        self.grad_norm = fetched[1]
        self.last_stats = figures.stats([fetched[2 + 5 * k: 7 + 5 * k]
                                         for k in range(len(figures.counts))])
        for hook in self._hooks:
            if not hook.after_backward(self, loss_value, x):
                return False
        self.iteration += 1
        self.model.seen = self.iteration * self.batch
        rate = learning_rate(self.net, self.iteration, self.max_batches) * self.lr_factor
        set_learning_rate(self.optimizer, rate, self.batch)
        self._scaler.step(self.optimizer)
        self._scaler.update()
        self._avg_loss = (loss_value if self._avg_loss < 0
                          else self._avg_loss * 0.9 + loss_value * 0.1)
        self.losses.append(loss_value)
        self.loss_history.append((self.iteration, loss_value))
        if self.is_main:
            self.on_iteration(self._report(loss_value, rate, time.time() - t0, x))
        return True

    def _accumulate(self) -> tuple[torch.Tensor, LossFigures, torch.Tensor]:
        """Forward and backward over the iteration's mini-batches, gradients all-reduced
        once (with the last one).  Returns the loss summed over mini-batches and
        processes (a device tensor), the last mini-batch's figures and its input."""
        c = self.c
        loss_sum = torch.zeros((), device=self.device)
        figures, x = None, None
        for sub in range(self.subdivisions):
            x, targets = next(self._batches)  # targets stay on the CPU for the loss plan
            x = to_input(x.to(self.device, non_blocking=True))
            if c.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            last = sub == self.subdivisions - 1
            sync = (self._train_model.no_sync() if c.world > 1 and not last
                    else contextlib.nullcontext())
            with sync:
                with self._amp():
                    heads = self._train_model(x)
                loss, figures = self._loss.compute(heads, targets, (x.shape[3], x.shape[2]))
                # gradients add up over processes as over subdivisions (Darknet's sum)
                self._scaler.scale(loss * c.world).backward()
            loss_sum = loss_sum + loss.detach()
        if c.world > 1:
            torch.distributed.all_reduce(loss_sum)
        self._scaler.unscale_(self.optimizer)
        return loss_sum, figures, x

    def _report(self, loss: float, rate: float, seconds: float,
                x: torch.Tensor) -> IterationReport:
        done = self.iteration - self._start_iteration
        elapsed = time.time() - self._t_start
        left = (self.max_batches - self.iteration) * elapsed / max(done, 1) / 3600
        lines = [st.line(sec) for st, sec in zip(self.last_stats, self.model.yolo_sections)]
        return IterationReport(self.iteration, loss, self._avg_loss, rate, seconds,
                               self.iteration * self.batch, left, (x.shape[3], x.shape[2]),
                               lines)


def train(config: TrainConfig, on_iteration=None, on_message=None) -> TrainResult:
    """Train as ``darknet detector train`` (see ``Trainer``).  SIGINT and SIGTERM are
    caught from the first moment: one during setup stops before the first iteration and
    still saves ``_last``."""
    with StopFlag() as stop:
        return Trainer(config, on_iteration, on_message).run(stop)
