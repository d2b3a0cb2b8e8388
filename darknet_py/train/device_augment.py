"""Crop, resize, flip, HSV and mosaic, batched on the training device (``--device-augment``).

CPU workers only decode the images and work out each sample's geometry from its draws:
crops, labels and mosaic windows (``PlannedDataset``, the same functions as the CPU loader).
``DeviceAugment`` then makes the pixels of the whole mini-batch on the device in one pass
of gathers, each output pixel computed as the CPU loader's OpenCV chain computes it:

- the crop, with the image's mean colour outside it (``cv::mean``, rounded as ``setTo``);
- ``cv::resize`` INTER_LINEAR on uint8: 11-bit fixed-point taps (``resize_taps``), the
  horizontal pass in int, the vertical pass rounded as OpenCV's vector code rounds it; the
  top and bottom rows keep their unclamped weights.  Bit for bit cv2.resize;
- the flip, as an index;
- 8-bit RGB->HSV with OpenCV's division tables (bit for bit), the hue shift rounded and
  saturated, saturation and value scaled in float and rounded (``cv::add``,
  ``convertTo``), and HSV->RGB in float as OpenCV does it.  OpenCV's vector code truncates
  the last step and its scalar code for the tail of each row rounds; the vector width of
  this machine's OpenCV is probed (``hsv_vector_width``) so the device makes the same
  choice pixel by pixel.  What is left are last-bit float differences: at most one level.

``blur``, ``gaussian_noise`` and ``mixup`` stay with the CPU loader (``check_supported``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np
import torch

from ..errors import DarknetError
from ..image.opencv8 import hsv8_to_rgb, resize_vertical, rgb_to_hsv8, scale_round
from .dataset import Augment, DetectionDataset, Window
from .draws import F32, MOSAIC, draw_sample

COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS


def check_supported(augment: Augment, cfg: str) -> None:
    """One-line refusal of the settings the device pipeline does not make."""
    for key in ("blur", "gaussian_noise", "mixup"):
        if getattr(augment, key):
            raise DarknetError(f"{cfg}: --device-augment does not do {key}="
                               f"{getattr(augment, key)}; train without --device-augment "
                               "(the CPU loader does it)")


def resize_taps(src: int, dst: int, clamp: bool) -> tuple[np.ndarray, ...]:
    """cv::resize INTER_LINEAR's taps from ``src`` to ``dst`` pixels: for each output
    pixel its two source pixels and their weights in 1/2048.  Columns (``clamp``) have the
    tap and its weight clamped at both ends; rows keep the weights and clamp the rows."""
    f = ((np.arange(dst) + 0.5) * (src / dst) - 0.5).astype(F32)
    i = np.floor(f).astype(np.int64)
    f = f - i.astype(F32)
    if clamp:
        low, high = i < 0, i >= src - 1
        f[low | high] = 0
        i = np.clip(i, 0, src - 1)
    scale = F32(1 << COEF_BITS)
    w0, w1 = np.rint((F32(1) - f) * scale), np.rint(f * scale)  # saturate_cast<short>
    return (np.clip(i, 0, src - 1), np.clip(i + 1, 0, src - 1), w0.astype(np.int64),
            w1.astype(np.int64))


def hsv_vector_width() -> int:
    """Pixels per block of this machine's OpenCV 8-bit HSV->RGB vector code (0: none): the
    first ``(n // width) * width`` pixels of each row are truncated, the rest rounded."""
    n = 255
    row = np.full((1, n, 3), (0, 1, 1), np.uint8)  # G is 0.996: truncated 0, rounded 1
    lead = int(np.argmax(np.r_[cv2.cvtColor(row, cv2.COLOR_HSV2RGB)[0, :, 1] != 0, True]))
    return next((w for w in (128, 64, 32, 16, 8, 4) if (n // w) * w == lead), 0)


@dataclass
class SamplePlan:
    """One sample before its pixels: its decoded pieces, their geometry and its labels."""

    images: list[np.ndarray]  # RGB uint8 (H, W, 3), one per piece
    crops: list  # Crop of each piece
    draws: list  # PieceDraws of each piece
    windows: list[Window]  # where each piece shows in the sample
    cut: tuple[int, int]  # the mosaic cut (w, h without mosaic)
    labels: np.ndarray  # (N, 5) float32
    size: tuple[int, int]  # the network's (w, h)


class PlannedDataset(DetectionDataset):
    """``DetectionDataset`` whose items are ``SamplePlan``: decoded images and geometry,
    with labels exactly as the CPU loader gives them."""

    def __getitem__(self, key: tuple[int, int, int, int]) -> SamplePlan:
        index, w, h, seed = key
        draws = draw_sample(np.random.default_rng(seed), self.augment, index, self.box_counts,
                            w, h)
        return self.plan(draws, w, h)

    def plan(self, draws, w: int, h: int) -> SamplePlan:
        if draws.mode != MOSAIC:
            p = self.prepare(draws, 0, w, h)
            return SamplePlan([p.image], [p.crop], [p.draws], [Window.whole(w, h)], (w, h),
                              p.truth.astype(F32), (w, h))
        pieces, windows, labels = self.mosaic_layout(draws, w, h)
        return SamplePlan([p.image for p in pieces], [p.crop for p in pieces],
                          [p.draws for p in pieces], windows, (draws.cut_x, draws.cut_y),
                          labels.astype(F32), (w, h))


@dataclass
class PlanBatch:
    """A mini-batch of plans as tensors (P pieces, B samples, network w x h)."""

    pixels: torch.Tensor  # uint8 (total,): every piece's RGB image, flattened, one after another
    piece: torch.Tensor  # int64 (P, 8): offset, width, height, left, top, flip, hsv, hue shift
    scale: torch.Tensor  # float32 (P, 2): saturation and value factors
    x_taps: torch.Tensor  # int32 (P, 4, w): two columns of the crop and their weights
    y_taps: torch.Tensor  # int32 (P, 4, h): two rows of the crop and their weights
    quarters: torch.Tensor  # int64 (B, 4, 6): piece, x0, y0, sx, sy, window width
    cuts: torch.Tensor  # int64 (B, 2): the mosaic cut (w, h without mosaic)
    size: tuple[int, int]  # (w, h)

    def _map(self, fn) -> PlanBatch:
        """A copy with ``fn`` applied to every tensor field."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return PlanBatch(**{k: fn(v) if isinstance(v, torch.Tensor) else v
                            for k, v in values.items()})

    def pin_memory(self) -> PlanBatch:
        return self._map(lambda t: t.pin_memory())

    def to(self, device, non_blocking: bool = False) -> PlanBatch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))


def collate_plans(batch: list[SamplePlan]) -> tuple[PlanBatch, torch.Tensor]:
    """Plans -> a ``PlanBatch`` and (M, 6) targets ``[image, class, cx, cy, w, h]``."""
    w, h = batch[0].size
    images, piece, scale, x_taps, y_taps, quarters = [], [], [], [], [], []
    offset = 0
    for plan in batch:
        first = len(piece)
        for image, crop, d in zip(plan.images, plan.crops, plan.draws):
            oh, ow = image.shape[:2]
            hsv = d.dsat != 1 or d.dexp != 1 or d.dhue != 0
            hue = int(np.rint(float(F32(179) * F32(d.dhue))))  # cv::add rounds the Scalar
            piece.append((offset, ow, oh, crop.left, crop.top, int(d.flip), int(hsv), hue))
            scale.append((F32(d.dsat), F32(d.dexp)))
            x_taps.append(np.stack(resize_taps(crop.width, w, clamp=True)))
            y_taps.append(np.stack(resize_taps(crop.height, h, clamp=False)))
            images.append(np.ascontiguousarray(image).reshape(-1))
            offset += image.size
        quarters.append([(first + min(k, len(plan.images) - 1), win.x0, win.y0, win.sx, win.sy,
                          win.x1 - win.x0)
                         for k, win in enumerate(plan.windows * (4 // len(plan.windows)))])
    rows = [torch.cat([torch.full((len(p.labels), 1), float(i)), torch.from_numpy(p.labels)], 1)
            for i, p in enumerate(batch)]
    plans = PlanBatch(torch.from_numpy(np.concatenate(images)),
                      torch.tensor(piece, dtype=torch.int64),
                      torch.from_numpy(np.asarray(scale, F32)),
                      torch.from_numpy(np.stack(x_taps).astype(np.int32)),
                      torch.from_numpy(np.stack(y_taps).astype(np.int32)),
                      torch.tensor(quarters, dtype=torch.int64),
                      torch.tensor([p.cut for p in batch], dtype=torch.int64), (w, h))
    return plans, torch.cat(rows)


class DeviceAugment:
    """``augment(plans)``: a ``PlanBatch`` -> the (B, 3, h, w) uint8 images on ``device``,
    equal to what the CPU loader makes from the same draws (within one level, see the
    module docstring)."""

    def __init__(self, device: torch.device | str, hsv_width: int | None = None):
        self.device = torch.device(device)
        self.hsv_width = hsv_vector_width() if hsv_width is None else hsv_width

    def __call__(self, plans: PlanBatch) -> torch.Tensor:
        spans = plans.piece[:, :3].tolist()  # read on the host: no device sync
        b = plans.to(self.device, non_blocking=True)
        w, h = b.size
        n = b.cuts.shape[0]
        piece = b.piece.T  # offset, width, height, left, top, flip, hsv, hue
        dev = self.device
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        k = ((xs >= b.cuts[:, 0].view(n, 1, 1)).long()
             + 2 * (ys >= b.cuts[:, 1].view(n, 1, 1)).long())  # the mosaic quarter
        quarter = torch.gather(b.quarters, 1, k.view(n, -1, 1).expand(-1, -1, 6))
        q, x0, y0, sx, sy, width = (quarter[..., j].view(n, h, w) for j in range(6))
        u = ys - y0 + sy  # row and column of the piece's resized image
        v = xs - x0 + sx
        v = torch.where(piece[5][q] > 0, w - 1 - v, v)
        rows = b.y_taps.permute(1, 0, 2).reshape(4, -1)[:, q * h + u]
        cols = b.x_taps.permute(1, 0, 2).reshape(4, -1)[:, q * w + v]
        fill = self._mean_fill(b, spans)[q]  # (n, h, w, 3)
        where = [piece[j][q] for j in range(5)]  # each pixel's piece: offset, size, crop
        lines = []
        for r in (rows[0], rows[1]):
            a = self._pixels(b, where, r, cols[0], fill)
            c = self._pixels(b, where, r, cols[1], fill)
            lines.append(a * cols[2].unsqueeze(-1) + c * cols[3].unsqueeze(-1))
        out = resize_vertical(lines[0], lines[1], rows[2].unsqueeze(-1), rows[3].unsqueeze(-1))
        hsv = piece[6][q] > 0
        if bool(hsv.any()):
            out = torch.where(hsv.unsqueeze(-1), self._hsv(out, b, q, piece, xs - x0, width),
                              out)
        return out.to(torch.uint8).permute(0, 3, 1, 2).contiguous()

    @staticmethod
    def _mean_fill(b: PlanBatch, spans: list[list[int]]) -> torch.Tensor:
        """(P, 3) int32: each piece's ``cv::mean`` as its crop is filled with it
        (``spans``: each piece's offset, width and height in ``b.pixels``)."""
        means = []
        for offset, width, height in spans:
            image = b.pixels[offset: offset + width * height * 3].view(-1, 3)
            total = image.sum(0, dtype=torch.int64).double()
            means.append(torch.round(total * (1.0 / (width * height))))
        return torch.stack(means).clamp(0, 255).to(torch.int32)

    @staticmethod
    def _pixels(b: PlanBatch, where: list[torch.Tensor], row, col, fill) -> torch.Tensor:
        """(n, h, w, 3) int32 pixels of the crops at crop ``row`` and ``col``: the image's,
        or its mean colour outside it (``where``: each output pixel's image offset, width,
        height and crop left, top)."""
        offset, width, height, left, top = where
        r, c = row + top, col + left
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        index = offset + (r.clamp(min=0).minimum(height - 1) * width
                          + c.clamp(min=0).minimum(width - 1)) * 3
        rgb = b.pixels[index.unsqueeze(-1) + torch.arange(3, device=index.device)]
        return torch.where(inside.unsqueeze(-1), rgb.to(torch.int32), fill)

    def _hsv(self, rgb, b: PlanBatch, q, piece, column, width) -> torch.Tensor:
        """Darknet's HSV step (``distort_hsv``) on each pixel with its piece's factors;
        ``column`` of ``width`` in its row of the window OpenCV converts."""
        hue, sat, val = rgb_to_hsv8(rgb)
        hue = (hue + piece[7][q]).clamp(0, 255)
        sat = scale_round(sat, b.scale[:, 0][q])
        val = scale_round(val, b.scale[:, 1][q])
        vector = self.hsv_width
        truncate = column < (width // vector) * vector if vector else False
        return hsv8_to_rgb(hue, sat, val, truncate).to(torch.int32)
