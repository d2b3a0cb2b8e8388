"""cfg parsing: Darknet's tokenizer, defaults, typed sections and errors with lines."""

from __future__ import annotations

import logging

import pytest

from darknet_py import CfgError, Darknet, parse_cfg, read_cfg
from darknet_py.cfg import (ConvolutionalSection, MaxpoolSection, RouteSection, ShortcutSection,
                            YoloSection)

from .conftest import ROOT, SHARED, SHARED_CFGS, requires_shared

NET = "[net]\nwidth=64\nheight=64\nchannels=3\n"


def test_tokenizer_whitespace_comments_and_lists():
    cfg = parse_cfg(NET + "# comment\n; other comment\n\n[convolutional]\n filters = 16 \n"
                    "size=3 # inline\nactivation=leaky\n[yolo]\nmask = 0, 1,2\n"
                    "anchors=1,2, 3,4,5,6\nnum=3\nclasses=1\n")
    conv, yolo = cfg.layers
    assert isinstance(conv, ConvolutionalSection) and conv.filters == 16 and conv.size == 3
    assert conv.activation == "leaky" and conv.line == 8 and conv.options["size"].line == 10
    assert yolo.mask == [0, 1, 2] and yolo.anchors == [1, 2, 3, 4, 5, 6]
    assert yolo.masked_anchors == [(1, 2), (3, 4), (5, 6)]


def test_darknet_defaults():
    cfg = parse_cfg(NET + "[convolutional]\n[maxpool]\nstride=2\n[maxpool]\nsize=5\n"
                    "[route]\nlayers=-1\n[shortcut]\nfrom=-2\n[yolo]\n")
    conv, pool2, pool5, route, short, yolo = cfg.layers
    assert conv.activation == "logistic" and conv.filters == 1 and conv.padding == 0
    assert (pool2.size, pool2.padding, pool2.stride_x) == (2, 1, 2)
    assert (pool5.size, pool5.padding, pool5.stride_x) == (5, 4, 1)
    assert isinstance(route, RouteSection) and route.groups == 1 and route.group_id == 0
    assert isinstance(short, ShortcutSection) and short.activation == "linear"
    assert yolo.classes == 20 and yolo.num == 1 and yolo.mask == [0]
    assert yolo.iou_normalizer == 0.75 and yolo.ignore_thresh == 0.5 and yolo.nms_kind == "default"
    assert cfg.net.momentum == 0.9 and cfg.net.decay == 0.0001 and cfg.net.policy == "constant"
    assert cfg.net.flip == 1 and cfg.net.saturation == 1 and cfg.net.hue == 0


