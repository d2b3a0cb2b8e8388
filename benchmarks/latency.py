"""yolov4-tiny latency at 416: darknet-py vs OpenCV's DNN module, same machine, same run.

Run by hand: ``python benchmarks/latency.py [--runs 20] [--device cpu|cuda] [--threads N]``.
Prints median milliseconds per image (network forward only, batch 1) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import torch

from darknet_py import Darknet
from darknet_py.image import load_image, resize_image

ROOT = Path(__file__).resolve().parents[1]
CFG = ROOT / "cfg" / "yolov4-tiny.cfg"
WEIGHTS = ROOT / "weights" / "yolov4-tiny.weights"
IMAGE = ROOT / "darknet_py" / "assets" / "astronaut.jpg"


def median_ms(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    x = resize_image(load_image(IMAGE), 416, 416).transpose(2, 0, 1)[None].copy()

    model = Darknet(CFG)
    model.load_weights(WEIGHTS)
    model = model.eval().to(args.device)
    xt = torch.from_numpy(x).to(args.device)

    def ours():
        with torch.inference_mode():
            model(xt)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    net = cv2.dnn.readNetFromDarknet(str(CFG), str(WEIGHTS))
    names = net.getUnconnectedOutLayersNames()

    def opencv():
        net.setInput(x)
        net.forward(names)

    ms_ours = median_ms(ours, args.runs)
    ms_cv = median_ms(opencv, args.runs)
    print(f"yolov4-tiny 416x416, batch 1, {args.device}, torch threads {torch.get_num_threads()}")
    print(f"  darknet-py : {ms_ours:8.2f} ms")
    print(f"  OpenCV DNN : {ms_cv:8.2f} ms")
    print(f"  ratio darknet-py / OpenCV = {ms_ours / ms_cv:.2f}")


if __name__ == "__main__":
    main()
