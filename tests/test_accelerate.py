"""The inference fast path: same outputs, the source model untouched, outputs released,
torch.compile-clean; and the benchmark command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from darknet_py import Darknet, Detector
from darknet_py.cli import main
from darknet_py.infer.accelerate import InferenceDarknet
from darknet_py.infer.graphs import CudaGraphReplay
from darknet_py.nn.model import LayerPlan

from .conftest import ROOT

PROJECT_CFGS = sorted((ROOT / "cfg").glob("*.cfg"))


def _model(path, size=96):
    torch.manual_seed(0)
    model = Darknet(path, size, size)
    for layer in model.layers:  # plausible statistics keep random networks finite
        if getattr(layer, "bn", None) is not None:
            layer.bn.running_mean.uniform_(-0.1, 0.1)
            layer.bn.running_var.uniform_(0.5, 2.0)
            layer.bn.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("path", PROJECT_CFGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("channels_last", [True, False])
def test_fast_path_gives_the_models_outputs(path, channels_last):
    model = _model(path)
    fast = model.for_inference(channels_last=channels_last)
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        expected, got = model(x), fast(x)
    assert got.shape == expected.shape
    scale = expected.abs().amax(dim=(0, 1))  # per column: boxes in pixels, probabilities
    assert ((got - expected).abs().amax(dim=(0, 1)) <= 1e-5 * scale + 1e-6).all()


def test_fast_path_leaves_the_model_alone():
    model = _model(PROJECT_CFGS[0]).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = model.for_inference(dtype=torch.float64)
    assert model.training and not fast.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert next(fast.parameters()).dtype == torch.float64


def test_detector_on_the_fast_path_finds_the_same():
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg")
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    image = str(ROOT / "darknet_py" / "assets" / "astronaut.jpg")
    slow = Detector(model)([image])[0]
    fast = Detector(model.for_inference())([image])[0]
    np.testing.assert_allclose(fast.probs.numpy(), slow.probs.numpy(), atol=1e-4)
    np.testing.assert_allclose(fast.boxes.numpy(), slow.boxes.numpy(), atol=1e-4)


def test_outputs_are_released_after_their_last_reader():
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg", 64, 64)
    release = LayerPlan.of(list(model.layers)).release
    readers = {}
    for k, layer in enumerate(model.layers):
        for i in getattr(layer, "sources", ()):
            readers.setdefault(i, []).append(k)
    for i, ks in readers.items():
        assert i in release[max(ks)]  # freed by its last reader, not before
    assert sum(len(r) for r in release) == len(readers)


def test_fast_path_compiles_without_graph_breaks():
    fast = InferenceDarknet(_model(PROJECT_CFGS[0], 64))
    compiled = torch.compile(fast, backend="eager", fullgraph=True)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), fast(x))


def test_benchmark_command(capsys, tmp_path):
    out = tmp_path / "b.json"
    assert main(["benchmark", "yolov4-tiny.cfg", "yolov4-tiny.weights", "--size", "64",
                 "--runs", "3", "--vs-opencv", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "64x64, batch 1, cpu, fp32" in text and "BFLOPs per image" in text
    assert "ratio" in text
    figures = json.loads(out.read_text())
    assert figures["parameters"] == 6056606 and figures["median_ms"] > 0
    assert figures["bflops"] == pytest.approx(6.908 * (64 / 416) ** 2, rel=0.01)


def test_cuda_graph_wrapper_runs_cpu_inputs_as_they_are():
    model = _model(PROJECT_CFGS[0], 64)
    graphed = model.for_inference(cuda_graphs=True)
    assert isinstance(graphed, CudaGraphReplay)
    assert (graphed.width, graphed.head_shapes) == (model.width, model.head_shapes)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(graphed(x), graphed.module(x), rtol=0, atol=0)
    assert graphed._graphs == {}  # nothing captured for a CPU input


def test_detector_fast_path_is_a_new_module():
    model = _model(PROJECT_CFGS[0], 64)
    detector = Detector(model, fast=True)
    assert isinstance(detector.model, InferenceDarknet) and not model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_replay_matches_eager_on_the_gpu():
    model = _model(PROJECT_CFGS[0], 64)
    eager = model.for_inference(device="cuda")
    graphed = model.for_inference(device="cuda", cuda_graphs=True)
    x = torch.rand(2, 3, 64, 64, device="cuda")
    with torch.no_grad():
        first, second = graphed(x), graphed(x * 0.5)  # the second replays the graph
        torch.testing.assert_close(first, eager(x))
        torch.testing.assert_close(second, eager(x * 0.5))
    assert len(graphed._graphs) == 1
