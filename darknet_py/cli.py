"""``darknet-py`` command line: Darknet's commands and spellings over the Python API."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Iterator

import click
import cv2

from . import assets, checkpoint
from .data import read_data_cfg, read_names
from .detect import (Detector, DetectorConfig, draw_detections, json_frame, report_lines,
                     write_json, yolo_label_lines)
from .errors import DarknetError
from .image import load_image
from .model import Darknet

def load_model(cfg: str | Path, weights: str | Path | None = None) -> Darknet:
    """Build the model of ``cfg`` and load ``weights``; embedded files may be named bare.

    A ``.pt`` checkpoint as ``weights`` brings its own cfg (``cfg`` is then not read).
    """
    if weights is not None and str(weights).lower().endswith(".pt"):
        return checkpoint.load(weights)
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
    """Darknet's detector commands: test, train, map, valid, calc_anchors."""


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


@detector.command("train")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@click.option("-map", "--map", "calc_map", is_flag=True,
              help="Compute mAP@0.5 on valid= every -mAP_epochs epochs; keep _best.weights.")
@click.option("-mAP_epochs", "--map-epochs", type=click.IntRange(1), default=4,
              show_default=True, help="Epochs between mAP computations.")
@click.option("-dont_show", "--dont-show", is_flag=True,
              help="Accepted for Darknet compatibility; no window is opened (see chart.png).")
@click.option("-clear", "--clear", is_flag=True, help="Reset seen: the schedule starts over.")
@click.option("-gpus", "--gpus", default=None,
              help="Comma-separated CUDA devices; more than one trains with DDP.")
@click.option("--device", default=None, help="cpu (default, or cuda with -gpus) or cuda:N.")
@click.option("--cpu-processes", type=click.IntRange(1), default=1, show_default=True,
              help="DDP processes on the CPU (gloo), for machines without a GPU.")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True,
              help="Data-loading processes.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of image choice and augmentation.")
@click.option("--max-batches", type=click.IntRange(1), default=None,
              help="Override the cfg's max_batches.")
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), default=None,
              help="Mixed precision on CUDA.")
@click.option("--nan-recovery", is_flag=True,
              help="On NaN, reload the last good weights and continue at a tenth of the rate.")
@click.option("--chart", default="chart.png", show_default=True,
              help="Where to draw loss and mAP ('' to skip).")
def detector_train(data, cfg, weights, calc_map, map_epochs, dont_show, clear, gpus, device,
                   cpu_processes, workers, seed, max_batches, amp, nan_recovery, chart):
    """Train: darknet-py detector train DATA CFG [WEIGHTS] (full, partial or none)."""
    from .train import TrainConfig, train, train_distributed

    if gpus:
        devices = [f"cuda:{g.strip()}" for g in gpus.split(",") if g.strip()]
    elif cpu_processes > 1:
        devices = ["cpu"] * cpu_processes
    else:
        devices = [_device(device, None)]
    for dev in devices:
        _device(dev, None)  # checks CUDA is there
    if amp and not devices[0].startswith("cuda"):
        raise click.UsageError("--amp needs a CUDA device")
    config = TrainConfig(str(assets.resolve(data)), str(assets.resolve(cfg)),
                         str(assets.resolve(weights)) if weights else None, clear, calc_map,
                         map_epochs, devices[0], workers, seed, max_batches, None,
                         nan_recovery, amp, chart or None)
    if len(devices) > 1:
        train_distributed(config, devices)
        return
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="it", leave=False)

    def on_iteration(report):
        if bar is not None:
            bar.total = config.max_batches or bar.total
            bar.update(1)
        for line in report.layer_lines:
            click.echo(line, err=True)
        click.echo(report.line())

    result = train(config, on_iteration, click.echo)
    if bar is not None:
        bar.close()
    if result.stopped:
        click.echo(f"stopped at iteration {result.iterations}; saved _last")


