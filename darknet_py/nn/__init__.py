"""PyTorch side of a cfg: activations, one module per Darknet layer kind (``registry``),
the builder that turns sections into layers, and the ``Darknet`` model."""

from .activations import ACTIVATIONS, activation
from .builder import LAYER_KINDS, Shape, build_layers
from .attention import Sam, ScaleChannels
from .heads import Region, Yolo
from .layers import Convolutional, DarknetBatchNorm2d, DarknetLayer, Route, Shortcut
from .pooling import LocalAvgPool, MaxPool, Upsample
from .model import Darknet

__all__ = ["ACTIVATIONS", "LAYER_KINDS", "Convolutional", "Darknet", "DarknetBatchNorm2d",
           "DarknetLayer", "LocalAvgPool", "MaxPool", "Region", "Route", "Sam", "ScaleChannels", "Shape",
           "Shortcut", "Upsample", "Yolo", "activation", "build_layers"]
