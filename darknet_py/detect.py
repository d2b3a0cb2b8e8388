"""Detection as ``darknet detector test`` does it: preprocess, forward, decode, NMS, report."""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Sized

import cv2
import numpy as np
import torch

from .boxes import Detections, candidates, darknet_order, nms, sort_like_darknet
from .image import letterbox_image, load_image, resize_image
from .model import Darknet


@dataclass
class DetectorConfig:
    """Thresholds and preprocessing of ``detector test`` (Darknet's defaults)."""

    thresh: float = 0.25
    nms: float = 0.45
    letter_box: bool | None = None  # None: the cfg's [net] letter_box
    nms_kind: str | None = None  # None: the last [yolo] layer's nms_kind
    beta_nms: float | None = None


class Detector:
    """Runs a ``Darknet`` model on images and returns ``Detections`` per image.

    ``images`` may be paths or RGB float32 arrays (H x W x 3, values in [0, 1]).
    ``half`` runs the network in float16 (CUDA only).
    """

    def __init__(self, model: Darknet, config: DetectorConfig | None = None,
                 device: str | torch.device = "cpu", half: bool = False):
        self.config = config or DetectorConfig()
        self.device = torch.device(device)
        if half and self.device.type != "cuda":
            raise ValueError("half precision needs a CUDA device")
        self.half = half
        self.model = model.eval().to(self.device)
        if half:
            self.model.half()
        last = model.yolo_sections[-1]
        self.nms_kind = self.config.nms_kind or last.nms_kind
        self.beta_nms = last.beta_nms if self.config.beta_nms is None else self.config.beta_nms
        self.letter_box = bool(model.net.letter_box if self.config.letter_box is None
                               else self.config.letter_box)
        self.net_size = (model.width, model.height)
        heads = [(model.layers[i].num_anchors, model.shapes[i].h, model.shapes[i].w)
                 for i in model.yolo_indices]
        self._order = darknet_order(heads)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One RGB image -> network input (H x W x 3), stretched or letterboxed."""
        w, h = self.net_size
        return letterbox_image(image, w, h) if self.letter_box else resize_image(image, w, h)

    @torch.no_grad()
    def forward(self, batch: np.ndarray) -> torch.Tensor:
        """Network input (N x H x W x 3 float32) -> decoded predictions (N x B x 5+C)."""
        x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).to(self.device)
        if self.half:
            x = x.half()
        return self.model(x).float()

    def postprocess(self, pred: torch.Tensor, image_size: tuple[int, int]) -> Detections:
        """One image's predictions -> thresholded, NMS-ed detections (Darknet's order)."""
        pred = pred[self._order.to(pred.device)]
        boxes, obj, probs = candidates(pred, self.config.thresh, self.net_size, image_size,
                                       self.letter_box)
        order = sort_like_darknet(probs)
        kept = nms(boxes, probs, self.config.nms, self.nms_kind, self.beta_nms)
        return Detections(boxes[order].cpu(), obj[order].cpu(), kept[order].cpu(), image_size)

    def __call__(self, images: Sequence[str | Path | np.ndarray]) -> list[Detections]:
        arrays = [load_image(im) if isinstance(im, (str, Path)) else im for im in images]
        if not arrays:
            return []
        batch = np.stack([self.preprocess(a) for a in arrays])
        pred = self.forward(batch)
        return [self.postprocess(p, (a.shape[1], a.shape[0])) for p, a in zip(pred, arrays)]

    def _load(self, path: str | Path) -> tuple[np.ndarray, tuple[int, int]]:
        image = load_image(path)
        return self.preprocess(image), (image.shape[1], image.shape[0])

    def detect_paths(self, paths: Iterable[str | Path], batch_size: int = 8,
                     workers: int = 4, progress: str | None = None
                     ) -> Iterator[tuple[str | Path, Detections]]:
        """Detect on many image files in order, decoding the next images in background
        threads while the network runs; yields ``(path, detections)``.  ``progress``
        labels a progress bar (on stderr) when given."""
        results = self._detect_paths(paths, batch_size, workers)
        if progress is None:
            return results
        from tqdm import tqdm

        total = len(paths) if isinstance(paths, Sized) else None
        return tqdm(results, total=total, desc=progress, unit="img", leave=False)

    def _detect_paths(self, paths: Iterable[str | Path], batch_size: int,
                      workers: int) -> Iterator[tuple[str | Path, Detections]]:
        pending: deque = deque()
        todo = iter(paths)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            while True:
                while len(pending) < 2 * batch_size:  # bounded read-ahead
                    path = next(todo, None)
                    if path is None:
                        break
                    pending.append((path, pool.submit(self._load, path)))
                if not pending:
                    return
                chunk = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
                loaded = [future.result() for _, future in chunk]
                pred = self.forward(np.stack([x for x, _ in loaded]))
                for (path, _), p, (_, size) in zip(chunk, pred, loaded):
                    yield path, self.postprocess(p, size)


# --------------------------------------------------------------------------- reports

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
    b = dets.boxes
    selected.sort(key=lambda r: float(b[r, 0] - b[r, 2] / 2))
    px = dets.boxes_pixels()
    lines = []
    for row in selected:
        p = dets.probs[row]
        for j in _classes_best_first(p, thresh):
            line = f"{_name(names, j)}: {float(p[j]) * 100:.0f}%"
            if ext_output:
                left, top, width, height = (_darknet_round(float(v)) for v in px[row])
                line += (f"\t(left_x: {left:4d}   top_y: {top:4d}   width: {width:4d}   "
                         f"height: {height:4d})")
            lines.append(line)
    return lines


def _name(names: Sequence[str], j: int) -> str:
    return names[j] if j < len(names) else str(j)


def json_frame(dets: Detections, names: Sequence[str], thresh: float, frame_id: int,
               filename: str) -> dict:
    """One frame of Darknet's ``-out`` JSON (detection_to_json)."""
    objects = []
    for row, j, prob in dets.labels(thresh):
        cx, cy, w, h = (round(float(v), 6) for v in dets.boxes[row])
        objects.append({"class_id": j, "name": _name(names, j),
                        "relative_coordinates": {"center_x": cx, "center_y": cy,
                                                 "width": w, "height": h},
                        "confidence": round(prob, 6)})
    return {"frame_id": frame_id, "filename": filename, "objects": objects}


def write_json(frames: Iterable[dict], path: str | Path) -> None:
    """Write ``-out`` JSON frames to ``path``."""
    Path(path).write_text(json.dumps(list(frames), indent=1) + "\n")


def yolo_label_lines(dets: Detections, thresh: float) -> list[str]:
    """``-save_labels`` lines: ``class cx cy w h`` (relative) for each kept class."""
    lines = []
    for row, j, _prob in dets.labels(thresh):
        cx, cy, w, h = (float(v) for v in dets.boxes[row])
        lines.append(f"{j} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
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
        text = ", ".join(f"{_name(names, j)} {float(p[j]):.2f}" for j in classes)
        scale = max(0.4, h / 1200)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(th + base, y0)
        cv2.rectangle(bgr, (x0, ty - th - base), (x0 + tw, ty), color, -1)
        cv2.putText(bgr, text, (x0, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return bgr
