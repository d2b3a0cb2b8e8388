"""Darknet's BFLOPs count (against the layer tables Darknet printed for the references),
``cfg show`` and ``cfg diff``."""

from __future__ import annotations

import re

import pytest

from darknet_py import Darknet, read_cfg
from darknet_py.cfg.compare import cfg_differences
from darknet_py.cli import main
from darknet_py.nn.cost import layer_bflops

from .conftest import FWD_REFS, ROOT, SHARED, requires_shared

LINE = re.compile(r"^\s*(\d+) .* ([\d.]+) BF\s*$")


@requires_shared
@pytest.mark.parametrize("name", FWD_REFS)
def test_bflops_equal_darknets_table(ref_models, name):
    ref = ref_models.ref(name)
    log = ref["meta"]["darknet_log"]
    size = ref["input"].shape[-1]
    model = Darknet(SHARED / "cfg" / f"{name}.cfg", size, size)
    ours = layer_bflops(list(model.layers), model.shapes)
    printed = {int(m.group(1)): float(m.group(2)) for m in map(LINE.match, log.splitlines())
               if m}
    assert printed and all(round(ours[i], 3) == pytest.approx(v, abs=1e-3)
                           for i, v in printed.items())
    total = float(re.search(r"Total BFLOPS ([\d.]+)", log).group(1))
    assert sum(ours) == pytest.approx(total, rel=0.005)


def test_cfg_show_prints_the_table_and_total(capsys):
    assert main(["cfg", "show", "yolov4-tiny.cfg", "--width", "320", "--height", "320"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].strip() == "Total BFLOPS 4.089"  # Darknet's figure for yolov4-tiny at 320
    assert out[1].split()[:2] == ["0", "conv"] and out[1].endswith("0.044 BF")


def test_cfg_diff_ignores_comments_and_training_keys(tmp_path, capsys):
    text = (ROOT / "cfg" / "yolov4-tiny.cfg").read_text()
    edited = tmp_path / "edited.cfg"
    edited.write_text("# a comment\n" + text.replace("ignore_thresh=.7", "ignore_thresh=.5")
                      .replace("jitter=.3", "jitter=.1"))
    assert cfg_differences(read_cfg(ROOT / "cfg" / "yolov4-tiny.cfg"), read_cfg(edited)) == []
    wider = tmp_path / "wider.cfg"
    wider.write_text(text.replace("filters=64", "filters=96", 1))
    assert main(["cfg", "diff", "yolov4-tiny.cfg", str(wider)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "layer 1 [convolutional]: filters 64 vs 96"
