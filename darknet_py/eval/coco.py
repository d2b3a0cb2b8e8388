"""COCO formats: Darknet's results JSON, ground truth built from Darknet labels, and
pycocotools' ``COCOeval`` on them.

Darknet writes COCO results with the image id read from the file name
(``get_coco_image_id``: the digits after the last ``_`` or ``/``) and the class
mapped to COCO's 91 category ids (``coco_ids``).  The ground truth built here
uses the same two rules, so COCO AP works for any Darknet-format dataset.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..errors import DataError
from ..infer.detections import Detections
from ..io.data import class_name, read_labels
from ..files import read_input
from ..ops.boxes import corners

log = logging.getLogger(__name__)

# COCO's category ids of the 80 detection classes, in Darknet's coco.names order
COCO_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
            25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49,
            50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74,
            75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)

STAT_NAMES = (
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
)


def category_id(class_id: int, classes: int) -> int:
    """COCO category id of a class: COCO's ids for up to 80 classes (as Darknet writes
    them), ``class_id + 1`` for larger sets."""
    return COCO_IDS[class_id] if classes <= len(COCO_IDS) else class_id + 1


def coco_image_id(path: str | Path) -> int:
    """Darknet's ``get_coco_image_id``: the number after the last ``_`` or ``/``
    (``.../000000000009.jpg`` -> 9, ``COCO_val2014_000000000042.jpg`` -> 42); 0 if none."""
    s = str(path)
    tail = s[max(s.rfind("/"), s.rfind("_")) + 1:]
    m = re.match(r"\s*[+-]?\d+", tail)
    return int(m.group()) if m else 0


def coco_results(path: str | Path, dets: Detections) -> list[dict]:
    """One image's detections as COCO results (``print_cocos``): boxes in pixels clipped to
    the image, ``[x, y, w, h]``, one entry per class with a non-zero probability."""
    classes = dets.probs.shape[1]
    image_id = coco_image_id(path)
    x0, y0, x1, y1 = dets.corners_clipped().T
    out = []
    probs = dets.probs.numpy()
    for row, j in zip(*np.nonzero(probs)):
        box = (x0[row], y0[row], x1[row] - x0[row], y1[row] - y0[row])  # float32, as Darknet
        out.append({"image_id": image_id, "category_id": category_id(int(j), classes),
                    "bbox": [float(v) for v in box], "score": float(probs[row, j])})
    return out


def result_line(r: dict) -> str:
    """One results entry in Darknet's text layout."""
    x, y, w, h = r["bbox"]
    return (f'{{"image_id":{r["image_id"]}, "category_id":{r["category_id"]}, '
            f'"bbox":[{x:f}, {y:f}, {w:f}, {h:f}], "score":{r["score"]:f}}}')


def ground_truth(images: Sequence[str], classes: int = 80,
                 names: Sequence[str] | None = None) -> dict:
    """COCO ground truth for Darknet-format labelled images (ids as ``coco_image_id``)."""
    if not images:
        raise DataError("the ground-truth image list is empty")
    labels = read_labels(list(images), classes)
    out_images, annotations, owners = [], [], {}
    for path, lab in zip(images, labels):
        image_id = coco_image_id(path)
        if image_id in owners:
            raise DataError(f"{path} and {owners[image_id]} both have COCO image id {image_id} "
                            "(COCO ids are read from the digits at the end of file names)")
        owners[image_id] = path
        size = _image_size(path)
        out_images.append({"id": image_id, "file_name": Path(path).name,
                           "width": size[0], "height": size[1]})
        lab = lab.astype(np.float64)
        left, top, _, _ = (v.numpy() for v in corners(torch.from_numpy(lab[:, 1:5])))
        for cls, x0, y0, bw, bh in zip(lab[:, 0], left, top, lab[:, 3], lab[:, 4]):
            pw, ph = bw * size[0], bh * size[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": category_id(int(cls), classes),
                                "bbox": [x0 * size[0], y0 * size[1], pw, ph],
                                "area": pw * ph, "iscrowd": 0})
    categories = [{"id": category_id(j, classes),
                   "name": class_name(names, j)}
                  for j in range(classes)]
    return {"images": out_images, "annotations": annotations, "categories": categories}


def _image_size(path: str) -> tuple[int, int]:
    data = np.frombuffer(read_input(path, "image file", DataError), np.uint8)
    im = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if im is None:
        raise DataError(f"{path}: cannot decode image (not an image file, or corrupt)")
    return im.shape[1], im.shape[0]


def _load_json(path: str | Path, what: str):
    text = read_input(path, what, DataError)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: {what} is not valid JSON ({exc})") from None


@dataclass
class CocoResult:
    """pycocotools' 12 summary numbers (``COCOeval.stats``) and its printed lines."""

    stats: np.ndarray
    lines: list[str]

    @property
    def ap(self) -> float:
        """AP@[.50:.95]."""
        return float(self.stats[0])

    @property
    def ap50(self) -> float:
        return float(self.stats[1])


def coco_evaluate(results: str | Path | list, gt: str | Path | dict) -> CocoResult:
    """Run pycocotools' bbox ``COCOeval`` on results (file or list) against ground truth
    (a COCO annotations file or dict)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    res = _load_json(results, "results file") if isinstance(results, (str, Path)) else results
    gt_dict = _load_json(gt, "ground-truth file") if isinstance(gt, (str, Path)) else gt
    where = str(results) if isinstance(results, (str, Path)) else "results"
    _check(res, gt_dict, where, str(gt) if isinstance(gt, (str, Path)) else "ground truth")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(res)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        ev.summarize()
    log.debug("%s", quiet.getvalue())
    return CocoResult(np.array(ev.stats, dtype=np.float64), out.getvalue().splitlines())


def _check(res, gt: dict, res_name: str, gt_name: str) -> None:
    if not isinstance(gt, dict) or not {"images", "annotations", "categories"} <= set(gt):
        raise DataError(f"{gt_name}: not COCO ground truth (needs images, annotations and "
                        "categories)")
    if not isinstance(res, list):
        raise DataError(f"{res_name}: COCO results must be a JSON list of detections")
    if not res:
        raise DataError(f"{res_name}: holds no detections")
    keys = {"image_id", "category_id", "bbox", "score"}
    for i, r in enumerate(res):
        if not isinstance(r, dict) or not keys <= set(r):
            raise DataError(f"{res_name}: entry {i} is not a detection (needs "
                            f"{', '.join(sorted(keys))})")
    gt_images = {im["id"] for im in gt["images"]}
    missing = sorted({r["image_id"] for r in res} - gt_images)
    if missing:
        raise DataError(f"{res_name}: {len(missing)} image ids are not in {gt_name} "
                        f"(e.g. {missing[:3]}); the results and ground truth do not match")
    gt_cats = {c["id"] for c in gt["categories"]}
    unknown = sorted({r["category_id"] for r in res} - gt_cats)
    if unknown:
        raise DataError(f"{res_name}: category ids {unknown[:5]} are not in {gt_name}; the "
                        "results and ground truth do not match")
