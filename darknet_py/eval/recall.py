"""``detector recall``: Darknet's proposal recall (``validate_detector_recall``).

Each image of the valid list is stretched to the network size, every candidate with
objectness above 0.001 is kept, NMS at 0.4 runs over objectness alone (``do_nms_obj``),
and each truth box counts as found when a remaining proposal overlaps it by more than
0.5 IoU.  One line per image gives the running totals, as Darknet prints them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..errors import ImageError
from ..image import load_image
from ..image.decode import DEFAULT_DECODER
from ..infer.detector import Detector, DetectorConfig
from ..io.data import read_labels
from ..nn.model import Darknet
from ..ops.boxes import pairwise_iou
from ..ops.nms import nms

log = logging.getLogger(__name__)

RECALL_THRESH = 0.001
RECALL_NMS = 0.4
RECALL_IOU = 0.5


@dataclass
class RecallLine:
    """Running totals after image ``index`` (from 0)."""

    index: int
    correct: int
    total: int
    proposals: int
    iou_sum: float

    def line(self) -> str:
        per_image = self.proposals / (self.index + 1)
        iou = self.iou_sum * 100 / self.total if self.total else float("nan")
        recall = 100.0 * self.correct / self.total if self.total else float("nan")
        return (f"{self.index:5d} {self.correct:5d} {self.total:5d}\tRPs/Img: {per_image:.2f}"
                f"\tIOU: {iou:.2f}%\tRecall:{recall:.2f}%")


def proposals(pred: torch.Tensor) -> torch.Tensor:
    """Candidates (N, 5 + C) -> the boxes (M, 4) that survive NMS on objectness."""
    keep = pred[:, 4] > RECALL_THRESH
    boxes, obj = pred[keep, :4], pred[keep, 4:5]
    kept = nms(boxes, obj, RECALL_NMS)[:, 0] > 0
    return boxes[kept]


def recall_lines(model: Darknet, images: Sequence[str], device: str | torch.device | None = None,
                 decoder: str = DEFAULT_DECODER) -> Iterator[RecallLine]:
    """Darknet's running recall totals, one per image of ``images`` (an image that cannot
    be read is logged and skipped)."""
    detector = Detector(model, DetectorConfig(thresh=RECALL_THRESH, letter_box=False),
                        device, fast=True, decoder=decoder)
    labels = dict(zip(images, read_labels(list(images))))
    net = torch.tensor([model.width, model.height] * 2, dtype=torch.float32)
    totals = RecallLine(-1, 0, 0, 0, 0.0)
    for path in images:
        try:
            image = load_image(path, decoder)
        except ImageError as err:
            log.error("%s; skipped", err, extra={"skipped": True})
            continue
        pred = detector.forward(detector.preprocess(image)[None])[0]
        boxes = proposals(pred).cpu() / net
        truth = torch.from_numpy(labels[path][:, 1:])
        best = (pairwise_iou(truth, boxes).amax(1) if len(boxes) and len(truth)
                else torch.zeros(len(truth)))
        totals = RecallLine(totals.index + 1, totals.correct + int((best > RECALL_IOU).sum()),
                            totals.total + len(truth), totals.proposals + len(boxes),
                            totals.iou_sum + float(best.sum()))
        yield totals
