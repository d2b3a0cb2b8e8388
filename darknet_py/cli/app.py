"""The ``darknet-py`` command groups; the commands register themselves in the modules
beside this one."""

from __future__ import annotations

import logging

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="darknet-py")
def cli(verbose: int) -> None:
    """Darknet (YOLOv4 / Scaled-YOLOv4) cfg + weights in PyTorch, with Darknet's results."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s: %(message)s")


@cli.group()
def detector() -> None:
    """Darknet's detector commands: test, demo, train, map, valid, recall,
    calc_anchors."""


@cli.group("eval")
def eval_group() -> None:
    """Evaluate result files."""
