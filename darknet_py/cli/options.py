"""Options and argument handling shared by the commands."""

from __future__ import annotations

import sys
from typing import Iterator

import click

from ..image.decode import DECODERS, DEFAULT_DECODER


def options(*decorators):
    """One decorator applying click ``decorators`` in the order listed (first on top)."""
    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


def train_options(chart_help: str):
    """The options ``detector train`` and ``classifier train`` share, Darknet's spelling
    first."""
    return options(
        click.option("-dont_show", "--dont-show", is_flag=True,
                     help="Accepted for Darknet compatibility; no window is opened (see "
                          "chart.png)."),
        click.option("-clear", "--clear", is_flag=True,
                     help="Reset seen: the schedule starts over."),
        click.option("--device", default=None,
                     help="cpu, cuda or cuda:N (default: cuda when a GPU is there)."),
        click.option("-i", "gpu_index", type=int, default=None,
                     help="GPU index, as Darknet's -i."),
        click.option("-chart", "--chart", default="chart.png", show_default=True,
                     help=chart_help),
        click.option("--workers", type=click.IntRange(0), default=2, show_default=True,
                     help="Data-loading processes."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of image choice and augmentation."),
        click.option("--max-batches", type=click.IntRange(1), default=None,
                     help="Override the cfg's max_batches."),
        click.option("--nan-recovery", is_flag=True,
                     help="On NaN, reload the last good weights and continue at a tenth of "
                          "the rate."))


def device_name(device: str | None, gpu_index: int | None, asked: str | None = None) -> str:
    """The torch device to run on: ``--device``, by default ``cuda`` when a GPU is there
    (else ``cpu``), with ``-i N`` picking the GPU as Darknet's ``-i`` does.  ``asked`` is
    what the user typed to ask for CUDA, for the message when there is none."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and gpu_index is not None:
        device = f"cuda:{gpu_index}"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise click.UsageError(f"{asked or '--device ' + device} asks for a CUDA GPU, "
                               f"but none is available (use --device cpu)")
    return device


def load_model(cfg: str, weights: str | None, rest: tuple[str, ...] = ()):
    """The model that ``CFG WEIGHTS`` name, or a ``.pt`` checkpoint standing in the CFG slot
    (then what was read as WEIGHTS is the first of ``rest``).  Returns (model, rest)."""
    from ..io.checkpoint import load

    if cfg.lower().endswith(".pt"):
        return load(cfg), ((weights,) if weights else ()) + tuple(rest)
    if weights is None:
        raise click.UsageError("missing WEIGHTS (or give a .pt checkpoint instead of CFG)")
    return load(weights, cfg), tuple(rest)


def image_paths(images: tuple[str, ...]) -> Iterator[str]:
    """The images named on the command line, else paths read from stdin (one a line)."""
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


decoder_option = click.option(
    "--decoder", type=click.Choice(list(DECODERS)), default=DEFAULT_DECODER,
    show_default=True,
    help="JPEG decoding of which Darknet build: opencv, Darknet built with OPENCV=1 (the "
         "build that trains mosaic; 9 times faster); stb, Darknet built without OpenCV.")

detect_options = options(
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
    click.option("--device", default=None,
                 help="cpu, cuda or cuda:N (default: cuda when a GPU is there)."),
    click.option("-i", "gpu_index", type=int, default=None,
                 help="GPU index, as Darknet's -i."),
    click.option("--half", is_flag=True, help="Run in float16 (CUDA only)."),
    decoder_option,
)


eval_options = options(
    click.option("-letter_box", "--letter-box", is_flag=True, default=None,
                 help="Letterbox the input (default: the cfg's letter_box)."),
    click.option("--device", default=None,
                 help="cpu, cuda or cuda:N (default: cuda when a GPU is there)."),
    click.option("-i", "gpu_index", type=int, default=None, help="GPU index, as Darknet's -i."),
    click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True,
                 help="Images per forward pass."),
    decoder_option,
)
