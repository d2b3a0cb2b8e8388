"""Images as Darknet sees them: decoding files to RGB float32 in [0, 1] (``decode``) and
Darknet's stretch and letterbox resizes (``resize``)."""

from .decode import decode_image, load_image
from .resize import letterbox_image, resize_image

__all__ = ["decode_image", "letterbox_image", "load_image", "resize_image"]
