"""Darknet cfg files: text -> typed sections -> text.  Pure Python: nothing here needs torch.

``parse`` reads text into ``Cfg`` (a ``NetSection`` and one dataclass per layer, with
Darknet's defaults and source lines); ``write`` turns sections back into text.
"""

from .parse import parse_cfg, read_cfg
from .sections import (ACTIVATIONS, FLT_MAX, SECTION_TYPES, Cfg, ConvolutionalSection, LayerSection,
                       MaxpoolSection, NetSection, Option, RouteSection, SamSection, Section,
                       ShortcutSection, UpsampleSection, YoloSection)
from .write import cfg_to_text, section_text

__all__ = ["ACTIVATIONS", "FLT_MAX", "SECTION_TYPES", "Cfg", "ConvolutionalSection",
           "LayerSection", "MaxpoolSection", "NetSection", "Option", "RouteSection",
           "SamSection", "Section", "ShortcutSection", "UpsampleSection", "YoloSection",
           "cfg_to_text", "parse_cfg", "read_cfg", "section_text"]
