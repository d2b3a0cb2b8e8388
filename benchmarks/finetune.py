"""A fixed fine-tuning recipe and its mAP, to compare loaders and trainers by their result.

    python benchmarks/finetune.py [--variant person|coco80|both] [--out /tmp/finetune]

yolov4-tiny from its first 29 layers (``darknet partial ... 29`` of the COCO weights) on
coco128: 256 x 256, batch 16, learning_rate 0.001, burn_in 60, 300 iterations, steps at
80 % and 90 %, seed 0, on the CPU.  Two variants:
- ``person``: coco128 relabelled to one class (its person boxes), ``classes=1``;
- ``coco80``: the 80 COCO classes as labelled.
Prints mAP@0.5 on those 128 images (``detector map``'s figure) at 25 %, 50 % and 100 % of
the run, with the loss and the minutes taken.  Each variant takes about 15 minutes on two
cores.  The figures are a property of the whole pipeline (loader, loss, update); they
change when any of them changes, so compare them before and after a change, not with a
fixed number.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from darknet_py import Darknet  # noqa: E402
from darknet_py.eval.map import evaluate_map  # noqa: E402
from darknet_py.nn.weights import save_partial  # noqa: E402
from darknet_py.train import TrainConfig  # noqa: E402
from darknet_py.train.trainer import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COCO128 = ROOT.parent / "shared" / "datasets" / "coco128"
RECIPE = dict(width=256, height=256, batch=16, subdivisions=1, learning_rate=0.001,
              burn_in=60, max_batches=300, policy="steps", steps="240,270")


def dataset(out: Path, variant: str) -> tuple[list[str], int]:
    """The image list (a tree of links to coco128's images) and the class count."""
    images = sorted((COCO128 / "images" / "train2017").glob("*.jpg"))
    if variant == "coco80":
        return [str(p) for p in images], 80
    tree = out / "coco128-person"
    (tree / "images" / "train2017").mkdir(parents=True, exist_ok=True)
    (tree / "labels" / "train2017").mkdir(parents=True, exist_ok=True)
    paths = []
    for p in images:
        link = tree / "images" / "train2017" / p.name
        if not link.exists():
            link.symlink_to(p.resolve())
        src = COCO128 / "labels" / "train2017" / f"{p.stem}.txt"
        lines = src.read_text().splitlines() if src.exists() else []
        person = [line for line in lines if line.split()[:1] == ["0"]]
        (tree / "labels" / "train2017" / f"{p.stem}.txt").write_text(
            "".join(f"{line}\n" for line in person))
        paths.append(str(link))
    return paths, 1


def recipe_cfg(out: Path, classes: int) -> Path:
    text = (ROOT / "cfg" / "yolov4-tiny.cfg").read_text()
    for key, value in RECIPE.items():
        text = re.sub(rf"^{key}\s*=.*$", f"{key}={value}", text, flags=re.M)
    text = re.sub(r"^classes\s*=.*$", f"classes={classes}", text, flags=re.M)
    # the convolution before each [yolo] (the only filters=255) gives (classes + 5) x 3
    text = re.sub(r"^filters=255$", f"filters={(classes + 5) * 3}", text, flags=re.M)
    cfg = out / f"tiny-{classes}.cfg"
    cfg.write_text(text)
    return cfg


def run(variant: str, out: Path, seed: int = 0) -> None:
    out = out / (variant if not seed else f"{variant}-seed{seed}")
    out.mkdir(parents=True, exist_ok=True)
    images, classes = dataset(out, variant)
    cfg = recipe_cfg(out, classes)
    names = out / "names.txt"
    names.write_text("person\n" if classes == 1 else (ROOT / "cfg" / "coco.names").read_text())
    lst = out / "train.txt"
    lst.write_text("".join(f"{p}\n" for p in images))
    data = out / "run.data"
    data.write_text(f"classes={classes}\ntrain={lst}\nnames={names}\nbackup={out / 'backup'}\n")
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg")
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    start = out / "yolov4-tiny.conv.29"
    save_partial(model, start, 29)
    marks = {RECIPE["max_batches"] * k // 4: f"{25 * k} %" for k in (1, 2, 4)}
    t0 = time.time()
    config = TrainConfig(str(data), str(cfg), str(start), workers=2, seed=seed,
                         chart=str(out / "chart.png"))
    # from_config where the trainer has it (the script also runs on older checkouts)
    trainer = getattr(Trainer, "from_config", Trainer)(config)

    def on_iteration(report) -> None:
        if report.iteration in marks:
            minutes = (time.time() - t0) / 60
            result = evaluate_map(trainer.model, images, classes)
            losses = getattr(trainer, "state", trainer).losses[-10:]
            print(f"{variant} (seed {seed}): {marks[report.iteration]:>5s} (iteration "
                  f"{report.iteration}, {minutes:.1f} min): mAP@0.5 {result.map:.4f}, loss "
                  f"{np.mean(losses):.2f}", flush=True)

    trainer.on_iteration = on_iteration
    trainer.run()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=["person", "coco80", "both"], default="both")
    ap.add_argument("--out", default="finetune-runs")
    ap.add_argument("--seed", type=int, default=0, help="image order and augmentation")
    args = ap.parse_args()
    for variant in (["person", "coco80"] if args.variant == "both" else [args.variant]):
        run(variant, Path(args.out), args.seed)


if __name__ == "__main__":
    main()
