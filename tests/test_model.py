"""The Darknet module as PyTorch users hold it: pickling, no side effects, copies."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from darknet_py import Darknet, Detector
from darknet_py.infer.export import export_torchscript

from .conftest import ROOT

TINY = ROOT / "cfg" / "yolov4-tiny.cfg"


@pytest.fixture(scope="module")
def tiny():
    model = Darknet(TINY, width=96, height=96)
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    return model


def test_whole_model_pickles(tiny):
    buf = io.BytesIO()
    torch.save(tiny, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), tiny.eval()(x), rtol=0, atol=0)
    assert [type(m.act).__name__ for m in again.layers[:2]] == ["LeakyReLU", "LeakyReLU"]


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_forward_with_targets_changes_nothing_on_the_model(tiny):
    tiny.train()
    attributes = set(vars(tiny))
    before = {k: v for k, v in _state(tiny).items() if "running" not in k
              and "num_batches" not in k}
    loss = tiny(torch.rand(2, 3, 96, 96), torch.tensor([[0, 1, .5, .5, .2, .3]]))
    assert loss.ndim == 0 and set(vars(tiny)) == attributes
    after = tiny.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_detector_leaves_the_callers_model_as_it_was(tiny, device):
    tiny.train()
    before = _state(tiny)
    detector = Detector(tiny, device=device, half=True)
    assert detector.model is not tiny
    assert tiny.training and all(p.dtype == torch.float32 and p.device.type == "cpu"
                                 for p in tiny.parameters())
    image = np.random.default_rng(0).random((50, 70, 3), dtype=np.float32)
    detector([image])
    assert tiny.training
    assert all(torch.equal(v, tiny.state_dict()[k]) for k, v in before.items())
    p = next(detector.model.parameters())
    assert p.dtype == torch.float16 and p.device.type == device
    assert not detector.model.training


def test_detector_uses_a_ready_model_as_it_is(tiny):
    tiny.eval()
    assert Detector(tiny).model is tiny  # eval, CPU, float32: no copy


def test_export_leaves_a_train_mode_model_in_train_mode(tiny, tmp_path):
    tiny.train()
    export_torchscript(tiny, tmp_path / "m.ts")
    assert tiny.training


def test_resized_keeps_weights_and_header(tiny):
    tiny.seen = 1234
    bigger = tiny.resized(128, 160)
    assert (bigger.width, bigger.height, bigger.seen) == (128, 160, 1234)
    assert all(torch.equal(v, tiny.state_dict()[k]) for k, v in bigger.state_dict().items())
    bigger.seen = 5
    assert tiny.seen == 1234


def test_boxes_at_another_input_size_are_the_resized_models():
    """model(x) on a 608 input of a model built at 416 decodes from 608, as Darknet's
    resize_network does: centres and sizes both in 608-pixel units."""
    torch.manual_seed(0)
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg")
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    model.eval()
    for size in (608, 320):
        x = torch.rand(1, 3, size, size)
        with torch.no_grad():
            ours, theirs = model(x), model.resized(size, size).eval()(x)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-3)
        assert float(ours[0, :, 0].max()) > 0.9 * size  # centres span the whole input


def test_the_api_defaults_to_the_models_device(tiny, monkeypatch):
    """Detector, evaluate_map, validate_detector, recall_lines and run_benchmark run where
    the model is unless told otherwise; TrainConfig picks CUDA when there is one, as the
    command line does."""
    import inspect

    from darknet_py.eval.map import evaluate_map
    from darknet_py.eval.recall import recall_lines
    from darknet_py.eval.valid import validate_detector
    from darknet_py.infer.benchmark import run_benchmark
    from darknet_py.nn.model import module_device
    from darknet_py.train import TrainConfig

    assert module_device(tiny) == torch.device("cpu")
    assert module_device(torch.nn.Identity()) == torch.device("cpu")
    assert module_device(torch.nn.Linear(2, 2, device="meta")).type == "meta"
    assert Detector(tiny).device == torch.device("cpu")
    for fn in (Detector.__init__, evaluate_map, validate_detector, recall_lines,
               run_benchmark):
        assert inspect.signature(fn).parameters["device"].default is None, fn.__name__
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert TrainConfig("a.data", "a.cfg").device == "cuda"
    assert TrainConfig("a.data", "a.cfg", device="cpu").device == "cpu"
