"""``detect``, ``detector test`` and ``detector demo``: print Darknet's lines, draw, write
labels, JSON and video."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import click
import cv2

from .. import assets
from ..image.decode import DEFAULT_DECODER
from ..infer.detector import Detector, DetectorConfig, detect_images
from ..infer.report import draw_detections, json_frame, report_lines, write_json, yolo_label_lines
from ..io.checkpoint import load
from ..io.data import read_data_cfg, read_names
from ..nn.model import Darknet
from .app import cli, detector
from .options import detect_options, device_name, image_paths, load_model


def make_detector(model: Darknet, thresh: float, nms_thresh: float, letter_box: bool | None,
                  device: str | None, gpu_index: int | None, half: bool,
                  decoder: str = DEFAULT_DECODER) -> Detector:
    """The ``Detector`` the detect options ask for."""
    config = DetectorConfig(thresh=thresh, nms=nms_thresh, letter_box=letter_box or None)
    dev = device_name(device, gpu_index)
    if half and not dev.startswith("cuda"):
        raise click.UsageError("--half needs --device cuda")
    return Detector(model, config, dev, half, fast=True, decoder=decoder)


def print_detections(detector: Detector, names: list[str], images: Iterable[str], thresh: float,
                     ext_output: bool, out_json: str | None, save_labels: bool,
                     output_image: str | None) -> None:
    """Detect on each image path; print Darknet's lines, save the drawing, labels and JSON."""
    frames = []
    for frame_id, r in enumerate(detect_images(detector, images), 1):
        click.echo(f"{r.path}: Predicted in {r.milliseconds:f} milli-seconds.")
        for line in report_lines(r.detections, names, thresh, ext_output):
            click.echo(line)
        if output_image:
            cv2.imwrite(output_image, draw_detections(r.image, r.detections, names, thresh))
        if save_labels:
            Path(r.path).with_suffix(".txt").write_text(
                "".join(line + "\n" for line in yolo_label_lines(r.detections, thresh)))
        if out_json:
            frames.append(json_frame(r.detections, names, thresh, frame_id, r.path))
    if out_json:
        write_json(frames, out_json)


@detector.command("test")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@click.argument("images", nargs=-1)
@detect_options
def detector_test(data, cfg, weights, images, thresh, nms_thresh, ext_output, dont_show,
                  out_json, save_labels, letter_box, output_image, device, gpu_index, half,
                  decoder):
    """Detect objects: darknet-py detector test DATA CFG WEIGHTS [IMAGE...] (or DATA
    MODEL.pt [IMAGE...]).

    With no IMAGE, image paths are read from standard input, one per line.
    """
    model, images = load_model(cfg, weights, images)
    names = read_data_cfg(assets.resolve(data)).names(model.num_classes, model.cfg.path)
    det = make_detector(model, thresh, nms_thresh, letter_box, device, gpu_index, half, decoder)
    print_detections(det, names, image_paths(images), thresh, ext_output, out_json, save_labels,
                     output_image)


@cli.command("detect")
@click.argument("images", nargs=-1)
@detect_options
def detect(images, thresh, nms_thresh, ext_output, dont_show, out_json, save_labels, letter_box,
           output_image, device, gpu_index, half, decoder):
    """Detect with the embedded yolov4-tiny (COCO); no IMAGE: the embedded sample photo."""
    names = read_names(assets.resolve(assets.DEFAULT_NAMES))
    model = load(assets.DEFAULT_WEIGHTS, assets.DEFAULT_CFG)
    det = make_detector(model, thresh, nms_thresh, letter_box, device, gpu_index, half, decoder)
    paths = images or (str(assets.SAMPLE_IMAGE),)
    print_detections(det, names, paths, thresh, ext_output, out_json, save_labels, output_image)


@detector.command("demo")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@click.argument("video", required=False)
@click.option("-c", "camera", type=int, default=0, show_default=True,
              help="Camera index, when no VIDEO is given.")
@click.option("-out_filename", "--out-filename", default=None,
              help="Write the annotated video here (.mp4, .avi...).")
@detect_options
def detector_demo(data, cfg, weights, video, camera, out_filename, thresh, nms_thresh,
                  ext_output, dont_show, out_json, save_labels, letter_box, output_image,
                  device, gpu_index, half, decoder):
    """Detect on a video or camera: darknet-py detector demo DATA CFG WEIGHTS [VIDEO]
    (-out_filename out.mp4 writes the annotated video; nothing is shown on screen)."""
    from ..infer.video import VideoSource, VideoWriter, detect_video

    model, rest = load_model(cfg, weights, (video,) if video else ())
    names = read_data_cfg(assets.resolve(data)).names(model.num_classes, model.cfg.path)
    det = make_detector(model, thresh, nms_thresh, letter_box, device, gpu_index, half, decoder)
    source = VideoSource.open(rest[0] if rest else camera)
    click.echo(f"video file: {source.name}" if rest else f"Webcam index: {camera}")
    writer = VideoWriter(out_filename, source.fps, source.size, names, thresh) \
        if out_filename else None
    start, count = time.perf_counter(), 0
    try:
        for frame in detect_video(det, source):
            count += 1
            avg = count / max(time.perf_counter() - start, 1e-9)
            click.echo(f"\nFPS:{1000 / max(frame.milliseconds, 1e-6):.1f} \t AVG_FPS:{avg:.1f}")
            click.echo("Objects:\n")
            for line in report_lines(frame.detections, names, thresh, ext_output):
                click.echo(line)
            if writer is not None:
                writer.write(frame)
    finally:
        if writer is not None:
            writer.close()
    click.echo("input video stream closed.")
    if writer is not None:
        click.echo(f"output_video_writer closed: {out_filename}, {count} frames")
