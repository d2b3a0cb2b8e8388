"""The command line: Darknet's output and flags, and one-line errors for bad input."""

from __future__ import annotations

import io
import json
import shutil
import sys

import pytest

from darknet_py import CfgError, DataError, ImageError, WeightsError
from darknet_py.cli import load_model, main
from darknet_py.data import read_data_cfg
from darknet_py.detect import Detector

from .conftest import ROOT, SHARED, requires_shared

TINY_CFG = str(ROOT / "cfg" / "yolov4-tiny.cfg")
COCO_DATA = str(ROOT / "cfg" / "coco.data")
WEIGHTS = str(ROOT / "weights" / "yolov4-tiny.weights")
BUS = str(SHARED / "images" / "bus.jpg")


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@requires_shared
def test_detector_test_prints_darknet_lines(capsys, tmp_path):
    out_json = tmp_path / "result.json"
    image = tmp_path / "predictions.jpg"
    rc, out, err = run(["detector", "test", COCO_DATA, TINY_CFG, WEIGHTS, BUS, "-thresh", "0.25",
                        "-ext_output", "-dont_show", "-out", str(out_json), "--output-image",
                        str(image)], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{BUS}: Predicted in ")
    assert [line.split(":")[0] for line in lines[1:]] == \
        ["bus", "truck", "person", "person", "skateboard", "person"]
    assert lines[3].startswith("person: 99%\t(left_x:   53   top_y:  389   width:  168")
    frames = json.loads(out_json.read_text())
    assert frames[0]["frame_id"] == 1 and frames[0]["filename"] == BUS
    obj = frames[0]["objects"][0]
    assert set(obj) == {"class_id", "name", "relative_coordinates", "confidence"}
    assert obj["name"] == "skateboard"  # Darknet's post-NMS order
    assert image.stat().st_size > 10000


@requires_shared
def test_posix_spelling_and_stdin(capsys, tmp_path, monkeypatch):
    darknet = run(["detector", "test", COCO_DATA, TINY_CFG, WEIGHTS, BUS, "-thresh", "0.5",
                   "-ext_output", "--output-image", ""], capsys)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{BUS}\n\n"))
    posix = run(["detector", "test", COCO_DATA, TINY_CFG, WEIGHTS, "--thresh", "0.5",
                 "--ext-output", "--output-image", ""], capsys)
    strip = [line for line in darknet[1].splitlines() if "Predicted" not in line]
    assert darknet[0] == posix[0] == 0
    assert strip == [line for line in posix[1].splitlines() if "Predicted" not in line]
    assert len(strip) == 4


@requires_shared
def test_save_labels(capsys, tmp_path):
    image = tmp_path / "bus.jpg"
    shutil.copy(BUS, image)
    rc, _out, _err = run(["detect", str(image), "-save_labels", "--output-image", ""], capsys)
    assert rc == 0
    labels = (tmp_path / "bus.txt").read_text().splitlines()
    assert len(labels) == 6 and labels[0].split()[0] in {"0", "5", "7", "36"}


def test_detect_runs_on_embedded_sample(capsys, tmp_path):
    rc, out, err = run(["detect", "--output-image", str(tmp_path / "p.jpg")], capsys)
    assert rc == 0, err
    assert "astronaut.jpg: Predicted in" in out and "person: " in out


# --------------------------------------------------------------------------- bad input

def _tiny_text() -> str:
    return (ROOT / "cfg" / "yolov4-tiny.cfg").read_text()


def _write(tmp_path, name, data):
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data)
    return str(p)


def _cfg_case(text):
    def setup(tmp_path):
        return {"cfg": _write(tmp_path, "bad.cfg", text)}
    return setup


def _weights_case(data_fn):
    def setup(tmp_path):
        return {"weights": _write(tmp_path, "bad.weights", data_fn())}
    return setup


def _image_case(data):
    def setup(tmp_path):
        return {"image": _write(tmp_path, "bad.jpg", data) if data is not None
                else str(tmp_path / "missing.jpg")}
    return setup


def _data_case(text, names=None):
    def setup(tmp_path):
        if names is not None:
            _write(tmp_path, "my.names", names)
        return {"data": _write(tmp_path, "my.data", text) if text is not None
                else str(tmp_path / "missing.data")}
    return setup


def _real_weights() -> bytes:
    return (ROOT / "weights" / "yolov4-tiny.weights").read_bytes()


