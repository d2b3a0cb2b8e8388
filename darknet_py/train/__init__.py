"""Training as ``darknet detector train`` does it: Darknet's ``[yolo]`` loss (``loss``,
``yolo_deltas``, ``iou_grad``, ``stats``), its SGD and schedule (``optim``), its data
pipeline (``dataset``), the loop (``trainer``) with its hooks (``hooks``, ``chart``),
signals and folder checks (``safety``) and several processes (``distributed``)."""

from .distributed import launched_by_torchrun, train_distributed, train_torchrun
from .hooks import TrainingDiverged
from .loss import DarknetLoss, LossFigures
from .stats import HeadStats
from .trainer import IterationReport, TrainConfig, Trainer, TrainResult, train

__all__ = ["DarknetLoss", "HeadStats", "IterationReport", "LossFigures", "TrainConfig",
           "TrainResult", "Trainer", "TrainingDiverged", "launched_by_torchrun", "train",
           "train_distributed", "train_torchrun"]
