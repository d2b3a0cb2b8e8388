"""The figures Darknet prints for each ``[yolo]`` layer while training."""

from __future__ import annotations

from dataclasses import dataclass

from ..cfg import YoloSection


@dataclass
class HeadStats:
    """What Darknet prints for one ``[yolo]`` layer in one iteration."""

    index: int  # layer index
    avg_iou: float  # mean IoU of the assigned boxes
    count: int  # truth-to-anchor assignments
    class_loss: float  # obj_normalizer * sum(delta^2) without box entries / batch
    iou_loss: float  # total_loss - class_loss
    total_loss: float  # sum(delta^2) / batch
    cost: float  # Darknet's l.cost

    def line(self, section: YoloSection) -> str:
        """Darknet's per-layer training line."""
        kind = {"mse": "mse", "giou": "giou"}.get(section.iou_loss, "iou")
        return (f"v3 ({kind} loss, Normalizer: (iou: {section.iou_normalizer:.2f}, obj: "
                f"{section.obj_normalizer:.2f}, cls: {section.cls_normalizer:.2f}) Region "
                f"{self.index} Avg (IOU: {self.avg_iou:f}), count: {self.count}, class_loss = "
                f"{self.class_loss:f}, iou_loss = {self.iou_loss:f}, total_loss = "
                f"{self.total_loss:f} ")
