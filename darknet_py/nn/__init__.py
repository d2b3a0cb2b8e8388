"""PyTorch side of a cfg: activations, one module per Darknet layer, the builder that turns
sections into layers, and the ``Darknet`` model."""

from .activations import ACTIVATIONS, activation
from .builder import BUILDERS, Shape, build_layers
from .layers import (Convolutional, DarknetBatchNorm2d, DarknetLayer, MaxPool, Route, Sam, Shortcut,
                     Upsample, Yolo)
from .model import Darknet

__all__ = ["ACTIVATIONS", "BUILDERS", "Convolutional", "Darknet", "DarknetBatchNorm2d",
           "DarknetLayer", "MaxPool", "Route", "Sam", "Shape", "Shortcut", "Upsample", "Yolo",
           "activation", "build_layers"]
