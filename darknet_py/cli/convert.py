"""``partial`` and ``convert``: between .weights and .pt, and exports."""

from __future__ import annotations

import click

from .. import assets
from ..io.checkpoint import load, save
from ..io.data import read_names
from ..nn.weights import save_partial
from ..nn.model import Darknet
from .app import cli


@cli.command("partial")
@click.argument("cfg")
@click.argument("weights")
@click.argument("out")
@click.argument("layers", type=int)
def partial(cfg, weights, out, layers):
    """Keep the first LAYERS layers of WEIGHTS, seen reset (e.g. yolov4-tiny.conv.29)."""
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
    from ..infer.export import export_onnx, export_torchscript, save_program

    if not (dst or onnx_out or ts_out or program_out):
        raise click.UsageError("give DST and/or --onnx / --torchscript / --export")
    if cfg is None and not src.lower().endswith(".pt"):
        raise click.UsageError("a .weights SRC needs --cfg")
    model = load(src, cfg)
    if width or height:
        model = model.resized(width or model.width, height or model.height)
    names = read_names(names_file) if names_file else model.names
    if dst:
        if dst.lower().endswith(".weights"):
            model.save_weights(dst)
        elif dst.lower().endswith(".pt"):
            save(model, dst, names)
        else:
            raise click.UsageError(f"{dst}: DST must end in .pt or .weights")
        click.echo(f"wrote {dst}")
    for out, export in ((onnx_out, export_onnx), (ts_out, export_torchscript),
                        (program_out, save_program)):
        if out:
            export(model, out)
            click.echo(f"wrote {out}")
