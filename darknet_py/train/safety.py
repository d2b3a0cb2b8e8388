"""What keeps a training run's files safe: signals caught from the first moment, and a
backup folder checked before the first iteration."""

from __future__ import annotations

import logging
import signal
import tempfile
from pathlib import Path

from ..errors import DataError

log = logging.getLogger(__name__)


class StopFlag:
    """SIGINT/SIGTERM set a flag; the loop saves and stops after the current iteration."""

    def __init__(self):
        self.set = False
        self._old: dict[int, object] = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        log.warning("%s: saving and stopping after this iteration",
                    signal.Signals(signum).name)
        self.set = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def check_writable(folder: Path) -> None:
    """A one-line ``DataError`` unless checkpoints can be written into ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise DataError(f"{folder}: cannot write checkpoints there "
                        f"({exc.strerror or exc}); set backup= in the .data file") from None
