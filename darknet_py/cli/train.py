"""``detector train``: Darknet's training command."""

from __future__ import annotations

import os
import sys

import click

from .. import assets
from .app import detector
from .options import device_name, train_options


@detector.command("train")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@train_options("Where to draw loss and mAP ('' to skip).")
@click.option("-map", "--map", "calc_map", is_flag=True,
              help="Compute mAP (at -iou_thresh) on valid= every -mAP_epochs epochs; keep "
                   "_best.weights.")
@click.option("-thresh", "--thresh", type=float, default=0.25, show_default=True,
              help="With -map: the TP/FP threshold of the mAP report.")
@click.option("-iou_thresh", "--iou-thresh", type=float, default=0.5, show_default=True,
              help="With -map: the IoU a detection needs to count.")
@click.option("-mAP_epochs", "--map-epochs", type=click.IntRange(1), default=4,
              show_default=True, help="Epochs between mAP computations.")
@click.option("-show_imgs", "--show-imgs", is_flag=True,
              help="Write the first iteration's augmented images with their boxes as "
                   "aug_<batch>_<image>.jpg in the working directory.")
@click.option("-gpus", "--gpus", default=None,
              help="Comma-separated CUDA devices; more than one trains with DDP.")
@click.option("--cpu-processes", type=click.IntRange(1), default=1, show_default=True,
              help="DDP processes on the CPU (gloo), for machines without a GPU.")
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), default=None,
              help="Mixed precision on CUDA.")
@click.option("--channels-last", is_flag=True, help="Train in channels_last memory format.")
@click.option("--device-augment", is_flag=True,
              help="Workers only decode; crop, resize, flip, HSV and mosaic run batched on "
                   "the training device (equal to the CPU loader within one level; no blur, "
                   "gaussian_noise or mixup).")
@click.option("--sync-bn", is_flag=True,
              help="With several processes: batch statistics over all of them (SyncBatchNorm).")
def detector_train(data, cfg, weights, calc_map, thresh, iou_thresh, map_epochs, dont_show,
                   clear, show_imgs, gpus, device, gpu_index, chart, cpu_processes, workers, seed,
                   max_batches, amp, nan_recovery, channels_last, device_augment, sync_bn):
    """Train: darknet-py detector train DATA CFG [WEIGHTS] (full, partial or none), or
    DATA MODEL.pt to go on from a checkpoint.

    Under torchrun (``torchrun --nproc_per_node G -m darknet_py detector train ...``) each
    process trains its share on cuda:LOCAL_RANK (or the CPU with --device cpu).
    """
    from ..train import (TrainConfig, launched_by_torchrun, train, train_distributed,
                         train_torchrun)

    torchrun = launched_by_torchrun()
    if gpus and not torchrun:
        devices = [device_name(f"cuda:{g.strip()}", None, f"-gpus {gpus}")
                   for g in gpus.split(",") if g.strip()]
    elif cpu_processes > 1 and not torchrun:
        devices = ["cpu"] * cpu_processes
    else:
        devices = [device_name(device, gpu_index)]
    if amp and not devices[0].startswith("cuda"):
        raise click.UsageError("--amp needs a CUDA device")
    if cfg.lower().endswith(".pt") and not weights:
        weights = cfg  # a checkpoint in the CFG slot: its cfg, and its weights to start from
    config = TrainConfig(
        data=str(assets.resolve(data)), cfg=str(assets.resolve(cfg)),
        weights=str(assets.resolve(weights)) if weights else None, clear=clear,
        calc_map=calc_map, map_epochs=map_epochs, map_iou_thresh=iou_thresh, map_thresh=thresh,
        device=devices[0], workers=workers,
        seed=seed, max_batches=max_batches, nan_recovery=nan_recovery, amp=amp,
        chart=chart or None, channels_last=channels_last, sync_bn=sync_bn,
        device_augment=device_augment,
        show_imgs=os.getcwd() if show_imgs else None)
    if len(devices) > 1:
        train_distributed(config, devices)
        return
    prints = not torchrun or os.environ["RANK"] == "0"
    bar = None
    if sys.stderr.isatty() and prints:
        from tqdm import tqdm

        bar = tqdm(unit="it", leave=False)

    def on_iteration(report):
        if bar is not None:
            bar.total = config.max_batches or bar.total
            bar.update(1)
        for line in report.layer_lines:
            click.echo(line, err=True)
        click.echo(report.line())

    run = train_torchrun if torchrun else train
    result = run(config, on_iteration, click.echo)
    if bar is not None:
        bar.close()
    if result.stopped and prints:
        click.echo(f"stopped at iteration {result.iterations}; saved _last")
