"""Files named by the user, read with one-line errors, and files written atomically."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import DarknetError


# The largest file of each kind read whole (a bigger one is refused, not swapped in).
MAX_BYTES = {"cfg file": 64 << 20, ".data file": 1 << 20, "names file": 16 << 20,
             "image list": 1 << 30, "label file": 64 << 20, "image file": 1 << 30}
DEFAULT_MAX_BYTES = 16 << 30  # weights and checkpoints


def read_input(path: str | Path, what: str, error: type[DarknetError]) -> bytes:
    """Bytes of a user-named file, or ``error`` naming the file and why it cannot be read:
    missing, a folder, not a regular file (a FIFO, a device: reading those could block or
    never end) or larger than a file of its kind can be."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{path}: is a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path}: not a regular file (a pipe or device), not a {what}")
        limit = MAX_BYTES.get(what, DEFAULT_MAX_BYTES)
        if info.st_size > limit:
            raise error(f"{path}: {info.st_size:,} bytes is too large for a {what} "
                        f"(at most {limit:,})")
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; a failure (no
    such folder, read-only, disk full) is a ``DarknetError`` naming the file, and leaves
    any previous file as it was."""
    p = Path(path)
    tmp = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as exc:
        _remove(tmp)
        reason = exc.strerror or str(exc)
        raise DarknetError(f"{p}: cannot write ({reason}); nothing was replaced") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)
