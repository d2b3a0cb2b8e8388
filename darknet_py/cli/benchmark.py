"""``benchmark``: latency, throughput and cost of a model, optionally next to OpenCV."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import assets
from ..io.checkpoint import load
from ..io.data import read_image_list
from ..nn.model import Darknet
from .app import cli
from .options import device_name


@cli.command("benchmark")
@click.argument("cfg")
@click.argument("weights", required=False)
@click.option("--size", type=click.IntRange(32), default=None,
              help="Input width and height (default: the cfg's).")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True)
@click.option("--device", default=None,
              help="cpu, cuda or cuda:N (default: cuda when a GPU is there).")
@click.option("--half", is_flag=True, help="float16 (CUDA).")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile with inductor's weight freezing (compile time reported).")
@click.option("--vs-opencv", is_flag=True,
              help="Also time OpenCV's DNN module on the same model, in alternating blocks.")
@click.option("--int8", "int8_list", default=None,
              help="Time an int8 version (CPU, ONNX Runtime) calibrated on this image list.")
@click.option("--no-graphs", is_flag=True, help="On CUDA, launch kernels one by one "
              "instead of replaying a CUDA graph.")
@click.option("--runs", type=click.IntRange(3), default=30, show_default=True)
@click.option("--json", "json_out", default=None, help="Also write the figures as JSON.")
def benchmark(cfg, weights, size, batch, device, half, compile_, int8_list, vs_opencv, no_graphs,
              runs, json_out):
    """Time a model: darknet-py benchmark CFG [WEIGHTS] (random weights without WEIGHTS)."""
    from ..infer.benchmark import run_benchmark

    dev = device_name(device, None)
    if half and not dev.startswith("cuda"):
        raise click.UsageError("--half needs --device cuda")
    if weights:
        model = load(weights, cfg)
    else:  # random weights; unit batch-norm variances keep the activations finite
        model = Darknet(assets.resolve(cfg))
        for layer in model.layers:
            if getattr(layer, "bn", None) is not None:
                layer.bn.running_var.fill_(1.0)
    if size and (size, size) != (model.width, model.height):
        model = model.resized(size, size)
    if int8_list and (half or compile_ or not dev.startswith("cpu")):
        raise click.UsageError("--int8 runs on the CPU, without --half or --compile")
    images = read_image_list(int8_list) if int8_list else None
    result = run_benchmark(model.eval(), batch, dev, half, compile_, vs_opencv, runs,
                           int8_images=images, cuda_graphs=not no_graphs)
    for line in result.lines():
        click.echo(line)
    if json_out:
        Path(json_out).write_text(json.dumps(result.to_dict(), indent=1) + "\n")
