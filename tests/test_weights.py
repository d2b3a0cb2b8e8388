"""Darknet .weights I/O: byte-exact round trips, partial files, size errors."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from darknet_py import Darknet, WeightsError
from darknet_py.nn.weights import WeightsHeader, expected_floats, read_weights, weights_bytes

from .conftest import REAL_CFG, REAL_WEIGHTS, ROOT, SHARED_CFGS, requires_shared

TINY_CFG = ROOT / "cfg" / "yolov4-tiny.cfg"


def _random_model(cfg, seed=0, **kw) -> Darknet:
    torch.manual_seed(seed)
    model = Darknet(cfg, **kw)
    with torch.no_grad():
        for layer in model.layers:
            for t in layer.darknet_tensors():
                t.copy_(torch.randn_like(t) * 0.1 + (1.0 if t.dim() == 1 else 0.0))
    return model


@requires_shared
def test_real_weights_round_trip_is_byte_identical(tmp_path):
    model = Darknet(REAL_CFG)
    report = model.load_weights(REAL_WEIGHTS)
    assert report.header == WeightsHeader(0, 2, 5, 0)
    assert not report.partial and report.floats_read == 6062814
    out = tmp_path / "copy.weights"
    model.save_weights(out)
    assert out.read_bytes() == REAL_WEIGHTS.read_bytes()


@requires_shared
@pytest.mark.slow
@pytest.mark.parametrize("cfg", SHARED_CFGS, ids=lambda p: p.stem)
def test_random_weights_round_trip(cfg, tmp_path, layout_tool):
    model = _random_model(cfg, width=256, height=256)
    # the float count equals Darknet's layout, computed independently of our code
    assert expected_floats(model) == layout_tool.compute_layout(str(cfg))["total_floats"]
    first = tmp_path / "a.weights"
    model.save_weights(first)
    again = Darknet(cfg, width=256, height=256)
    again.load_weights(first)
    assert weights_bytes(again) == first.read_bytes()


def test_header_formats():
    new = WeightsHeader(0, 2, 5, 123456789012)
    assert new.nbytes == 20 and WeightsHeader.from_bytes(new.to_bytes()) == new
    old = WeightsHeader(0, 1, 0, 64000)  # major*10+minor < 2: 32-bit seen
    assert old.nbytes == 16 and len(old.to_bytes()) == 16
    assert WeightsHeader.from_bytes(old.to_bytes()) == old


def test_old_header_round_trips(tmp_path):
    model = _random_model(TINY_CFG)
    model.header = WeightsHeader(0, 1, 0, 32000)
    path = tmp_path / "old.weights"
    model.save_weights(path)
    again = Darknet(TINY_CFG)
    assert again.load_weights(path).header.seen == 32000
    assert weights_bytes(again) == path.read_bytes()


def test_partial_file_loads_leading_layers(tmp_path):
    model = _random_model(TINY_CFG, seed=1)
    path = tmp_path / "tiny.conv.29"
    model.save_weights(path, upto=29)  # what Darknet's partial writes
    fresh = _random_model(TINY_CFG, seed=2)
    before = fresh.layers[30 - 1].conv.weight.clone()
    report = fresh.load_weights(path)
    assert report.partial and report.layers_loaded == 29
    assert torch.equal(fresh.layers[27].conv.weight, model.layers[27].conv.weight)
    assert torch.equal(fresh.layers[29].conv.weight, before)  # untouched


def test_upto_reads_only_leading_layers(tmp_path):
    model = _random_model(TINY_CFG, seed=1)
    path = tmp_path / "full.weights"
    model.save_weights(path)
    fresh = _random_model(TINY_CFG, seed=2)
    report = fresh.load_weights(path, upto=10)
    assert report.layers_loaded == 10 and report.floats_read == expected_floats(model, 10)
    assert torch.equal(fresh.layers[7].conv.weight, model.layers[7].conv.weight)
    assert not torch.equal(fresh.layers[12].conv.weight, model.layers[12].conv.weight)


def test_truncated_file_names_counts_and_layer(tmp_path):
    model = _random_model(TINY_CFG)
    data = weights_bytes(model)
    path = tmp_path / "cut.weights"
    path.write_bytes(data[: 20 + 4 * 1000])  # inside layer 1
    with pytest.raises(WeightsError) as info:
        Darknet(TINY_CFG).load_weights(path)
    msg = str(info.value)
    assert "expects 6062814 floats" in msg and "has 1000" in msg and "layer 1" in msg


def test_too_long_file_is_rejected(tmp_path):
    path = tmp_path / "long.weights"
    path.write_bytes(weights_bytes(_random_model(TINY_CFG)) + b"\0" * 40)
    with pytest.raises(WeightsError, match="6062824.*10 too many"):
        Darknet(TINY_CFG).load_weights(path)


def test_misaligned_and_foreign_files(tmp_path):
    odd = tmp_path / "odd.weights"
    odd.write_bytes(struct.pack("<3iQ", 0, 2, 5, 0) + b"\0\0\0")
    with pytest.raises(WeightsError, match="whole number"):
        read_weights(odd)
    foreign = tmp_path / "pic.weights"
    foreign.write_bytes(b"\xff\xd8\xff\xe0" + b"JFIF" * 100)
    with pytest.raises(WeightsError, match="not a Darknet .weights file"):
        read_weights(foreign)


def test_dontloadscales_skips_bn_statistics(tmp_path):
    text = (ROOT / "cfg" / "yolov4-tiny.cfg").read_text().replace(
        "[convolutional]\nbatch_normalize=1\nfilters=32", "[convolutional]\ndontloadscales=1\n"
        "batch_normalize=1\nfilters=32", 1)
    model = Darknet.from_text(text)
    n = expected_floats(model)
    assert n == 6062814 - 3 * 32
    path = tmp_path / "w.weights"
    path.write_bytes(WeightsHeader().to_bytes() + np.arange(n, dtype="<f4").tobytes())
    model.load_weights(path)
    assert model.layers[0].bn.bias[0].item() == 0.0  # biases first
    assert model.layers[0].conv.weight.flatten()[0].item() == 32.0  # then weights


def test_save_partial_keeps_leading_layers_and_resets_seen(tmp_path):
    from darknet_py.nn.weights import save_partial

    model = _random_model(TINY_CFG, seed=3)
    model.header = WeightsHeader(0, 2, 5, seen=64000)
    full, part = tmp_path / "full.weights", tmp_path / "tiny.conv.29"
    model.save_weights(full)
    save_partial(model, part, 29)
    data = part.read_bytes()
    assert data[:20] == WeightsHeader(0, 2, 5, 0).to_bytes()
    assert len(data) == 20 + 4 * expected_floats(model, 29)
    assert data[20:] == full.read_bytes()[20:len(data)]
    with pytest.raises(WeightsError, match="layer count must be 1..38, got 0"):
        save_partial(model, part, 0)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_the_api_refuses_non_finite_weights_and_leaves_the_model_as_it_was(tmp_path, value):
    """One rule in the one loader: Darknet.load_weights refuses what the command line
    refuses, before it copies anything."""
    model = Darknet(TINY_CFG)
    path = tmp_path / "bad.weights"
    model.save_weights(path)
    _, floats = read_weights(path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = bytearray(path.read_bytes())
    at = len(data) - 4 * floats.size + 4 * (floats.size // 2)  # a float mid-file
    data[at: at + 4] = struct.pack("<f", value)
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="NaN or infinite values, from layer"):
        model.load_weights(path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