def test_pad_sets_padding_and_first_key_wins(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = parse_cfg(NET + "[convolutional]\nsize=5\npad=1\nfilters=8\nfilters=9\n")
    assert cfg.layers[0].padding == 2 and cfg.layers[0].filters == 8
    assert "repeated" in caplog.text


def test_unknown_key_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        parse_cfg(NET + "[maxpool]\nsize=2\nwobble=3\n")
    assert "unused option 'wobble=3'" in caplog.text and ":7:" in caplog.text


@pytest.mark.parametrize("text, line, words", [
    (NET + "[convolutional]\nfilters=abc\n", 6, "expected an integer"),
    (NET + "[convolutional]\nactivation=wiggle\n", 6, "expected one of"),
    (NET + "[convolutional]\nfilters\n", 6, "expected key=value"),
    (NET + "[wobble]\n", 5, "not supported"),
    (NET + "[convolutional\n", 5, "malformed section header"),
    ("filters=3\n" + NET, 1, "before the first [section]"),
    ("[convolutional]\n", 1, "must be [net]"),
    (NET + "[yolo]\nnum=3\nmask=0,5\nanchors=1,2,3,4,5,6\n", 7, "beyond the 3 anchors"),
    (NET + "[yolo]\nmask=1,,2\n", 6, "comma-separated"),
    (NET + "[route]\ngroups=2\ngroup_id=2\nlayers=-1\n", 7, "group_id=2"),
    (NET + "[yolo]\nscale_x_y=fast\n", 6, "expected a number"),
])
def test_errors_name_file_line_and_problem(text, line, words):
    with pytest.raises(CfgError) as info:
        parse_cfg(text, "bad.cfg")
    assert str(info.value).startswith(f"bad.cfg:{line}: ") and words in str(info.value)


def test_net_needs_a_size():
    with pytest.raises(CfgError, match="width, height and channels"):
        parse_cfg("[net]\nbatch=1\n[maxpool]\n")


@requires_shared
@pytest.mark.parametrize("path", SHARED_CFGS, ids=lambda p: p.stem)
def test_every_stock_cfg_parses_without_unused_keys(path, caplog):
    with caplog.at_level(logging.WARNING):
        cfg = read_cfg(path)
    assert "unused option" not in caplog.text and "repeated" not in caplog.text
    assert cfg.yolo_layers and all(isinstance(y, YoloSection) for y in cfg.yolo_layers)


@pytest.mark.parametrize("anchors, num, expect", [
    ("1,2,3", 1, [1.0, 2.0]),  # an odd count: only num*2 values are read
    ("1,2,3", 2, [1.0, 2.0, 3.0, 0.5]),  # too few: the rest keep make_yolo_layer's .5
    ("1,2", 3, [1.0, 2.0, 0.5, 0.5, 0.5, 0.5]),
])
def test_anchors_are_read_as_darknet_reads_them(anchors, num, expect, caplog):
    text = f"{NET}[yolo]\nnum={num}\nmask=0\nanchors={anchors}\n"
    with caplog.at_level(logging.WARNING):
        cfg = parse_cfg(text, "a.cfg")
    assert cfg.yolo_layers[0].anchors == expect
    assert f"anchors has {len(anchors.split(','))} values for num={num}" in caplog.text


@requires_shared
def test_inconsistent_p7_uses_listed_anchors(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = read_cfg(SHARED / "cfg" / "cspx-p7-mish.cfg")
    assert "num=16 but 20 anchors are listed" in caplog.text
    assert all(y.num == 20 for y in cfg.yolo_layers)
    assert cfg.yolo_layers[-1].masked_anchors[-1] == (1408, 1408)


@requires_shared
@pytest.mark.parametrize("ours, original", [
    ("yolov4-tiny.cfg", SHARED / "models" / "yolov4-tiny.cfg"),
    ("yolov4-csp.cfg", SHARED / "cfg" / "yolov4-csp.cfg"),
])
def test_project_cfgs_parse_to_the_same_layers(ours, original):
    mine, theirs = read_cfg(ROOT / "cfg" / ours), read_cfg(original)
    assert mine.layers == theirs.layers
    assert (mine.net.width, mine.net.height, mine.net.letter_box) == \
        (theirs.net.width, theirs.net.height, theirs.net.letter_box)
    assert Darknet(mine).shapes == Darknet(theirs).shapes


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(CfgError, match="cfg file not found"):
        read_cfg(tmp_path / "nope.cfg")
    binary = tmp_path / "bin.cfg"
    binary.write_bytes(b"[net]\0\1\2")
    with pytest.raises(CfgError, match="NUL"):
        read_cfg(binary)


def test_maxpool_section_type():
    cfg = parse_cfg(NET + "[max]\nsize=3\nstride=2\n")
    assert isinstance(cfg.layers[0], MaxpoolSection) and cfg.layers[0].padding == 2


@pytest.mark.parametrize("key, value, what", [
    ("cutmix", "1", "training augmentation"),
    ("adam", "1", "Adam"),
    ("track", "1", "training"),
])
def test_net_keys_we_do_not_implement_warn_with_their_line(key, value, what, caplog):
    with caplog.at_level(logging.WARNING):
        parse_cfg(NET + f"{key}={value}\n[convolutional]\n", "my.cfg")
    assert f"my.cfg:5: [net] {key}={value} is read by Darknet" in caplog.text
    assert what in caplog.text and "not implemented by darknet-py" in caplog.text


@pytest.mark.parametrize("section, key", [("yolo", "focal_loss=1"), ("yolo", "delta_normalizer=2"),
                                          ("convolutional", "clip=1")])
def test_layer_keys_we_do_not_implement_warn(section, key, caplog):
    with caplog.at_level(logging.WARNING):
        parse_cfg(NET + f"[{section}]\n{key}\n", "my.cfg")
    assert f"my.cfg:6: [{section}] {key} is read by Darknet" in caplog.text


def test_unimplemented_keys_at_their_default_are_quiet(caplog):
    with caplog.at_level(logging.WARNING):
        parse_cfg(NET + "angle=0\ncutmix=0\nadam=0\n[yolo]\nfocal_loss=0\n")
    assert caplog.text == ""


def test_cornersnms_warns_that_iou_is_used(caplog):
    with caplog.at_level(logging.WARNING):
        parse_cfg(NET + "[yolo]\nnms_kind=cornersnms\n", "my.cfg")
    assert "my.cfg:6: [yolo] nms_kind=cornersnms is not implemented" in caplog.text


@requires_shared
@pytest.mark.parametrize("path", SHARED_CFGS, ids=lambda p: p.stem)
def test_stock_cfgs_use_only_what_we_implement(path, caplog):
    with caplog.at_level(logging.WARNING):
        read_cfg(path)
    assert "not implemented" not in caplog.text


def test_zero_stride_x_is_an_error():
    with pytest.raises(CfgError, match="stride_x=0 must be at least 1"):
        parse_cfg(NET + "[convolutional]\nstride_x=0\n")


@pytest.mark.parametrize("text, line, words", [
    ("[net]\ninputs=256\nbatch=1\n\n[connected]\noutput=8\n", 2, "[net] inputs= without"),
    ("[net]\nwidth=8\nheight=8\nchannels=1\n\n[rnn]\noutput=8\n", 6, "[rnn] makes this"),
    ("[net]\ninputs=256\n\n[gru]\noutput=8\n", 4, "[gru] makes this a text model"),
])
def test_text_models_are_refused_in_one_line(text, line, words):
    with pytest.raises(CfgError) as err:
        parse_cfg(text, "char.cfg")
    assert words in str(err.value) and f"char.cfg:{line}:" in str(err.value)
    assert "\n" not in str(err.value)
