"""Darknet's [yolo] loss: gradients equal to Darknet C's deltas, and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.nn.layers import DarknetBatchNorm2d
from darknet_py.ops import box_iou
from darknet_py.train.iou_grad import iou_gradient

from .conftest import REAL_CFG, REAL_WEIGHTS, REFERENCE, requires_shared

PRINTED = {  # what Darknet C printed for the reference iteration
    30: dict(avg_iou=0.832055, count=5, class_loss=2.407326, iou_loss=0.482872,
             total_loss=2.890198),
    37: dict(avg_iou=0.900422, count=2, class_loss=1.145328, iou_loss=11.056964,
             total_loss=12.202292),
}


def _reference(refio):
    return refio.load(REFERENCE / "train_yolov4-tiny.npz")


def _targets(y: np.ndarray) -> torch.Tensor:
    """Darknet's truth array (batch, 200 x [x, y, w, h, class, track]) -> (M, 6) targets."""
    rows = []
    for b, truths in enumerate(y.reshape(y.shape[0], -1, 6)):
        for x, yy, w, h, cls, _track in truths:
            if x == 0:
                break  # Darknet stops at the first empty slot
            rows.append([b, cls, x, yy, w, h])
    return torch.tensor(rows, dtype=torch.float32)


def _yolo_inputs(model: Darknet, ref) -> list[torch.Tensor]:
    """Darknet's [yolo] inputs, recovered from its train-mode [yolo] outputs."""
    heads = []
    for k, index in enumerate(model.yolo_indices):
        out = ref[f"yolo_out_{k}"].astype(np.float64)
        n, c, h, w = out.shape
        out = out.reshape(n, 3, c // 3, h, w)
        s = model.layers[index].scale_x_y
        raw = out.copy()
        xy = (out[:, :, 0:2] + 0.5 * (s - 1)) / s
        raw[:, :, 0:2] = np.log(xy / (1 - xy))
        raw[:, :, 4:] = np.log(out[:, :, 4:] / (1 - out[:, :, 4:]))
        heads.append(torch.tensor(raw.reshape(n, c, h, w), dtype=torch.float32,
                                  requires_grad=True))
    return heads


@requires_shared
def test_gradient_is_darknets_delta(refio):
    ref = _reference(refio)
    model = Darknet(REAL_CFG)
    model.load_weights(REAL_WEIGHTS)
    model.train()
    heads = _yolo_inputs(model, ref)
    # feed Darknet's own [yolo] inputs through the normal path: the previous layer's output
    hooks = [model.layers[i - 1].register_forward_hook(lambda m, a, o, h=h: h)
             for i, h in zip(model.yolo_indices, heads)]
    x = torch.from_numpy(ref["X"])
    try:
        loss, figures = model.loss(model(x), _targets(ref["y"]), (x.shape[3], x.shape[2]))
    finally:
        for hook in hooks:
            hook.remove()
    loss.backward()
    assert loss.item() == pytest.approx(float(ref["loss"]), rel=1e-5)  # 1.781009
    for k, (head, stats) in enumerate(zip(heads, figures)):
        delta = ref[f"delta_{k}"]
        np.testing.assert_allclose(-head.grad.numpy(), delta, rtol=0,
                                   atol=1e-4 * np.abs(delta).max())
        assert stats.cost == pytest.approx(float(ref[f"cost_{k}"]), rel=1e-5)
        printed = PRINTED[stats.index]
        assert stats.count == printed["count"]
        for key in ("avg_iou", "class_loss", "iou_loss", "total_loss"):
            assert getattr(stats, key) == pytest.approx(printed[key], rel=1e-6, abs=2e-6), key
    line = figures[0].line(model.yolo_sections[0])
    assert line.startswith("v3 (iou loss, Normalizer: (iou: 0.07, obj: 1.00, cls: 1.00) "
                           "Region 30 Avg (IOU: 0.832055), count: 5, class_loss = 2.40732")


@requires_shared
def test_train_mode_forward_matches_darknet(refio):
    """Train-mode batch norm (mini-batch mean, variance / (n-1)) as Darknet.

    Darknet sums the statistics sequentially in float32; the measured difference on the
    [yolo] outputs is 4.7e-5 and 6.1e-5 of max|x| (with PyTorch's biased variance it is
    2.5e-3)."""
    ref = _reference(refio)
    model = Darknet(REAL_CFG)
    model.load_weights(REAL_WEIGHTS)
    model.train()
    with torch.no_grad():
        heads = model(torch.from_numpy(ref["X"]))
    for k, head in enumerate(heads):
        out = model.layers[model.yolo_indices[k]].activate(head).reshape(head.shape).numpy()
        expected = ref[f"yolo_out_{k}"]
        assert np.abs(out - expected).max() <= 1e-4 * np.abs(expected).max()


def test_batch_norm_uses_unbiased_variance_and_rolling_update():
    torch.manual_seed(0)
    bn = DarknetBatchNorm2d(3, eps=1e-5, momentum=0.01)
    x = torch.randn(2, 3, 4, 5) * 3 + 1
    y = bn(x)
    mean = x.mean((0, 2, 3))
    var = ((x - mean[None, :, None, None]) ** 2).sum((0, 2, 3)) / (2 * 4 * 5 - 1)
    expected = (x - mean[None, :, None, None]) / torch.sqrt(var + 1e-5)[None, :, None, None]
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, 0.01 * mean)
    torch.testing.assert_close(bn.running_var, 0.99 + 0.01 * var)