TINY = _tiny_text()
CASES = [
    ("empty cfg", _cfg_case(""), CfgError, "no sections"),
    ("no net", _cfg_case("[convolutional]\nfilters=3\n"), CfgError, "must be [net]"),
    ("unknown section", _cfg_case(TINY.replace("[maxpool]", "[wobble]", 1)), CfgError,
     "[wobble] (layer 9) is not supported"),
    ("bad integer", _cfg_case(TINY.replace("filters=32", "filters=3x2", 1)), CfgError,
     "expected an integer"),
    ("bad activation", _cfg_case(TINY.replace("activation=leaky", "activation=lekay", 1)),
     CfgError, "expected one of"),
    ("line without =", _cfg_case(TINY.replace("size=3", "size 3", 1)), CfgError, "key=value"),
    ("mask beyond anchors", _cfg_case(TINY.replace("mask=3,4,5", "mask=3,4,9", 1)),
     CfgError, "beyond the 6 anchors"),
    ("filters vs classes", _cfg_case(TINY.replace("classes=80", "classes=20", 1)), CfgError,
     "need filters=(classes+5)*3=75"),
    ("route forward", _cfg_case(TINY.replace("layers=-4", "layers=99", 1)), CfgError,
     "refers to layer 99"),
    ("truncated cfg", _cfg_case(TINY[: TINY.rindex("\n", 0, len(TINY) // 3) + 1]), CfgError,
     "no [yolo] layer"),
    ("cut mid-line", _cfg_case(TINY[: len(TINY) // 3]), CfgError, "malformed section header"),
    ("binary cfg", _cfg_case(b"\x89PNG\r\n\x1a\n\0\0"), CfgError, "NUL bytes"),
    ("missing cfg", lambda tmp: {"cfg": str(tmp / "missing.cfg")}, CfgError, "not found"),
    ("missing weights", lambda tmp: {"weights": str(tmp / "missing.weights")}, WeightsError,
     "not found"),
    ("truncated weights", _weights_case(lambda: _real_weights()[:5_000_000]), WeightsError,
     "expects 6062814 floats, the file has 1249995"),
    ("weights too long", _weights_case(lambda: _real_weights() + b"\0" * 64), WeightsError,
     "16 too many"),
    ("empty weights", _weights_case(lambda: b""), WeightsError, "too short"),
    ("header-only weights", _weights_case(lambda: _real_weights()[:20]), WeightsError,
     "holds no weights"),
    ("image as weights", _weights_case(lambda: (ROOT / "darknet_py" / "assets" /
                                                "astronaut.jpg").read_bytes()),
     WeightsError, "not a Darknet .weights file"),
    ("missing image", _image_case(None), ImageError, "image file not found"),
    ("text as image", _image_case("hello, not a jpeg"), ImageError, "cannot decode"),
    ("empty image", _image_case(b""), ImageError, "cannot decode"),
    ("truncated jpeg", _image_case((ROOT / "darknet_py" / "assets" / "astronaut.jpg")
                                   .read_bytes()[:400]), ImageError, "cannot decode"),
    ("missing data", _data_case(None), DataError, ".data file not found"),
    ("data without names", _data_case("classes=80\n"), DataError, "names file not found"),
    ("empty names", _data_case("classes=80\nnames=my.names\n", names=""), DataError,
     "names file is empty"),
    ("malformed data", _data_case("classes 80\n"), DataError, "expected key = value"),
]


@pytest.mark.parametrize("name, setup, error, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(name, setup, error, words, tmp_path, capsys,
                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = {"data": COCO_DATA, "cfg": TINY_CFG, "weights": WEIGHTS,
            "image": str(ROOT / "darknet_py" / "assets" / "astronaut.jpg")}
    args.update(setup(tmp_path))
    # the Python API raises the documented type
    with pytest.raises(error) as info:
        read_data_cfg(args["data"]).names()
        Detector(load_model(args["cfg"], args["weights"]))([args["image"]])
    assert words in str(info.value)
    # the CLI prints one line and exits non-zero
    rc, out, err = run(["detector", "test", args["data"], args["cfg"], args["weights"],
                        args["image"], "--output-image", ""], capsys)
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("darknet-py: error: ") and words in lines[0]


def test_usage_error_exits_2(capsys):
    rc, _out, err = run(["detector", "test"], capsys)
    assert rc == 2 and "Missing argument" in err
