"""The package as installed and read: its sub-packages, the Python floor, its size rules."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "darknet_py"


def test_every_sub_package_is_installed():
    listed = set(re.findall(r'"(darknet_py[\w.]*)"', (ROOT / "pyproject.toml").read_text()))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed


def test_cfg_reading_needs_no_torch():
    code = ("import sys, darknet_py.cfg as c; c.read_cfg(sys.argv[1]); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(ROOT / "cfg" / "yolov4-csp.cfg")],
                   cwd=ROOT, check=True)


def test_the_oldest_python_we_claim_reads_every_module_and_parses_cfgs():
    """requires-python's floor: every module compiles there and cfg parsing (pure Python)
    works.  Skipped where that interpreter is not installed."""
    floor = re.search(r'requires-python = ">=(\d+\.\d+)"',
                      (ROOT / "pyproject.toml").read_text()).group(1)
    candidates = [shutil.which(f"python{floor}"),
                  *map(str, Path.home().glob(f".pyenv/versions/{floor}.*/bin/python{floor}"))]
    working = [p for p in candidates
               if p and subprocess.run([p, "-V"], capture_output=True).returncode == 0]
    if not working:
        pytest.skip(f"python{floor} is not installed")
    python = working[0]
    code = ("import pathlib, sys\n"
            "for p in pathlib.Path('darknet_py').rglob('*.py'):\n"
            "    compile(p.read_text(), str(p), 'exec')\n"
            "from darknet_py.cfg import read_cfg\n"
            "for p in pathlib.Path('cfg').glob('*.cfg'):\n"
            "    cfg = read_cfg(p)\n"
            "    assert cfg.to_text()\n")
    subprocess.run([python, "-c", code], cwd=ROOT, check=True)


def _definitions():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path, node


def test_modules_and_functions_stay_small():
    """One concern per module (at most 400 lines), functions at most 60 lines."""
    big = [(p.relative_to(ROOT), n) for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 400]
    long = [(p.relative_to(ROOT), f.name, f.end_lineno - f.lineno + 1)
            for p, f in _definitions() if f.end_lineno - f.lineno + 1 > 60]
    assert not big and not long


def _sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in PACKAGE.rglob("*.py")}


def test_each_formula_and_list_is_written_once():
    """Box conversions and CIoU's aspect term live in ops/boxes.py; the NMS kinds, IoU kinds
    and activations are listed once (cfg/base.py); the default decoder is one constant."""
    sources = _sources()
    for name in ("infer/detections.py", "infer/report.py", "eval/coco.py",
                 "train/iou_grad.py"):
        assert not re.search(r"(\] ?/ ?2|[pt][wh] / 2)", sources[name]), name
    assert [n for n, s in sources.items() if "atan(" in s] == ["ops/boxes.py"]
    for listing in ('"greedynms", "diounms"', '"hard_mish", "tanh"', '"giou", "diou", "ciou"'):
        assert [n for n, s in sources.items() if listing in s] == ["cfg/base.py"], listing
    assert not [n for n, s in sources.items() if re.search(r"decoder: str = \"", s)]


#: the data flow's order: a module imports (at its top) only from its level or below
LEVELS = {"errors": 0, "files": 0, "assets": 0, "cfg": 1, "ops": 2, "nn": 3, "image": 3,
          "io": 4, "infer": 5, "eval": 5, "train": 5, "cli": 6}


def test_dependencies_point_one_way():
    """cfg <- ops <- nn <- io <- infer/eval/train <- cli, for module-level imports (the
    model's ``loss``/``for_inference`` conveniences import train/infer when called)."""
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        mine = rel.parts[0] if len(rel.parts) > 1 else rel.parts[0]
        if mine in ("__init__", "__main__", "version"):
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = list(rel.parts[:-1])[: len(rel.parts) - node.level]
            target = (base + (node.module or "").split("."))[0] if node.module else (
                base[0] if base else node.names[0].name)
            if target in LEVELS and mine in LEVELS and LEVELS[target] > LEVELS[mine]:
                wrong.append(f"{rel}: imports {target}")
    assert not wrong, wrong
