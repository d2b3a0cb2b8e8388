"""Eight training iterations against Darknet C's weights, iteration by iteration.

``tests/data/darknet_trajectory.npz``: a tiny cfg (two batch-norm convolutions, a
maxpool, a ``[yolo]`` with CIoU and ``scale_x_y``; batch 4 in 2 subdivisions, momentum,
decay, burn_in 3, a step at 5, a layer with ``learning_rate=0.5``), four fixed 32 x 32
inputs with their truth, Darknet's random initial weights, and the ``.weights`` Darknet C
saved after each of 8 ``train_network`` calls on those inputs:
- ``dk_*``: Darknet's CPU build as released;
- ``fix_*``: the same build with its CPU batch norm made to train as its GPU/cuDNN path
  does: the biases get their gradient, ``normalize_delta_cpu`` divides by
  ``sqrt(variance + eps)``, ``variance_delta`` uses N - 1 like the forward, and the
  rolling statistics move by 0.01.

darknet-py's ``Trainer`` follows ``fix`` to float rounding.  With Darknet's CPU batch norm
ported literally (``tests/darknet_cpu_batchnorm.py``) it follows ``dk`` as closely: these
batch-norm defects are the whole difference between the two.  (Darknet's CPU build going
NaN on the fine-tuning recipe has another cause, named in the README: its -Ofast
``logistic_activate`` gives NaN for logits below about -88.7.)
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.cfg import parse_cfg
from darknet_py.train import TrainConfig
from darknet_py.train.trainer import Trainer

from .darknet_cpu_batchnorm import darknet_cpu_batchnorm

REF = Path(__file__).parent / "data" / "darknet_trajectory.npz"
ITERATIONS = 8


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(REF))


def _weights(ref, key: str, tmp_path: Path) -> dict[str, torch.Tensor]:
    path = tmp_path / f"{key}.weights"
    path.write_bytes(ref[key].tobytes())
    model = Darknet(parse_cfg(str(ref["cfg"])))
    model.load_weights(path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _batches(ref):
    """The two mini-batches of each iteration: (2, 3, 32, 32) inputs and their targets."""
    out = []
    for lo in (0, 2):
        rows = [[i - lo, y[4], *y[:4]] for i in range(lo, lo + 2) for y in ref["Y"][i] if y[0]]
        out.append((torch.from_numpy(ref["X"][lo: lo + 2].copy()),
                    torch.tensor(rows, dtype=torch.float32)))
    return out


def _train(ref, tmp_path: Path) -> tuple[list[dict], list[float]]:
    """darknet-py's Trainer from Darknet's initial weights on the fixed batches; the state
    and the loss after each iteration."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(str(ref["cfg"]))
    start = tmp_path / "start.weights"
    start.write_bytes(ref["dk_0"].tobytes())
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "list.txt").write_text(f"{image}\n")
    data = tmp_path / "t.data"
    data.write_text(f"classes=1\ntrain={tmp_path / 'list.txt'}\nbackup={tmp_path / 'backup'}\n")
    batches = _batches(ref)
    states, losses = [], []
    trainer = Trainer.from_config(TrainConfig(str(data), str(cfg), str(start), workers=0,
                                              chart=None, max_batches=ITERATIONS))
    trainer.loader = lambda start: itertools.cycle(batches)  # the fixed batches

    def on_iteration(report):
        states.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        losses.append(report.loss)

    trainer.on_iteration = on_iteration
    trainer.run()
    return states, losses


def _worst(ours: dict, theirs: dict) -> tuple[float, str]:
    """The largest max|d| / max(1, max|ref|) over the floating tensors, and its name."""
    return max(((ours[k] - theirs[k]).abs().max().item()
                / max(1.0, theirs[k].abs().max().item()), k)
               for k in theirs if theirs[k].dtype.is_floating_point)


def test_trainer_follows_darknet_with_its_gpu_batch_norm(ref, tmp_path):
    states, losses = _train(ref, tmp_path)
    assert len(states) == ITERATIONS
    np.testing.assert_allclose(losses, ref["fix_loss"], rtol=2e-6)
    for it, state in enumerate(states, 1):
        worst, name = _worst(state, _weights(ref, f"fix_{it}", tmp_path))
        assert worst < 5e-6, (it, name, worst)


def test_darknet_cpu_batch_norm_is_the_whole_difference(ref, tmp_path):
    with darknet_cpu_batchnorm():
        states, losses = _train(ref, tmp_path)
    np.testing.assert_allclose(losses, ref["dk_loss"], rtol=1e-5)
    for it, state in enumerate(states, 1):
        worst, name = _worst(state, _weights(ref, f"dk_{it}", tmp_path))
        assert worst < 1e-3, (it, name, worst)  # float rounding grows at rate 0.02


def test_darknet_cpu_never_moves_the_batch_norm_biases(ref, tmp_path):
    first, last = _weights(ref, "dk_0", tmp_path), _weights(ref, f"dk_{ITERATIONS}", tmp_path)
    fixed = _weights(ref, f"fix_{ITERATIONS}", tmp_path)
    for name in first:
        if name.endswith("bn.bias"):
            assert torch.equal(first[name], last[name]) and not torch.equal(first[name],
                                                                            fixed[name])
