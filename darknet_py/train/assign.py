"""Which anchors each truth trains, in Darknet's visiting order, worked out on the host.

``forward_yolo_layer`` walks each image's truth list (the first ``max`` slots, up to the
first truth with ``x == 0``, skipping classes outside the cfg's): a truth trains the
anchor of best shape in its cell if this head has it, then, with ``iou_thresh``, every
other anchor of this head whose shape IoU passes it, in ascending anchor order.  Several
assignments can land on one cell; their ``rank`` is their order there, so the device can
apply them in rounds (round r takes the r-th assignment of every cell) and reproduce
Darknet's sequential writes without a loop per truth.

All of it comes from the targets the loader already holds on the CPU, in float32 as
Darknet computes it, and goes to the device in one copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..ops.boxes import box_iou


@dataclass
class Truths:
    """The truths a batch trains, per Darknet's list rules: (T, 5) class, cx, cy, w, h
    (float32) with their image (T,), and per image a padded (N, Tmax, 4) box table with
    its validity mask for the objectness pass."""

    rows: np.ndarray
    image: np.ndarray
    padded: np.ndarray
    valid: np.ndarray

    @classmethod
    def from_targets(cls, targets: Tensor | np.ndarray, batch: int, classes: int,
                     max_boxes: int) -> Truths:
        """``targets`` (M, 6) ``[image, class, cx, cy, w, h]``, rows of an image in order."""
        t = np.asarray(targets.detach().cpu() if isinstance(targets, Tensor) else targets,
                       dtype=np.float32).reshape(-1, 6)
        keep = []
        for b in range(batch):
            rows = np.flatnonzero(t[:, 0] == b)[:max_boxes]
            zero = np.flatnonzero(t[rows, 2] == 0)  # `if (!truth.x) break;`
            rows = rows[: zero[0]] if zero.size else rows
            cls_ = t[rows, 1]
            keep.append(rows[(cls_ >= 0) & (cls_ < classes)])
        rows = np.concatenate(keep) if keep else np.zeros(0, np.int64)
        sel = t[rows]
        counts = [len(k) for k in keep]
        tmax = max(counts, default=0)
        padded = np.zeros((batch, tmax, 4), np.float32)
        valid = np.zeros((batch, tmax), bool)
        for b, k in enumerate(keep):
            padded[b, : len(k)] = t[k, 2:6]
            valid[b, : len(k)] = True
        return cls(sel[:, 1:6].copy(), sel[:, 0].astype(np.int64), padded, valid)


def image_truths(targets: Tensor, batch: int, max_boxes: int) -> list[Tensor]:
    """Per image, the first ``max_boxes`` of its rows of ``targets`` (M, 6) ``[image, class,
    cx, cy, w, h]`` as Darknet's truth table holds them: (T, 5) ``x, y, w, h, class``."""
    t = targets.detach().float().reshape(-1, 6)
    rows = t[:, [2, 3, 4, 5, 1]]
    return [rows[t[:, 0] == b][:max_boxes] for b in range(batch)]


@dataclass
class Assignments:
    """Truth-to-anchor assignments of one head, in Darknet's order: image, anchor slot of
    this head, row, column, truth row, anchor number, and rank within the cell."""

    b: np.ndarray
    a: np.ndarray
    j: np.ndarray
    i: np.ndarray
    t: np.ndarray
    anchor: np.ndarray
    rank: np.ndarray

    def __len__(self) -> int:
        return self.b.size

    @property
    def rounds(self) -> int:
        return int(self.rank.max()) + 1 if self.rank.size else 0


