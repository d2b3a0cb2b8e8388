"""Darknet's ``classifier valid`` (``validate_classifier_single``): each image's class is
the first label whose text appears in its path, and the running top-1 and top-k accuracy
of the network's ``top_k`` over the valid list."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import ImageError
from ..image.decode import DEFAULT_DECODER
from ..infer.classify import classify, top_k
from ..infer.detector import inference_model
from ..nn.model import Darknet, module_device

log = logging.getLogger(__name__)


def label_of(path: str, labels: Sequence[str], classes: int) -> int:
    """The first of the first ``classes`` labels that appears in ``path`` (-1: none)."""
    return next((j for j, label in enumerate(labels[:classes]) if label in path), -1)


@dataclass
class ValidLine:
    """One line of Darknet's output: the running accuracies after image ``index``."""

    index: int
    top1: float
    top: int
    topk: float

    def line(self) -> str:
        return f"{self.index}: top 1: {self.top1:f}, top {self.top}: {self.topk:f}"


def validate_classifier(model: Darknet, images: Sequence[str], labels: Sequence[str],
                        classes: int, top: int = 1,
                        decoder: str = DEFAULT_DECODER) -> Iterator[ValidLine]:
    """Darknet's running top-1 / top-``top`` accuracy, one ``ValidLine`` per image (an
    image that cannot be read is logged and skipped)."""
    top = min(top, classes)
    hits1 = hitsk = 0.0
    done = 0
    net = inference_model(model, module_device(model), torch.float32)  # one eval copy
    for path in images:
        try:
            scores = classify(net, path, decoder)[:classes].tolist()
        except ImageError as err:
            log.error("%s; skipped", err, extra={"skipped": True})
            continue
        truth = label_of(path, labels, classes)
        best = top_k(scores, top)
        hits1 += best[0] == truth
        hitsk += sum(i == truth for i in best)
        # Darknet's float sums over (i + 1)
        yield ValidLine(done, float(np.float32(hits1) / np.float32(done + 1)), top,
                        float(np.float32(hitsk) / np.float32(done + 1)))
        done += 1


def top_k_accuracy(model: Darknet, images: Sequence[str], labels: Sequence[str],
                   classes: int, top: int = 5, decoder: str = DEFAULT_DECODER) -> float:
    """``validate_classifier_single``: the top-``top`` accuracy over ``images`` (0 for
    none)."""
    last = None
    for last in validate_classifier(model, images, labels, classes, top, decoder):
        pass
    return last.topk if last is not None else 0.0
