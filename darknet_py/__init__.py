"""darknet-py: Darknet (YOLOv4 / Scaled-YOLOv4) cfg + weights in PyTorch with Darknet's results."""

from .cfg import Cfg, parse_cfg, read_cfg
from .checkpoint import load, save
from .errors import CfgError, DarknetError, DataError, ImageError, WeightsError
from .model import Darknet

__all__ = ["Cfg", "CfgError", "Darknet", "DarknetError", "DataError", "ImageError",
           "WeightsError", "load", "parse_cfg", "read_cfg", "save"]
__version__ = "0.1.0"
