"""``darknet-py`` command line: Darknet's commands and spellings over the Python API.

Each module holds one command group's parsing and printing: ``detect`` (detect,
detector test), ``train``, ``evaluate`` (map, valid, calc_anchors, eval coco),
``convert`` (partial, convert), ``benchmark``, ``cfg`` (show, diff, scale), ``classify``
(classifier predict).  ``flags``
reads Darknet's single-dash flags wherever they stand, as Darknet does.
"""

from __future__ import annotations

import logging
import sys

import click

from ..errors import DarknetError
from . import benchmark, cfg, classify, convert, detect, evaluate, train  # noqa: F401
from .app import cli
from .flags import darknet_argv


class _Skipped(logging.Handler):
    """Counts the inputs the library reported and skipped (an image that cannot be read,
    say) while it went on with the rest: its records with ``extra={"skipped": True}``."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += bool(getattr(record, "skipped", False))


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one ``darknet-py: error: ...`` line and exit 1.
    A command that skipped an input goes on with the rest, writes what it could, and then
    exits 1, as ``cp`` and ``grep`` do."""
    skipped = _Skipped()
    library = logging.getLogger("darknet_py")
    library.addHandler(skipped)
    try:
        code = _run(argv)
    finally:
        library.removeHandler(skipped)
    return 1 if code == 0 and skipped.count else code


def _run(argv: list[str] | None) -> int:
    try:
        args = darknet_argv(sys.argv[1:] if argv is None else list(argv))
        code = cli.main(args=args, prog_name="darknet-py", standalone_mode=False)
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
    return code if isinstance(code, int) else 0  # a command's own exit status (cfg diff)


if __name__ == "__main__":
    sys.exit(main())