def iou_kind(a, b, kind):
    return box_iou(torch.from_numpy(a), torch.from_numpy(b), kind).numpy()


@pytest.mark.parametrize("kind", ["iou", "giou"])
def test_iou_gradient_against_finite_differences(kind):
    """Darknet's dx_box_iou: d/dx and d/dy are the true derivatives; its w and h terms are
    the derivative without the 1/2 of the edges (twice the true d/dw, d/dh)."""
    rng = np.random.default_rng(1)
    pred = np.column_stack([rng.uniform(0.3, 0.7, 20), rng.uniform(0.3, 0.7, 20),
                            rng.uniform(0.1, 0.4, 20), rng.uniform(0.1, 0.4, 20)])
    truth = pred + rng.uniform(-0.05, 0.05, (20, 4))  # overlapping pairs
    g = iou_gradient(torch.from_numpy(pred), torch.from_numpy(truth), kind).numpy()
    eps = 1e-7
    for k, factor in zip(range(4), (1, 1, 2, 2)):
        step = np.zeros(4)
        step[k] = eps
        numeric = (iou_kind(pred + step, truth, kind) - iou_kind(pred - step, truth, kind)) / (
            2 * eps)
        np.testing.assert_allclose(g[:, k], factor * numeric, rtol=1e-4, atol=1e-6)


def test_diou_and_ciou_hand_worked():
    a = np.array([[0.5, 0.5, 0.2, 0.2]])
    b = np.array([[0.6, 0.5, 0.2, 0.4]])
    # intersection 0.1 * 0.2 = 0.02, union 0.04 + 0.08 - 0.02 = 0.10 -> IoU 0.2
    assert iou_kind(a, b, "iou")[0] == pytest.approx(0.2)
    # enclosing box 0.3 x 0.4: GIoU = 0.2 - (0.12 - 0.10) / 0.12
    assert iou_kind(a, b, "giou")[0] == pytest.approx(0.2 - 0.02 / 0.12)
    # centre distance^2 0.01, diagonal^2 0.25: DIoU = 0.2 - (0.04) ** 0.6 (Darknet's exponent)
    assert iou_kind(a, b, "diou")[0] == pytest.approx(0.2 - 0.04 ** 0.6)
    v = 4 / np.pi ** 2 * (np.arctan(0.5) - np.arctan(1.0)) ** 2
    alpha = v / (1 - 0.2 + v + 1e-6)
    assert iou_kind(a, b, "ciou")[0] == pytest.approx(0.2 - (0.04 + alpha * v))


def _one_head_model(extra: str, width: int = 64) -> Darknet:
    text = f"""[net]
width={width}
height={width}
channels=3
[convolutional]
filters=12
size=1
stride=32
pad=0
activation=linear
[yolo]
mask=0,1
anchors=16,16, 24,24, 64,64
classes=1
num=3
{extra}
"""
    return Darknet.from_text(text).train()


def test_mse_box_delta_hand_worked():
    model = _one_head_model("iou_loss=mse\niou_normalizer=0.5\nignore_thresh=1")
    x = torch.zeros(1, 12, 2, 2, requires_grad=True)
    truth = torch.tensor([[0, 0, 0.3, 0.6, 0.25, 0.25]])  # 16 x 16 px: anchor 0, cell (0, 1)
    loss, stats = model.loss([x], truth, (64, 64))
    loss.backward()
    d = -x.grad.view(1, 2, 6, 2, 2)[0, 0, :, 1, 0]  # anchor 0, row 1, column 0
    scale = 2 - 0.25 * 0.25
    # outputs at x = 0: sigmoid 0.5 for x, y, obj, class; tw = th = 0
    tx, ty = 0.3 * 2 - 0, 0.6 * 2 - 1
    tw = th = np.log(0.25 * 64 / 16)
    expected = [scale * (tx - 0.5) * 0.5, scale * (ty - 0.5) * 0.5, scale * tw * 0.5,
                scale * th * 0.5, 1 - 0.5, 1 - 0.5]
    np.testing.assert_allclose(d.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert stats[0].count == 1
    others = -x.grad.view(1, 2, 6, 2, 2)[0, :, 4].flatten()
    assert sorted(others.tolist()) == pytest.approx([-0.5] * 7 + [0.5])


def test_iou_thresh_trains_extra_anchors_and_averages_shared_cells():
    # 20 x 20 px truth: best anchor is 16 x 16 (IoU .64), 24 x 24 has IoU .69 -> best is 1
    model = _one_head_model("iou_loss=ciou\niou_thresh=0.5\nignore_thresh=1")
    x = torch.zeros(1, 12, 2, 2, requires_grad=True)
    two = torch.tensor([[0, 0, 0.3, 0.3, 0.3125, 0.3125], [0, 0, 0.31, 0.3, 0.3125, 0.3125]])
    loss, stats = model.loss([x], two, (64, 64))
    assert stats[0].count == 4  # each truth: its best anchor and the other masked one
    loss.backward()
    g = -x.grad.view(1, 2, 6, 2, 2)
    # the same class twice in one cell: box deltas of both truths, not averaged (1 class)
    one = model.loss([x.detach().requires_grad_()], two[:1], (64, 64))
    assert one[1][0].count == 2
    assert torch.all(g[0, :, 4, 0, 0] == 0.5)
