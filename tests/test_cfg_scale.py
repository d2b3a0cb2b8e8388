"""Model scaling: presets equal the shipped cfgs, generated cfgs build, train and round-trip
their weights, shipped weights run in a preset's cfg as Darknet runs them, and the cost
model predicts what ``cfg show`` counts."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.cfg import parse_cfg, read_cfg
from darknet_py.cfg.compare import cfg_differences
from darknet_py.cfg.family import round_channels, round_depth, scaled
from darknet_py.cfg.presets import PRESETS, preset
from darknet_py.cfg.scale import scale_cfg
from darknet_py.cli import main
from darknet_py.errors import CfgError
from darknet_py.nn.scaling import SeedCost, cfg_cost

from .conftest import COCO128, FWD_REFS, ROOT, SHARED, head_inputs, requires_shared

SHIPPED = SHARED / "cfg"


def shipped(name: str):
    """The shipped cfg, with cspx-p7-mish's anchor count fixed (num=16 for 20 anchors)."""
    text = (SHIPPED / f"{name}.cfg").read_text()
    if name == "cspx-p7-mish":
        text = text.replace("num=16", "num=20")
    return parse_cfg(text, name)


@requires_shared
@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_is_the_shipped_cfg(name):
    assert cfg_differences(scale_cfg(name), shipped(name)) == []


def test_every_preset_is_a_buildable_network():
    for name, design in PRESETS.items():
        cfg = scale_cfg(name)
        assert len(cfg.yolo_layers) == design.levels
        assert cfg.yolo_layers[0].num == len(design.anchors)
        bflops, params = cfg_cost(cfg)
        assert sum(bflops) > 0 and sum(params) > 0


def test_rounding_rules_hand_worked():
    assert [round_channels(c * 1.25) for c in (32, 64, 1024)] == [40, 80, 1280]
    assert [round_channels(c * 0.75) for c in (64, 100, 4)] == [48, 72, 8]
    assert [round_depth(n, 1.25) for n in (1, 2, 8, 4)] == [1, 3, 10, 5]
    assert [round_depth(n, 0.33) for n in (1, 2, 8, 15)] == [1, 1, 3, 5]


def test_knobs_change_what_they_say():
    cfg = scale_cfg("yolov4-p5", width=0.75, size=768, classes=3)
    assert (cfg.net.width, cfg.net.height) == (768, 768)
    assert all(y.classes == 3 for y in cfg.yolo_layers)
    assert cfg.layers[1].filters == 48  # 64 x 0.75; the stem keeps 32
    assert cfg.layers[0].filters == 32
    # Darknet's custom-dataset schedule, where COCO's 2000200 batches would be kept
    assert (cfg.net.max_batches, list(cfg.net.steps)) == (6000, [4800, 5400])
    many = scale_cfg("yolov4-csp", classes=10)
    assert (many.net.max_batches, list(many.net.steps)) == (20000, [16000, 18000])
    heads = [i for i, sec in enumerate(many.layers) if sec in many.yolo_layers]
    assert all(many.layers[i - 1].filters == (10 + 5) * 3 for i in heads)
    assert scale_cfg("yolov4-csp").net.max_batches == 500500
    p7 = scale_cfg("yolov4-p5", levels=5)
    assert len(p7.yolo_layers) == 5 and len(p7.yolo_layers[0].anchors) == 2 * 20
    swish = scale_cfg("yolov4-csp", activation="swish")
    acts = {s.activation for s in swish.layers if s.kind == "convolutional"}
    assert acts == {"swish", "logistic"}
    three = scale_cfg("yolov4-tiny", levels=3)
    assert [y.mask for y in three.yolo_layers] == [[6, 7, 8], [3, 4, 5], [0, 1, 2]]


@pytest.mark.parametrize("knobs, message", [
    (dict(width=0), "--width"),
    (dict(size=700), "multiple of 32"),
    (dict(depth=(1, 2)), "5 block counts"),
    (dict(classes=0), "--classes"),
    (dict(activation="wavy"), "--activation"),
    (dict(levels=9), "--levels"),
])
def test_bad_knobs_are_one_line_errors(knobs, message):
    with pytest.raises(CfgError, match=re.escape(message)):
        scale_cfg("yolov4-csp", **knobs)
    with pytest.raises(CfgError, match="unknown preset"):
        preset("yolov4-nope")


def _finite(model: Darknet) -> Darknet:
    """``model`` in eval mode with seeded, plausible batch-norm statistics (a random deep
    network's activations stay finite)."""
    torch.manual_seed(0)
    for layer in model.layers:
        if getattr(layer, "bn", None) is not None:
            layer.bn.running_mean.uniform_(-0.1, 0.1)
            layer.bn.running_var.uniform_(0.5, 2.0)
            layer.bn.weight.data.uniform_(0.2, 0.5)
    return model.eval()


GENERATED = {  # small non-preset points of both families
    "csp-s narrow P6": dict(base="yolov4-csp-s-mish", width=0.25, levels=4, size=128,
                            classes=80),
    "p5 shallow": dict(base="yolov4-p5", width=0.125, depth=(1, 1, 1, 1, 1), size=96),
    "tiny 3 levels": dict(base="yolov4-tiny", width=0.5, levels=3, size=96),
}


@pytest.mark.parametrize("point", list(GENERATED))
def test_generated_cfg_builds_runs_and_reloads_its_weights(point, tmp_path):
    knobs = dict(GENERATED[point])
    cfg = scale_cfg(knobs.pop("base"), **knobs)
    model = _finite(Darknet(cfg))
    x = torch.rand(1, 3, cfg.net.height, cfg.net.width)
    with torch.no_grad():
        out = model(x)
    assert out.shape[0] == 1 and torch.isfinite(out).all()
    model.save_weights(tmp_path / "own.weights")
    again = Darknet(parse_cfg(cfg.text)).eval()
    again.load_weights(tmp_path / "own.weights")
    with torch.no_grad():
        assert torch.equal(again(x), out)