def cell_ranks(key: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries share its key (0 for the first)."""
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, key.size]))
    rank = np.empty(key.size, np.int64)
    rank[order] = np.arange(key.size) - group_start
    return rank


def assign(truths: Truths, anchors: np.ndarray, mask: list[int], grid: tuple[int, int],
           net: tuple[int, int], iou_thresh: float, iou_thresh_kind: str) -> Assignments:
    """The anchors each truth trains in a head of ``grid`` (width, height) cells whose
    anchors are ``anchors[mask]`` (pixels, (total, 2)), for a ``net`` (width, height) input."""
    w, h = grid
    x = truths.rows[:, 1:5]
    i = np.minimum((x[:, 0] * np.float32(w)).astype(np.int64), w - 1)
    j = np.minimum((x[:, 1] * np.float32(h)).astype(np.int64), h - 1)
    shapes = torch.zeros(len(anchors), 4)
    shapes[:, 2] = torch.from_numpy(anchors[:, 0] / np.float32(net[0]))
    shapes[:, 3] = torch.from_numpy(anchors[:, 1] / np.float32(net[1]))
    shift = torch.zeros(x.shape[0], 1, 4)
    shift[:, 0, 2:] = torch.from_numpy(x[:, 2:4])
    ious = box_iou(shapes[None], shift).numpy()  # (T, total), float32 as Darknet
    best = ious.argmax(1) if ious.size else np.zeros(0, np.int64)
    in_mask = np.zeros(len(anchors), bool)
    in_mask[mask] = True
    slot = np.full(len(anchors), -1)
    slot[mask] = np.arange(len(mask))
    take = np.zeros_like(ious, dtype=bool)
    order = np.zeros(ious.shape, np.int64)  # best first, then ascending anchor numbers
    rows = np.arange(x.shape[0])
    take[rows, best] = in_mask[best]
    if iou_thresh < 1.0:
        kind = ious if iou_thresh_kind == "iou" else box_iou(shapes[None], shift,
                                                             iou_thresh_kind).numpy()
        extra = (kind > iou_thresh) & in_mask[None]
        extra[rows, best] = False
        take |= extra
        order = 1 + np.arange(len(anchors))[None].repeat(x.shape[0], 0)
        order[rows, best] = 0
    t_idx, n_idx = np.nonzero(take)
    visit = np.lexsort((order[t_idx, n_idx], t_idx))  # truth by truth, best anchor first
    t_idx, n_idx = t_idx[visit], n_idx[visit]
    b = truths.image[t_idx]
    a = slot[n_idx]
    key = ((b * len(mask) + a) * h + j[t_idx]) * w + i[t_idx]
    return Assignments(b, a, j[t_idx], i[t_idx], t_idx, n_idx, cell_ranks(key))


@dataclass
class DeviceTruths:
    """``Truths`` on the device: rows (T, 5), padded boxes (N, Tmax, 4) and validity."""

    rows: Tensor
    padded: Tensor
    valid: Tensor


@dataclass
class DeviceJobs:
    """One head's assignments on the device: ``idx`` rows b, a, j, i, truth, anchor, rank,
    from_cell (8, K); ``order`` sorts them by rank, round r being
    ``order[offsets[r]:offsets[r + 1]]`` (offsets known on the host)."""

    idx: Tensor
    order: Tensor
    offsets: list[int]

    def __len__(self) -> int:
        return self.idx.shape[1]

    def round(self, r: int) -> Tensor:
        return self.order[self.offsets[r]: self.offsets[r + 1]]


def _job_table(jobs: Assignments, from_cell: np.ndarray) -> tuple[np.ndarray, list[int]]:
    table = np.stack([jobs.b, jobs.a, jobs.j, jobs.i, jobs.t, jobs.anchor, jobs.rank,
                      from_cell.astype(np.int64)]).astype(np.int64).reshape(8, -1)
    order = np.argsort(jobs.rank, kind="stable")
    offsets = np.r_[0, np.cumsum(np.bincount(jobs.rank, minlength=jobs.rounds))].tolist()
    return np.concatenate([table.ravel(), order]), offsets


def ship(truths: Truths, heads: list[tuple[Assignments, np.ndarray]],
         device: torch.device) -> tuple[DeviceTruths, list[DeviceJobs]]:
    """Everything the device needs of a batch's plan, in one float and one integer copy
    (from pinned memory, without waiting, on CUDA)."""
    floats = np.concatenate([truths.rows.ravel(), truths.padded.ravel()]).astype(np.float32)
    parts, offsets = [truths.valid.ravel().astype(np.int64)], []
    for jobs, from_cell in heads:
        flat, offs = _job_table(jobs, from_cell)
        parts.append(flat)
        offsets.append(offs)
    ints = np.concatenate(parts)
    f, i = torch.from_numpy(floats), torch.from_numpy(ints)
    if device.type == "cuda":
        f = f.pin_memory().to(device, non_blocking=True)
        i = i.pin_memory().to(device, non_blocking=True)
    n_rows = truths.rows.size
    dev_truths = DeviceTruths(f[:n_rows].view(-1, 5), f[n_rows:].view(truths.padded.shape),
                              i[: truths.valid.size].view(truths.valid.shape).bool())
    out, pos = [], truths.valid.size
    for (jobs, _), offs in zip(heads, offsets):
        k = len(jobs)
        out.append(DeviceJobs(i[pos: pos + 8 * k].view(8, k), i[pos + 8 * k: pos + 9 * k], offs))
        pos += 9 * k
    return dev_truths, out


def ship_jobs(jobs: Assignments, from_cell: np.ndarray, device: torch.device) -> DeviceJobs:
    """One head's assignments alone on the device (after ``truth_thresh`` added cells)."""
    flat, offsets = _job_table(jobs, from_cell)
    i = torch.from_numpy(flat).to(device)
    k = len(jobs)
    return DeviceJobs(i[: 8 * k].view(8, k), i[8 * k:], offsets)
