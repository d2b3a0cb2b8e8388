"""Evaluation: Darknet's ``detector map`` (``map``), ``detector valid`` result files
(``valid``), COCO ids, ground truth and pycocotools (``coco``), and ``calc_anchors``
(``anchors``)."""

from .anchors import AnchorResult, calc_anchors, kmeans_anchors
from .coco import CocoResult, coco_evaluate, coco_results, ground_truth
from .map import MapAccumulator, MapResult, evaluate_map
from .valid import validate_detector

__all__ = ["AnchorResult", "CocoResult", "MapAccumulator", "MapResult", "calc_anchors",
           "coco_evaluate", "coco_results", "evaluate_map", "ground_truth", "kmeans_anchors",
           "validate_detector"]
