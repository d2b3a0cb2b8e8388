"""Self-contained PyTorch checkpoints and model loading.

A ``.pt`` holds the ``state_dict`` plus the cfg text, class names and ``.weights``
header, so ``load("model.pt")`` needs no other file and saving back to ``.weights``
reproduces the original bytes.  ``load`` is the one way models are loaded, by the
API and the command line alike.
"""

from __future__ import annotations

import io
import logging
import pickle
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import torch

from .. import assets
from ..cfg import Cfg, parse_cfg
from ..errors import DarknetError, WeightsError
from ..nn.model import Darknet
from ..files import atomic_write
from ..nn.weights import WeightsHeader

FORMAT = "darknet-py"
VERSION = 1

log = logging.getLogger(__name__)


def checkpoint_dict(model: Darknet, names: Sequence[str] | None = None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a ``.pt`` checkpoint holds (``extra`` entries are stored alongside)."""
    names = names if names is not None else getattr(model, "names", None)
    return {"format": FORMAT, "version": VERSION, "cfg": model.cfg_text,
            "cfg_path": model.cfg.path, "width": model.width, "height": model.height,
            "names": list(names) if names is not None else None,
            "header": asdict(model.header),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            **(extra or {})}


def save(model: Darknet, path: str | Path, names: Sequence[str] | None = None,
         extra: dict[str, Any] | None = None) -> None:
    """Save ``model`` as a self-contained ``.pt`` file (atomically)."""
    buf = io.BytesIO()
    torch.save(checkpoint_dict(model, names, extra), buf)
    atomic_write(path, buf.getvalue())


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dictionary stored in a darknet-py ``.pt`` file."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: checkpoint file not found" if not p.exists()
                           else f"{p}: is not a file")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError,
            ValueError, OSError, TypeError, AttributeError, KeyError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{p}: not a readable PyTorch checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise WeightsError(f"{p}: not a darknet-py checkpoint (no cfg inside); convert it "
                           "from .weights with 'darknet-py convert'")
    _check_schema(ckpt, p)
    return ckpt


# key -> (type, required) of a darknet-py checkpoint
SCHEMA: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "cfg": (str, True), "state_dict": (dict, True), "header": (dict, True),
    "names": ((list, type(None)), False), "width": ((int, type(None)), False),
    "height": ((int, type(None)), False), "cfg_path": ((str, type(None)), False),
}


def _check_schema(ckpt: dict[str, Any], p: Path) -> None:
    """A ``WeightsError`` naming the first key of ``ckpt`` that is missing or mistyped."""
    for key, (kind, required) in SCHEMA.items():
        if key not in ckpt:
            if required:
                raise WeightsError(f"{p}: damaged checkpoint: no '{key}' entry")
            continue
        if not isinstance(ckpt[key], kind):
            raise WeightsError(f"{p}: damaged checkpoint: '{key}' is a "
                               f"{type(ckpt[key]).__name__}")
    bad = [k for k, v in ckpt["state_dict"].items()
           if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{p}: damaged checkpoint: state_dict entry {bad[0]!r} is not a "
                           "tensor")
    fields = set(WeightsHeader.__dataclass_fields__)
    header = ckpt["header"]
    if set(header) - fields or not all(isinstance(v, int) for v in header.values()):
        raise WeightsError(f"{p}: damaged checkpoint: header {header!r} is not "
                           f"{sorted(fields)} integers")
    names = ckpt.get("names")
    if names is not None and not all(isinstance(n, str) for n in names):
        raise WeightsError(f"{p}: damaged checkpoint: names are not all text")


def load(path: str | Path, cfg: str | Path | Cfg | None = None) -> Darknet:
    """A ``Darknet`` model from a ``.pt`` checkpoint, or from ``.weights`` plus its ``cfg``.

    Embedded files (``yolov4-tiny.cfg``, ``yolov4-tiny.weights``...) may be named without a
    folder.  ``cfg`` is not read for a ``.pt``.  ``model.names`` holds the class names
    stored in the checkpoint (``None`` if none).
    """
    p = assets.resolve(path)
    if p.suffix.lower() != ".pt":
        if cfg is None:
            raise DarknetError(f"{p}: a .weights file needs its cfg (pass cfg=...)")
        model = Darknet(cfg if isinstance(cfg, Cfg) else assets.resolve(cfg))
        report = model.load_weights(p)  # refuses NaN or infinite weights itself
        if report.partial:
            log.warning("%s: partial weights: layers 0..%d of %d loaded; the rest keep "
                        "their initial values", p, report.layers_loaded - 1, len(model.layers))
        return model
    ckpt = read_checkpoint(p)
    model = Darknet(_stored_cfg(ckpt, p),
                    ckpt.get("width"), ckpt.get("height"))
    restore(model, ckpt, p)
    model.names = ckpt.get("names")
    return model


def model_cfg(path: str | Path) -> str | Path | Cfg:
    """A cfg file as it is, or the cfg inside a ``.pt`` checkpoint named in its place."""
    if Path(path).suffix.lower() != ".pt":
        return path
    return _stored_cfg(read_checkpoint(path), path)


def _stored_cfg(ckpt: dict[str, Any], path: str | Path) -> Cfg:
    """The cfg a checkpoint carries, named by the file it came from."""
    return parse_cfg(ckpt["cfg"], ckpt.get("cfg_path") or str(path))


def check_finite(model: Darknet, path: str | Path) -> None:
    """A ``WeightsError`` if any loaded weight is NaN or infinite (a diverged run)."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise WeightsError(f"{path}: {name} holds NaN or infinite values (the run that "
                               "wrote it diverged); use an earlier checkpoint")


def restore(model: Darknet, ckpt: dict[str, Any], path: str | Path) -> None:
    """Put a checkpoint's tensors and ``.weights`` header into ``model``."""
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit the cfg "
                           f"({str(exc).splitlines()[0]})") from None
    model.header = WeightsHeader(**ckpt["header"])
    check_finite(model, path)
