"""``darknet-py`` command line: Darknet's commands and spellings over the Python API."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Iterator

import click
import cv2

from . import assets
from .data import read_data_cfg, read_names
from .detect import (Detector, DetectorConfig, draw_detections, json_frame, report_lines,
                     write_json, yolo_label_lines)
from .errors import DarknetError
from .image import load_image
from .model import Darknet

def load_model(cfg: str | Path, weights: str | Path | None = None) -> Darknet:
    """Build the model of ``cfg`` and load ``weights``; embedded files may be named bare."""
    model = Darknet(assets.resolve(cfg))
    if weights is not None:
        model.load_weights(assets.resolve(weights))
    return model


def _device(device: str | None, gpu_index: int | None) -> str:
    import torch

    if device is None:
        device = "cpu"
    if device == "cuda" and gpu_index is not None:
        device = f"cuda:{gpu_index}"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise click.UsageError("--device cuda was asked for but no CUDA GPU is available")
    return device


def _image_paths(images: tuple[str, ...]) -> Iterator[str]:
    if images:
        yield from images
        return
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            click.echo("Enter Image Path: ", nl=False)
        line = sys.stdin.readline()
        if not line:
            return
        if line.strip():
            yield line.strip()


def run_detection(detector: Detector, names: list[str], images: Iterator[str], thresh: float,
                  ext_output: bool, out_json: str | None, save_labels: bool,
                  output_image: str | None) -> None:
    """Detect on each image path; print Darknet's lines, save the drawing, labels and JSON."""
    frames = []
    for frame_id, path in enumerate(images, 1):
        image = load_image(path)
        start = time.perf_counter()
        dets = detector([image])[0]
        ms = (time.perf_counter() - start) * 1000
        click.echo(f"{path}: Predicted in {ms:f} milli-seconds.")
        for line in report_lines(dets, names, thresh, ext_output):
            click.echo(line)
        if output_image:
            cv2.imwrite(output_image, draw_detections(image, dets, names, thresh))
        if save_labels:
            Path(path).with_suffix(".txt").write_text(
                "".join(line + "\n" for line in yolo_label_lines(dets, thresh)))
        if out_json:
            frames.append(json_frame(dets, names, thresh, frame_id, path))
    if out_json:
        write_json(frames, out_json)


def _detect_options(f):
    options = [
        click.option("-thresh", "--thresh", type=float, default=0.25, show_default=True,
                     help="Probability threshold for reporting a class."),
        click.option("-nms", "--nms", "nms_thresh", type=float, default=0.45, show_default=True,
                     help="NMS threshold."),
        click.option("-ext_output", "--ext-output", is_flag=True,
                     help="Print box coordinates (left_x, top_y, width, height)."),
        click.option("-dont_show", "--dont-show", is_flag=True,
                     help="Accepted for Darknet compatibility; windows are never shown."),
        click.option("-out", "--out", "out_json", type=click.Path(dir_okay=False),
                     help="Write Darknet's JSON results to this file."),
        click.option("-save_labels", "--save-labels", is_flag=True,
                     help="Write YOLO-format label files next to the images."),
        click.option("-letter_box", "--letter-box", is_flag=True, default=None,
                     help="Letterbox the input (default: the cfg's letter_box)."),
        click.option("--output-image", default="predictions.jpg", show_default=True,
                     help="Where to draw the detections ('' to skip)."),
        click.option("--device", default=None, help="cpu (default), cuda or cuda:N."),
        click.option("-i", "gpu_index", type=int, default=None,
                     help="GPU index, as Darknet's -i (with --device cuda)."),
        click.option("--half", is_flag=True, help="Run in float16 (CUDA only)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _make_detector(model: Darknet, thresh: float, nms_thresh: float, letter_box: bool | None,
                   device: str | None, gpu_index: int | None, half: bool) -> Detector:
    config = DetectorConfig(thresh=thresh, nms=nms_thresh, letter_box=letter_box or None)
    dev = _device(device, gpu_index)
    if half and not dev.startswith("cuda"):
        raise click.UsageError("--half needs --device cuda")
    return Detector(model, config, dev, half)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="darknet-py")
def cli(verbose: int) -> None:
    """Darknet (YOLOv4 / Scaled-YOLOv4) cfg + weights in PyTorch, with Darknet's results."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s: %(message)s")


@cli.group()
def detector() -> None:
    """Darknet's detector commands (test, ...)."""


@detector.command("test")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights")
@click.argument("images", nargs=-1)
@_detect_options
def detector_test(data, cfg, weights, images, thresh, nms_thresh, ext_output, dont_show,
                  out_json, save_labels, letter_box, output_image, device, gpu_index, half):
    """Detect objects: darknet-py detector test DATA CFG WEIGHTS [IMAGE...].

    With no IMAGE, image paths are read from standard input, one per line.
    """
    names = read_data_cfg(assets.resolve(data)).names()
    model = load_model(cfg, weights)
    det = _make_detector(model, thresh, nms_thresh, letter_box, device, gpu_index, half)
    run_detection(det, names, _image_paths(images), thresh, ext_output, out_json, save_labels,
                  output_image)


@cli.command("detect")
@click.argument("images", nargs=-1)
@_detect_options
def detect(images, thresh, nms_thresh, ext_output, dont_show, out_json, save_labels, letter_box,
           output_image, device, gpu_index, half):
    """Detect with the embedded yolov4-tiny (COCO); no IMAGE: the embedded sample photo."""
    names = read_names(assets.resolve(assets.DEFAULT_NAMES))
    model = load_model(assets.DEFAULT_CFG, assets.DEFAULT_WEIGHTS)
    det = _make_detector(model, thresh, nms_thresh, letter_box, device, gpu_index, half)
    paths = images or (str(assets.SAMPLE_IMAGE),)
    run_detection(det, names, iter(paths), thresh, ext_output, out_json, save_labels,
                  output_image)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one ``darknet-py: error: ...`` line and exit 1."""
    try:
        cli.main(args=argv, prog_name="darknet-py", standalone_mode=False)
    except DarknetError as exc:
        click.echo(f"darknet-py: error: {exc}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
