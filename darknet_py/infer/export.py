"""Deployment exports: ONNX, TorchScript and ``torch.export`` programs.

Each export takes the eval-mode model, whose output is the decoded ``N x B x (5+C)``
tensor of ``model(x)`` (boxes in input pixels, objectness, class probabilities);
the batch dimension stays dynamic.  NMS is left to the caller, as in ``model(x)``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch

from ..files import atomic_write
from ..nn.model import Darknet
from .detector import inference_model

log = logging.getLogger(__name__)

ONNX_OPSET = 18  # Mish is an ONNX operator from opset 18


def _eval_model(model: Darknet) -> Darknet:
    """``model`` in eval mode where it is (a copy if the caller's is in train mode)."""
    p = next(model.parameters(), None)
    if p is None:
        return inference_model(model, torch.device("cpu"), torch.float32)
    return inference_model(model, p.device, p.dtype)


def _example(model: Darknet, batch: int = 2) -> torch.Tensor:
    # batch 2: torch.export treats a size-1 example dimension as a constant
    p = next(model.parameters(), None)
    device = p.device if p is not None else "cpu"
    return torch.rand(batch, 3, model.height, model.width, device=device)


def _save_atomically(path: str | Path, save: Callable[[str], None]) -> None:
    """Let ``save`` write a temporary file beside ``path``, then publish it atomically."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    try:
        save(str(tmp))
        atomic_write(path, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)


def export_program(model: Darknet) -> torch.export.ExportedProgram:
    """``torch.export`` program of ``model`` in eval mode, with a dynamic batch."""
    model = _eval_model(model)
    batch = torch.export.Dim("batch", min=1, max=4096)
    return torch.export.export(model, (_example(model),), dynamic_shapes=({0: batch},))


def save_program(model: Darknet, path: str | Path) -> None:
    """Save the ``torch.export`` program (``.pt2``); load with ``torch.export.load``."""
    program = export_program(model)
    _save_atomically(path, lambda tmp: torch.export.save(program, tmp))


def export_torchscript(model: Darknet, path: str | Path) -> None:
    """Save a traced TorchScript module (eval mode); load with ``torch.jit.load``."""
    model = _eval_model(model)
    with torch.no_grad():
        traced = torch.jit.trace(model, _example(model))
    _save_atomically(path, lambda tmp: torch.jit.save(traced, tmp))


def export_onnx(model: Darknet, path: str | Path, opset: int = ONNX_OPSET) -> None:
    """Export to ONNX: input ``images`` (N x 3 x H x W), output ``detections`` (N x B x 5+C)."""
    try:
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        from ..errors import DarknetError

        raise DarknetError("ONNX export needs the onnx extra: pip install 'darknet-py[onnx]'") \
            from None
    program = export_program(model)
    onnx_program = torch.onnx.export(program, input_names=["images"],
                                     output_names=["detections"], opset_version=opset,
                                     dynamo=True, verbose=False)
    proto = onnx_program.model_proto
    for value in (proto.graph.input[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    atomic_write(path, proto.SerializeToString())
