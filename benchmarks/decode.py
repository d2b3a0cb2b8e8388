"""Image decoding: darknet-py's stb_image port (Darknet's pixels) next to OpenCV's libjpeg.

Run by hand: ``python benchmarks/decode.py [FOLDER] [--limit N]`` (default: coco128 beside
the clone, else the embedded sample).  Prints median milliseconds per image for each
decoder, measured in the same run, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from darknet_py.image import load_rgb8

ROOT = Path(__file__).resolve().parents[1]
COCO128 = ROOT.parent / "shared" / "datasets" / "coco128" / "images" / "train2017"


def median_ms(paths: list[Path], decoder: str) -> float:
    times = []
    for path in paths:
        start = time.perf_counter()
        load_rgb8(path, decoder)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(COCO128))
    ap.add_argument("--limit", type=int, default=64)
    args = ap.parse_args()
    paths = sorted(Path(args.folder).glob("*.jpg"))[:args.limit]
    if not paths:
        paths = [ROOT / "darknet_py" / "assets" / "astronaut.jpg"] * 8
    for decoder in ("stb", "opencv"):  # warm both up
        load_rgb8(paths[0], decoder)
    stb = median_ms(paths, "stb")
    opencv = median_ms(paths, "opencv")
    print(f"{len(paths)} JPEGs: stb {stb:.1f} ms, OpenCV {opencv:.1f} ms per image; "
          f"ratio {stb / opencv:.2f}")


if __name__ == "__main__":
    main()
