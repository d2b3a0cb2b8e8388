"""Longer training runs on coco128 (by hand; the test suite runs tiny versions).

    python benchmarks/train_coco128.py --shared ../shared --out /tmp/train-runs

1. fine-tune: yolov4-tiny from the first 29 layers of the COCO weights (as
   ``darknet partial ... 29``) on all 128 images, then mAP@0.5 on them;
2. overfit: the full COCO yolov4-tiny weights on 16 images, then mAP@0.5 on those.

Prints the loss at the start and end and the mAP before and after each run.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch

from darknet_py import Darknet
from darknet_py.eval.map import evaluate_map
from darknet_py.nn.weights import save_partial
from darknet_py.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


def make_run(out: Path, images: list[Path], size: int, batch: int, subdivisions: int,
             max_batches: int, rate: float, burn_in: int) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    lst = out / "images.txt"
    lst.write_text("".join(f"{p}\n" for p in images))
    data = out / "run.data"
    data.write_text(f"classes=80\ntrain={lst}\nvalid={lst}\nnames={ROOT / 'cfg' / 'coco.names'}\n"
                    f"backup={out / 'backup'}\n")
    text = (ROOT / "cfg" / "yolov4-tiny.cfg").read_text()
    for key, value in (("batch", batch), ("subdivisions", subdivisions), ("width", size),
                       ("height", size), ("max_batches", max_batches),
                       ("learning_rate", rate), ("burn_in", burn_in),
                       ("steps", f"{int(max_batches * .8)},{int(max_batches * .9)}")):
        text = re.sub(rf"^{key}\s*=.*$", f"{key}={value}", text, flags=re.M)
    cfg = out / "tiny.cfg"
    cfg.write_text(text)
    return data, cfg


def map_of(cfg: Path, weights: Path, images: list[Path]) -> float:
    model = Darknet(cfg)
    model.load_weights(weights)
    return evaluate_map(model, [str(p) for p in images]).map


def run(name: str, out: Path, images: list[Path], start: Path, **kw) -> None:
    data, cfg = make_run(out, images, **kw)
    before = map_of(cfg, start, images) if start.suffix == ".weights" else float("nan")
    t0 = time.time()
    result = train(TrainConfig(str(data), str(cfg), str(start), workers=2, seed=0,
                               chart=str(out / "chart.png")))
    minutes = (time.time() - t0) / 60
    after = map_of(cfg, out / "backup" / "tiny_final.weights", images)
    losses = result.losses
    print(f"{name}: {result.iterations} iterations in {minutes:.1f} min; loss "
          f"{np.mean(losses[:10]):.2f} (first 10) -> {np.mean(losses[-10:]):.2f} (last 10); "
          f"mAP@0.5 on its {len(images)} training images {before:.4f} -> {after:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--out", default="train-runs")
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    images = sorted((Path(args.shared) / "datasets" / "coco128" / "images" / "train2017")
                    .glob("*.jpg"))
    out = Path(args.out)
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg")
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    out.mkdir(parents=True, exist_ok=True)
    save_partial(model, out / "yolov4-tiny.conv.29", 29)
    run("fine-tune from .conv.29", out / "finetune", images, out / "yolov4-tiny.conv.29",
        size=256, batch=16, subdivisions=2, max_batches=args.iterations, rate=0.00261,
        burn_in=min(100, args.iterations // 3))
    run("overfit 16 images", out / "overfit", images[:16], ROOT / "weights" /
        "yolov4-tiny.weights", size=256, batch=8, subdivisions=1,
        max_batches=args.iterations, rate=0.001, burn_in=20)


if __name__ == "__main__":
    main()
