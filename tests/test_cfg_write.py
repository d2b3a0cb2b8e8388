"""cfg writing: sections -> text -> the same sections, for every cfg we have."""

from __future__ import annotations

import logging

import pytest

from darknet_py import Darknet, parse_cfg, read_cfg
from darknet_py.cfg import Cfg, ConvolutionalSection, NetSection, YoloSection
from darknet_py.cfg.write import format_value

from .conftest import ROOT, SHARED_CFGS, requires_shared

PROJECT_CFGS = sorted((ROOT / "cfg").glob("*.cfg"))


def _round_trip(cfg: Cfg) -> Cfg:
    return parse_cfg(cfg.to_text(), "written.cfg")


def _assert_same_sections(a: Cfg, b: Cfg) -> None:
    assert a.net == b.net
    assert len(a.layers) == len(b.layers)
    for i, (x, y) in enumerate(zip(a.layers, b.layers)):
        assert x == y, f"layer {i}"


@pytest.mark.parametrize("path", PROJECT_CFGS, ids=lambda p: p.stem)
def test_project_cfgs_round_trip(path):
    cfg = read_cfg(path)
    _assert_same_sections(cfg, _round_trip(cfg))


@requires_shared
@pytest.mark.parametrize("path", SHARED_CFGS, ids=lambda p: p.stem)
def test_every_family_cfg_round_trips(path, caplog):
    cfg = read_cfg(path)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = _round_trip(cfg)
    _assert_same_sections(cfg, again)
    assert caplog.text == ""  # the written text is clean: no unused or repeated keys
    assert _round_trip(again).to_text() == again.to_text()  # writing is stable


def test_derived_keys_and_odd_values_round_trip():
    text = """[net]
width=96
height=64
channels=3
learning_rate=0.00261
policy=steps
steps=400000,450000
scales=.1,.1
[convolutional]
filters=18
size=3
stride=2
stride_y=1
pad=1
padding=7
activation=mish
[maxpool]
size=3
[route]
layers=-1,-2
groups=2
group_id=1
[shortcut]
from=-2, -3
weights_type=per_layer
[convolutional]
filters=6
size=1
activation=linear
[yolo]
anchors=1,2, 3,4
classes=1
max_delta=2.5
"""
    cfg = parse_cfg(text)
    written = cfg.to_text()
    again = parse_cfg(written)
    _assert_same_sections(cfg, again)
    assert "padding=" not in written and "stride_x" not in written  # derived, left out
    assert "stride_y=1" in written and "weights_type=per_feature" in written
    assert "learning_rate=0.00261" in written and "scales=0.1,0.1" in written
    assert again.layers[0].padding == 1  # pad=1 overrides padding=, as in Darknet


@pytest.mark.parametrize("value, text", [(0.1, "0.1"), (2.0, "2"), (1e-05, "1e-05"),
                                         ([1, 2], "1,2"), (True, "1"), ("mish", "mish")])
def test_values_are_written_exactly(value, text):
    assert format_value(value) == text


def test_a_cfg_built_in_code_builds_a_model():
    net = NetSection(width=64, height=64, channels=3)
    conv = ConvolutionalSection(filters=18, size=1, activation="linear", index=0)
    yolo = YoloSection(classes=1, num=3, anchors=[8, 8, 16, 16, 32, 32], index=1)
    for section in (net, conv, yolo):
        section.finalize()
    cfg = Cfg(net, [conv, yolo])
    model = Darknet(cfg)
    assert model.cfg_text == cfg.to_text() and "[yolo]\nclasses=1\nnum=3\n" in model.cfg_text
    _assert_same_sections(cfg, parse_cfg(model.cfg_text))
