"""The bad-input corpus: every kind of broken file the fuzz run found, through the Python
API and the command line.  Each is a one-line error naming the file (or, for images and
labels, a named log line and the rest goes on); nothing hangs, nothing is a traceback."""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import struct
import zlib

import numpy as np
import pytest
import torch

from darknet_py import CfgError, DataError, Detector, ImageError, WeightsError
from darknet_py.cli import main
from darknet_py.io.checkpoint import checkpoint_dict, load
from darknet_py.io.data import parse_labels, read_data_cfg

from .conftest import ROOT

TINY = (ROOT / "cfg" / "yolov4-tiny.cfg").read_text()
WEIGHTS = ROOT / "weights" / "yolov4-tiny.weights"
COCO_DATA = str(ROOT / "cfg" / "coco.data")
SAMPLE = ROOT / "darknet_py" / "assets" / "astronaut.jpg"


@pytest.fixture(autouse=True)
def no_hang():
    """Fail instead of hanging (a FIFO read, an endless loop)."""
    def fail(signum, frame):
        raise TimeoutError("hung")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def sub(old: str, new: str, count: int = 1) -> str:
    assert old in TINY, old
    return TINY.replace(old, new, count)


CFG_TEXTS = {
    "empty": ("", "no sections"),
    "no net": ("[convolutional]\nfilters=3\n", "must be [net]"),
    "width huge": (sub("width=416", "width=99999999"), "width=99999999 is out of range"),
    "width zero": (sub("width=416", "width=0"), "must be set and positive"),
    "height negative": (sub("height=416", "height=-5"), "must be set and positive"),
    "channels huge": (sub("channels=3", "channels=100000"), "channels=100000 is out"),
    "batch zero": (sub("batch=64", "batch=0"), "batch=0 must be at least 1"),
    "subdivisions zero": (sub("subdivisions=1", "subdivisions=0"), "subdivisions=0"),
    "filters 1e20": (sub("filters=32", "filters=1e20"), "is out of range"),
    "filters huge": (sub("filters=32", "filters=99999999"), "filters=99999999 is out"),
    "filters zero": (sub("filters=32", "filters=0"), "filters=0 must be at least 1"),
    "filters negative": (sub("filters=32", "filters=-3"), "filters=-3 must be at least 1"),
    "filters text": (sub("filters=32", "filters=abc"), "expected an integer"),
    "size zero": (sub("size=3", "size=0"), "size=0 must be at least 1"),
    "size 1000": (sub("size=3", "size=1000"), "size=1000 is out of range"),
    "stride zero": (sub("stride=2", "stride=0"), "must be at least 1"),
    "stride_x zero": (sub("stride=2", "stride_x=0"), "stride_x=0 must be at least 1"),
    "stride_y negative": (sub("stride=2", "stride_y=-2"), "stride_y=-2 must be at least 1"),
    "negative padding": (sub("pad=1", "pad=0\npadding=-2"), "padding=-2 is out of range"),
    "groups zero": (sub("filters=32", "filters=32\ngroups=0"), "groups=0"),
    "groups uneven": (sub("filters=64\nsize=3\nstride=2", "filters=64\nsize=3\nstride=2\n"
                          "groups=5"), "not divisible by groups=5"),
    "bad activation": (sub("activation=leaky", "activation=lekay"), "expected one of"),
    "line without =": (sub("size=3", "size 3"), "key=value"),
    "empty value": (sub("size=3", "size="), "key=value"),
    "unknown section": (sub("[maxpool]", "[wobble]"), "[wobble] (layer 9) is not supported"),
    "option before section": ("size=3\n" + TINY, "before the first [section]"),
    "bad header": (sub("[maxpool]", "[maxpool"), "malformed section header"),
    "route forward": (sub("layers=-4", "layers=99"), "refers to layer 99"),
    "route far back": (sub("layers=-4", "layers=-400"), "layers=-400 refers to layer"),
    "route empty": (sub("layers=-4", "layers="), "key=value"),
    "route group_id": (sub("group_id=1", "group_id=5"), "group_id=5 must be in 0..1"),
    "route groups zero": (sub("groups=2", "groups=0"), "groups=0 must be at least 1"),
    "route size mismatch": (sub("layers=-1,23", "layers=-1,7"), "routed layers must"),
    "maxpool size zero": (sub("size=2\nstride=2", "size=0\nstride=2"), "size=0"),
    "maxpool stride huge": (sub("size=2\nstride=2", "size=2\nstride=9999"), "out of range"),
    "mask beyond anchors": (sub("mask=3,4,5", "mask=3,4,9"), "beyond the 6 anchors"),
    "mask empty": (sub("mask=3,4,5", "mask="), "key=value"),
    "anchors zero": (sub("anchors=10,14", "anchors=0,14"), "anchor value 0"),
    "anchors negative": (sub("anchors=10,14", "anchors=-10,14"), "anchor value -10"),
    "anchors huge": (sub("anchors=10,14", "anchors=1e39,14"), "anchor value 1e+39"),
    "anchors nan": (sub("anchors=10,14", "anchors=nan,14"), "anchors='nan': expected a number"),
    "classes zero": (sub("classes=80", "classes=0"), "classes=0 must be at least 1"),
    "filters vs classes": (sub("classes=80", "classes=20"), "need filters=(classes+5)*3"),
    "scale_x_y zero": (sub("scale_x_y=1.05", "scale_x_y=0"), "scale_x_y=0.0 is out"),
    "scale_x_y negative": (sub("scale_x_y=1.05", "scale_x_y=-1"), "scale_x_y=-1.0"),
    "nms_kind unknown": (sub("nms_kind=greedynms", "nms_kind=fancy"), "expected one of"),
    "iou_loss unknown": (sub("iou_loss=ciou", "iou_loss=l7"), "expected one of"),
    "policy steps mismatch": (sub("scales=.1,.1", "scales=.1"), "steps has 2 values"),
    "layer after yolo": (sub("[route]\nlayers=-4", "[maxpool]\nsize=2\nstride=2"),
                         "cannot follow a [yolo]"),
    "binary": (b"\x89PNG\r\n\x1a\n\0\0", "NUL bytes"),
    "cut mid-line": (TINY[:len(TINY) // 3], "malformed section header"),
}


def _fifo(path):
    os.mkfifo(path)
    return str(path)


def _cfg_setup(content):
    def setup(tmp_path):
        path = tmp_path / "bad.cfg"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return {"cfg": str(path)}
    return setup


def _headless_setup(tmp_path):
    """A cfg without a [yolo] head (it builds: a backbone) and weights that fit it."""
    from darknet_py import Darknet

    path = tmp_path / "backbone.cfg"
    path.write_text(TINY[:TINY.index("\n[yolo]")])
    Darknet(path).save_weights(tmp_path / "backbone.weights")
    return {"cfg": str(path), "weights": str(tmp_path / "backbone.weights")}


def _path_setup(key, make):
    return lambda tmp_path: {key: make(tmp_path)}


CASES = [(f"cfg: {name}", _cfg_setup(text), CfgError, words)
         for name, (text, words) in CFG_TEXTS.items()]
CASES += [
    ("cfg: no yolo head", _headless_setup, CfgError, "no [yolo] layer"),
    ("cfg: missing", _path_setup("cfg", lambda t: str(t / "none.cfg")), CfgError, "not found"),
    ("cfg: folder", _path_setup("cfg", lambda t: str(t)), CfgError, "is a directory"),
    ("cfg: fifo", _path_setup("cfg", lambda t: _fifo(t / "f.cfg")), CfgError,
     "not a regular file"),
    ("cfg: /dev/zero", _path_setup("cfg", lambda t: "/dev/zero"), CfgError,
     "not a regular file"),
    ("cfg: long name", _path_setup("cfg", lambda t: str(t / ("x" * 300 + ".cfg"))), CfgError,
     "cfg file"),
]


def _weights_bytes(transform):
    def setup(tmp_path):
        path = tmp_path / "bad.weights"
        path.write_bytes(transform(WEIGHTS.read_bytes()))
        return {"weights": str(path)}
    return setup


def _floats(data: bytes, value: float) -> bytes:
    header = 20  # major, minor, revision (int32), seen (int64)
    n = (len(data) - header) // 4
    return data[:header] + np.full(n, value, np.float32).tobytes()


CASES += [
    ("weights: truncated", _weights_bytes(lambda d: d[:5_000_000]), WeightsError,
     "the file has"),
    ("weights: too long", _weights_bytes(lambda d: d + b"\0" * 64), WeightsError,
     "too many"),
    ("weights: empty", _weights_bytes(lambda d: b""), WeightsError, "too short"),
    ("weights: header only", _weights_bytes(lambda d: d[:20]), WeightsError, "no weights"),
    ("weights: an image", _weights_bytes(lambda d: SAMPLE.read_bytes()), WeightsError,
     "not a Darknet .weights"),
    ("weights: all nan", _weights_bytes(lambda d: _floats(d, float("nan"))), WeightsError,
     "NaN or infinite"),
    ("weights: all inf", _weights_bytes(lambda d: _floats(d, float("inf"))), WeightsError,
     "NaN or infinite"),
    ("weights: missing", _path_setup("weights", lambda t: str(t / "none.weights")),
     WeightsError, "not found"),
    ("weights: fifo", _path_setup("weights", lambda t: _fifo(t / "w.weights")),
     WeightsError, "not a regular file"),
    ("weights: folder", _path_setup("weights", lambda t: str(t)), WeightsError,
     "is a directory"),
]


def _pt(change):
    def setup(tmp_path):
        from darknet_py import Darknet

        model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg")
        model.load_weights(WEIGHTS)
        ckpt = checkpoint_dict(model)
        change(ckpt)
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        path = tmp_path / "bad.pt"
        path.write_bytes(buf.getvalue())
        return {"pt": str(path)}
    return setup


def _nan_pt(ckpt):
    for v in ckpt["state_dict"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))


CASES += [
    ("pt: no cfg", _pt(lambda c: c.pop("cfg")), WeightsError, "no 'cfg' entry"),
    ("pt: no state_dict", _pt(lambda c: c.pop("state_dict")), WeightsError,
     "no 'state_dict'"),
    ("pt: no header", _pt(lambda c: c.pop("header")), WeightsError, "no 'header'"),
    ("pt: cfg a number", _pt(lambda c: c.update(cfg=3)), WeightsError, "'cfg' is a int"),
    ("pt: header a list", _pt(lambda c: c.update(header=[1, 2])), WeightsError,
     "'header' is a list"),
    ("pt: header keys", _pt(lambda c: c.update(header={"seen": "x"})), WeightsError,
     "header"),
    ("pt: names numbers", _pt(lambda c: c.update(names=[1, 2])), WeightsError,
     "names are not all text"),
    ("pt: width text", _pt(lambda c: c.update(width="wide")), WeightsError,
     "'width' is a str"),
    ("pt: a non-tensor", _pt(lambda c: c["state_dict"].update(x=3)), WeightsError,
     "is not a tensor"),
    ("pt: nan weights", _pt(_nan_pt), WeightsError, "NaN or infinite"),
    ("pt: random bytes", _path_setup("pt", lambda t: _bytes(t / "r.pt", os.urandom(999))),
     WeightsError, "not a readable PyTorch checkpoint"),
    ("pt: missing", _path_setup("pt", lambda t: str(t / "none.pt")), WeightsError,
     "not found"),
]


def _bytes(path, data):
    path.write_bytes(data)
    return str(path)


def _png_header(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


CASES += [
    ("image: missing", _path_setup("image", lambda t: str(t / "none.jpg")), ImageError,
     "image file not found"),
    ("image: text", _path_setup("image", lambda t: _bytes(t / "a.jpg", b"hello")),
     ImageError, "cannot decode"),
    ("image: empty", _path_setup("image", lambda t: _bytes(t / "a.jpg", b"")), ImageError,
     "cannot decode"),
    ("image: truncated jpeg", _path_setup("image", lambda t: _bytes(
        t / "a.jpg", SAMPLE.read_bytes()[:400])), ImageError, "cannot decode"),
    ("image: jpeg magic only", _path_setup("image", lambda t: _bytes(
        t / "a.jpg", b"\xff\xd8\xff" + b"junk" * 20)), ImageError, "cannot decode"),
    ("image: 25000x25000 png", _path_setup("image", lambda t: _bytes(
        t / "a.png", _png_header(25000, 25000))), ImageError, "25000x25000 pixels"),
    ("image: broken png", _path_setup("image", lambda t: _bytes(
        t / "a.png", _png_header(64, 64))), ImageError, "cannot decode"),
    ("image: fifo", _path_setup("image", lambda t: _fifo(t / "f.jpg")), ImageError,
     "not a regular file"),
    ("image: folder", _path_setup("image", lambda t: str(t)), ImageError, "is a directory"),
]


def _data(text, names=None):
    def setup(tmp_path):
        if names is not None:
            (tmp_path / "my.names").write_text(names)
        return {"data": _bytes(tmp_path / "my.data", text.encode())}
    return setup


COCO_NAMES = (ROOT / "cfg" / "coco.names").read_text()
CASES += [
    ("data: missing", _path_setup("data", lambda t: str(t / "none.data")), DataError,
     ".data file not found"),
    ("data: no names file", _data("classes=80\n"), DataError, "names file not found"),
    ("data: empty names", _data("classes=80\nnames=my.names\n", ""), DataError,
     "names file is empty"),
    ("data: malformed", _data("classes 80\n"), DataError, "expected key = value"),
    ("data: classes zero", _data("classes=0\nnames=my.names\n", COCO_NAMES), DataError,
     "classes='0' must be a whole number"),
    ("data: classes negative", _data("classes=-3\nnames=my.names\n", COCO_NAMES), DataError,
     "classes='-3'"),
    ("data: classes text", _data("classes=many\nnames=my.names\n", COCO_NAMES), DataError,
     "classes='many'"),
    ("data: names too few", _data("classes=80\nnames=my.names\n", "a\nb\n"), DataError,
     "2 names, but"),
    ("data: names fifo", lambda t: {"data": _bytes(
        t / "my.data", f"classes=80\nnames={_fifo(t / 'n.names')}\n".encode())},
     DataError, "not a regular file"),
    ("data: fifo", _path_setup("data", lambda t: _fifo(t / "d.data")), DataError,
     "not a regular file"),
]


@pytest.mark.parametrize("name, setup, error, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(name, setup, error, words, tmp_path, capsys, caplog,
                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = {"data": COCO_DATA, "cfg": str(ROOT / "cfg" / "yolov4-tiny.cfg"),
            "weights": str(WEIGHTS), "image": str(SAMPLE), "pt": None}
    args.update(setup(tmp_path))
    with pytest.raises(error) as info:  # the Python API raises the documented type
        names = read_data_cfg(args["data"]).names()
        model = load(args["pt"]) if args["pt"] else load(args["weights"], args["cfg"])
        read_data_cfg(args["data"]).names(model.num_classes)
        assert names
        Detector(model)([args["image"]])
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    model_args = [args["pt"]] if args["pt"] else [args["cfg"], args["weights"]]
    rc = main(["detector", "test", args["data"], *model_args, args["image"],
               "--output-image", "", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if error is ImageError:  # reported and skipped; the exit status says so (as cp's)
        logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert rc == 1 and any(words in m and m.endswith("skipped") for m in logged)
        return
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and words in lines[0], err


LABELS = {
    "arabic-indic digits": "٠ 0.5 0.5 0.2 0.2",
    "underscores": "0 0.5_0 0.5 0.2 0.2",
    "six fields": "0 0.5 0.5 0.2 0.2 7",
    "class beyond": "80 0.5 0.5 0.2 0.2",
    "negative class": "-1 0.5 0.5 0.2 0.2",
    "outside the image": "0 1.5 0.5 0.2 0.2",
    "zero size": "0 0.5 0.5 0 0.2",
    "text": "person 0.5 0.5 0.2 0.2",
    "nan": "0 nan 0.5 0.2 0.2",
}


@pytest.mark.parametrize("name", list(LABELS))
def test_bad_labels_are_named_and_skipped(name, caplog):
    with caplog.at_level(logging.WARNING):
        rows = parse_labels(f"{LABELS[name]}\n1 0.5 0.5 0.1 0.1\n", "img.txt", 80)
    np.testing.assert_allclose(rows, [[1, 0.5, 0.5, 0.1, 0.1]], rtol=1e-6)
    assert any(re.match(r"img\.txt:1: skipped label", r.getMessage()) for r in caplog.records)


def test_a_fifo_label_file_is_an_error_not_a_hang(tmp_path):
    from darknet_py.io.data import read_labels

    image = tmp_path / "images" / "a.jpg"
    image.parent.mkdir()
    image.write_bytes(SAMPLE.read_bytes())
    (tmp_path / "labels").mkdir()
    _fifo(tmp_path / "labels" / "a.txt")
    with pytest.raises(DataError, match="not a regular file"):
        read_labels([str(image)], 80)
