"""darknet-py: Darknet (YOLOv4 / Scaled-YOLOv4) cfg + weights in PyTorch with Darknet's results.

The sub-packages follow the data: ``cfg`` (text -> typed sections; no torch) -> ``nn``
(sections -> layers -> the ``Darknet`` model) -> ``ops`` (boxes, IoU, NMS) -> ``infer``
(the ``Detector``, reports, exports); ``io`` reads and writes files, ``image`` decodes and
resizes, ``eval`` and ``train`` evaluate and train, ``cli`` is the command line.

The names below are imported on first use, so ``import darknet_py.cfg`` needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import CfgError, DarknetError, DataError, ImageError, WeightsError

_LAZY = {
    "Cfg": "cfg", "parse_cfg": "cfg", "read_cfg": "cfg", "scale_cfg": "cfg",
    "Darknet": "nn.model",
    "load": "io.checkpoint", "save": "io.checkpoint",
    "Detector": "infer.detector", "DetectorConfig": "infer.detector",
    "Detections": "infer.detections",
}

__all__ = ["CfgError", "DarknetError", "DataError", "ImageError", "WeightsError",
           *sorted(_LAZY)]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
