"""``darknet detector train``: Darknet's training loop.

One iteration is ``subdivisions`` mini-batches whose gradients (Darknet's deltas)
add up, then one SGD step at Darknet's rate for that iteration.  Checkpoints go
to the ``.data`` file's backup folder as Darknet names them: ``<cfg>_last.weights``
every 100 iterations, ``<cfg>_<N>.weights`` every 1000, ``<cfg>_best.weights``
when ``-map`` improves and ``<cfg>_final.weights`` at the end.  ``seen`` in the
header carries the schedule into a restart.  Beside ``_last`` a ``.pt`` keeps the
optimizer momentum (and EMA) so a resume continues exactly.

Every file is written to a temporary name and renamed.  Ctrl-C or SIGTERM ends the
current iteration, saves ``_last`` and returns normally.  A non-finite loss or
gradient stops training before the step, naming the iteration and the first layer
that went non-finite, and saves nothing over the last good checkpoint (or, with
``nan_recovery``, reloads it and continues at a lower rate).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from . import checkpoint
from .data import read_data_cfg
from .dataset import Augment, DetectionDataset, TrainSampler, collate, network_size
from .errors import DarknetError
from .model import Darknet
from .optim import learning_rate, make_optimizer, set_learning_rate

log = logging.getLogger(__name__)


class TrainingDiverged(DarknetError):
    """The loss or a gradient became NaN or infinite."""


@dataclass
class TrainConfig:
    """What ``detector train`` is asked to do."""

    data: str
    cfg: str
    weights: str | None = None
    clear: bool = False  # -clear: seen = 0, the schedule starts over
    calc_map: bool = False  # -map
    map_epochs: int = 4  # -mAP_epochs
    device: str = "cpu"
    workers: int = 2
    seed: int = 0
    max_batches: int | None = None
    backup: str | None = None  # default: the .data file's backup=
    nan_recovery: bool = False
    amp: str | None = None  # "bf16" or "fp16" (CUDA)
    chart: str | None = "chart.png"  # loss / mAP plot, rewritten every 10 iterations
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


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop saves and stops after the current iteration."""

    def __init__(self):
        self.set = False
        self._old: dict[int, object] = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        log.warning("%s: saving and stopping after this iteration",
                    signal.Signals(signum).name)
        self.set = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _first_non_finite_layer(model: Darknet, x: torch.Tensor) -> int | None:
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


def _first_non_finite_grad(model: Darknet) -> int | None:
    for i, layer in enumerate(model.layers):
        for p in layer.parameters():
            if p.grad is not None and not torch.isfinite(p.grad).all():
                return i
    return None