def _eval_options(f):
    options = [
        click.option("-letter_box", "--letter-box", is_flag=True, default=None,
                     help="Letterbox the input (default: the cfg's letter_box)."),
        click.option("--device", default=None, help="cpu (default), cuda or cuda:N."),
        click.option("-i", "gpu_index", type=int, default=None, help="GPU index, as Darknet's -i."),
        click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True,
                     help="Images per forward pass."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@detector.command("map")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights")
@click.option("-thresh", "--thresh", type=float, default=0.25, show_default=True,
              help="Confidence threshold for TP/FP, precision, recall and average IoU.")
@click.option("-iou_thresh", "--iou-thresh", type=float, default=0.5, show_default=True,
              help="IoU a detection needs with a truth to count as found.")
@click.option("-points", "--points", type=click.IntRange(0), default=0, show_default=True,
              help="0: area under the curve; 11: VOC2007; 101: COCO.")
@_eval_options
def detector_map(data, cfg, weights, thresh, iou_thresh, points, letter_box, device, gpu_index,
                 batch_size):
    """Mean average precision on the .data file's valid list: darknet-py detector map DATA
    CFG WEIGHTS."""
    from .evaluate import evaluate_map

    data_cfg = read_data_cfg(assets.resolve(data))
    images = data_cfg.image_list("valid", "train")
    names = data_cfg.names()
    model = load_model(cfg, weights)
    click.echo("\n calculation mAP (mean average precision)...")
    start = time.perf_counter()
    result = evaluate_map(model, images, model.num_classes, iou_thresh, thresh, points,
                          letter_box or None, _device(device, gpu_index), batch_size,
                          progress=sys.stderr.isatty())
    for line in result.report(names):
        click.echo(line)
    click.echo(f"Total Detection Time: {time.perf_counter() - start:.0f} Seconds", err=True)


@detector.command("valid")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights")
@click.option("-out", "--out", "outfile", default=None,
              help="Base name of the result files (coco_results / comp4_det_test_).")
@_eval_options
def detector_valid(data, cfg, weights, outfile, letter_box, device, gpu_index, batch_size):
    """Write detections for the valid list (COCO JSON with eval=coco, else per-class files)
    into the .data file's results folder."""
    from .valid import validate_detector

    data_cfg = read_data_cfg(assets.resolve(data))
    images = data_cfg.image_list("valid", "train")
    names = data_cfg.names()
    model = load_model(cfg, weights)
    out_dir = data_cfg.get("results", "results")
    files = validate_detector(model, images, out_dir, names, data_cfg.get("eval", "voc"),
                              outfile, letter_box or None, _device(device, gpu_index),
                              batch_size, progress=sys.stderr.isatty())
    click.echo(f"{len(images)} images, results in {files[0] if len(files) == 1 else out_dir}")


@detector.command("calc_anchors")
@click.argument("data")
@click.option("-num_of_clusters", "--num-of-clusters", "clusters", type=click.IntRange(1),
              default=5, show_default=True, help="Number of anchors.")
@click.option("-width", "--width", type=click.IntRange(1), required=True,
              help="Network input width.")
@click.option("-height", "--height", type=click.IntRange(1), required=True,
              help="Network input height.")
@click.option("-show", "--show", is_flag=True,
              help="Write a plot of the boxes and anchors to cloud.png.")
@click.option("--seed", type=int, default=0, show_default=True, help="k-means start.")
@click.option("--output", default="anchors.txt", show_default=True,
              help="File the anchors are written to ('' to skip).")
def detector_calc_anchors(data, clusters, width, height, show, seed, output):
    """k-means anchors from the labels of the .data file's train list."""
    from .anchors import calc_anchors, draw_anchors

    data_cfg = read_data_cfg(assets.resolve(data))
    images = data_cfg.image_list("train")
    click.echo(f"\n num_of_clusters = {clusters}, width = {width}, height = {height} ")
    result = calc_anchors(images, clusters, width, height, data_cfg.classes, seed)
    click.echo(f" read labels from {len(images)} images, {len(result.boxes)} boxes")
    click.echo(f"\n avg IoU = {result.avg_iou * 100:2.2f} % \n")
    line = result.cfg_line(width)
    click.echo(line)
    if output:
        Path(output).write_text(line.split(" = ", 1)[1] + "\n")
    if show:
        cv2.imwrite("cloud.png", draw_anchors(result, width, height))
        click.echo("plot saved to cloud.png")


@cli.command("partial")
@click.argument("cfg")
@click.argument("weights")
@click.argument("out")
@click.argument("layers", type=int)
def partial(cfg, weights, out, layers):
    """Keep the first LAYERS layers of WEIGHTS, seen reset (e.g. yolov4-tiny.conv.29)."""
    from .weights import save_partial

    model = Darknet(assets.resolve(cfg))
    report = model.load_weights(assets.resolve(weights), upto=layers)
    save_partial(model, out, layers)
    click.echo(f"{out}: layers 0..{layers - 1} ({report.floats_read} floats), seen = 0")


@cli.command("convert")
@click.argument("src")
@click.argument("dst", required=False)
@click.option("--cfg", help="The cfg of a .weights SRC.")
@click.option("--names", "names_file", help="Class names to store in a .pt (one per line).")
@click.option("--width", type=click.IntRange(1), default=None, help="Network input width.")
@click.option("--height", type=click.IntRange(1), default=None, help="Network input height.")
@click.option("--onnx", "onnx_out", help="Also export ONNX (dynamic batch) to this file.")
@click.option("--torchscript", "ts_out", help="Also save a traced TorchScript module.")
@click.option("--export", "program_out", help="Also save a torch.export program (.pt2).")
def convert(src, dst, cfg, names_file, width, height, onnx_out, ts_out, program_out):
    """Convert between .weights and self-contained .pt; export ONNX / TorchScript.

    \b
    darknet-py convert --cfg yolov4-tiny.cfg yolov4-tiny.weights model.pt
    darknet-py convert model.pt back.weights
    darknet-py convert model.pt --onnx model.onnx
    """
    from .export import export_onnx, export_torchscript, save_program

    if not (dst or onnx_out or ts_out or program_out):
        raise click.UsageError("give DST and/or --onnx / --torchscript / --export")
    if src.lower().endswith(".pt"):
        model = checkpoint.load(src)
    else:
        if cfg is None:
            raise click.UsageError("a .weights SRC needs --cfg")
        model = load_model(cfg, src)
    if width or height:
        resized = Darknet(model.cfg, width or model.width, height or model.height)
        resized.load_state_dict(model.state_dict())
        resized.header, resized.names = model.header, model.names
        model = resized
    names = read_names(names_file) if names_file else model.names
    if dst:
        if dst.lower().endswith(".weights"):
            model.save_weights(dst)
        elif dst.lower().endswith(".pt"):
            checkpoint.save(model, dst, names)
        else:
            raise click.UsageError(f"{dst}: DST must end in .pt or .weights")
        click.echo(f"wrote {dst}")
    for out, export in ((onnx_out, export_onnx), (ts_out, export_torchscript),
                        (program_out, save_program)):
        if out:
            export(model.eval(), out)
            click.echo(f"wrote {out}")


@cli.group("eval")
def eval_group() -> None:
    """Evaluate result files."""


@eval_group.command("coco")
@click.argument("results")
@click.option("--gt", required=True,
              help="COCO annotations JSON, or a Darknet image list (labels by Darknet's rule).")
@click.option("--classes", type=click.IntRange(1), default=80, show_default=True,
              help="Classes of the Darknet labels (for an image list as --gt).")
@click.option("--names", "names_file", help="Class names (for an image list as --gt).")
def eval_coco(results, gt, classes, names_file):
    """pycocotools' COCOeval (bbox) of a results JSON; prints the 12 standard numbers."""
    from .coco import coco_evaluate, ground_truth
    from .data import read_image_list

    if gt.lower().endswith(".json"):
        truth = gt
    else:
        names = read_names(names_file) if names_file else None
        truth = ground_truth(read_image_list(gt), classes, names)
    for line in coco_evaluate(results, truth).lines:
        click.echo(line)


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
