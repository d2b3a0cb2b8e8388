"""One training step with Darknet's loss against the same network with a trivial loss.

Run by hand: ``python benchmarks/train_step.py [--device cpu|cuda] [--amp fp16|bf16]
[--models tiny:256:8,csp:512:16] [--steps 10] [--loader] [--json out.json]``.

For each model (cfg:size:batch) it times forward, backward and an SGD step in alternating
blocks: with Darknet's ``[yolo]`` loss on random targets (8 boxes per image), and with a
trivial loss (mean square of the heads) on the same network; it prints the median
milliseconds, images per second and their ratio.  ``--loader`` also measures the training
data loader's images per second with 2 and 16 workers on coco128 (from ../shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from darknet_py import Darknet
from darknet_py.train.optim import make_optimizer

ROOT = Path(__file__).resolve().parents[1]
CFGS = {"tiny": ROOT / "cfg" / "yolov4-tiny.cfg", "csp": ROOT / "cfg" / "yolov4-csp.cfg"}
COCO128 = ROOT.parent / "shared" / "datasets" / "coco128" / "images" / "train2017"


def random_targets(batch: int, boxes: int, classes: int, seed: int = 0) -> torch.Tensor:
    """(batch*boxes, 6) ``[image, class, cx, cy, w, h]`` rows with boxes inside the image."""
    g = torch.Generator().manual_seed(seed)
    wh = torch.rand(batch * boxes, 2, generator=g) * 0.4 + 0.02
    c = torch.rand(batch * boxes, 2, generator=g) * (1 - wh) + wh / 2
    image = torch.arange(batch).repeat_interleave(boxes).float()[:, None]
    cls = torch.randint(0, classes, (batch * boxes, 1), generator=g).float()
    return torch.cat([image, cls, c, wh], 1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(model: Darknet, x: torch.Tensor, targets: torch.Tensor, amp: str | None,
               steps: int, blocks: int = 3) -> dict:
    """Median step milliseconds with Darknet's loss and with the trivial loss."""
    device = x.device
    opt = make_optimizer(model)
    loss_fn = model.darknet_loss()
    size = (x.shape[3], x.shape[2])
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(amp or "")
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")

    def step(darknet: bool) -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            heads = model(x)
            if darknet:
                loss = loss_fn(heads, targets, size)[0]
            else:
                loss = sum(h.float().square().mean() for h in heads)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    times: dict[bool, list[float]] = {True: [], False: []}
    for darknet in (True, False):  # warm-up
        step(darknet)
    _sync(device)
    for _ in range(blocks):
        for darknet in (True, False):
            for _ in range(steps):
                start = time.perf_counter()
                step(darknet)
                _sync(device)
                times[darknet].append((time.perf_counter() - start) * 1000)
    batch = x.shape[0]
    darknet_ms, trivial_ms = (statistics.median(times[k]) for k in (True, False))
    return {"darknet_loss_ms": darknet_ms, "trivial_loss_ms": trivial_ms,
            "ratio": darknet_ms / trivial_ms, "darknet_img_s": batch * 1000 / darknet_ms,
            "trivial_img_s": batch * 1000 / trivial_ms}


def loader_rate(workers: int, size: int, batch: int, batches: int = 40,
                device: torch.device | None = None) -> float:
    """Images per second of the training loader (mosaic, jitter, HSV) on coco128, after the
    workers' start-up and first batch, over enough batches that prefetching cannot hide
    the work.  With ``device`` the pixels are made there (``--device-augment``)."""
    from darknet_py.train.dataset import Augment, DetectionDataset, TrainSampler, collate
    from darknet_py.train.device_augment import DeviceAugment, PlannedDataset, collate_plans

    images = sorted(str(p) for p in COCO128.glob("*.jpg"))
    aug = Augment(jitter=0.3, resize=1.5, flip=True, hue=0.1, saturation=1.5, exposure=1.5,
                  mosaic=True)
    dataset = (PlannedDataset if device else DetectionDataset)(images, 80, aug)
    prefetch = 2
    batches = max(batches, 4 * workers * prefetch)
    sampler = TrainSampler(len(images), batch, 1, lambda it: (size, size), seed=0, stop=batches)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate_plans if device else collate,
        num_workers=workers, prefetch_factor=prefetch if workers else None,
        pin_memory=device is not None and device.type == "cuda")
    it = iter(loader)
    if device:
        on_device = DeviceAugment(device)
        it = (on_device(plans) for plans, _ in it)
    else:
        it = (x for x, _ in it)
    next(it)  # start-up
    start = time.perf_counter()
    n = sum(x.shape[0] for x in it)
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", choices=["fp16", "bf16"], default=None)
    ap.add_argument("--models", default="tiny:256:8")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--boxes", type=int, default=8)
    ap.add_argument("--loader", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    results = []
    for spec in args.models.split(","):
        name, size, batch = spec.split(":")
        size, batch = int(size), int(batch)
        model = Darknet(CFGS.get(name, name), size, size).to(device).train()
        x = torch.rand(batch, 3, size, size, device=device)
        targets = random_targets(batch, args.boxes, model.num_classes).to(device)
        r = {"model": name, "size": size, "batch": batch, "device": str(device),
             "amp": args.amp, **time_steps(model, x, targets, args.amp, args.steps)}
        results.append(r)
        print(f"{name} {size} batch {batch} {device} {args.amp or 'fp32'}: Darknet loss "
              f"{r['darknet_loss_ms']:.1f} ms ({r['darknet_img_s']:.0f} img/s), trivial loss "
              f"{r['trivial_loss_ms']:.1f} ms ({r['trivial_img_s']:.0f} img/s), "
              f"ratio {r['ratio']:.2f}", flush=True)
    if args.loader:
        for workers in (2, 16):
            rate = loader_rate(workers, 416, 16)
            results.append({"loader_workers": workers, "img_s": rate})
            print(f"loader, {workers} workers: {rate:.0f} img/s (416 px, mosaic)", flush=True)
            rate = loader_rate(workers, 416, 16, device=device)
            results.append({"loader_workers": workers, "device_augment": str(device),
                            "img_s": rate})
            print(f"loader, {workers} workers, --device-augment on {device}: {rate:.0f} img/s "
                  "(416 px, mosaic)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