def draw_chart(losses: list[float], maps: list[tuple[int, float]], max_batches: int,
               path: str | Path, size: int = 800) -> None:
    """Loss (blue) and mAP@0.5 (red, right axis 0-100 %) against iterations, as a PNG."""
    img = np.full((size, size, 3), 255, np.uint8)
    left, right, top, bottom = 60, size - 60, 30, size - 50
    cv2.rectangle(img, (left, top), (right, bottom), (0, 0, 0), 1)
    top_loss = max(1e-6, float(np.percentile(losses, 95)) * 1.2) if losses else 1.0
    span = max(1, max_batches)

    def pos(it, frac):
        return (int(left + (right - left) * it / span), int(bottom - (bottom - top) * frac))

    for k in range(0, 11):
        y = int(bottom - (bottom - top) * k / 10)
        cv2.line(img, (left, y), (right, y), (225, 225, 225), 1)
        cv2.putText(img, f"{top_loss * k / 10:.2f}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (200, 0, 0), 1)
        cv2.putText(img, f"{k * 10}%", (right + 5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (0, 0, 200), 1)
    pts = [pos(i + 1, min(v, top_loss) / top_loss) for i, v in enumerate(losses)
           if math.isfinite(v)]
    if len(pts) > 1:
        cv2.polylines(img, [np.array(pts, np.int32)], False, (200, 0, 0), 1)
    for it, m in maps:
        cv2.circle(img, pos(it, m), 3, (0, 0, 200), -1)
        cv2.putText(img, f"{m * 100:.1f}%", pos(it, m), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 200), 1)
    cv2.putText(img, f"Loss (blue) and mAP@0.5 (red); iterations 0..{max_batches}",
                (left, size - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    ok, buf = cv2.imencode(".png", img)
    if ok:
        from .weights import atomic_write

        atomic_write(path, buf.tobytes())


def _state_path(weights: Path) -> Path:
    return weights.with_suffix(".pt")


class Trainer:
    """Runs ``detector train`` for a ``TrainConfig``; ``run()`` returns ``TrainResult``."""

    def __init__(self, config: TrainConfig, on_iteration: Callable[[IterationReport], None]
                 | None = None, on_message: Callable[[str], None] | None = None):
        self.c = config
        self.on_iteration = on_iteration or (lambda r: log.info("%s", r.line()))
        self.on_message = on_message or (lambda m: log.info("%s", m))
        self.data = read_data_cfg(config.data)
        torch.manual_seed(config.seed)  # Darknet's random init of layers without weights
        self.model = Darknet(config.cfg)
        net = self.model.net
        self.net = net
        self.batch = net.batch
        self.subdivisions = net.subdivisions
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
        self.device = torch.device(config.device)
        self.base = Path(config.cfg).stem
        self.backup = Path(config.backup or self.data.get("backup", "backup/"))
        self.classes = self.model.num_classes
        self.train_images = self.data.image_list("train")
        self.valid_images = (self.data.image_list("valid", "train") if config.calc_map
                             else [])
        self.optimizer_state = None
        self.ema_state = None
        self._load_start()
        # what --nan-recovery falls back to before the first _last exists
        self._initial_state = (copy.deepcopy(self.model.state_dict()) if config.nan_recovery
                               else None)

    # ------------------------------------------------------------------ setup
    def _load_start(self) -> None:
        c, model = self.c, self.model
        if c.weights:
            w = Path(c.weights)
            if w.suffix.lower() == ".pt":
                ckpt = checkpoint.read_checkpoint(w)
                checkpoint.restore(model, ckpt, w)
                self.optimizer_state = ckpt.get("optimizer")
                self.ema_state = ckpt.get("ema")
            else:
                report = model.load_weights(w)
                if report.partial:
                    self.on_message(f"{w}: loaded layers 0..{report.layers_loaded - 1} "
                                    "(partial weights); the rest start from Darknet's init")
                state = _state_path(w)
                if state.exists() and not c.clear:
                    ckpt = checkpoint.read_checkpoint(state)
                    if ckpt.get("header", {}).get("seen") == model.seen:
                        self.optimizer_state = ckpt.get("optimizer")
                        self.ema_state = ckpt.get("ema")
                        self.on_message(f"{state}: resuming optimizer momentum")
        if c.clear:
            model.seen = 0
        model.to(self.device)

    def _loader(self, start: int) -> torch.utils.data.DataLoader:
        aug = Augment.from_model(self.model)
        dataset = DetectionDataset(self.train_images, self.classes, aug)
        net, last = self.net, self.model.yolo_sections[-1]

        def sizes(it):
            return network_size(it, self.max_batches, net.width, net.height, last.random,
                                self.c.seed)

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

    # ------------------------------------------------------------------ saving
    def _save(self, name: str, optimizer, ema) -> Path:
        """Write ``<backup>/<cfg>_<name>.weights`` (and for ``last`` the resume ``.pt``)."""
        path = self.backup / f"{self.base}_{name}.weights"
        self.model.save_weights(path)
        if name == "last":
            checkpoint.save(self.model, _state_path(path), extra={
                "optimizer": optimizer.state_dict(), "ema": ema})
        return path

    def _ema_step(self, ema: dict | None, iteration: int) -> dict | None:
        """Darknet's EMA (``ema_alpha``): from half of max_batches keep an average of the
        trainable tensors, ``ema = alpha * ema + (1 - alpha) * w``; 1000 iterations before
        the end copy it into the model once (training then goes on from there)."""
        alpha = self.net.ema_alpha
        if not alpha or iteration < self.max_batches // 2:
            return ema
        params = {k: p for k, p in self.model.named_parameters()}
        with torch.no_grad():
            if ema is None:
                return {k: p.detach().clone() for k, p in params.items()}
            if iteration == self.max_batches - 1000:
                for k, p in params.items():
                    p.copy_(ema[k])
                self.on_message("EMA applied")
            elif iteration < self.max_batches - 1000:
                for k, p in params.items():
                    ema[k].mul_(alpha).add_(p.detach(), alpha=1 - alpha)
        return ema

    # ------------------------------------------------------------------ loop
    def run(self) -> TrainResult:
        c, model, net = self.c, self.model, self.net
        main = c.rank == 0
        self.backup.mkdir(parents=True, exist_ok=True)
        train_model = model
        if c.world > 1:
            train_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        optimizer = make_optimizer(model)
        if self.optimizer_state:
            optimizer.load_state_dict(self.optimizer_state)
        ema = ({k: v.to(self.device) for k, v in self.ema_state.items()}
               if self.ema_state else None)
        scaler = torch.amp.GradScaler(self.device.type, enabled=c.amp == "fp16")
        iteration = model.seen // self.batch
        start_iteration = iteration
        images = len(self.train_images)
        per_map = max(c.map_epochs * images // self.batch, 100)
        iter_map, best_map, maps = iteration, -1.0, []
        iter_save, iter_save_last = iteration, iteration
        avg_loss, losses = -1.0, []
        lr_factor, recoveries = 1.0, 0
        final = None
        model.train()
        loader = iter(self._loader(iteration))
        t_start = time.time()
        with _StopFlag() as stop:
            while iteration < self.max_batches:
                t0 = time.time()
                optimizer.zero_grad(set_to_none=True)
                loss_sum, stats, x = 0.0, [], None
                for _ in range(self.subdivisions):
                    x, targets = next(loader)
                    x = x.to(self.device, non_blocking=True)
                    targets = targets.to(self.device)
                    with self._amp():
                        loss = train_model(x, targets)
                    # gradients add up over processes as over subdivisions (Darknet's sum)
                    scaler.scale(loss * c.world).backward()
                    loss_sum += float(loss.detach())
                    stats = [st.line(sec) for st, sec in zip(model.loss_stats,
                                                             model.yolo_sections)]
                loss_value = loss_sum / self.subdivisions
                if c.world > 1:
                    t = torch.tensor([loss_value], device=self.device)
                    torch.distributed.all_reduce(t)
                    loss_value = float(t) / c.world
                scaler.unscale_(optimizer)
                # with fp16 the grad scaler skips steps whose gradients overflow
                bad_grad = None if c.amp == "fp16" else _first_non_finite_grad(model)
                if not math.isfinite(loss_value) or bad_grad is not None:
                    layer = _first_non_finite_layer(model, x)
                    layer = layer if layer is not None else bad_grad
                    where = (f"layer {layer} ([{model.cfg.layers[layer].kind}])"
                             if layer is not None else "the loss")
                    message = (f"iteration {iteration + 1}: the loss is {loss_value} and "
                               f"{where} is the first to go non-finite")
                    if c.nan_recovery and recoveries < 3:
                        recoveries += 1
                        lr_factor *= 0.1
                        self._recover(optimizer)
                        self.on_message(message + f"; reloaded the last good weights, rate x"
                                        f"{lr_factor:g}")
                        loader = iter(self._loader(iteration))
                        continue
                    raise TrainingDiverged(message + "; stopped without saving (the last "
                                           "checkpoint is the last good state)")
                iteration += 1
                model.seen = iteration * self.batch
                rate = learning_rate(net, iteration) * lr_factor
                set_learning_rate(optimizer, rate, self.batch)
                scaler.step(optimizer)
                scaler.update()
                ema = self._ema_step(ema, iteration)
                avg_loss = loss_value if avg_loss < 0 else avg_loss * 0.9 + loss_value * 0.1
                losses.append(loss_value)
                elapsed = time.time() - t_start
                done = iteration - start_iteration
                left = (self.max_batches - iteration) * elapsed / max(done, 1) / 3600
                size = (x.shape[3], x.shape[2])
                if main:
                    self.on_iteration(IterationReport(
                        iteration, loss_value, avg_loss, rate, time.time() - t0,
                        iteration * self.batch, left, size, stats))

                if c.calc_map and (iteration >= max(iter_map + per_map, net.burn_in, 400)
                                   or iteration == self.max_batches):
                    iter_map = iteration
                    m = self._map() if main else 0.0
                    if main:
                        maps.append((iteration, m))
                        self.on_message(f"mean_average_precision (mAP@0.5) = {m:f}")
                        if m > best_map:
                            best_map = m
                            self.on_message("New best mAP!")
                            self._save("best", optimizer, ema)
                if main and (iteration >= iter_save + 1000 or iteration % 1000 == 0):
                    iter_save = iteration
                    self._save(str(iteration), optimizer, ema)
                if main and (iteration >= iter_save_last + 100 or iteration % 100 == 0):
                    iter_save_last = iteration
                    self._save("last", optimizer, ema)
                if main and c.chart and (iteration % 10 == 0 or iteration == self.max_batches):
                    draw_chart(losses, maps, self.max_batches, c.chart)
                if stop.set:
                    break
            if main:
                self._save("last", optimizer, ema)
                if iteration >= self.max_batches and not stop.set:
                    final = self._save("final", optimizer, ema)
        return TrainResult(iteration, stop.set, final, best_map, losses)

    def _recover(self, optimizer) -> None:
        last = self.backup / f"{self.base}_last.weights"
        state = _state_path(last)
        if state.exists():
            ckpt = checkpoint.read_checkpoint(state)
            checkpoint.restore(self.model, ckpt, state)
            optimizer.load_state_dict(ckpt["optimizer"])
        else:
            self.model.load_state_dict(self._initial_state)
            for st in optimizer.state.values():
                st.clear()

    def _map(self) -> float:
        from .evaluate import evaluate_map

        try:
            return evaluate_map(self.model, self.valid_images, self.classes,
                                device=str(self.device)).map
        finally:
            self.model.train()


def train(config: TrainConfig, on_iteration=None, on_message=None) -> TrainResult:
    """Train as ``darknet detector train`` (see ``Trainer``)."""
    return Trainer(config, on_iteration, on_message).run()


def _ddp_worker(rank: int, world: int, config: TrainConfig, port: int, devices: list[str]):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    backend = "nccl" if devices[rank].startswith("cuda") else "gloo"
    torch.distributed.init_process_group(backend, rank=rank, world_size=world)
    try:
        cfg = copy.copy(config)
        cfg.rank, cfg.world, cfg.device = rank, world, devices[rank]
        if cfg.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(cfg.device))
        train(cfg, on_message=(None if rank == 0 else (lambda m: None)))
    finally:
        torch.distributed.destroy_process_group()


def train_distributed(config: TrainConfig, devices: list[str], port: int = 29517) -> None:
    """Train with one process per device (``-gpus 0,1``; gloo for CPU, NCCL for CUDA)."""
    torch.multiprocessing.spawn(_ddp_worker, args=(len(devices), config, port, devices),
                                nprocs=len(devices), join=True)
