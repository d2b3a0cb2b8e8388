"""``darknet detector valid``: detections for a whole image list, written as Darknet does.

Threshold 0.001 and NMS 0.6 with the cfg's NMS kind.  With ``eval=coco`` in the
``.data`` file one COCO results JSON (``<results>/coco_results.json``); otherwise
Darknet's per-class files ``<results>/comp4_det_test_<name>.txt`` with lines
``image_id prob xmin ymin xmax ymax`` (1-based pixels, clipped to the image).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError
from ..image.decode import DEFAULT_DECODER
from ..infer.detections import Detections
from ..infer.detector import Detector, DetectorConfig
from ..io.data import class_name
from ..files import atomic_write
from ..nn.model import Darknet
from .coco import coco_results, result_line

log = logging.getLogger(__name__)

VALID_THRESH = 0.001
VALID_NMS = 0.6


def voc_lines(image_id: str, dets: Detections) -> list[tuple[int, str]]:
    """``(class, line)`` for each class with a probability (``print_detector_detections``)."""
    x0, y0, x1, y1 = dets.corners_clipped(one_based=True).T
    probs = dets.probs.numpy()
    return [(int(j), f"{image_id} {probs[r, j]:f} {x0[r]:f} {y0[r]:f} {x1[r]:f} {y1[r]:f}")
            for r, j in zip(*np.nonzero(probs))]


def validate_detector(model: Darknet, images: Sequence[str], out_dir: str | Path,
                      names: Sequence[str], kind: str = "voc", outfile: str | None = None,
                      letter_box: bool | None = None, device: str | torch.device | None = None,
                      batch_size: int = 8, progress: bool = False,
                      decoder: str = DEFAULT_DECODER) -> list[Path]:
    """Write ``detector valid`` results for ``images`` into ``out_dir``; returns the files.

    ``kind`` is the ``.data`` file's ``eval``: ``coco`` or anything else for VOC files.
    """
    if not images:
        raise DataError("the validation image list is empty")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = DetectorConfig(thresh=VALID_THRESH, nms=VALID_NMS, letter_box=letter_box)
    detector = Detector(model, config, device, fast=True,  # fused, as Darknet detects
                        decoder=decoder)
    results = detector.detect_paths(images, batch_size, progress="valid" if progress else None)
    classes = model.num_classes
    if kind == "coco":
        path = out / f"{outfile or 'coco_results'}.json"
        lines = [result_line(r) for p, d in results for r in coco_results(p, d)]
        _write(path, "[\n" + ",\n".join(lines) + "\n]\n")
        return [path]
    per_class: list[list[str]] = [[] for _ in range(classes)]
    for p, d in results:
        for j, line in voc_lines(Path(p).name.split(".")[0], d):
            per_class[j].append(line)
    paths = []
    for j in range(classes):
        path = out / f"{outfile or 'comp4_det_test_'}{class_name(names, j)}.txt"
        _write(path, "".join(line + "\n" for line in per_class[j]))
        paths.append(path)
    return paths


def _write(path: Path, text: str) -> None:
    atomic_write(path, text.encode())  # a failure is one line naming the file
