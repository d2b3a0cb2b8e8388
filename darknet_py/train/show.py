"""What the network sees: Darknet's ``-show_imgs``, augmented batches saved as JPEGs.

Darknet's loader writes every augmented image as ``aug_<n>_<i>_<random>.jpg`` with its
truth boxes drawn one pixel wide; darknet-py writes the mini-batches of the first
iteration as ``aug_<batch>_<image>.jpg`` in the folder given (Darknet: the working
directory) and then stops writing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
import torch

from ..files import atomic_write

log = logging.getLogger(__name__)
BOX_COLOUR = (255, 255, 255)  # Darknet draws (150, 100, 50) into a float image: saturated


def draw_truth(image: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """A (3, H, W) RGB sample (uint8, or float in [0, 1]) and its (N, 5) labels ``class cx
    cy w h`` -> a BGR uint8 picture with each box drawn as Darknet draws it."""
    x = image.detach().cpu()
    x = x if x.dtype == torch.uint8 else (x.float() * 255).round().clamp(0, 255).byte()
    rgb = np.ascontiguousarray(x.numpy().transpose(1, 2, 0))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    h, w = bgr.shape[:2]
    for _, cx, cy, bw, bh in labels.tolist():
        left, right = int((cx - bw / 2.) * w), int((cx + bw / 2.) * w)
        top, bottom = int((cy - bh / 2.) * h), int((cy + bh / 2.) * h)
        cv2.rectangle(bgr, (left, top), (right, bottom), BOX_COLOUR, 1)
    return bgr


def save_batch(x: torch.Tensor, targets: torch.Tensor, folder: Path, prefix: str) -> list[Path]:
    """Write each image of a collated batch (``targets`` rows ``[image, class, cx, cy, w,
    h]``) as ``<prefix>_<i>.jpg`` in ``folder``; returns the files."""
    out = []
    for i in range(x.shape[0]):
        picture = draw_truth(x[i], targets[targets[:, 0] == i][:, 1:])
        ok, data = cv2.imencode(".jpg", picture)
        path = folder / f"{prefix}_{i}.jpg"
        atomic_write(path, data.tobytes())
        out.append(path)
    return out


def show_first(batches: Iterable, count: int, folder: Path) -> Iterator:
    """Pass ``batches`` through unchanged, writing the first ``count`` as JPEGs."""
    for k, (x, targets) in enumerate(batches):
        if k < count:
            files = save_batch(x, targets, folder, f"aug_{k}")
            log.info("-show_imgs: wrote %d augmented images (%s ...)", len(files), files[0].name)
        yield x, targets
