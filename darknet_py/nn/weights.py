"""Darknet ``.weights`` files: read into a model, write from a model, byte for byte.

Format (``load_weights_upto`` / ``save_weights_upto`` in Darknet's parser.c):
a header of int32 major, minor, revision and ``seen`` (images trained on),
stored as uint64 when ``major*10 + minor >= 2`` and as uint32 before; then,
layer by layer, each layer's float32 tensors in the order the layer lists in
``darknet_tensors()``.  A file may stop early at a layer boundary (a partial
file such as ``yolov4-tiny.conv.29``): the remaining layers keep their values.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import WeightsError
from ..files import atomic_write, read_input

if TYPE_CHECKING:
    from .model import Darknet

log = logging.getLogger(__name__)


@dataclass
class WeightsHeader:
    """The header of a ``.weights`` file."""

    major: int = 0
    minor: int = 2
    revision: int = 5
    seen: int = 0

    @property
    def wide_seen(self) -> bool:
        """Whether ``seen`` is stored as 64 bits."""
        return self.major * 10 + self.minor >= 2

    @property
    def nbytes(self) -> int:
        return 12 + (8 if self.wide_seen else 4)

    def to_bytes(self) -> bytes:
        head = struct.pack("<3i", self.major, self.minor, self.revision)
        return head + struct.pack("<Q" if self.wide_seen else "<I", self.seen)

    @classmethod
    def from_bytes(cls, data: bytes, path: str = "<bytes>") -> WeightsHeader:
        if len(data) < 12:
            raise WeightsError(f"{path}: {len(data)} bytes is too short for a .weights header "
                               "(at least 16)")
        major, minor, revision = struct.unpack_from("<3i", data)
        if not (0 <= major < 1000 and 0 <= minor < 1000):
            raise WeightsError(f"{path}: not a Darknet .weights file (header version "
                               f"{major}.{minor}.{revision})")
        header = cls(major, minor, revision)
        if len(data) < header.nbytes:
            raise WeightsError(f"{path}: {len(data)} bytes is too short for a .weights header "
                               f"({header.nbytes})")
        header.seen = struct.unpack_from("<Q" if header.wide_seen else "<I", data, 12)[0]
        return header


@dataclass
class LoadReport:
    """What ``load_weights`` did."""

    header: WeightsHeader
    layers_loaded: int  # layers 0..layers_loaded-1 were read from the file
    floats_read: int
    partial: bool  # the file stopped before the last layer with weights


def load_tensors(model: Darknet, i: int) -> list[torch.Tensor]:
    """Tensors that loading reads for layer ``i`` (honouring dontload / dontloadscales)."""
    if model.cfg.layers[i].dontload:
        return []
    return model.layers[i].loaded_tensors()


def _numel(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() for t in tensors)


def expected_floats(model: Darknet, upto: int | None = None) -> int:
    """Number of floats a full ``.weights`` file for ``model`` holds (layers < upto)."""
    n = len(model.layers) if upto is None else upto
    return sum(_numel(load_tensors(model, i)) for i in range(n))


def read_weights(path: str | Path) -> tuple[WeightsHeader, np.ndarray]:
    """Header and float32 payload of a ``.weights`` file."""
    p = Path(path)
    data = read_input(p, "weights file", WeightsError)
    header = WeightsHeader.from_bytes(data, str(p))
    body = len(data) - header.nbytes
    if body % 4:
        raise WeightsError(f"{p}: {body} bytes after the header is not a whole number of "
                           "float32 values (truncated or not a .weights file)")
    return header, np.frombuffer(data, dtype="<f4", offset=header.nbytes)


def _layer_of_float(model: Darknet, index: int) -> int:
    """The layer whose weights hold float ``index`` of a ``.weights`` file."""
    pos = 0
    for i in range(len(model.layers)):
        pos += _numel(load_tensors(model, i))
        if index < pos:
            return i
    return len(model.layers) - 1


def load_weights(model: Darknet, path: str | Path, upto: int | None = None) -> LoadReport:
    """Read ``path`` into ``model``; ``upto`` loads only layers ``< upto`` (Darknet's partial).

    The file must end exactly at a layer boundary.  Without ``upto`` it must not
    hold more floats than the cfg needs; a file that ends early loads the layers
    it has (partial weights) and leaves the rest as they are.
    """
    header, floats = read_weights(path)
    n_layers = len(model.layers) if upto is None else min(upto, len(model.layers))
    total = expected_floats(model, n_layers)
    found = floats.size
    cfg = model.cfg.path
    bad = np.flatnonzero(~np.isfinite(floats[:total]))
    if bad.size:  # refused before anything is copied into the model
        raise WeightsError(f"{path}: holds NaN or infinite values, from layer "
                           f"{_layer_of_float(model, int(bad[0]))} on (the run that wrote it "
                           "diverged); use an earlier checkpoint")
    pos = 0
    loaded = 0
    with torch.no_grad():
        for i in range(n_layers):
            tensors = load_tensors(model, i)
            need = _numel(tensors)
            if need == 0:
                loaded = i + 1
                continue
            if pos == found:
                break
            if pos + need > found:
                raise WeightsError(
                    f"{path}: does not fit {cfg}: the cfg expects {total} floats, the file has "
                    f"{found}; it runs out in layer {i} ([{model.cfg.layers[i].kind}], needs "
                    f"{need} floats at offset {pos}, {found - pos} left)")
            for t in tensors:
                chunk = torch.from_numpy(floats[pos: pos + t.numel()].copy()).view_as(t)
                t.copy_(chunk.to(device=t.device, dtype=t.dtype))
                pos += t.numel()
            loaded = i + 1
    if upto is None and pos < found:
        raise WeightsError(f"{path}: does not fit {cfg}: the cfg expects {total} floats, the file "
                           f"has {found} ({found - total} too many)")
    if total and pos == 0:
        raise WeightsError(f"{path}: holds no weights (the cfg {cfg} expects {total} floats)")
    partial = pos < total
    if partial:
        log.info("%s: partial weights, loaded layers 0..%d (%d of %d floats); the other layers "
                 "keep their initial values", path, loaded - 1, pos, total)
    model.header = WeightsHeader(header.major, header.minor, header.revision, header.seen)
    return LoadReport(header, loaded, pos, partial)


def weights_bytes(model: Darknet, upto: int | None = None,
                  header: WeightsHeader | None = None) -> bytes:
    """The ``.weights`` file content for ``model`` (layers ``< upto``)."""
    header = header or model.header
    n = len(model.layers) if upto is None else min(upto, len(model.layers))
    parts = [header.to_bytes()]
    for i in range(n):
        for t in model.layers[i].darknet_tensors():
            parts.append(t.detach().to("cpu", torch.float32).contiguous().numpy()
                         .astype("<f4", copy=False).tobytes())
    return b"".join(parts)


def save_weights(model: Darknet, path: str | Path, upto: int | None = None,
                 header: WeightsHeader | None = None) -> None:
    """Write ``model`` as a Darknet ``.weights`` file (atomically)."""
    atomic_write(path, weights_bytes(model, upto, header))


def save_partial(model: Darknet, path: str | Path, upto: int) -> None:
    """Darknet's ``partial``: layers ``< upto`` with ``seen`` reset (how
    ``yolov4-tiny.conv.29`` is made from ``yolov4-tiny.weights``)."""
    if not 0 < upto <= len(model.layers):
        raise WeightsError(f"partial: the layer count must be 1..{len(model.layers)}, got {upto}")
    save_weights(model, path, upto, WeightsHeader(seen=0))
