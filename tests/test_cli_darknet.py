"""Darknet's command line as Darknet users type it: every flag on every detector command,
flags that are words, the default device, .pt in the CFG slot, labels as Darknet writes
them, bad images skipped, names that do not fit, partial weights, plain results."""

from __future__ import annotations

import json
import logging
import shutil

import cv2
import numpy as np
import pytest
import torch

from darknet_py import Darknet, Detector, ImageError
from darknet_py.cli import main
from darknet_py.cli.flags import SWITCHES, VALUE_FLAGS, darknet_argv
from darknet_py.cli.options import device_name
from darknet_py.image import load_rgb8
from darknet_py.io.checkpoint import save

from .conftest import ROOT, SHARED, requires_shared

TINY_CFG = str(ROOT / "cfg" / "yolov4-tiny.cfg")
WEIGHTS = str(ROOT / "weights" / "yolov4-tiny.weights")
SAMPLE = str(ROOT / "darknet_py" / "assets" / "astronaut.jpg")
VALUES = {"-thresh": "0.3", "-iou_thresh": "0.5", "-hier": "0.5", "-points": "0", "-c": "0",
          "-s": "0", "-num_of_clusters": "2", "-width": "64", "-height": "64",
          "-out": "out.json", "-out_filename": "out.mp4", "-prefix": "p", "-gpus": "0",
          "-i": "0", "-chart": "chart.png", "-mjpeg_port": "8090", "-json_port": "8070",
          "-avgframes": "3", "-http_post_host": "host", "-time_limit_sec": "5",
          "-mAP_epochs": "4", "-nms": "0.45"}


