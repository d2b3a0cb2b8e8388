"""Cfgs of Darknet's own cfg/ folder against Darknet C, layer by layer.

``../shared/reference/zoo/<cfg>.npz`` holds Darknet C's ``l.output`` of every layer (at
512 sampled positions, and whole for heads and the last layer) for the edited cfg, its
input and its random weights (``gen_weights.py`` seed 11, or the stored file).  Each
layer of ``model.layer_outputs`` must be within 1e-4 of max(1, max|Darknet|).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.cfg import parse_cfg

from .conftest import REFERENCE, requires_shared

ZOO = REFERENCE / "zoo"
CASES = sorted(p.stem for p in ZOO.glob("*.npz"))
#: layer kinds of the zoo that darknet-py does not build yet, and why the cfg is skipped
NOT_YET: dict[str, str] = {}
TOLERANCE = 1e-4

pytestmark = requires_shared


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """name -> (model with the reference's weights, meta, reference), built once."""
    folder, built = tmp_path_factory.mktemp("zoo"), {}

    def get(name: str):
        if name not in built:
            built[name] = _model(name, folder)
        return built[name]
    return get


def _model(name: str, tmp_path) -> tuple[Darknet, dict, np.lib.npyio.NpzFile]:
    ref = np.load(ZOO / f"{name}.npz")
    meta = json.loads(str(ref["meta"]))
    cfg_path = tmp_path / f"{name}.cfg"
    cfg_path.write_text(meta["cfg_text"])
    weights = tmp_path / f"{name}.weights"
    if "weights_bytes" in ref.files:
        weights.write_bytes(ref["weights_bytes"].tobytes())
    else:
        seed = meta["weights_source"].split()[-1]
        subprocess.run([sys.executable, str(REFERENCE / "gen_weights.py"), str(cfg_path),
                        str(weights), "--seed", seed], check=True, capture_output=True)
    model = Darknet(parse_cfg(meta["cfg_text"], str(cfg_path)))
    report = model.load_weights(weights)
    assert not report.partial
    return model.eval(), meta, ref


@pytest.mark.parametrize("name", CASES)
def test_every_layer_equals_darknet(name, zoo):
    if name in NOT_YET:
        pytest.skip(f"{NOT_YET[name]} is not implemented yet")
    model, meta, ref = zoo(name)
    with torch.no_grad():
        outs = model.layer_outputs(torch.from_numpy(ref["input"]))
    assert len(outs) == len(meta["layers"])
    for layer, out in zip(meta["layers"], outs):
        i = layer["i"]
        ours = out[0].numpy()
        assert ours.size == layer["outputs"], f"layer {i} ({layer['type']}): size"
        scale = max(1.0, layer["absmax"])
        if f"o_{i}" in ref.files:
            err = np.abs(ours - ref[f"o_{i}"].reshape(-1)).max()
        else:
            err = np.abs(ours[ref[f"si_{i}"]] - ref[f"s_{i}"]).max()
        assert err / scale <= TOLERANCE, f"layer {i} ({layer['type']}): {err:.3g}"


@pytest.mark.parametrize("name", [n for n in CASES if n not in NOT_YET])
def test_load_table_bflops_are_darknets(name, tmp_path):
    """``cfg show``'s BFLOPs: every row where Darknet's load log prints one (to its 3
    decimals), and the Total BFLOPS."""
    from darknet_py.nn.cost import layer_bflops

    ref = np.load(ZOO / f"{name}.npz")
    meta = json.loads(str(ref["meta"]))
    model = Darknet(parse_cfg(meta["cfg_text"]))
    ours = layer_bflops(list(model.layers), model.shapes)
    log = meta["darknet_load_log"]
    rows = [re.match(r"^\s*(\d+) .*?([\d.]+) BF\s*$", line) for line in log.splitlines()]
    rows = [(int(m.group(1)), float(m.group(2))) for m in rows if m]
    assert rows and all(abs(ours[i] - value) <= 5e-4 + 1e-9 for i, value in rows), [
        (i, value, ours[i]) for i, value in rows if abs(ours[i] - value) > 5e-4 + 1e-9]
    total = float(log.split("Total BFLOPS")[1].split()[0])
    assert sum(ours) == pytest.approx(total, abs=1e-3)


@pytest.mark.parametrize("name", CASES)
def test_candidates_equal_darknets(name, zoo):
    """For the cfgs with [yolo], [region] or [Gaussian_yolo] heads: ``get_network_boxes``
    at 0.2 (relative, no letterbox, before NMS) in Darknet's order: objectness, class
    probabilities (uncertainty-scaled for Gaussian YOLO), boxes."""
    from darknet_py.infer import candidates, darknet_order

    model, meta, ref = zoo(name)
    if not model.head_indices or "det_bbox" not in ref.files:
        pytest.skip("no detection head, or no stored detections (the YOLOv1 reference has "
                    "none; its head is checked against a literal port)")
    net = (model.width, model.height)
    with torch.no_grad():
        pred = model(torch.from_numpy(ref["input"]))[0][darknet_order(model.head_shapes)]
    boxes, obj, probs = candidates(pred, meta["det_thresh"], net, net, letter_box=False)
    assert len(obj) == meta["det_count"]
    np.testing.assert_allclose(obj.numpy(), ref["det_objectness"], atol=1e-4)
    np.testing.assert_allclose(probs.numpy(), ref["det_prob"], atol=1e-4)
    np.testing.assert_allclose(boxes.numpy(), ref["det_bbox"], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["yolov2-tiny", "Gaussian_yolov3_BDD"])
def test_detector_runs_region_and_gaussian_heads(name, zoo):
    """Detector (thresholds, NMS, fast path) over the new heads, on Darknet's input."""
    from darknet_py import Detector

    model, meta, ref = zoo(name)
    image = ref["input"][0].transpose(1, 2, 0).copy()
    slow, fast = Detector(model)([image])[0], Detector(model, fast=True)([image])[0]
    assert len(slow) == len(fast)
    torch.testing.assert_close(slow.boxes, fast.boxes, rtol=1e-4, atol=1e-5)
    head = model.head_sections[-1]
    assert slow.probs.shape[1] == head.classes
