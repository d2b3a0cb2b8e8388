"""Layers against slow reference code written from Darknet's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darknet_py import CfgError, Darknet, parse_cfg
from darknet_py.nn.activations import activation
from darknet_py.nn.builder import build_layers
from darknet_py.nn.heads import Yolo
from darknet_py.nn.layers import Convolutional, Route, Shortcut
from darknet_py.nn.pooling import MaxPool, Upsample

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"


def slow_maxpool(x: np.ndarray, size: int, stride: int, padding: int) -> np.ndarray:
    """forward_maxpool_layer, loop by loop."""
    c, h, w = x.shape
    oh, ow = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    off = -(padding // 2)
    out = np.empty((c, oh, ow), np.float32)
    for k in range(c):
        for i in range(oh):
            for j in range(ow):
                best = -np.inf
                for n in range(size):
                    for m in range(size):
                        y, xx = off + i * stride + n, off + j * stride + m
                        if 0 <= y < h and 0 <= xx < w:
                            best = max(best, x[k, y, xx])
                out[k, i, j] = best
    return out


@pytest.mark.parametrize("size, stride, padding, hw", [
    (2, 2, 1, (8, 8)), (2, 2, 1, (7, 9)), (2, 1, 1, (5, 5)), (3, 2, 2, (9, 6)),
    (5, 1, 4, (6, 6)), (9, 1, 8, (5, 7)), (13, 1, 12, (4, 4)), (3, 1, 0, (6, 6)),
])
def test_maxpool_matches_darknet_loop(size, stride, padding, hw):
    x = torch.randn(2, *hw)
    out = MaxPool(size, (stride, stride), padding)(x[None], [])[0]
    np.testing.assert_array_equal(out.numpy(), slow_maxpool(x.numpy(), size, stride, padding))


def test_maxpool_output_size_in_builder():
    cfg = parse_cfg("[net]\nwidth=13\nheight=13\nchannels=3\n[maxpool]\nsize=2\nstride=1\n"
                    "[maxpool]\nsize=2\nstride=2\n[maxpool]\nsize=3\nstride=2\npadding=0\n"
                    "[convolutional]\nfilters=18\n[yolo]\nclasses=1\nnum=3\nmask=0,1,2\n"
                    "anchors=1,1,2,2,3,3\n")
    _, shapes = build_layers(cfg)
    assert [(s.h, s.w) for s in shapes[:3]] == [(13, 13), (7, 7), (3, 3)]


def test_route_groups_take_chunk_group_id():
    a = torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).view(2, 4, 3, 3)
    b = torch.arange(2 * 6 * 3 * 3, dtype=torch.float32).view(2, 6, 3, 3) + 1000
    second = Route([0, 1], [4, 6], groups=2, group_id=1)(None, [a, b])
    assert torch.equal(second, torch.cat([a[:, 2:], b[:, 3:]], 1))
    assert torch.equal(Route([1], [6])(None, [a, b]), b)


def slow_shortcut(inputs, weights, normalization):
    """shortcut_multilayer_cpu for equal shapes: out = sum_i w_i * in_i."""
    n = len(inputs)
    out = np.zeros_like(inputs[0])
    c = inputs[0].shape[1]
    for ch in range(c):
        if weights is None:
            w = np.ones(n)
        else:
            w = weights if weights.ndim == 1 else weights[:, ch]
            if normalization == "relu":
                r = np.maximum(w, 0)
                w = r / (1e-4 + r.sum())
            elif normalization == "softmax":
                e = np.exp(w - w.max())
                w = e / (1e-4 + e.sum())
        for i in range(n):
            out[:, ch] += w[i] * inputs[i][:, ch]
    return out


@pytest.mark.parametrize("weights_type", ["none", "per_feature", "per_channel"])
@pytest.mark.parametrize("normalization", ["none", "relu", "softmax"])
def test_shortcut_weights_and_normalization(weights_type, normalization):
    torch.manual_seed(0)
    x, a, b = (torch.randn(2, 5, 3, 3) for _ in range(3))
    layer = Shortcut([0, 1], 5, [5, 5], "linear", weights_type, normalization)
    if layer.weight is not None:
        with torch.no_grad():
            layer.weight.copy_(torch.randn_like(layer.weight))
    w = None if layer.weight is None else layer.weight.detach().numpy()
    expected = slow_shortcut([x.numpy(), a.numpy(), b.numpy()], w,
                             normalization if w is not None else "none")
    out = layer(x, [a, b]).detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_shortcut_with_fewer_and_more_channels_adds_leading_channels():
    x = torch.ones(1, 4, 2, 2)
    small, big = torch.full((1, 2, 2, 2), 5.0), torch.full((1, 6, 2, 2), 7.0)
    out = Shortcut([0, 1], 4, [2, 6])(x, [small, big])
    assert out[0, :2].unique().tolist() == [13.0] and out[0, 2:].unique().tolist() == [8.0]


@pytest.mark.parametrize("name, formula", [
    ("linear", lambda x: x),
    ("leaky", lambda x: x if x > 0 else 0.1 * x),
    ("relu", lambda x: max(x, 0.0)),
    # relu6_activate (the GPU build's); Darknet's CPU activate() has no RELU6 case and
    # gives 0 everywhere, a Darknet bug darknet-py leaves out (efficientnet-lite*)
    ("relu6", lambda x: min(max(x, 0.0), 6.0)),
    ("logistic", lambda x: 1 / (1 + math.exp(-x))),
    ("mish", lambda x: x * math.tanh(x if x > 20 else math.log1p(math.exp(x)))),
    ("swish", lambda x: x / (1 + math.exp(-x))),
    ("elu", lambda x: x if x >= 0 else math.exp(x) - 1),
    ("selu", lambda x: 1.0507 * x if x >= 0 else 1.0507 * 1.6732 * (math.exp(x) - 1)),
    ("gelu", lambda x: 0.5 * x * (1 + math.tanh(0.797885 * x + 0.035677 * x ** 3))),
    ("hard_mish", lambda x: x if x > 0 else (x * x / 2 + x if x > -2 else 0.0)),
    ("tanh", math.tanh),
    ("revleaky", lambda x: x if x > 0 else 0.1 * x),
    ("relie", lambda x: x if x > 0 else 0.01 * x),
    ("ramp", lambda x: x * (x > 0) + 0.1 * x),
    ("plse", lambda x: .01 * (x + 4) if x < -4 else (.01 * (x - 4) + 1 if x > 4
                                                     else .125 * x + .5)),
    ("hardtan", lambda x: -1.0 if x < -1 else (1.0 if x > 1 else x)),
    ("lhtan", lambda x: .001 * x if x < 0 else (.001 * (x - 1) + 1 if x > 1 else x)),
    ("loggy", lambda x: 2 / (1 + math.exp(-x)) - 1),
    ("stair", lambda x: math.floor(x / 2) if math.floor(x) % 2 == 0
     else (x - math.floor(x)) + math.floor(x / 2)),
])
def test_activations_follow_darknet_formulas(name, formula):
    xs = [-25.0, -7.0, -2.5, -1.9, -0.3, 0.0, 0.4, 2.0, 5.5, 7.0, 30.0]
    out = activation(name)(torch.tensor(xs, dtype=torch.float64)).tolist()
    np.testing.assert_allclose(out, [formula(x) for x in xs], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["normalize_channels", "normalize_channels_softmax",
                                  "normalize_channels_softmax_maxval"])
def test_channel_normalizing_activations_follow_darknet_loops(name):
    """activate_array_normalize_channels(_softmax), looped as in activations.c."""
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64) * 3
    out = activation(name)(x).numpy()
    v = x.numpy()
    expect = np.zeros_like(v)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                col = v[b, :, i, j]
                if name == "normalize_channels":
                    total = 0.0001 + sum(c for c in col if c > 0)
                    expect[b, :, i, j] = [c / total if c > 0 else 0 for c in col]
                else:
                    top = max(col) if name.endswith("maxval") else 0.0
                    total = 0.0001 + sum(math.exp(c - top) for c in col)
                    expect[b, :, i, j] = [math.exp(c - top) / total for c in col]
    np.testing.assert_allclose(out, expect, rtol=1e-9, atol=1e-12)


def test_upsample_nearest_and_scale():
    x = torch.arange(4.0).view(1, 1, 2, 2)
    out = Upsample(2, 0.5)(x, [])
    assert out[0, 0].tolist() == [[0, 0, .5, .5], [0, 0, .5, .5],
                                  [1, 1, 1.5, 1.5], [1, 1, 1.5, 1.5]]


@pytest.mark.parametrize("new_coords, scale", [(0, 1.0), (0, 1.05), (1, 2.0)])
def test_yolo_decode_hand_worked(new_coords, scale):
    anchors = [(10.0, 14.0), (23.0, 27.0)]
    yolo = Yolo(anchors, classes=1, net_size=(96, 64), scale_x_y=scale,  # 32 px cells
                new_coords=bool(new_coords)).eval()
    raw = torch.zeros(1, 2 * 6, 2, 3)
    t = [0.3, -0.2, 0.5, -0.1, 1.2, -0.4] if not new_coords else [0.6, 0.3, 0.7, 0.4, 0.8, 0.2]
    for f, v in enumerate(t):
        raw[0, 6 + f, 1, 2] = v  # anchor 1, row 1, column 2
    out = yolo(raw, [])
    row = out[0, 1 * 6 + 1 * 3 + 2]  # Darknet order: anchor, row, column
    sig = (lambda v: v) if new_coords else (lambda v: 1 / (1 + math.exp(-v)))
    x = sig(t[0]) * scale - 0.5 * (scale - 1)
    y = sig(t[1]) * scale - 0.5 * (scale - 1)
    if new_coords:
        w, h = t[2] ** 2 * 4 * 23, t[3] ** 2 * 4 * 27
    else:
        w, h = math.exp(t[2]) * 23, math.exp(t[3]) * 27
    expected = [(2 + x) * 32, (1 + y) * 32, w, h, sig(t[4]), sig(t[5])]
    np.testing.assert_allclose(row.tolist(), expected, rtol=1e-5)


TINY = NET + """
[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky
[convolutional]
filters=18
size=1
activation=linear
[yolo]
mask=0,1,2
anchors=4,4,8,8,16,16
classes=1
num=3
[route]
layers=-3
[convolutional]
filters=18
size=1
activation=linear
[yolo]
mask=0,1,2
anchors=4,4,8,8,16,16
classes=1
num=3
"""


def test_model_api_layers_and_modes():
    model = Darknet.from_text(TINY)
    assert len(model.layers) == 6 and model.yolo_indices == [2, 5]
    assert model.net.width == 32 and model.num_classes == 1
    model.eval()
    out = model(torch.rand(2, 3, 64, 96))  # any multiple of the stride
    assert out.shape == (2, 2 * 3 * 32 * 48, 6)
    model.train()
    maps = model(torch.rand(2, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(2, 18, 16, 16)] * 2
    state = model.state_dict()
    again = Darknet.from_text(TINY)
    again.load_state_dict(state)


@pytest.mark.parametrize("text, words", [
    (TINY.replace("filters=18\nsize=1\nactivation=linear\n[yolo]", "filters=17\nsize=1\n"
                  "activation=linear\n[yolo]", 1), "filters=(classes+5)*3=18"),
    (TINY.replace("layers=-3", "layers=9"), "refers to layer 9"),
    (TINY.replace("layers=-3", "layers=-1"), "refers to [yolo] layer 2"),
    (TINY.replace("[route]\nlayers=-3\n", ""), "cannot follow a [yolo]"),
])
def test_build_errors_name_the_line(text, words):
    with pytest.raises(CfgError) as info:
        Darknet.from_text(text, "net.cfg")
    assert str(info.value).startswith("net.cfg:") and words in str(info.value)


def test_new_batch_norm_starts_as_darknets():
    """make_convolutional_layer: scales 1, biases and rolling mean and variance 0."""
    conv = Convolutional(8, 4, 3, (1, 1), 1, 1, True, "leaky")
    assert conv.bn.weight.tolist() == [1.0] * 4 and conv.bn.bias.tolist() == [0.0] * 4
    assert conv.bn.running_mean.tolist() == [0.0] * 4
    assert conv.bn.running_var.tolist() == [0.0] * 4
