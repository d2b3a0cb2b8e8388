"""Which cfgs of a folder darknet-py builds, and why it refuses the others.

    python benchmarks/darknet_cfgs.py path/to/darknet/cfg

Run on AlexeyAB Darknet's own ``cfg/`` folder (not shipped here) it prints one line per cfg
(``builds``, with its layers and detection heads, or ``refused`` with the one-line error)
and the counts, for issue notes and for checking a new layer kind's reach.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from darknet_py import Darknet  # noqa: E402
from darknet_py.errors import DarknetError  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the cfgs' unimplemented training keys
    built = refused = 0
    for path in sorted(Path(args.folder).glob("*.cfg")):
        try:
            model = Darknet(path)
        except DarknetError as err:
            refused += 1
            print(f"refused  {path.name:45s} {err}")
            continue
        built += 1
        print(f"builds   {path.name:45s} {len(model.layers)} layers, "
              f"{len(model.head_indices)} detection heads")
    print(f"{built} of {built + refused} build, {refused} refused")


if __name__ == "__main__":
    main()
