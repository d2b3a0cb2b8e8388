"""Training as ``darknet detector train`` does it: Darknet's ``[yolo]`` loss (``loss``,
``yolo_deltas``, ``iou_grad``, ``stats``), its SGD and schedule (``optim``), its data
pipeline (``dataset``), the loop (``trainer``) with its hooks (``hooks``, ``chart``) and
several processes (``distributed``)."""

from .distributed import train_distributed
from .hooks import TrainingDiverged
from .loss import DarknetLoss, split_targets
from .stats import HeadStats
from .trainer import IterationReport, TrainConfig, Trainer, TrainResult, train

__all__ = ["DarknetLoss", "HeadStats", "IterationReport", "TrainConfig", "TrainResult",
           "Trainer", "TrainingDiverged", "split_targets", "train", "train_distributed"]
