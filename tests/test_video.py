"""``detector demo``: a video in, an annotated video out with as many frames at the same
frame rate, and each frame's detections those of detecting that frame as an image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from darknet_py import Darknet, Detector, ImageError
from darknet_py.cli import main
from darknet_py.infer.report import report_lines
from darknet_py.infer.video import VideoSource, detect_video

from .conftest import ROOT, SHARED, requires_shared

TINY_CFG = str(ROOT / "cfg" / "yolov4-tiny.cfg")
WEIGHTS = str(ROOT / "weights" / "yolov4-tiny.weights")
COCO_DATA = str(ROOT / "cfg" / "coco.data")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 6-frame, 5 fps video made of the shared photos (each shown for one frame)."""
    images = sorted((SHARED / "images").glob("*.jpg"))
    if not images:
        pytest.skip("reference data ../shared is not present")
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for image in images[:6]:
        writer.write(cv2.resize(cv2.imread(str(image)), (320, 240)))
    writer.release()
    return path


def _frames(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def test_demo_writes_every_frame_and_finds_what_test_finds(clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(["detector", "demo", COCO_DATA, TINY_CFG, WEIGHTS, str(clip), "-out_filename",
               str(out), "-dont_show", "-thresh", "0.25", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 0
    written = cv2.VideoCapture(str(out))
    assert written.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    assert len(_frames(out)) == len(_frames(clip)) == 6
    assert printed.count("AVG_FPS:") == 6 and "input video stream closed." in printed
    model = Darknet(TINY_CFG)
    model.load_weights(WEIGHTS)
    detector = Detector(model.eval())
    names = (ROOT / "cfg" / "coco.names").read_text().splitlines()
    blocks = printed.split("Objects:\n")[1:]
    for frame, block in zip(_frames(clip), blocks):
        dets = detector([frame], bgr=True)[0]
        expected = report_lines(dets, names, 0.25, False)
        assert [line for line in block.splitlines() if line.strip()][:len(expected)] == \
            expected


def test_the_api_yields_frames_in_order(clip):
    model = Darknet(TINY_CFG)
    model.load_weights(WEIGHTS)
    detector = Detector(model.eval())
    frames = list(detect_video(detector, VideoSource.open(clip), prefetch=2))
    assert [f.index for f in frames] == list(range(6))
    for f, raw in zip(frames, _frames(clip)):
        np.testing.assert_array_equal(f.bgr, raw)
        again = detector([raw], bgr=True)[0]
        assert np.array_equal(f.detections.probs.numpy(), again.probs.numpy())


def test_a_missing_video_is_one_line(tmp_path, capsys):
    with pytest.raises(ImageError, match="video file not found"):
        VideoSource.open(tmp_path / "none.mp4")
    rc = main(["detector", "demo", COCO_DATA, TINY_CFG, WEIGHTS, str(tmp_path / "none.mp4")])
    assert rc == 1 and "video file not found" in capsys.readouterr().err


@requires_shared
def test_demo_flags_are_darknets(clip, tmp_path, capsys):
    rc = main(["detector", "demo", COCO_DATA, TINY_CFG, WEIGHTS, str(clip), "-dont_show",
               "-ext_output", "-c", "0", "-s", "0", "-avgframes", "3", "-prefix", "p",
               "-json_port", "8070", "-mjpeg_port", "8090", "-benchmark", "--device", "cpu"])
    assert rc == 0
    assert "left_x:" in capsys.readouterr().out
