"""Darknet's flags, read the way Darknet reads them, before click parses the command line.

Darknet looks each flag up anywhere in argv (``find_arg``, ``find_int_arg``...), so every
``detector`` sub-command accepts every flag and ignores those it does not use; its flags
are single-dash words (``-dont_show``, ``-iou_thresh``), which click would read as
clusters of one-letter options.  ``darknet_argv`` rewrites a command line first: a
Darknet flag the command declares becomes its POSIX spelling (``-iou_thresh 0.3`` ->
``--iou-thresh 0.3``), one it does not declare is dropped with its value (logged at
debug level), and any other single-dash word is refused in one line instead of being
split into letters.
"""

from __future__ import annotations

import logging

import click

log = logging.getLogger(__name__)

# Darknet's run_detector / main flags: those followed by a value, and the switches.
VALUE_FLAGS = frozenset({
    "-thresh", "-iou_thresh", "-hier", "-points", "-c", "-s", "-num_of_clusters", "-width",
    "-height", "-out", "-out_filename", "-prefix", "-gpus", "-i", "-chart", "-mjpeg_port",
    "-json_port", "-avgframes", "-http_post_host", "-time_limit_sec", "-mAP_epochs", "-nms",
})
SWITCHES = frozenset({
    "-dont_show", "-benchmark", "-benchmark_layers", "-show", "-letter_box", "-map",
    "-check_mistakes", "-show_imgs", "-dontdraw_bbox", "-ext_output", "-save_labels",
    "-clear", "-fullscreen", "-quantized", "-random_gen",
})


def _command(argv: list[str]) -> tuple[click.Command | None, int]:
    """The command ``argv`` names and the index of its first argument."""
    from .app import cli

    command: click.Command = cli
    k = 0
    while isinstance(command, click.Group):
        while k < len(argv) and argv[k].startswith("-"):  # the group's own options
            k += 1
        if k >= len(argv) or argv[k] not in command.commands:
            return None, k
        command = command.commands[argv[k]]
        k += 1
    return command, k


def _declared(command: click.Command) -> dict[str, str]:
    """The command's single-dash word spellings -> its POSIX spelling of the same option."""
    out = {}
    for param in command.params:
        opts = [*param.opts, *getattr(param, "secondary_opts", [])]
        long = next((o for o in opts if o.startswith("--")), None)
        for o in opts:
            if o.startswith("-") and not o.startswith("--") and len(o) > 2:
                out[o] = long or o
    return out


def _short_options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in getattr(p, "opts", [])
            if len(o) == 2 and o.startswith("-")}


def darknet_argv(argv: list[str]) -> list[str]:
    """``argv`` with Darknet's flags rewritten for click (see the module doc)."""
    command, start = _command(argv)
    if command is None:
        return list(argv)
    declared, short = _declared(command), _short_options(command)
    out = list(argv[:start])
    k = start
    while k < len(argv):
        word = argv[k]
        k += 1
        if word == "--":
            out += argv[k - 1:]
            break
        if not word.startswith("-") or word.startswith("--") or _is_number(word):
            out.append(word)
            continue
        if word in declared:
            out.append(declared[word])
            continue
        if word in short:  # -i 0, -o file, -v
            out.append(word)
            continue
        if word in VALUE_FLAGS:
            if k >= len(argv):
                raise click.UsageError(f"Darknet flag {word} needs a value")
            log.debug("%s %s: not used by this command (Darknet ignores it too)", word, argv[k])
            k += 1
            continue
        if word in SWITCHES:
            log.debug("%s: not used by this command (Darknet ignores it too)", word)
            continue
        if len(word) > 2:
            raise click.UsageError(f"unknown flag {word} (see --help)")
        out.append(word)
    return out


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
