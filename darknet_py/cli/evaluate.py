"""``detector map``, ``valid``, ``recall``, ``calc_anchors`` and ``eval coco``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import cv2

from .. import assets
from ..io.data import LabelFiles, read_data_cfg, read_image_list, read_names
from .app import detector, eval_group
from .options import device_name, eval_options, load_model


def _valid_set(data: str, cfg: str, weights: str | None, names: bool = True):
    """The valid list of DATA and the model of CFG WEIGHTS (or a .pt alone), with the
    class names checked against the model (``names``): (data_cfg, images, model, names)."""
    data_cfg = read_data_cfg(assets.resolve(data))
    images = data_cfg.image_list("valid", "train")
    model, extra = load_model(cfg, weights)
    class_names = data_cfg.names(model.num_classes, model.cfg.path) if names else None
    if extra:
        raise click.UsageError(f"unexpected argument {extra[0]!r}")
    return data_cfg, images, model, class_names


@detector.command("map")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@click.option("-thresh", "--thresh", type=float, default=0.25, show_default=True,
              help="Confidence threshold for TP/FP, precision, recall and average IoU.")
@click.option("-iou_thresh", "--iou-thresh", type=float, default=0.5, show_default=True,
              help="IoU a detection needs with a truth to count as found.")
@click.option("-points", "--points", type=click.IntRange(0), default=0, show_default=True,
              help="0: area under the curve; 11: VOC2007; 101: COCO.")
@click.option("--int8", "int8_list", default=None,
              help="Evaluate an int8 version (CPU, ONNX Runtime) calibrated on this list.")
@eval_options
def detector_map(data, cfg, weights, thresh, iou_thresh, points, int8_list, letter_box, device,
                 gpu_index, batch_size, decoder):
    """Mean average precision on the .data file's valid list: darknet-py detector map DATA
    CFG WEIGHTS (or DATA MODEL.pt)."""
    from ..eval.map import evaluate_map

    _, images, model, names = _valid_set(data, cfg, weights)
    if int8_list:
        from ..infer.quantize import quantize_int8

        if not device_name(device, gpu_index).startswith("cpu"):
            raise click.UsageError("--int8 runs on the CPU")
        model = quantize_int8(model.eval(), read_image_list(int8_list))
    labels = LabelFiles.find(images)
    click.echo(labels.summary())
    click.echo("\n calculation mAP (mean average precision)...")
    start = time.perf_counter()
    result = evaluate_map(model, images, model.num_classes, iou_thresh, thresh, points,
                          letter_box or None, device_name(device, gpu_index), batch_size,
                          progress=sys.stderr.isatty(), decoder=decoder, label_files=labels)
    for line in result.report(names):
        click.echo(line)
    click.echo(f"Total Detection Time: {time.perf_counter() - start:.0f} Seconds", err=True)


@detector.command("valid")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@click.option("-out", "--out", "outfile", default=None,
              help="Base name of the result files (coco_results / comp4_det_test_).")
@eval_options
def detector_valid(data, cfg, weights, outfile, letter_box, device, gpu_index, batch_size,
                   decoder):
    """Write detections for the valid list (COCO JSON with eval=coco, else per-class files)
    into the .data file's results folder."""
    from ..eval.valid import validate_detector

    data_cfg, images, model, names = _valid_set(data, cfg, weights)
    out_dir = data_cfg.get("results", "results")
    files = validate_detector(model, images, out_dir, names, data_cfg.get("eval", "voc"),
                              outfile, letter_box or None, device_name(device, gpu_index),
                              batch_size, progress=sys.stderr.isatty(), decoder=decoder)
    click.echo(f"{len(images)} images, results in {files[0] if len(files) == 1 else out_dir}")


@detector.command("recall")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@eval_options
def detector_recall(data, cfg, weights, letter_box, device, gpu_index, batch_size, decoder):
    """Proposal recall on the .data file's valid list, as Darknet prints it: image,
    found, truths, proposals per image, average best IoU, recall."""
    from ..eval.recall import recall_lines

    _, images, model, _ = _valid_set(data, cfg, weights, names=False)  # Darknet reads none
    for totals in recall_lines(model, images, device_name(device, gpu_index), decoder):
        click.echo(totals.line(), err=True)


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
    from ..eval.anchors import calc_anchors, draw_anchors

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


@eval_group.command("coco")
@click.argument("results")
@click.option("--gt", required=True,
              help="COCO annotations JSON, or a Darknet image list (labels by Darknet's rule).")
@click.option("--classes", type=click.IntRange(1), default=80, show_default=True,
              help="Classes of the Darknet labels (for an image list as --gt).")
@click.option("--names", "names_file", help="Class names (for an image list as --gt).")
def eval_coco(results, gt, classes, names_file):
    """pycocotools' COCOeval (bbox) of a results JSON; prints the 12 standard numbers."""
    from ..eval.coco import coco_evaluate, ground_truth

    if gt.lower().endswith(".json"):
        truth = gt
    else:
        names = read_names(names_file) if names_file else None
        truth = ground_truth(read_image_list(gt), classes, names)
    for line in coco_evaluate(results, truth).lines:
        click.echo(line)
