"""Every GPU check of the inference fast path, in one run that fits a short device lease.

Run from the checkout: ``PYTHONPATH=. python benchmarks/gpu_checks.py --out DIR``.
Each part writes ``DIR/<part>.json`` as soon as it ends (or its error), so a run cut
short still reports what it measured.  ``--dry`` runs every part small on the CPU, to
check the script before spending device time.

Parts: CUDA parity with TF32 off (plain and fast path, against the CPU), yolov4-csp 640
fp16 latency at batch 1 and 32 (with and without CUDA graphs), yolov4-tiny 416,
``Detector.detect_paths`` end to end, and ``--device-augment``: the pixels made on the
device against the CPU loader's from the same draws (at most one level apart), and their
img/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
from pathlib import Path

import torch

from darknet_py import Darknet, Detector
from darknet_py.infer.benchmark import run_benchmark

ROOT = Path(__file__).resolve().parents[1]
TINY_CFG, CSP_CFG = ROOT / "cfg" / "yolov4-tiny.cfg", ROOT / "cfg" / "yolov4-csp.cfg"
TINY_WEIGHTS = ROOT / "weights" / "yolov4-tiny.weights"
IMAGE = ROOT / "darknet_py" / "assets" / "astronaut.jpg"


def tiny(size: int = 416) -> Darknet:
    model = Darknet(TINY_CFG, size, size)
    model.load_weights(TINY_WEIGHTS)
    return model.eval()


def random_csp(size: int) -> Darknet:
    torch.manual_seed(0)
    model = Darknet(CSP_CFG, size, size)
    for layer in model.layers:
        if getattr(layer, "bn", None) is not None:
            layer.bn.running_var.fill_(1.0)
    return model.eval()


def parity(dev: str, dry: bool) -> dict:
    model = tiny(96 if dry else 416)
    x = torch.rand(2, 3, model.height, model.width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu = model(x)
        scale = cpu.abs().max().item()
        out = {}
        for name, run in [("fast", model.for_inference(device=dev)),
                          ("fast_graphs", model.for_inference(device=dev, cuda_graphs=True))]:
            got = run(x.to(dev)).cpu()
            out[f"{name}_max_rel"] = (got - cpu).abs().max().item() / scale
    out["gate"] = 1e-4
    return out


def latency(dev: str, dry: bool) -> dict:
    size = 96 if dry else 640
    model = random_csp(size)
    half = dev.startswith("cuda")
    out = {}
    for batch in (1, 2 if dry else 32):
        for graphs in (True, False):
            r = run_benchmark(model, batch, dev, half, runs=3 if dry else 60,
                              cuda_graphs=graphs)
            out[f"csp{size}_b{batch}_{'graphs' if graphs else 'eager'}"] = r.to_dict()
    t = tiny(96 if dry else 416)
    for half_t in ([False] if not half else [False, True]):
        r = run_benchmark(t, 1, dev, half_t, runs=3 if dry else 60)
        out[f"tiny_b1_{'fp16' if half_t else 'fp32'}"] = r.to_dict()
    return out


def detect_paths(dev: str, dry: bool, folder: Path) -> dict:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    image = cv2.imread(str(IMAGE))
    paths = []
    for k in range(8 if dry else 64):  # distinct files, varied sizes, as a dataset has
        path = folder / f"im{k}.jpg"
        h, w = 320 + 8 * k, 480 + 4 * k
        cv2.imwrite(str(path), cv2.resize(image, (w, h)))
        paths.append(path)
    paths = paths * (1 if dry else 8)
    out = {}
    for on_device in (False, True):
        det = Detector(tiny(), device=dev, half=dev.startswith("cuda"), fast=True,
                       resize_on_device=on_device)
        list(det.detect_paths(paths[:64], batch_size=32, workers=12))  # warm up
        start = time.perf_counter()
        n = sum(1 for _ in det.detect_paths(paths, batch_size=32, workers=12))
        out[f"resize_on_device_{on_device}"] = {"images": n,
                                                "img_per_s": n / (time.perf_counter() - start)}
    return out


def device_augment(dev: str, dry: bool) -> dict:
    """The device pipeline on ``dev`` against the CPU loader, same draws, mosaic and not."""
    import numpy as np

    from darknet_py.train.dataset import Augment, DetectionDataset
    from darknet_py.train.device_augment import DeviceAugment, PlannedDataset, collate_plans
    from darknet_py.train.draws import draw_sample

    images = sorted(str(p) for p in (ROOT.parent / "shared" / "datasets" / "coco128" / "images"
                                     / "train2017").glob("*.jpg"))
    if not images:
        images = [str(IMAGE)] * 4
    aug = Augment(jitter=0.3, resize=1.5, flip=True, hue=0.1, saturation=1.5, exposure=1.5,
                  mosaic=True)
    cpu, planned = DetectionDataset(images, 80, aug), PlannedDataset(images, 80, aug)
    on_device = DeviceAugment(dev)
    rng = np.random.default_rng(0)
    size, batch = (96, 4) if dry else (416, 64)
    worst, differing, total, seconds, n = 0, 0, 0, 0.0, 0
    for k in range(2 if dry else 6):
        draws = [draw_sample(rng, aug, int(rng.integers(len(images))), cpu.box_counts, size,
                             size) for _ in range(batch)]
        plans, _ = collate_plans([planned.plan(d, size, size) for d in draws])
        plans = plans.pin_memory() if dev == "cuda" else plans
        if dev == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        x = on_device(plans)
        if dev == "cuda":
            torch.cuda.synchronize()
        if k:  # the first call warms up
            seconds, n = seconds + time.perf_counter() - start, n + batch
        expect = torch.stack([cpu.sample(d, size, size)[0] for d in draws])
        diff = (x.cpu().int() - expect.int()).abs()
        worst = max(worst, int(diff.max()))
        differing, total = differing + int((diff > 0).sum()), total + diff.numel()
    return {"max_level_difference": worst, "fraction_differing": differing / total,
            "pixels_img_per_s": n / seconds, "size": size, "batch": batch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_checks")
    ap.add_argument("--dry", action="store_true", help="small, on the CPU")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = "cpu" if args.dry else "cuda"
    tmp = tempfile.mkdtemp()
    parts = {"parity": lambda: parity(dev, args.dry), "latency": lambda: latency(dev, args.dry),
             "detect_paths": lambda: detect_paths(dev, args.dry, Path(tmp)),
             "device_augment": lambda: device_augment(dev, args.dry)}
    for name, part in parts.items():
        start = time.perf_counter()
        try:
            result = {"ok": True, **part()}
        except Exception:  # report it and go on to the next part
            result = {"ok": False, "error": traceback.format_exc()}
        result["seconds"] = time.perf_counter() - start
        (out / f"{name}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(name, json.dumps(result, default=str)[:400], flush=True)


if __name__ == "__main__":
    main()
