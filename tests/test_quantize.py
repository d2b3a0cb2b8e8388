"""Opt-in int8 through ONNX Runtime: it runs, keeps the contract and stays near fp32."""

from __future__ import annotations

import pytest
import torch

from darknet_py import Darknet, Detector
from darknet_py.cli import main

from .conftest import ROOT

pytest.importorskip("onnxruntime")

SAMPLE = str(ROOT / "darknet_py" / "assets" / "astronaut.jpg")


@pytest.fixture(scope="module")
def tiny():
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg", 128, 128)
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    return model.eval()


@pytest.mark.slow
def test_int8_model_keeps_the_contract_and_the_detections(tiny):
    from darknet_py.infer.quantize import quantize_int8

    q = quantize_int8(tiny, [SAMPLE] * 4)
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        fp32, int8 = tiny(x), q(x)
    assert int8.shape == fp32.shape
    obj = (int8[..., 4] - fp32[..., 4]).abs()
    assert float(obj.mean()) < 0.02  # objectness stays close on average
    ours, theirs = Detector(q)([SAMPLE])[0].probs, Detector(tiny)([SAMPLE])[0].probs
    assert int(ours.max(0).values.argmax()) == int(theirs.max(0).values.argmax())  # person
    assert float(ours.max()) == pytest.approx(float(theirs.max()), abs=0.1)


@pytest.mark.slow
def test_benchmark_int8(capsys, tmp_path):
    images = tmp_path / "list.txt"
    images.write_text(f"{SAMPLE}\n" * 2)
    assert main(["benchmark", "yolov4-tiny.cfg", "yolov4-tiny.weights", "--size", "64",
                 "--runs", "3", "--int8", str(images)]) == 0
    out = capsys.readouterr().out
    assert "64x64, batch 1, cpu, int8" in out and "quantization time" in out
