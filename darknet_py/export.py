"""Deployment exports: ONNX, TorchScript and ``torch.export`` programs.

Each export takes the eval-mode model, whose output is the decoded ``N x B x (5+C)``
tensor of ``model(x)`` (boxes in input pixels, objectness, class probabilities);
the batch dimension stays dynamic.  NMS is left to the caller, as in ``model(x)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .model import Darknet
from .weights import atomic_write

log = logging.getLogger(__name__)

ONNX_OPSET = 18  # Mish is an ONNX operator from opset 18


def _example(model: Darknet, batch: int = 2) -> torch.Tensor:
    # batch 2: torch.export treats a size-1 example dimension as a constant
    p = next(model.parameters(), None)
    device = p.device if p is not None else "cpu"
    return torch.rand(batch, 3, model.height, model.width, device=device)


def export_program(model: Darknet) -> torch.export.ExportedProgram:
    """``torch.export`` program of ``model`` (eval mode, dynamic batch)."""
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    return torch.export.export(model, (_example(model),), dynamic_shapes=({0: batch},))


def save_program(model: Darknet, path: str | Path) -> None:
    """Save the ``torch.export`` program (``.pt2``); load with ``torch.export.load``."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    torch.export.save(export_program(model), tmp)
    atomic_write(path, tmp.read_bytes())
    tmp.unlink()


def export_torchscript(model: Darknet, path: str | Path) -> None:
    """Save a traced TorchScript module; load with ``torch.jit.load``."""
    model = model.eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, _example(model))
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    torch.jit.save(traced, str(tmp))
    atomic_write(path, tmp.read_bytes())
    tmp.unlink()


def export_onnx(model: Darknet, path: str | Path, opset: int = ONNX_OPSET) -> None:
    """Export to ONNX: input ``images`` (N x 3 x H x W), output ``detections`` (N x B x 5+C)."""
    try:
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        from .errors import DarknetError

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
