"""Inference: the ``Detector`` (Darknet's preprocessing, thresholds and NMS), per-image
``Detections``, what ``detector test`` prints and writes, and exports (ONNX, TorchScript,
``torch.export``)."""

from .detections import Detections, candidates, darknet_order
from .detector import Detector, DetectorConfig, ImageResult, detect_images, inference_model
from .report import draw_detections, json_frame, report_lines, write_json, yolo_label_lines

__all__ = ["Detections", "Detector", "DetectorConfig", "ImageResult", "candidates",
           "darknet_order", "detect_images", "draw_detections", "inference_model",
           "json_frame", "report_lines", "write_json", "yolo_label_lines"]
