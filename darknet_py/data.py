"""Darknet's small text formats: ``.data`` files, names files and image lists."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError, read_input

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """A parsed ``.data`` file (``read_data_cfg``): classes, names, train, valid, backup, eval."""

    path: str
    options: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    @property
    def classes(self) -> int | None:
        value = self.options.get("classes")
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise DataError(f"{self.path}: classes={value!r} is not an integer") from None

    def resolve(self, key: str, default: str | None = None) -> Path | None:
        """A path named in the file: as written (relative to the working directory, as
        Darknet reads it), else relative to the ``.data`` file's folder."""
        value = self.options.get(key, default)
        if value is None:
            return None
        p = Path(value)
        if p.is_absolute() or p.exists():
            return p
        beside = Path(self.path).parent / p
        return beside if beside.exists() else p

    def names(self) -> list[str]:
        """Class names from ``names=`` (Darknet's default ``data/names.list``)."""
        path = self.resolve("names", "data/names.list")
        assert path is not None
        names = read_names(path)
        classes = self.classes
        if classes is not None and len(names) < classes:
            log.warning("%s: %d names for classes=%d; missing names are shown as numbers",
                        path, len(names), classes)
        return names


def _read_text(path: Path, what: str) -> str:
    return read_input(path, what, DataError).decode("utf-8", errors="replace")


def read_data_cfg(path: str | Path) -> DataConfig:
    """Read a ``.data`` file: ``key = value`` lines, ``#`` comments."""
    p = Path(path)
    text = _read_text(p, ".data file")
    options: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if "=" not in line:
            raise DataError(f"{p}:{number}: cannot parse {line!r}: expected key = value")
        key, value = (s.strip() for s in line.split("=", 1))
        if not key or not value:
            raise DataError(f"{p}:{number}: cannot parse {line!r}: expected key = value")
        options.setdefault(key, value)
    return DataConfig(str(p), options)


def read_names(path: str | Path) -> list[str]:
    """One class name per line (blank trailing lines dropped)."""
    p = Path(path)
    lines = _read_text(p, "names file").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{p}: names file is empty")
    return [line.strip() for line in lines]


def read_image_list(path: str | Path) -> list[str]:
    """An image list: one path per line, blank lines skipped."""
    lines = _read_text(Path(path), "image list").splitlines()
    return [line.strip() for line in lines if line.strip()]
