"""Training the YOLOv2 and Gaussian YOLOv3 heads: ``DarknetLoss`` over ``[region]`` and
``[Gaussian_yolo]`` gives the literal ports' deltas as gradients and Darknet's ``l.cost``,
and ``detector train`` runs a cfg with each head."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.train import TrainConfig, train

from . import darknet_gaussian_reference as gref
from . import darknet_region_reference as rref
from .conftest import COCO128, ROOT, requires_shared

REGION = """[net]
batch=4
subdivisions=2
width=64
height=64
channels=3
learning_rate=0.001
burn_in=2
max_batches={max_batches}
policy=steps
steps=100
scales=.1
momentum=0.9
decay=0.0005

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters={filters}
size=1
stride=1
pad=1
activation=linear

"""

REGION_HEAD = """[region]
anchors=0.57,0.68, 1.87,2.06, 3.34,5.47
bias_match=1
classes=3
coords=4
num=3
softmax=1
jitter=.2
rescore=1
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
thresh=.6
random=0
"""

GAUSSIAN_HEAD = """[Gaussian_yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=3
num=3
jitter=.3
ignore_thresh=.5
truth_thresh=1
iou_thresh=0.3
uc_normalizer=1.0
random=0
"""


def _targets(rng, batch, classes):
    rows = []
    for b in range(batch):
        for _ in range(int(rng.integers(1, 4))):
            rows.append([b, int(rng.integers(0, classes)), *rng.uniform(0.1, 0.9, 2),
                         *rng.uniform(0.1, 0.6, 2)])
    return torch.tensor(rows, dtype=torch.float32)


@pytest.mark.parametrize("kind", ["region", "Gaussian_yolo"])
def test_loss_gradient_is_darknets_delta(kind):
    head, per = (REGION_HEAD, 5) if kind == "region" else (GAUSSIAN_HEAD, 9)
    model = Darknet.from_text(REGION.format(max_batches=10, filters=3 * (per + 3)) + head)
    model.train()
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.uniform(0, 1, (2, 3, 64, 64)).astype(np.float32))
    targets = _targets(rng, 2, 3)
    raw = model(x)[0]
    raw.retain_grad()
    loss, stats = model.loss([raw], targets, seen=100)
    loss.backward()
    n, _, h, w = raw.shape
    truths = [targets[targets[:, 0] == b][:, [2, 3, 4, 5, 1]] for b in range(n)]
    flat = raw.detach().double().reshape(n, -1).numpy()
    if kind == "region":
        anchors = [0.57, 0.68, 1.87, 2.06, 3.34, 5.47]
        opts = {"softmax": 1, "thresh": .6, "classfix": 0, "noobject_scale": 1,
                "object_scale": 5, "class_scale": 1, "coord_scale": 1, "rescore": 1,
                "bias_match": 1}
        delta = np.concatenate([rref.region_delta(flat[b].tolist(), truths[b].tolist(), w, h,
                                                  3, 3, anchors, opts, 100) for b in range(n)])
        assert stats[0].line(model.cfg.layers[-1]).startswith("Region Avg IOU: ")
    else:
        l = gref.GaussianLayer(w=w, h=h, n=3, classes=3, mask=[0, 1, 2],  # noqa: E741
                               biases=[10, 14, 23, 27, 37, 58], max_boxes=4, iou_thresh=0.3)
        table = np.zeros((n, 20), np.float32)
        for b, t in enumerate(truths):
            table[b, : t.numel()] = t.reshape(-1).numpy()
        out = gref.forward_output(l, raw.detach().reshape(-1).numpy(), n)
        delta = gref.forward_gaussian_yolo_layer(l, out, table, n, 64, 64)["delta"]
        assert stats[0].line(model.cfg.layers[-1]).startswith(f"Region {len(model.layers) - 1}")
    np.testing.assert_allclose(-raw.grad.reshape(-1).numpy(), delta, rtol=1e-4, atol=1e-5)
    cost = float(np.sum(np.square(delta, dtype=np.float64)))
    assert loss.detach().item() == pytest.approx(cost / n, rel=1e-4)  # one head: l.cost / batch
    assert stats[0].cost == pytest.approx(cost, rel=1e-4) and stats[0].count > 0


@requires_shared
@pytest.mark.parametrize("kind", ["region", "Gaussian_yolo"])
def test_detector_train_runs_each_head(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    images = sorted((COCO128 / "images" / "train2017").glob("*.jpg"))[:8]
    (tmp_path / "train.txt").write_text("".join(f"{p}\n" for p in images))
    data = tmp_path / "t.data"
    data.write_text(f"classes=80\ntrain={tmp_path / 'train.txt'}\nnames="
                    f"{ROOT / 'cfg' / 'coco.names'}\nbackup={tmp_path / 'backup'}\n")
    head, per = (REGION_HEAD, 5) if kind == "region" else (GAUSSIAN_HEAD, 9)
    head = re.sub(r"^classes=3$", "classes=80", head, flags=re.M)
    cfg = tmp_path / "h.cfg"
    cfg.write_text(REGION.format(max_batches=4, filters=3 * (per + 80)) + head)
    lines: list[str] = []
    result = train(TrainConfig(str(data), str(cfg), None, workers=0, seed=1, chart=None),
                   on_iteration=lambda r: lines.extend(r.layer_lines))
    assert result.iterations == 4 and all(math.isfinite(v) for v in result.losses)
    assert len(lines) == 4 and "count: " in lines[-1]
    assert (tmp_path / "backup" / "h_final.weights").exists()


@pytest.mark.parametrize("kind", ["region", "Gaussian_yolo"])
def test_gradients_equal_darknet_cs_train_network_datum(kind, tmp_path):
    """Darknet C's train_network_datum on the same weights, images and truths (stored by
    a generator outside the repo, Darknet's seen = one mini-batch): its cost is our loss
    times the mini-batch, and every conv layer's updates are minus our gradients (with
    Darknet's CPU batch norm ported, whose biases get no update)."""
    from .darknet_cpu_batchnorm import conv_updates, darknet_cpu_batchnorm

    ref = np.load(ROOT / "tests" / "data" / "darknet_head_gradients.npz")
    head, per = (REGION_HEAD, 5) if kind == "region" else (GAUSSIAN_HEAD, 9)
    weights = tmp_path / "w.weights"
    weights.write_bytes(ref[f"{kind}_weights"].tobytes())
    model = Darknet.from_text(REGION.format(max_batches=10, filters=3 * (per + 3)) + head)
    model.load_weights(weights)
    model.train()
    x = torch.from_numpy(ref[f"{kind}_x"])
    targets = torch.from_numpy(ref[f"{kind}_targets"])
    with darknet_cpu_batchnorm():
        loss, _ = model.loss(model(x), targets, seen=2)
        loss.backward()
    assert loss.detach().item() * 2 == pytest.approx(float(ref[f"{kind}_error"][0]), rel=1e-4)
    ours = conv_updates(model).numpy()
    expect = ref[f"{kind}_updates"]
    np.testing.assert_allclose(ours, expect, rtol=1e-4, atol=1e-5 * np.abs(expect).max())
