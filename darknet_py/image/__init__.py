"""Images as Darknet sees them: decoding files to RGB float32 in [0, 1] (``decode``, with
stb_image's JPEG pixels from ``stb``) and Darknet's stretch and letterbox resizes
(``resize``)."""

from .decode import DECODERS, decode_image, decode_rgb8, load_image, load_rgb8
from .resize import letterbox_image, network_input, resize_image

__all__ = ["DECODERS", "decode_image", "decode_rgb8", "letterbox_image", "load_image", "load_rgb8",
           "network_input", "resize_image"]