@requires_shared
@pytest.mark.slow
def test_generated_cfg_trains_a_step_on_coco128(tmp_path, monkeypatch):
    from darknet_py.train import TrainConfig, train

    monkeypatch.chdir(tmp_path)
    cfg = scale_cfg("yolov4-csp-s-mish", width=0.25, size=128)
    text = cfg.text
    for key, value in (("batch", 2), ("subdivisions", 1), ("burn_in", 0)):
        text = re.sub(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
    (tmp_path / "s.cfg").write_text(text)
    images = sorted((COCO128 / "images" / "train2017").glob("*.jpg"))[:4]
    (tmp_path / "train.txt").write_text("".join(f"{p}\n" for p in images))
    (tmp_path / "t.data").write_text(
        f"classes=80\ntrain={tmp_path / 'train.txt'}\nvalid={tmp_path / 'train.txt'}\n"
        f"names={ROOT / 'cfg' / 'coco.names'}\nbackup={tmp_path / 'backup'}\n")
    result = train(TrainConfig(str(tmp_path / "t.data"), str(tmp_path / "s.cfg"), None,
                               workers=0, seed=1, max_batches=1, chart=None))
    assert len(result.losses) == 1 and math.isfinite(result.losses[0])
    trained = Darknet(tmp_path / "s.cfg")
    trained.load_weights(tmp_path / "backup" / "s_final.weights")


@requires_shared
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in PRESETS if n in FWD_REFS])
def test_reference_weights_in_a_preset_give_darknets_outputs(ref_models, name):
    ref = ref_models.ref(name)
    size = ref["meta"]["net_w"]
    model = Darknet(scale_cfg(name, size=size)).eval()
    model.load_weights(ref_models.weights(name))
    heads, _ = head_inputs(model, torch.from_numpy(ref["input"]))
    for k, head in enumerate(heads):
        expected = ref[f"dn_yolo_in_{k}"]
        rel = np.abs(head.numpy() - expected).max() / np.abs(expected).max()
        assert rel <= 1e-4, f"head {k}: {rel:.2e}"


@requires_shared
@pytest.mark.parametrize("name", [n for n in PRESETS if n not in FWD_REFS])
def test_weights_of_the_shipped_cfg_run_the_same_in_the_preset(name, tmp_path):
    theirs = _finite(Darknet(read_cfg(SHIPPED / f"{name}.cfg"), 128, 128))
    theirs.save_weights(tmp_path / "w.weights")
    ours = Darknet(scale_cfg(name), 128, 128).eval()
    ours.load_weights(tmp_path / "w.weights")
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        expected = theirs(x)
        assert torch.isfinite(expected).all() and torch.equal(ours(x), expected)


def test_the_real_tiny_weights_run_the_same_in_the_tiny_preset():
    theirs = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg").eval()
    theirs.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    ours = Darknet(scale_cfg("yolov4-tiny")).eval()
    ours.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    x = torch.rand(1, 3, 416, 416)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


@pytest.mark.parametrize("name", list(PRESETS))
def test_cost_model_predicts_cfg_show_within_5_percent(name):
    design = PRESETS[name]
    model = SeedCost.of(design)
    points = [dict(width=0.5), dict(width=1.5), dict(size=design.max_stride * 4),
              dict(width=0.75, size=design.max_stride * 6)]
    if design.__class__.__name__ == "CspDesign":
        points += [dict(depth=0.33), dict(depth=2.0), dict(width=0.75, depth=0.5)]
    for knobs in points:
        flops, params = model.predict(**knobs)
        bflops, counted = cfg_cost(scale_cfg(design, **knobs))
        assert flops == pytest.approx(sum(bflops), rel=0.05), knobs
        assert params == pytest.approx(sum(counted), rel=0.05), knobs
    growth = model.growth()
    assert growth["width"] == pytest.approx(2, abs=0.25)
    assert growth["size"] == pytest.approx(2, abs=1e-9)
    if design.__class__.__name__ == "CspDesign":  # the tiny family has no depth knob
        assert 0.3 < growth["depth"] < 1.0
    else:
        assert "depth" not in growth


def test_scaled_points_of_the_rule_are_presets():
    x = scaled(PRESETS["yolov4-csp"], width=1.25, depth=1.25)
    assert cfg_differences(scale_cfg(x, size=640), scale_cfg("yolov4x-mish")) == []


def test_cfg_scale_command(tmp_path, capsys):
    out = tmp_path / "my.cfg"
    assert main(["cfg", "scale", "--preset", "yolov4-p5", "--width", "0.75", "--size", "768",
                 "--classes", "3", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "BFLOPs grow as width^" in text
    assert "cost model of yolov4-p5" in text
    assert ("--classes 3: max_batches=6000, steps=4800,5400 (Darknet's guide for a custom "
            "dataset), filters=32 before each [yolo]") in text
    assert main(["cfg", "show", str(out)]) == 0
    shown = capsys.readouterr().out.strip().splitlines()[-1]
    total = float(re.search(r"([0-9.]+) BFLOPs", text).group(1))
    assert shown.startswith("Total BFLOPS") and float(shown.split()[2]) == pytest.approx(total)
    assert main(["cfg", "scale", "--preset", "yolov4-csp", "--size", "700"]) == 1
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["cfg", "scale", "--list"]) == 0
    assert "cspx-p7-mish" in capsys.readouterr().out