def every_flag(skip=()) -> list[str]:
    out = [s for s in sorted(SWITCHES) if s not in skip]
    for flag in sorted(VALUE_FLAGS):
        if flag not in skip:
            out += [flag, VALUES[flag]]
    return out


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A .data with a two-image list (the sample twice) and COCO names, in a temp folder."""
    monkeypatch.chdir(tmp_path)
    for k in range(2):
        shutil.copy(SAMPLE, tmp_path / f"im{k}.jpg")
        (tmp_path / f"im{k}.txt").write_text("0 0.5 0.5 0.8 0.9\n")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'im0.jpg'}\n{tmp_path / 'im1.jpg'}\n")
    (tmp_path / "t.data").write_text(
        f"classes=80\ntrain=list.txt\nvalid=list.txt\nnames={ROOT / 'cfg' / 'coco.names'}\n"
        f"backup=backup\nresults=results\n")
    return tmp_path


def test_every_value_flag_has_a_test_value():
    assert set(VALUES) == set(VALUE_FLAGS)


def test_words_are_never_split_into_letters():
    argv = darknet_argv(["detector", "test", "a.data", "a.cfg", "a.weights", "x.jpg",
                         "-hier", "0.5", "-iou_thresh", "0.4", "-thresh", "0.3"])
    assert argv == ["detector", "test", "a.data", "a.cfg", "a.weights", "x.jpg",
                    "--thresh", "0.3"]
    assert darknet_argv(["detector", "map", "d", "c", "w", "-iou_thresh", "0.4"])[-2:] == \
        ["--iou-thresh", "0.4"]


@pytest.mark.parametrize("argv", [["detector", "test", "d", "c", "w", "-hier"],
                                  ["detector", "map", "d", "c", "w", "-bogus_flag"]])
def test_flag_mistakes_are_one_line(argv, capsys):
    rc, _out, err = run(argv, capsys)
    assert rc == 2 and ("needs a value" in err or "unknown flag -bogus_flag" in err)


def test_detector_test_takes_every_darknet_flag(data_dir, capsys):
    argv = ["detector", "test", "t.data", TINY_CFG, WEIGHTS, "im0.jpg",
            *every_flag(skip={"-gpus"}), "--device", "cpu", "--output-image", ""]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    assert "person: " in out and json.loads((data_dir / "out.json").read_text())
    labels = (data_dir / "im0.txt").read_text().splitlines()  # -save_labels, Darknet's format
    assert len(labels) == 1 and labels[0].startswith("0 0.")
    assert all(len(v.split(".")[1]) == 4 for v in labels[0].split()[1:])


@pytest.mark.parametrize("command", ["map", "valid", "recall"])
def test_map_valid_and_recall_take_every_darknet_flag(data_dir, command, capsys):
    argv = ["detector", command, "t.data", TINY_CFG, WEIGHTS,
            *every_flag(skip={"-gpus"}), "--device", "cpu"]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    expected = {"map": "mean average precision", "valid": "2 images", "recall": "Recall:"}
    assert expected[command] in out + err


def test_calc_anchors_takes_every_darknet_flag(data_dir, capsys):
    rc, out, err = run(["detector", "calc_anchors", "t.data", *every_flag(skip={"-gpus"})],
                       capsys)
    assert rc == 0, err
    assert "anchors = " in out


def test_train_reads_darknet_flags():
    argv = darknet_argv(["detector", "train", "t.data", "c.cfg", *every_flag()])
    assert argv[:4] == ["detector", "train", "t.data", "c.cfg"]
    for posix in ("--dont-show", "--map", "--clear", "--gpus", "--chart", "--map-epochs",
                  "--thresh", "--iou-thresh"):  # -thresh and -iou_thresh: the -map report's
        assert posix in argv
    assert "-hier" not in argv and "-points" not in argv


def test_gpus_without_a_gpu_names_what_was_typed(data_dir, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, _out, err = run(["detector", "train", "t.data", TINY_CFG, "-gpus", "0"], capsys)
    assert rc == 2 and "-gpus 0 asks for a CUDA GPU" in err and "--device cuda" not in err


def test_the_default_device_is_cuda_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_name(None, None) == "cuda" and device_name(None, 1) == "cuda:1"
    assert device_name("cpu", 1) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_name(None, 1) == "cpu"


def test_a_checkpoint_stands_in_for_cfg_and_weights(data_dir, capsys):
    model = Darknet(TINY_CFG)
    model.load_weights(WEIGHTS)
    save(model, data_dir / "m.pt")
    rc, out, err = run(["detector", "test", "t.data", "m.pt", "im0.jpg", "--device", "cpu",
                        "--output-image", ""], capsys)
    assert rc == 0, err
    assert "person: " in out
    rc, out, err = run(["detector", "map", "t.data", "m.pt", "--device", "cpu"], capsys)
    assert rc == 0 and "mean average precision" in out, err


def test_a_bad_image_is_reported_and_skipped(data_dir, capsys, caplog):
    (data_dir / "bad.jpg").write_bytes(b"not a jpeg")
    rc, out, err = run(["detector", "test", "t.data", TINY_CFG, WEIGHTS, "bad.jpg", "im0.jpg",
                        "gone.jpg", "im1.jpg", "-out", "r.json", "--device", "cpu",
                        "--output-image", ""], capsys)
    assert rc == 1, err  # the rest is processed and written, and the status says it
    frames = json.loads((data_dir / "r.json").read_text())
    assert [f["filename"] for f in frames] == ["im0.jpg", "im1.jpg"]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 and "bad.jpg" in skipped[0] and "gone.jpg" in skipped[1]
    shutil.copy(data_dir / "bad.jpg", data_dir / "im1.jpg")  # map goes on without it
    rc, out, err = run(["detector", "map", "t.data", TINY_CFG, WEIGHTS, "--device", "cpu"],
                       capsys)
    assert rc == 1 and "mean average precision" in out, err
    (data_dir / "im1.jpg").unlink()
    shutil.copy(data_dir / "im0.jpg", data_dir / "im1.jpg")
    rc, out, err = run(["detector", "map", "t.data", TINY_CFG, WEIGHTS, "--device", "cpu"],
                       capsys)
    assert rc == 0, err  # nothing skipped


def test_names_that_do_not_fit_the_cfg_are_an_error(data_dir, capsys):
    (data_dir / "five.names").write_text("a\nb\nc\nd\ne\n")
    text = (data_dir / "t.data").read_text().replace(str(ROOT / "cfg" / "coco.names"),
                                                     "five.names")
    (data_dir / "t.data").write_text(text)
    rc, _out, err = run(["detector", "test", "t.data", TINY_CFG, WEIGHTS, "im0.jpg"], capsys)
    assert rc == 1 and "five.names: 5 names, but" in err and "classes=80" in err


def test_partial_weights_at_inference_are_a_warning(tmp_path, caplog):
    from darknet_py.io.checkpoint import load
    from darknet_py.nn.weights import save_partial

    model = Darknet(TINY_CFG)
    model.load_weights(WEIGHTS)
    save_partial(model, tmp_path / "tiny.conv.29", 29)
    with caplog.at_level(logging.WARNING):
        load(tmp_path / "tiny.conv.29", TINY_CFG)
    assert any("partial weights: layers 0..28" in r.getMessage() for r in caplog.records)


def test_detector_takes_bgr_uint8_and_says_what_is_wrong():
    model = Darknet(TINY_CFG)
    model.load_weights(WEIGHTS)
    detector = Detector(model.eval(), names=["person"] + [str(k) for k in range(1, 80)])
    bgr = np.ascontiguousarray(load_rgb8(SAMPLE)[..., ::-1])  # the same pixels, as BGR
    from_path = detector.results([SAMPLE])[0]
    from_array = detector.results([bgr], bgr=True)[0]
    assert from_path.names == from_array.names == ["person"]
    np.testing.assert_array_equal(from_array.boxes, from_path.boxes)
    from_cv2 = detector.results([cv2.imread(SAMPLE)], bgr=True)[0]  # libjpeg's pixels
    np.testing.assert_allclose(from_cv2.boxes, from_path.boxes, atol=0.5)
    x1, y1, x2, y2 = from_path.boxes[0]
    assert x2 > x1 > 0 and y2 > y1 and from_path.scores[0] > 0.5
    assert [name for *_, name in from_path] == ["person"]
    for bad, words in [(bgr.astype(np.float32), "outside [0, 1]"),
                       (bgr[..., :2], "H x W x 3"), (bgr.astype(np.int32), "dtype int32")]:
        with pytest.raises(ImageError, match=words.replace("[", r"\[").replace("]", r"\]")):
            detector([bad])


@requires_shared
def test_darknet_script_flags_on_the_real_image(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(["detector", "test", str(ROOT / "cfg" / "coco.data"), TINY_CFG, WEIGHTS,
                        "-dont_show", "-ext_output", "-hier", "0.5", "-benchmark",
                        str(SHARED / "images" / "bus.jpg"), "-thresh", "0.25",
                        "--output-image", ""], capsys)
    assert rc == 0, err
    assert [line.split(":")[0] for line in out.splitlines()[1:]] == \
        ["bus", "truck", "person", "person", "skateboard", "person"]


@requires_shared
def test_detector_train_takes_every_darknet_flag(tmp_path, monkeypatch, capsys):
    from .test_train import _setup

    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=1)
    rc, out, err = run(["detector", "train", str(data), str(cfg), *every_flag(skip={"-gpus"}),
                        "--workers", "0", "--device", "cpu"], capsys)
    assert rc == 0, err
    assert (tmp_path / "backup" / "tiny_final.weights").exists()
    assert (tmp_path / "chart.png").exists()  # -chart chart.png
    shown = sorted(p.name for p in tmp_path.glob("aug_*.jpg"))  # -show_imgs: 2 x 2 images
    assert shown == ["aug_0_0.jpg", "aug_0_1.jpg", "aug_1_0.jpg", "aug_1_1.jpg"]


@requires_shared
def test_a_bad_training_image_is_darknets_blank_image(tmp_path, caplog):
    from darknet_py.train.dataset import Augment, DetectionDataset

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    model = Darknet(TINY_CFG)
    dataset = DetectionDataset([str(bad)], 80, Augment.from_model(model))
    image, labels = dataset[0, 64, 64, 0]
    assert image.shape == (3, 64, 64) and labels.shape == (0, 5) and any("blank image" in r.getMessage()
                                          for r in caplog.records)


@requires_shared
def test_train_goes_on_from_a_checkpoint_in_the_cfg_slot(tmp_path, monkeypatch, capsys):
    from .test_train import _setup

    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=1)
    model = Darknet(cfg)
    model.load_weights(WEIGHTS)
    save(model, tmp_path / "start.pt")
    rc, out, err = run(["detector", "train", str(data), "start.pt", "--max-batches", "2",
                        "--workers", "0", "--device", "cpu", "--chart", ""], capsys)
    assert rc == 0, err
    assert (tmp_path / "backup" / "start_final.weights").exists()
