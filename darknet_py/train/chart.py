"""``chart.png``: the training loss and mAP against iterations, as Darknet draws it."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..files import atomic_write


def draw_chart(losses: list[tuple[int, float]], maps: list[tuple[int, float]],
               max_batches: int, path: str | Path, size: int = 800,
               iou_thresh: float = 0.5) -> None:
    """Loss (blue) and mAP at ``iou_thresh`` (red, right axis 0-100 %) against iterations,
    as a PNG; ``losses`` and ``maps`` are (iteration, value) pairs."""
    img = np.full((size, size, 3), 255, np.uint8)
    left, right, top, bottom = 60, size - 60, 30, size - 50
    cv2.rectangle(img, (left, top), (right, bottom), (0, 0, 0), 1)
    values = [v for _, v in losses if math.isfinite(v)]
    top_loss = max(1e-6, float(np.percentile(values, 95)) * 1.2) if values else 1.0
    span = max(1, max_batches)

    def pos(it, frac):
        return (int(left + (right - left) * it / span), int(bottom - (bottom - top) * frac))

    for k in range(0, 11):
        y = int(bottom - (bottom - top) * k / 10)
        cv2.line(img, (left, y), (right, y), (225, 225, 225), 1)
        cv2.putText(img, f"{top_loss * k / 10:.2f}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (200, 0, 0), 1)
        cv2.putText(img, f"{k * 10}%", (right + 5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (0, 0, 200), 1)
    pts = [pos(it, min(v, top_loss) / top_loss) for it, v in losses if math.isfinite(v)]
    if len(pts) > 1:
        cv2.polylines(img, [np.array(pts, np.int32)], False, (200, 0, 0), 1)
    for it, m in maps:
        cv2.circle(img, pos(it, m), 3, (0, 0, 200), -1)
        cv2.putText(img, f"{m * 100:.1f}%", pos(it, m), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 200), 1)
    cv2.putText(img, f"Loss (blue) and mAP@{iou_thresh:0.2f} (red); iterations 0..{max_batches}",
                (left, size - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    ok, buf = cv2.imencode(".png", img)
    if ok:
        atomic_write(path, buf.tobytes())
