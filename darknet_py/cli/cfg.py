"""``cfg show`` and ``cfg diff``: a cfg's layer table and cost, and how two cfgs differ."""

from __future__ import annotations

import click

from .. import assets
from ..cfg import read_cfg
from ..cfg.compare import cfg_differences
from .app import cli


@cli.group("cfg")
def cfg_group() -> None:
    """Look at cfg files."""


@cfg_group.command("show")
@click.argument("cfg")
@click.option("--width", type=click.IntRange(32), default=None, help="Network input width.")
@click.option("--height", type=click.IntRange(32), default=None, help="Network input height.")
def show(cfg, width, height):
    """Layer table with output shapes, parameters and BFLOPs, as Darknet prints at load."""
    from ..nn.builder import Shape, build_layers
    from ..nn.cost import layer_table

    parsed = read_cfg(assets.resolve(cfg))
    layers, shapes = build_layers(parsed, width, height)
    net = parsed.net
    first = Shape(net.channels, height or net.height, width or net.width)
    for line in layer_table(layers, shapes, first):
        click.echo(line)


@cfg_group.command("diff")
@click.argument("a")
@click.argument("b")
def diff(a, b):
    """Structural differences of two cfgs (comments and training keys ignored); exit 1 if
    they differ."""
    lines = cfg_differences(read_cfg(assets.resolve(a)), read_cfg(assets.resolve(b)))
    for line in lines:
        click.echo(line)
    if lines:
        raise click.exceptions.Exit(1)
    click.echo("no structural differences")
