"""``detect`` and ``detector test``: print Darknet's lines, draw, write labels and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import click
import cv2

from .. import assets
from ..infer.detector import Detector, DetectorConfig, detect_images
from ..infer.report import draw_detections, json_frame, report_lines, write_json, yolo_label_lines
from ..io.checkpoint import load
from ..io.data import read_data_cfg, read_names
from ..nn.model import Darknet
from .app import cli, detector
from .options import detect_options, device_name, image_paths, load_model


def make_detector(model: Darknet, thresh: float, nms_thresh: float, letter_box: bool | None,
                  device: str | None, gpu_index: int | None, half: bool) -> Detector:
    """The ``Detector`` the detect options ask for."""
    config = DetectorConfig(thresh=thresh, nms=nms_thresh, letter_box=letter_box or None)
    dev = device_name(device, gpu_index)
    if half and not dev.startswith("cuda"):
        raise click.UsageError("--half needs --device cuda")
    return Detector(model, config, dev, half, fast=True)


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
                  out_json, save_labels, letter_box, output_image, device, gpu_index, half):
    """Detect objects: darknet-py detector test DATA CFG WEIGHTS [IMAGE...] (or DATA
    MODEL.pt [IMAGE...]).

    With no IMAGE, image paths are read from standard input, one per line.
    """
    model, images = load_model(cfg, weights, images)
    names = read_data_cfg(assets.resolve(data)).names(model.num_classes, model.cfg.path)
    det = make_detector(model, thresh, nms_thresh, letter_box, device, gpu_index, half)
    print_detections(det, names, image_paths(images), thresh, ext_output, out_json, save_labels,
                     output_image)


@cli.command("detect")
@click.argument("images", nargs=-1)
@detect_options
def detect(images, thresh, nms_thresh, ext_output, dont_show, out_json, save_labels, letter_box,
           output_image, device, gpu_index, half):
    """Detect with the embedded yolov4-tiny (COCO); no IMAGE: the embedded sample photo."""
    names = read_names(assets.resolve(assets.DEFAULT_NAMES))
    model = load(assets.DEFAULT_WEIGHTS, assets.DEFAULT_CFG)
    det = make_detector(model, thresh, nms_thresh, letter_box, device, gpu_index, half)
    paths = images or (str(assets.SAMPLE_IMAGE),)
    print_detections(det, names, paths, thresh, ext_output, out_json, save_labels, output_image)
