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


def _depth(value: str | None):
    """--depth: a multiplier (0.5) or one block count per stage (1,2,8,8,4)."""
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",")) if "," in value else float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected a multiplier or block counts "
                                 f"like 1,2,8,8,4", param_hint="--depth") from None


def _size(value: str | None):
    """--size: N or WxH."""
    if value is None:
        return None
    try:
        w, _, h = value.lower().partition("x")
        return (int(w), int(h)) if h else int(w)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected N or WxH",
                                 param_hint="--size") from None


def _anchors(value: str | None):
    """--anchors: w,h, w,h, ... (all levels, smallest first)."""
    if value is None:
        return None
    try:
        v = [int(float(x)) for x in value.replace(" ", "").split(",") if x]
    except ValueError:
        v = []
    if not v or len(v) % 2:
        raise click.BadParameter(f"{value!r}: expected w,h pairs", param_hint="--anchors")
    return list(zip(v[0::2], v[1::2]))


@cfg_group.command("scale")
@click.option("--preset", "base", default=None,
              help="The model to scale, by its shipped cfg's name (see --list).")
@click.option("--width", type=float, default=1.0, show_default=True,
              help="Channel multiplier (the stem is kept).")
@click.option("--depth", default=None,
              help="Residual-block multiplier, or block counts per stage (1,2,8,8,4).")
@click.option("--levels", type=click.IntRange(1, 8), default=None,
              help="Output levels: 3 (P5), 4 (P6), 5 (P7); tiny: 1-3.")
@click.option("--size", default=None, help="Network input: N or WxH.")
@click.option("--classes", type=click.IntRange(1), default=None)
@click.option("--anchors", default=None, help="w,h, w,h, ... for every level, smallest first.")
@click.option("--activation", default=None, help="Replaces the model's (mish, swish, leaky).")
@click.option("-o", "--out", default=None, help="Write the cfg here (default: stdout).")
@click.option("--list", "list_", is_flag=True, help="List the presets and exit.")
def scale(base, width, depth, levels, size, classes, anchors, activation, out, list_):
    """Generate a Scaled-YOLOv4 cfg from a preset and compound-scaling knobs."""
    from ..cfg.presets import PRESETS, preset
    from ..cfg.scale import scale_cfg
    from ..nn.scaling import SeedCost, cfg_cost

    if list_:
        for name, d in PRESETS.items():
            click.echo(f"{name:20s} {d.levels} levels, {d.width}x{d.height}, {d.activation}")
        return
    if base is None:
        raise click.UsageError("--preset is required (see --list)")
    knobs = dict(width=width, depth=_depth(depth), levels=levels, size=_size(size),
                 classes=classes, anchors=_anchors(anchors), activation=activation)
    cfg = scale_cfg(base, **knobs)
    bflops, params = cfg_cost(cfg)
    report = [f"{cfg.path[1:-1]}: {len(cfg.layers)} layers, {len(cfg.yolo_layers)} output "
              f"levels, {cfg.net.width}x{cfg.net.height}, {sum(bflops):.3f} BFLOPs, "
              f"{sum(params):,} parameters"]
    model = SeedCost.of(preset(base))
    if levels is None and anchors is None and not isinstance(knobs["size"], tuple):
        pf, pp = model.predict(width, knobs["depth"], knobs["size"])
        report.append(f"cost model of {preset(base).name}: {pf:.3f} BFLOPs "
                      f"({pf / sum(bflops) - 1:+.1%}), {pp:,.0f} parameters "
                      f"({pp / sum(params) - 1:+.1%})")
    if classes is not None:
        from ..cfg import YoloSection

        filters = sorted({cfg.layers[i - 1].filters for i, sec in enumerate(cfg.layers)
                          if isinstance(sec, YoloSection)})
        report.append(f"--classes {classes}: max_batches={cfg.net.max_batches}, steps="
                      f"{','.join(str(s) for s in cfg.net.steps)} (Darknet's guide for a "
                      f"custom dataset), filters={','.join(map(str, filters))} before each "
                      "[yolo]")
    growth = ", ".join(f"{k}^{v:.2f}" for k, v in model.growth().items())
    report.append(f"BFLOPs grow as {growth} (each measured by doubling)")
    if out:
        from ..files import atomic_write

        atomic_write(out, cfg.text.encode())
        report.insert(0, f"wrote {out}")
        for line in report:
            click.echo(line)
    else:
        click.echo(cfg.text, nl=False)
        for line in report:
            click.echo(line, err=True)
