"""Shared fixtures: the reference data beside the checkout (../shared) and models built from it."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"
SHARED_CFGS = sorted((SHARED / "cfg").glob("*.cfg"))
FWD_REFS = sorted(p.stem[len("fwd_"):] for p in REFERENCE.glob("fwd_*.npz"))
IMAGES = sorted((SHARED / "images").glob("*.jpg"))
REAL_CFG = SHARED / "models" / "yolov4-tiny.cfg"
REAL_WEIGHTS = SHARED / "models" / "yolov4-tiny.weights"

requires_shared = pytest.mark.skipif(not REFERENCE.exists(),
                                     reason="reference data ../shared is not present")

torch.set_num_threads(2)


def _reference_module(name: str):
    """A helper module shipped with the reference data (test tooling from ../shared)."""
    if not REFERENCE.exists():
        pytest.skip("reference data ../shared is not present")
    sys.path.insert(0, str(REFERENCE))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REFERENCE))


@pytest.fixture(scope="session")
def refio():
    """The reference README's numpy-only reader and decoder."""
    return _reference_module("refio")


@pytest.fixture(scope="session")
def layout_tool():
    """The reference README's .weights layout calculator and cfg editor."""
    return _reference_module("layout")


class RefModels:
    """Edited cfgs and regenerated random weights of the ``fwd_<cfg>.npz`` references."""

    def __init__(self, root: Path, refio, layout_tool):
        self.root = root
        self.refio = refio
        self.layout = layout_tool
        self._refs: dict[str, dict] = {}

    def ref(self, name: str) -> dict:
        if name not in self._refs:
            self._refs[name] = self.refio.load(REFERENCE / f"fwd_{name}.npz")
        return self._refs[name]

    def cfg(self, name: str) -> Path:
        path = self.root / f"{name}.cfg"
        if not path.exists():
            edits: dict[str, dict[str, str]] = {}
            for _index, section, key, _old, new in self.ref(name)["meta"]["cfg_edits"]:
                edits.setdefault(section, {})[key] = new
            self.layout.edit_cfg(str(SHARED / "cfg" / f"{name}.cfg"), str(path), edits)
        return path

    def weights(self, name: str) -> Path:
        path = self.root / f"{name}.weights"
        if not path.exists():
            meta = self.ref(name)["meta"]["weights"]
            subprocess.run([sys.executable, str(REFERENCE / "gen_weights.py"), str(self.cfg(name)),
                            str(path), "--seed", str(meta["seed"])], check=True,
                           capture_output=True)
        return path

    def expected_sha256(self, name: str) -> str:
        return self.ref(name)["meta"]["weights"]["sha256"]


@pytest.fixture(scope="session")
def ref_models(tmp_path_factory, refio, layout_tool) -> RefModels:
    return RefModels(tmp_path_factory.mktemp("refmodels"), refio, layout_tool)


@pytest.fixture(scope="session")
def real_model():
    """The real COCO yolov4-tiny, eval mode."""
    if not REAL_WEIGHTS.exists():
        pytest.skip("reference data ../shared is not present")
    from darknet_py import Darknet

    model = Darknet(REAL_CFG)
    model.load_weights(REAL_WEIGHTS)
    return model.eval()


@pytest.fixture(scope="session")
def coco_names() -> list[str]:
    return (ROOT / "cfg" / "coco.names").read_text().splitlines()


def head_inputs(model, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Inputs of every [yolo] layer (via forward hooks) and the model output."""
    heads: list[torch.Tensor] = []
    hooks = [model.layers[i - 1].register_forward_hook(lambda m, a, o: heads.append(o))
             for i in model.yolo_indices]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return heads, out


def meta_json(ref: dict) -> str:
    return json.dumps(ref["meta"])[:200]


COCO128 = SHARED / "datasets" / "coco128"


@pytest.fixture(scope="session")
def coco128_list(tmp_path_factory) -> Path:
    """An image list of the 128 coco128 images (sorted), as Darknet's valid= file."""
    images = sorted((COCO128 / "images" / "train2017").glob("*.jpg"))
    if not images:
        pytest.skip("reference data ../shared is not present")
    path = tmp_path_factory.mktemp("coco128") / "coco128.txt"
    path.write_text("".join(f"{p}\n" for p in images))
    return path
