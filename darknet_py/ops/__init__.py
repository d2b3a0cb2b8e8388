"""Box operations, one implementation each: overlap measures, YOLO box decoding, box
correction and clipping (``boxes``), and Darknet's NMS (``nms``)."""

from .boxes import (IOU_KINDS, box_iou, clip_corners, corners, correct_boxes, letterbox_size,
                    pairwise_iou, shape_iou, yolo_boxes)
from .nms import NMS_KINDS, nms, sort_like_darknet

__all__ = ["IOU_KINDS", "NMS_KINDS", "box_iou", "clip_corners", "corners", "correct_boxes",
           "letterbox_size", "nms", "pairwise_iou", "shape_iou", "sort_like_darknet",
           "yolo_boxes"]
