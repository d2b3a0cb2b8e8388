"""Exception types raised for user mistakes (bad cfg, weights, images, data files).

Each carries a one-line message that names the file and the problem; the CLI
prints that line and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class DarknetError(Exception):
    """Base class of every error caused by user input."""


class CfgError(DarknetError):
    """A malformed or unsupported ``.cfg`` file (names file, line and problem)."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(f"{where}{message}")


class WeightsError(DarknetError):
    """A ``.weights`` (or checkpoint) file that does not fit its cfg."""


class ImageError(DarknetError):
    """A missing or undecodable image file."""


class DataError(DarknetError):
    """A problem with a ``.data`` file, a names file, an image list or labels."""
