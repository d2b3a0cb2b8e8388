"""The command line: Darknet's output and flags, and one-line errors for bad input."""

from __future__ import annotations

import io
import json
import shutil
import sys

import pytest

from darknet_py import CfgError, DataError, ImageError, WeightsError, assets
from darknet_py.cli import main
from darknet_py.infer.detector import Detector
from darknet_py.io.checkpoint import load
from darknet_py.io.data import read_data_cfg

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
    # one line per box, its best class (the bus/truck box is a bus), %2.4f numbers
    assert sorted(line.split()[0] for line in labels) == ["0", "0", "0", "36", "5"]
    assert all(len(v) == 6 for line in labels for v in line.split()[1:])


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
    ("truncated cfg", _cfg_case(TINY[: TINY.rindex("\n", 0, len(TINY) // 3) + 1]),
     WeightsError, "too many"),  # it builds (a backbone), so the weights do not fit
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
                                        monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    args = {"data": COCO_DATA, "cfg": TINY_CFG, "weights": WEIGHTS,
            "image": str(ROOT / "darknet_py" / "assets" / "astronaut.jpg")}
    args.update(setup(tmp_path))
    # the Python API raises the documented type
    with pytest.raises(error) as info:
        read_data_cfg(args["data"]).names()
        Detector(load(args["weights"], args["cfg"]))([args["image"]])
    assert words in str(info.value)
    # the CLI prints one line and exits non-zero
    rc, out, err = run(["detector", "test", args["data"], args["cfg"], args["weights"],
                        args["image"], "--output-image", ""], capsys)
    assert "Traceback" not in err
    if error is ImageError:  # reported and skipped, as Darknet goes on to the next image;
        assert rc == 1  # the exit status says that an input was skipped, as cp's does
        logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(logged) == 1 and words in logged[0] and logged[0].endswith("skipped")
        return
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("darknet-py: error: ") and words in lines[0]


def test_usage_error_exits_2(capsys):
    rc, _out, err = run(["detector", "test"], capsys)
    assert rc == 2 and "Missing argument" in err


# --------------------------------------------------------------------------- evaluation, conversion

COCO_NAMES = str(ROOT / "cfg" / "coco.names")


def _coco8(tmp_path, coco128_list, extra=""):
    """A .data file over the first 8 coco128 images."""
    images = coco128_list.read_text().splitlines()[:8]
    lst = _write(tmp_path, "coco8.txt", "".join(f"{p}\n" for p in images))
    return _write(tmp_path, "coco8.data", f"classes = 80\ntrain = {lst}\nvalid = {lst}\n"
                  f"names = {COCO_NAMES}\nresults = {tmp_path / 'results'}\n{extra}")


@requires_shared
def test_detector_map_prints_darknets_report(capsys, tmp_path, coco128_list):
    from darknet_py.eval.map import evaluate_map

    data = _coco8(tmp_path, coco128_list)
    rc, out, err = run(["detector", "map", data, TINY_CFG, WEIGHTS, "-points", "101"], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    expected = evaluate_map(load(WEIGHTS, TINY_CFG),
                            coco128_list.read_text().splitlines()[:8], points=101)
    assert lines[0] == ("labels: 8 of 8 images have a label file (8 by Darknet's rule "
                        "(AlexeyAB replace_image_to_label))")
    assert lines[2] == " calculation mAP (mean average precision)..."
    assert lines[3:] == expected.report(read_data_cfg(data).names())
    assert lines[-2] == " IoU threshold = 50 %, used 101 Recall-points "
    assert "Total Detection Time" in err


@requires_shared
def test_detector_valid_then_eval_coco(capsys, tmp_path, coco128_list):
    data = _coco8(tmp_path, coco128_list, "eval = coco\n")
    rc, out, err = run(["detector", "valid", data, TINY_CFG, WEIGHTS], capsys)
    assert rc == 0, err
    results = tmp_path / "results" / "coco_results.json"
    assert len(json.loads(results.read_text())) > 100
    rc, out, err = run(["eval", "coco", str(results), "--gt", str(tmp_path / "coco8.txt")],
                       capsys)
    assert rc == 0, err
    assert len(out.splitlines()) == 12 and "maxDets=100 ] = 0." in out


@requires_shared
def test_calc_anchors_partial_and_convert(capsys, tmp_path, coco128_list, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _coco8(tmp_path, coco128_list)
    rc, out, err = run(["detector", "calc_anchors", data, "-num_of_clusters", "3", "-width",
                        "416", "-height", "416", "-show"], capsys)
    assert rc == 0, err
    anchors = (tmp_path / "anchors.txt").read_text().rstrip("\n")
    assert f"anchors = {anchors}" in out and len(anchors.split(",")) == 6
    assert "avg IoU = " in out and (tmp_path / "cloud.png").stat().st_size > 1000

    rc, out, err = run(["partial", TINY_CFG, WEIGHTS, "tiny.conv.29", "29"], capsys)
    assert rc == 0, err
    assert (tmp_path / "tiny.conv.29").stat().st_size == 20 + 4 * 4947424

    rc, out, err = run(["convert", "--cfg", TINY_CFG, WEIGHTS, "m.pt", "--names", COCO_NAMES],
                       capsys)
    assert rc == 0, err
    rc, out, err = run(["convert", "m.pt", "back.weights"], capsys)
    assert rc == 0, err
    assert (tmp_path / "back.weights").read_bytes() == (ROOT / "weights" /
                                                        "yolov4-tiny.weights").read_bytes()
    # a .pt checkpoint stands in for CFG + WEIGHTS
    rc, out, err = run(["detector", "test", COCO_DATA, "ignored.cfg", "m.pt", BUS,
                        "--output-image", ""], capsys)
    assert rc == 0, err
    assert out.splitlines()[1].startswith("bus: ")


def _list_case(lines, data_extra=""):
    def setup(tmp_path):
        lst = _write(tmp_path, "list.txt", "".join(f"{x}\n" for x in lines))
        return _write(tmp_path, "my.data", f"classes = 80\nvalid = {lst}\nnames = "
                      f"{COCO_NAMES}\n{data_extra}")
    return setup


EVAL_CASES = [
    ("data without lists", lambda tmp: _write(tmp, "my.data", f"names = {COCO_NAMES}\n"),
     "no valid= or train= line"),
    ("empty valid list", _list_case([]), "image list is empty"),
    ("missing image in list", _list_case([str(assets.SAMPLE_IMAGE), "nope.jpg"]),
     "list.txt:2: image nope.jpg not found"),
    ("missing valid list", lambda tmp: _write(tmp, "my.data", "valid = gone.txt\n"),
     "gone.txt: image list not found"),
]


@pytest.mark.parametrize("command", ["map", "valid"])
@pytest.mark.parametrize("name, setup, words", EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_bad_evaluation_input_gives_one_line_error(command, name, setup, words, tmp_path,
                                                   capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(["detector", command, setup(tmp_path), TINY_CFG, WEIGHTS], capsys)
    assert rc == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("darknet-py: error: ") and words in lines[0]


@pytest.mark.parametrize("argv, code, words", [
    (["eval", "coco", "missing.json", "--gt", "gt.json"], 1, "missing.json: results file not"),
    (["eval", "coco", "res.json", "--gt", "other.json"], 1, "do not match"),
    (["convert", WEIGHTS, "out.pt"], 2, "a .weights SRC needs --cfg"),
    (["convert", "--cfg", TINY_CFG, WEIGHTS, "out.bin"], 2, "DST must end in .pt or .weights"),
    (["convert", "missing.pt", "out.weights"], 1, "missing.pt: checkpoint file not found"),
    (["partial", TINY_CFG, WEIGHTS, "out.weights", "0"], 1, "layer count must be 1..38"),
    (["detector", "calc_anchors", COCO_DATA, "-width", "416"], 2, "Missing option"),
])
def test_bad_command_input_gives_a_clear_error(argv, code, words, tmp_path, capsys,
                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "res.json").write_text(json.dumps(
        [{"image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    (tmp_path / "other.json").write_text(json.dumps(
        {"images": [{"id": 1, "width": 4, "height": 4}], "annotations": [],
         "categories": [{"id": 1, "name": "person"}]}))
    rc, out, err = run(argv, capsys)
    assert rc == code and "Traceback" not in err
    assert words in err


@pytest.mark.parametrize("data_text, words", [
    ("classes=80\n", "no train= line"),
    ("classes=80\ntrain=list.txt\n", "list.txt:1: image gone.jpg not found"),
])
def test_bad_training_input_gives_one_line_error(data_text, words, tmp_path, capsys,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("gone.jpg\n")
    data = _write(tmp_path, "t.data", data_text)
    rc, out, err = run(["detector", "train", data, TINY_CFG, "--max-batches", "1"], capsys)
    assert rc == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]


def test_training_with_adam_is_refused_with_its_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text(f"{assets.SAMPLE_IMAGE}\n")
    data = _write(tmp_path, "t.data", "classes=80\ntrain=list.txt\n")
    text = open(TINY_CFG).read().replace("[net]\n", "[net]\nadam=1\n", 1)
    cfg = _write(tmp_path, "adam.cfg", text)
    line = text.splitlines().index("adam=1") + 1
    rc, out, err = run(["detector", "train", data, cfg, "--max-batches", "1"], capsys)
    assert rc == 1 and "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("darknet-py:")]
    assert len(lines) == 1 and f"adam.cfg:{line}: [net] adam=1: Darknet's Adam" in lines[0]
