"""Training as ``darknet detector train`` does it: Darknet's ``[yolo]`` loss (``loss``,
``yolo_deltas``, ``iou_grad``, ``stats``), its SGD and schedule (``optim``), its training
samples (``draws``, ``augment``, ``dataset``, ``show``), the loop (``trainer``, built by
``setup``, its ``state``) with its hooks (``hooks``, ``chart``), signals and folder checks
(``safety``) and several processes (``distributed``)."""

from .distributed import launched_by_torchrun, train_distributed, train_torchrun
from .hooks import HookBase, TrainingDiverged
from .loss import DarknetLoss, LossFigures
from .setup import Schedule, Start, TrainLoader
from .state import TrainState
from .stats import HeadStats
from .trainer import IterationReport, TrainConfig, Trainer, TrainResult, train

__all__ = ["DarknetLoss", "HeadStats", "HookBase", "IterationReport", "LossFigures",
           "Schedule", "Start", "TrainConfig", "TrainLoader", "TrainResult", "TrainState",
           "Trainer", "TrainingDiverged", "launched_by_torchrun", "train",
           "train_distributed", "train_torchrun"]
