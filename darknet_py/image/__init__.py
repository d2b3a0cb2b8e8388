"""Images as Darknet sees them: decoding files to RGB float32 in [0, 1] (``decode``: the
pixels of Darknet built with OpenCV by default, or stb_image's from ``stb``), Darknet's
stretch and letterbox resizes (``resize``), and OpenCV's 8-bit arithmetic on tensors for
the device training pipeline (``opencv8``)."""

from .decode import DECODERS, DEFAULT_DECODER, decode_image, decode_rgb8, load_image, load_rgb8
from .resize import letterbox_image, network_input, resize_image

__all__ = ["DECODERS", "DEFAULT_DECODER", "decode_image", "decode_rgb8", "letterbox_image", "load_image", "load_rgb8",
           "network_input", "resize_image"]
