"""Exports: ONNX (run by onnxruntime), TorchScript and torch.export give model(x)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.image import load_image, resize_image
from darknet_py.infer.export import export_onnx, export_torchscript, save_program

from .conftest import IMAGES, requires_shared


def _reference_model(ref_models, name: str) -> Darknet:
    """A family cfg with the reference's deterministic random weights (gen_weights.py)."""
    model = Darknet(ref_models.cfg(name))
    model.load_weights(ref_models.weights(name))
    return model.eval()


def _images(n: int, size: int) -> torch.Tensor:
    """The sample photos as network input (Darknet's resize), repeated to ``n``."""
    pics = [resize_image(load_image(p), size, size) for p in IMAGES]
    batch = np.stack([pics[i % len(pics)] for i in range(n)]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(batch))


def _assert_same(got: np.ndarray, ref: np.ndarray) -> None:
    # boxes are input pixels (up to ~500, float32 steps of 3e-5 there); the rest are in [0, 1]
    scale = np.maximum(np.abs(ref[..., :4]).max(), 1.0)
    np.testing.assert_allclose(got[..., :4], ref[..., :4], rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(got[..., 4:], ref[..., 4:], rtol=0, atol=1e-4)


@requires_shared
@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov4-csp"])
def test_onnx_matches_pytorch_on_sample_images(name, ref_models, tmp_path):
    import onnx
    import onnxruntime as ort

    model = _reference_model(ref_models, name)
    path = tmp_path / "model.onnx"
    export_onnx(model, path)
    proto = onnx.load(path)
    assert proto.opset_import[0].version >= 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 4):
        x = _images(n, model.width)
        with torch.no_grad():
            ref = model(x).numpy()
        [got] = session.run(None, {"images": x.numpy()})
        assert got.shape == ref.shape == (n, ref.shape[1], 85)
        _assert_same(got, ref)


@requires_shared
def test_torchscript_and_exported_program_match_pytorch(ref_models, tmp_path):
    model = _reference_model(ref_models, "yolov4-tiny")
    export_torchscript(model, tmp_path / "m.ts")
    save_program(model, tmp_path / "m.pt2")
    scripted = torch.jit.load(str(tmp_path / "m.ts"))
    program = torch.export.load(tmp_path / "m.pt2").module()
    for n in (1, 3):
        x = _images(n, model.width)
        with torch.no_grad():
            ref = model(x)
            assert torch.equal(scripted(x), ref)
            torch.testing.assert_close(program(x), ref, rtol=0, atol=1e-4)
