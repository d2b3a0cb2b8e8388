"""Darknet cfg files: text -> typed sections -> text.  Pure Python: nothing here needs torch.

``parse`` reads text into ``Cfg`` (a ``NetSection`` and one dataclass per layer, with
Darknet's defaults and source lines); ``write`` turns sections back into text.
``family``, ``presets``, ``generate`` and ``scale`` make cfgs of the Scaled-YOLOv4 family
from compound-scaling knobs (``scale_cfg``).
"""

from .parse import parse_cfg, read_cfg
from .sections import (ACTIVATIONS, FLT_MAX, SECTION_TYPES, Cfg, ConvolutionalSection, LayerSection,
                       MaxpoolSection, NetSection, Option, RouteSection, SamSection, Section,
                       ShortcutSection, UpsampleSection, YoloSection)
from .scale import scale_cfg
from .write import cfg_to_text, section_text

__all__ = ["ACTIVATIONS", "FLT_MAX", "SECTION_TYPES", "Cfg", "ConvolutionalSection",
           "LayerSection", "MaxpoolSection", "NetSection", "Option", "RouteSection",
           "SamSection", "Section", "ShortcutSection", "UpsampleSection", "YoloSection",
           "cfg_to_text", "parse_cfg", "read_cfg", "scale_cfg", "section_text"]
