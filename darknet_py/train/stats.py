"""The figures Darknet prints for each detection head while training."""

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


@dataclass
class RegionStats(HeadStats):
    """What Darknet prints for one ``[region]`` layer (forward_region_layer)."""

    avg_cat: float = 0.0  # mean probability of the truth's class
    avg_obj: float = 0.0  # mean objectness of the assigned cells
    avg_anyobj: float = 0.0  # mean objectness of every cell
    recall: float = 0.0  # share of assignments with IoU > .5

    def line(self, section) -> str:
        return (f"Region Avg IOU: {self.avg_iou:f}, Class: {self.avg_cat:f}, Obj: "
                f"{self.avg_obj:f}, No Obj: {self.avg_anyobj:f}, Avg Recall: {self.recall:f},"
                f"  count: {self.count}")


@dataclass
class GaussianStats(RegionStats):
    """What Darknet prints for one ``[Gaussian_yolo]`` layer."""

    recall75: float = 0.0  # share of assignments with IoU > .75
    uc_loss: float = 0.0  # sum of the squared deltas of entries 4..7 / batch

    def line(self, section) -> str:
        return (f"Region {self.index} Avg IOU: {self.avg_iou:f}, Class: {self.avg_cat:f}, "
                f"Obj: {self.avg_obj:f}, No Obj: {self.avg_anyobj:f}, .5R: {self.recall:f}, "
                f".75R: {self.recall75:f},  count: {self.count}, class_loss = "
                f"{self.class_loss:.2f}, iou_loss = {self.iou_loss:.2f}, uc_loss = "
                f"{self.uc_loss:.2f}, total_loss = {self.total_loss:.2f} ")
