"""What ``Trainer.from_config`` reads and checks before the first iteration.

The batch schedule of the cfg (``Schedule``), the weights or checkpoint training starts
from and what a resume brings back (``Start``), and the loader of each iteration's
mini-batches (``TrainLoader``).  The trainer itself does no I/O beyond its checkpoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import CfgError, DarknetError
from ..io import checkpoint
from ..io.data import LabelFiles
from ..nn.model import Darknet
from .dataset import Augment, DetectionDataset, SampledLoader, collate, network_size
from .device_augment import DeviceAugment, PlannedDataset, check_supported, collate_plans
from .optim import schedule_warnings

log = logging.getLogger(__name__)


def state_path(weights: Path) -> Path:
    """The ``.pt`` beside a ``.weights`` checkpoint that keeps the optimizer state."""
    return weights.with_suffix(".pt")


@dataclass(frozen=True)
class Schedule:
    """Images per update (``batch``), its ``subdivisions`` and the run's length."""

    batch: int
    subdivisions: int
    max_batches: int

    @property
    def mini_batch(self) -> int:
        return self.batch // self.subdivisions

    @classmethod
    def of(cls, model: Darknet, cfg: str, max_batches: int | None, world: int) -> Schedule:
        """The cfg's schedule, checked (a one-line error naming the cfg)."""
        net = model.net
        if net.adam:
            raise CfgError("[net] adam=1: Darknet's Adam update is not implemented by "
                           "darknet-py; remove it to train with Darknet's SGD", net.path,
                           net.options["adam"].line)
        if net.batch % net.subdivisions:
            raise DarknetError(f"{cfg}: batch={net.batch} is not a multiple of "
                               f"subdivisions={net.subdivisions}")
        s = cls(net.batch, net.subdivisions, max_batches or net.max_batches)
        if s.mini_batch % world:
            raise DarknetError(f"{cfg}: the mini-batch of {s.mini_batch} images "
                               f"(batch/subdivisions) does not split over {world} processes")
        if s.max_batches <= 0:
            raise DarknetError(f"{cfg}: max_batches is not set (use --max-batches)")
        for warning in schedule_warnings(net, s.max_batches):
            log.warning("%s: %s", cfg, warning)
        return s


@dataclass
class Start:
    """What a start from ``.weights`` or ``.pt`` brings besides the weights: the optimizer
    momentum, the EMA and the chart history of the run so far."""

    optimizer: dict | None = None
    ema: dict | None = None
    history: dict = field(default_factory=dict)

    @classmethod
    def load(cls, model: Darknet, weights: str | None, clear: bool,
             on_message: Callable[[str], None]) -> Start:
        """Load ``weights`` into ``model``; a ``.pt``, or the ``.pt`` beside a ``.weights``
        from the same ``seen``, also restores the optimizer state (not with ``clear``)."""
        start = cls()
        if weights:
            w = Path(weights)
            if w.suffix.lower() == ".pt":
                ckpt = checkpoint.read_checkpoint(w)
                checkpoint.restore(model, ckpt, w)
                start = cls.of(ckpt)
            else:
                start = cls._from_weights(model, w, clear, on_message)
        if clear:
            model.seen = 0
        return start

    @classmethod
    def of(cls, ckpt: dict) -> Start:
        return cls(ckpt.get("optimizer"), ckpt.get("ema"), ckpt.get("chart") or {})

    @classmethod
    def _from_weights(cls, model: Darknet, w: Path, clear: bool,
                      on_message: Callable[[str], None]) -> Start:
        report = model.load_weights(w)
        if report.partial:
            on_message(f"{w}: loaded layers 0..{report.layers_loaded - 1} (partial "
                       "weights); the rest start from Darknet's init")
        state = state_path(w)
        if not state.exists() or clear:
            return cls()
        ckpt = checkpoint.read_checkpoint(state)
        seen = ckpt.get("header", {}).get("seen")
        if seen != model.seen:
            on_message(f"{state} is from seen {seen}, {w} from seen {model.seen}: the "
                       "optimizer momentum, EMA and chart history start afresh")
            return cls()
        on_message(f"{state}: resuming optimizer momentum")
        return cls.of(ckpt)


