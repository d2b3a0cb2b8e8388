"""Self-contained .pt checkpoints: cfg, names and header travel with the state_dict."""

from __future__ import annotations

import pytest
import torch

from darknet_py import Darknet, WeightsError
from darknet_py.io.checkpoint import load, read_checkpoint, save

from .conftest import REAL_CFG, REAL_WEIGHTS, ROOT, requires_shared

TINY_CFG = ROOT / "cfg" / "yolov4-tiny.cfg"


@requires_shared
def test_weights_to_pt_to_weights_is_byte_identical(tmp_path, coco_names):
    model = load(REAL_WEIGHTS, cfg=REAL_CFG)
    pt = tmp_path / "yolov4-tiny.pt"
    save(model, pt, coco_names)
    ckpt = read_checkpoint(pt)
    assert ckpt["cfg"] == REAL_CFG.read_text() and ckpt["names"] == coco_names

    back = load(pt)  # needs nothing but the .pt
    assert back.names == coco_names and back.header == model.header
    out = tmp_path / "back.weights"
    back.save_weights(out)
    assert out.read_bytes() == REAL_WEIGHTS.read_bytes()

    x = torch.rand(1, 3, 416, 416)
    with torch.no_grad():
        assert torch.equal(back.eval()(x), model.eval()(x))


def test_checkpoint_keeps_the_input_size(tmp_path):
    model = Darknet(TINY_CFG, 320, 256)
    save(model, tmp_path / "m.pt")
    back = load(tmp_path / "m.pt")
    assert (back.width, back.height) == (320, 256) and back.names is None


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(WeightsError, match="missing.pt: checkpoint file not found"):
        load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pt: not a readable PyTorch checkpoint"):
        load(junk)
    plain = tmp_path / "plain.pt"
    torch.save({"model": {}}, plain)
    with pytest.raises(WeightsError, match="plain.pt: not a darknet-py checkpoint"):
        load(plain)
    model = Darknet(TINY_CFG)
    save(model, tmp_path / "m.pt")
    ckpt = read_checkpoint(tmp_path / "m.pt")
    ckpt["state_dict"].pop("layers.0.conv.weight")
    torch.save(ckpt, tmp_path / "broken.pt")
    with pytest.raises(WeightsError, match="broken.pt: weights do not fit the cfg"):
        load(tmp_path / "broken.pt")
