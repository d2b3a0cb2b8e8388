"""Training-loader images per second per core, against Darknet C's own loader.

Both run in this process, pinned to one core, on coco128 at 416 x 416, in alternating
blocks of the same number of images:
- darknet-py: ``DetectionDataset`` samples for random keys, collated into batches as the
  trainer gets them (uint8; the trainer divides by 255 on its device);
- Darknet C (with ``--darknet path/to/libdarknet.so``, built with OPENCV=1):
  ``load_data_detection`` as ``train_detector`` calls it, which returns float batches.

Two rows, as in the issue: jitter + HSV + flip (yolov4-tiny's settings), and the same with
mosaic (yolov4's).  Both loaders use mosaic for half of the samples (Darknet per call,
darknet-py per sample), so the figures are totals over all blocks.  It prints img/s for
each and the ratio darknet-py / Darknet C (> 1: darknet-py is faster).

With ``--device-augment DEVICE`` it also times the device pipeline in the same blocks: the
workers' share per core (decode, draws, labels: ``PlannedDataset``) and the batched pixels
on DEVICE (``DeviceAugment``, synchronized).  With DEVICE ``cpu`` the pixel stage runs on
the pinned core between the other blocks and slows them (caches, allocator): that checks
the pipeline; its speed is measured on ``cuda``.  Usage:

    python benchmarks/loader.py [--darknet ../darknet-src/libdarknet.so] [--blocks 48]
                                [--device-augment cuda]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import tempfile
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from darknet_py.train.dataset import Augment, DetectionDataset, collate  # noqa: E402
from darknet_py.train.device_augment import (DeviceAugment, PlannedDataset,  # noqa: E402
                                             collate_plans)

COCO128 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco128"
ROWS = {
    "jitter, HSV, flip": Augment(jitter=0.3, resize=1.5, flip=True, hue=0.1, saturation=1.5,
                                 exposure=1.5),
    "jitter, HSV, flip, mosaic": Augment(jitter=0.3, flip=True, hue=0.1, saturation=1.5,
                                         exposure=1.5, mosaic=True),
}


class _Matrix(ctypes.Structure):
    _fields_ = [("rows", ctypes.c_int), ("cols", ctypes.c_int),
                ("vals", ctypes.POINTER(ctypes.POINTER(ctypes.c_float)))]


class _Data(ctypes.Structure):
    _fields_ = [("w", ctypes.c_int), ("h", ctypes.c_int), ("X", _Matrix), ("y", _Matrix),
                ("shallow", ctypes.c_int), ("num_boxes", ctypes.c_void_p),
                ("boxes", ctypes.c_void_p)]


class DarknetLoader:
    """Darknet C's ``load_data_detection`` through ctypes (its OpenCV build)."""

    def __init__(self, lib: str, images: list[str]):
        self.lib = ctypes.CDLL(lib)
        f = self.lib.load_data_detection
        i, fl = ctypes.c_int, ctypes.c_float
        f.restype = _Data
        f.argtypes = ([i, ctypes.POINTER(ctypes.c_char_p), i, i, i, i, i, i, i, i, i, i, i]
                      + [fl] * 5 + [i] * 9)
        self.lib.free_data.argtypes = [_Data]
        self.paths = (ctypes.c_char_p * len(images))(*[p.encode() for p in images])

    def batch(self, n: int, size: int, a: Augment) -> None:
        d = self.lib.load_data_detection(
            n, self.paths, len(self.paths), size, size, 3, a.max_boxes, 6, 80, int(a.flip),
            a.gaussian_noise, a.blur, 3 if a.mosaic else a.mixup, a.jitter, a.resize, a.hue,
            a.saturation, a.exposure, n, 0, 2, int(a.letter_box), 0, 0, 0, 0, 0)
        self.lib.free_data(d)


def _keys(n_images: int, n: int, size: int, rng: np.random.Generator) -> list:
    return [(int(i), size, size, int(s)) for i, s in
            zip(rng.integers(0, n_images, n), rng.integers(0, 2 ** 31, n))]


def ours(dataset: DetectionDataset, n: int, size: int, rng: np.random.Generator) -> None:
    collate([dataset[k] for k in _keys(len(dataset), n, size, rng)])


class DevicePipeline:
    """The device pipeline's two stages, timed apart: workers (one core) and device."""

    def __init__(self, images: list[str], aug: Augment, device: str):
        self.planned = PlannedDataset(images, 80, aug)
        self.augment = DeviceAugment(device)
        self.sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def batch(self, n: int, size: int, rng: np.random.Generator) -> tuple[float, float]:
        t = time.perf_counter()
        plans, _ = collate_plans([self.planned[k]
                                  for k in _keys(len(self.planned), n, size, rng)])
        t1 = time.perf_counter()
        self.augment(plans.pin_memory() if self.augment.device.type == "cuda" else plans)
        self.sync()
        return t1 - t, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--darknet", default=None, help="libdarknet.so built with OPENCV=1")
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--batch", type=int, default=16, help="images per call and per block")
    ap.add_argument("--blocks", type=int, default=48)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--device-augment", default=None, metavar="DEVICE",
                    help="also time the device pipeline, its pixels on DEVICE")
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.core})
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    images = sorted(str(p.resolve()) for p in (COCO128 / "images" / "train2017").glob("*.jpg"))
    darknet = DarknetLoader(args.darknet, images) if args.darknet else None
    os.chdir(tempfile.mkdtemp())  # Darknet appends to bad.list in the working directory
    rng = np.random.default_rng(0)
    print(f"coco128, {args.size} x {args.size}, one core, {args.blocks} alternating blocks "
          f"of {args.batch} images")
    for name, aug in ROWS.items():
        dataset = DetectionDataset(images, 80, aug)
        device = (DevicePipeline(images, aug, args.device_augment) if args.device_augment
                  else None)
        for _ in range(3):  # warm the file cache, the code and the allocators
            ours(dataset, args.batch, args.size, rng)
            if darknet:
                darknet.batch(args.batch, args.size, aug)
            if device:
                device.batch(args.batch, args.size, rng)
        seconds = {"darknet-py": 0.0, "darknet": 0.0, "workers": 0.0, "device": 0.0}
        for _ in range(args.blocks):
            if device:
                cpu, dev = device.batch(args.batch, args.size, rng)
                seconds["workers"] += cpu
                seconds["device"] += dev
            t = time.perf_counter()
            ours(dataset, args.batch, args.size, rng)
            seconds["darknet-py"] += time.perf_counter() - t
            if darknet:
                t = time.perf_counter()
                darknet.batch(args.batch, args.size, aug)
                seconds["darknet"] += time.perf_counter() - t
        n = args.blocks * args.batch
        line = f"{name:28s} darknet-py {n / seconds['darknet-py']:6.1f} img/s"
        if darknet:
            line += (f"   Darknet C {n / seconds['darknet']:6.1f} img/s   ratio "
                     f"{seconds['darknet'] / seconds['darknet-py']:.2f}")
        print(line, flush=True)
        if device:
            print(f"{'':28s} --device-augment: workers {n / seconds['workers']:6.1f} img/s per "
                  f"core, pixels on {args.device_augment} {n / seconds['device']:7.1f} img/s",
                  flush=True)


if __name__ == "__main__":
    main()