class TrainLoader(SampledLoader):
    """``loader(start)``: the mini-batches from iteration ``start`` on, as
    ``(images, targets)`` (Darknet's samples, ``random`` multi-scale).  With
    ``device_augment`` the workers only decode and plan, and the pixels are made batched
    on ``device`` (``DeviceAugment``), equal to the CPU loader's within one level."""

    def __init__(self, model: Darknet, images: list[str], labels: LabelFiles,
                 schedule: Schedule, seed: int, workers: int, device: torch.device,
                 rank: int = 0, world: int = 1, device_augment: bool = False):
        augment = Augment.from_model(model)
        if device_augment:
            check_supported(augment, model.net.path)
        kind = PlannedDataset if device_augment else DetectionDataset
        super().__init__(kind(images, model.num_classes, augment, labels),
                         collate_plans if device_augment else collate, schedule, seed,
                         workers, device, rank, world)
        self.on_device = DeviceAugment(device) if device_augment else None
        self.net, self.last = model.net, model.head_sections[-1]

    def size(self, iteration: int) -> tuple[int, int]:
        net = self.net
        return network_size(iteration, self.schedule.max_batches, net.width, net.height,
                            self.last.random, self.seed, net.resize_step)

    def __call__(self, start: int) -> torch.utils.data.DataLoader:
        batches = self.batches(start)
        if self.on_device is None:
            return batches
        return ((self.on_device(plans), targets) for plans, targets in batches)


@dataclass
class TaskParts:
    """What a training task adds to the common setup: its loader of mini-batches, its
    loss, the training list and the mAP list."""

    loader: Callable[[int], object]
    loss_fn: object
    images: list[str]
    valid: list[str]
    accuracy: Callable[[Darknet], float] | None = None  # -topk: the model's top-k accuracy
    top: int = 5


def detector_task(config, model: Darknet, data, schedule: Schedule, device: torch.device,
                  say: Callable[[str], None]) -> TaskParts:
    """``detector train``: label files beside the images, Darknet's detection loss."""
    images = data.image_list("train")
    labels = LabelFiles.find(images)
    say(labels.summary())
    valid = data.image_list("valid", "train") if config.calc_map else []
    loader = TrainLoader(model, images, labels, schedule, config.seed, config.workers,
                         device, config.rank, config.world, config.device_augment)
    return TaskParts(loader, model.darknet_loss(), images, valid)


def classifier_task(config, model: Darknet, data, schedule: Schedule, device: torch.device,
                    say: Callable[[str], None]) -> TaskParts:
    """``classifier train``: classes from ``labels=`` found in each path, the softmax and
    ``[cost]`` cost."""
    from ..io.data import read_names
    from .classify_data import ClassifierLoader
    from .classify_loss import ClassifierLoss

    loss = ClassifierLoss(model)
    classes = data.count("classes", 2)
    outputs = model.shapes[loss.index].size
    if outputs != classes:
        raise DarknetError(f"{config.data}: classes={classes}, but the cfg's [softmax] has "
                           f"{outputs} outputs")
    if config.calc_map or config.device_augment:
        raise DarknetError("classifier train: -map and --device-augment are detector options")
    labels = read_names(data.resolve("labels", "data/labels.list"))
    images = data.image_list("train")
    loader = ClassifierLoader(model, images, labels, classes, schedule, config.seed,
                              config.workers, device, config.rank, config.world)
    top = data.count("top", 5)
    valid = data.image_list("valid", "train") if config.calc_topk else []

    def accuracy(m: Darknet) -> float:
        from ..eval.classifier import top_k_accuracy

        return top_k_accuracy(m, valid, labels, classes, top)

    return TaskParts(loader, loss, images, valid, accuracy, top)


#: the training tasks, by ``TrainConfig.task``
TASKS = {"detector": detector_task, "classifier": classifier_task}
