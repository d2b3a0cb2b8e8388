"""Darknet's small text formats: ``.data`` files, names files and image lists."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..files import read_input

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
        return self.count("classes")

    def count(self, key: str, default: int | None = None) -> int | None:
        """A whole-number key of at least 1 (``classes=``, ``top=``), else ``default``; any
        other value is a one-line ``DataError``."""
        value = self.options.get(key)
        if value is None:
            return default
        if not _INT.fullmatch(value.strip()) or int(value) < 1:
            raise DataError(f"{self.path}: {key}={value!r} must be a whole number of at "
                            "least 1")
        return int(value)

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

    def image_list(self, key: str, fallback: str | None = None) -> list[str]:
        """The image paths of the list named by ``key`` (else ``fallback``), each checked to
        exist; relative paths are tried as written, then beside the list file."""
        name = key if key in self.options else fallback
        if name is None or name not in self.options:
            keys = f"{key}=" + (f" or {fallback}=" if fallback else "")
            raise DataError(f"{self.path}: no {keys} line naming an image list")
        path = self.resolve(name)
        assert path is not None
        images = read_image_list(path)
        if not images:
            raise DataError(f"{path}: image list is empty")
        return images

    def names(self, model_classes: int | None = None, model: str = "the cfg") -> list[str]:
        """Class names from ``names=`` (Darknet's default ``data/names.list``); with
        ``model_classes``, a count that differs is an error, as in Darknet's detector."""
        path = self.resolve("names", "data/names.list")
        assert path is not None
        names = read_names(path)
        if model_classes is not None and len(names) != model_classes:
            raise DataError(f"{path}: {len(names)} names, but {model} has classes="
                            f"{model_classes} (the names file must list one name per class)")
        classes = self.classes
        if classes is not None and len(names) < classes:
            log.warning("%s: %d names for classes=%d; missing names are shown as numbers",
                        path, len(names), classes)
        return names


def class_name(names: Sequence[str] | None, class_id: int) -> str:
    """The name of class ``class_id``, or its number where ``names`` has none (as Darknet)."""
    return names[class_id] if names is not None and 0 <= class_id < len(names) else str(class_id)


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


def read_image_list(path: str | Path, check: bool = True) -> list[str]:
    """An image list: one path per line, blank lines skipped.  Relative paths that do not
    exist from the working directory are taken relative to the list's folder; with
    ``check`` a missing image is an error naming the list, line and image."""
    p = Path(path)
    out = []
    for number, line in enumerate(_read_text(p, "image list").splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        image = Path(name)
        if not image.is_absolute() and not image.exists() and (p.parent / image).exists():
            image = p.parent / image
        if check and not image.is_file():
            raise DataError(f"{p}:{number}: image {name} not found")
        out.append(str(image))
    return out


# --------------------------------------------------------------------------- labels

# AlexeyAB's ``replace_image_to_label`` (src/utils.c): each pair replaced in turn, first
# occurrence only.  Its ``/images/`` -> ``/labels/`` line is commented out, so a file under a
# folder named ``images`` keeps its labels beside it.
_DARKNET_DIRS = tuple((a.replace("/", sep), b.replace("/", sep)) for sep in ("/", "\\")
                      for a, b in (("/images/train2017/", "/labels/train2017/"),
                                   ("/images/val2017/", "/labels/val2017/"),
                                   ("/images/train2014/", "/labels/train2014/"),
                                   ("/images/val2014/", "/labels/val2014/"),
                                   ("/JPEGImages/", "/labels/")))
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tiff")
LABEL_RULES = ("darknet", "yolo")  # the order in which ``find_label_file`` tries them


def _with_txt(path: str) -> str:
    """The extension becomes ``.txt``.  Darknet replaces only the extensions it knows
    (jpg, jpeg, png, bmp, ppm, tiff, all-lower or all-upper) and then reads the image
    itself as its labels; darknet-py replaces any extension."""
    stem, ext = os.path.splitext(path)
    return stem + ".txt" if ext else path + ".txt"


def darknet_label_path(image_path: str | Path) -> str:
    """The label file by AlexeyAB's rule: COCO's ``/images/{train,val}{2014,2017}/`` and
    VOC's ``/JPEGImages/`` become ``labels``; any other file has its labels beside it."""
    path = str(image_path)
    for old, new in _DARKNET_DIRS:
        path = path.replace(old, new, 1)
    return _with_txt(path)


def yolo_label_path(image_path: str | Path) -> str | None:
    """The label file of a YOLO-style tree: the last ``/images/`` becomes ``/labels/``
    (None where the path has no ``images`` folder)."""
    path = str(image_path)
    for sep in ("/", "\\"):
        old = f"{sep}images{sep}"
        if old in path:
            head, tail = path.rsplit(old, 1)
            return _with_txt(f"{head}{sep}labels{sep}{tail}")
    return None


def find_label_file(image_path: str | Path) -> tuple[str, str | None]:
    """``(label path, rule)``: AlexeyAB's rule first, then the YOLO-tree rule; the rule is
    None (and the path AlexeyAB's) when neither file exists."""
    darknet = darknet_label_path(image_path)
    if os.path.lexists(darknet):
        return darknet, "darknet"
    yolo = yolo_label_path(image_path)
    if yolo is not None and os.path.lexists(yolo):
        return yolo, "yolo"
    return darknet, None


def label_path(image_path: str | Path) -> str:
    """The label file of an image (``find_label_file``'s path)."""
    return find_label_file(image_path)[0]


@dataclass
class LabelFiles:
    """Where the labels of a list of images are: each image's path and the rule that
    found it (None: no label file)."""

    paths: list[str]
    rules: list[str | None]

    @classmethod
    def find(cls, images: Sequence[str | Path]) -> LabelFiles:
        found = [find_label_file(image) for image in images]
        return cls([p for p, _ in found], [r for _, r in found])

    def summary(self) -> str:
        """One line: how many images have label files, and by which rule."""
        n, have = len(self.rules), sum(r is not None for r in self.rules)
        names = {"darknet": "Darknet's rule (AlexeyAB replace_image_to_label)",
                 "yolo": "the /images/ -> /labels/ fallback"}
        parts = [f"{self.rules.count(r)} by {names[r]}" for r in LABEL_RULES
                 if self.rules.count(r)]
        by = f" ({', '.join(parts)})" if parts else ""
        return f"labels: {have} of {n} images have a label file{by}"


_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _c_int(text: str) -> int:
    """An integer as C's scanf("%d") reads a whole field (ASCII digits only)."""
    if not _INT.fullmatch(text):
        raise ValueError(text)
    return int(text)


def _c_float(text: str) -> float:
    """A number as C's atof reads a whole field: ASCII digits, no '_' (Python's float()
    also takes other scripts' digits and underscores, which Darknet does not)."""
    if not _FLOAT.fullmatch(text):
        raise ValueError(text)
    return float(text)


def parse_labels(text: str, path: str = "<labels>", classes: int | None = None) -> np.ndarray:
    """Label lines ``class cx cy w h`` (relative units) -> (N, 5) float32 array.

    A malformed line, a class id outside ``[0, classes)`` or a box outside
    ``[0, 1]`` (or with zero size) is logged with file and line and skipped.
    """
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        problem = None
        try:
            if len(fields) != 5:
                raise ValueError
            cls = _c_int(fields[0])
            x, y, w, h = (_c_float(v) for v in fields[1:])
        except ValueError:
            problem = "expected 'class cx cy w h'"
        else:
            if cls < 0 or (classes is not None and cls >= classes):
                problem = f"class {cls} is outside 0..{(classes or 1) - 1}"
            elif not all(0.0 <= v <= 1.0 for v in (x, y, w, h)) or w <= 0 or h <= 0:
                problem = "coordinates must be in [0, 1] with a non-zero size"
        if problem:
            log.warning("%s:%d: skipped label %r: %s", path, number, line.strip(), problem)
            continue
        rows.append((cls, x, y, w, h))
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def read_labels(image_paths: Sequence[str], classes: int | None = None,
                files: LabelFiles | None = None) -> list[np.ndarray]:
    """The labels of each image ((N, 5): class, cx, cy, w, h), found by ``find_label_file``
    (or given as ``files``).  An image without a label file has no objects; that is
    logged once for the set.
    """
    files = files or LabelFiles.find(image_paths)
    out, missing = [], []
    for path, rule in zip(files.paths, files.rules):
        if rule is None:
            missing.append(path)
            text = ""
        else:
            text = read_input(path, "label file", DataError).decode("utf-8", errors="replace")
        out.append(parse_labels(text, path, classes))
    if missing:
        log.warning("%d of %d images have no label file (e.g. %s); they count as images "
                    "without objects", len(missing), len(files.paths), missing[0])
    return out
