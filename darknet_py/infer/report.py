"""What ``detector test`` shows and writes: Darknet's printed lines, ``-out`` JSON,
``-save_labels`` lines and the drawn ``predictions.jpg``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import torch

from ..io.data import class_name
from ..files import atomic_write
from ..ops.boxes import corners
from .detections import Detections


def _darknet_round(v: float) -> int:
    return int(np.floor(v + 0.5)) if v >= 0 else -int(np.floor(-v + 0.5))


def _classes_best_first(p: torch.Tensor, thresh: float) -> list[int]:
    """Classes of one detection above ``thresh``: the best first, then in class order."""
    above = torch.nonzero(p > thresh).flatten().tolist()
    if not above:
        return []
    best = int(torch.argmax(p))
    return [best] + [j for j in above if j != best]


def report_lines(dets: Detections, names: Sequence[str], thresh: float,
                 ext_output: bool = False) -> list[str]:
    """The lines ``darknet detector test`` prints (draw_detections_v3): detections sorted by
    left edge, best class first, then any other class above ``thresh``."""
    selected = []
    for row in range(len(dets)):
        p = dets.probs[row]
        if bool((p > thresh).any()):
            selected.append(row)
    left = corners(dets.boxes)[0]
    selected.sort(key=lambda r: float(left[r]))
    px = dets.boxes_pixels()
    lines = []
    for row in selected:
        p = dets.probs[row]
        for j in _classes_best_first(p, thresh):
            line = f"{class_name(names, j)}: {float(p[j]) * 100:.0f}%"
            if ext_output:
                left, top, width, height = (_darknet_round(float(v)) for v in px[row])
                line += (f"\t(left_x: {left:4d}   top_y: {top:4d}   width: {width:4d}   "
                         f"height: {height:4d})")
            lines.append(line)
    return lines


def json_frame(dets: Detections, names: Sequence[str], thresh: float, frame_id: int,
               filename: str) -> dict:
    """One frame of Darknet's ``-out`` JSON (detection_to_json)."""
    objects = []
    for row, j, prob in dets.labels(thresh):
        cx, cy, w, h = (round(float(v), 6) for v in dets.boxes[row])
        objects.append({"class_id": j, "name": class_name(names, j),
                        "relative_coordinates": {"center_x": cx, "center_y": cy,
                                                 "width": w, "height": h},
                        "confidence": round(prob, 6)})
    return {"frame_id": frame_id, "filename": filename, "objects": objects}


def write_json(frames: Iterable[dict], path: str | Path) -> None:
    """Write ``-out`` JSON frames to ``path``."""
    atomic_write(path, (json.dumps(list(frames), indent=1) + "\n").encode())


def yolo_label_lines(dets: Detections, thresh: float) -> list[str]:
    """``-save_labels`` lines as Darknet's ``test_detector`` writes them: one per box, its
    best class above ``thresh`` (the first on ties), ``"%d %2.4f %2.4f %2.4f %2.4f"`` of
    class, cx, cy, w, h relative to the image."""
    lines = []
    for row in range(len(dets)):
        p = dets.probs[row]
        if not bool((p > thresh).any()):
            continue
        j = int(torch.argmax(torch.where(p > thresh, p, torch.zeros_like(p))))
        cx, cy, w, h = (float(v) for v in dets.boxes[row])
        lines.append(f"{j} {cx:2.4f} {cy:2.4f} {w:2.4f} {h:2.4f}")
    return lines


def draw_detections(image: np.ndarray, dets: Detections, names: Sequence[str],
                    thresh: float) -> np.ndarray:
    """RGB float image -> BGR uint8 with boxes and labels drawn (for ``predictions.jpg``)."""
    bgr = cv2.cvtColor((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    h, w = bgr.shape[:2]
    thickness = max(1, int(round(h * 0.003)))
    px = dets.boxes_pixels()
    for row in range(len(dets)):
        p = dets.probs[row]
        classes = _classes_best_first(p, thresh)
        if not classes:
            continue
        hue = (classes[0] * 123457) % 180
        color = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0].tolist()
        left, top, bw, bh = (float(v) for v in px[row])
        x0, y0 = max(0, int(left)), max(0, int(top))
        x1, y1 = min(w - 1, int(left + bw)), min(h - 1, int(top + bh))
        cv2.rectangle(bgr, (x0, y0), (x1, y1), color, thickness)
        text = ", ".join(f"{class_name(names, j)} {float(p[j]):.2f}" for j in classes)
        scale = max(0.4, h / 1200)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(th + base, y0)
        cv2.rectangle(bgr, (x0, ty - th - base), (x0 + tw, ty), color, -1)
        cv2.putText(bgr, text, (x0, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return bgr
