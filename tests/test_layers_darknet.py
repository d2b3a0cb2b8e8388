"""The classifier, YOLOv2 and attention layers against literal ports of Darknet's
forwards (``darknet_layers_reference.py``), on randomized sizes and options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from darknet_py import Darknet

from . import darknet_layers_reference as ref

RNG_CASES = range(6)


def _model(body: str, c: int, h: int, w: int) -> Darknet:
    text = f"[net]\nwidth={w}\nheight={h}\nchannels={c}\n\n{body}"
    return Darknet.from_text(text).eval()


def _outputs(model: Darknet, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        outs = model.layer_outputs(torch.from_numpy(x[None]))
    return [o[0].detach().numpy() for o in outs]


def _input(rng, c, h, w) -> np.ndarray:
    return rng.normal(0, 2, (c, h, w)).astype(np.float32)


@pytest.mark.parametrize("case", RNG_CASES)
def test_avgpool_softmax_and_crop(case):
    rng = np.random.default_rng(case)
    c, h, w = (int(v) for v in rng.integers(2, 9, 3))
    groups = int(rng.choice([g for g in (1, 2, 3, 4) if (c % g) == 0]))
    temp = float(rng.uniform(0.3, 3))
    ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
    noadjust = int(rng.integers(2))
    x = _input(rng, c, h, w)
    model = _model(f"[crop]\ncrop_height={ch}\ncrop_width={cw}\nnoadjust={noadjust}\n\n"
                   f"[avgpool]\n\n[softmax]\ngroups={groups}\ntemperature={temp}\n\n[cost]\n",
                   c, h, w)
    cropped, pooled, soft, cost = _outputs(model, x)
    expect = ref.crop(x.ravel().tolist(), c, h, w, ch, cw, bool(noadjust))
    np.testing.assert_allclose(cropped, expect, rtol=0, atol=1e-6)
    np.testing.assert_allclose(pooled, ref.avgpool(expect, c, ch, cw), rtol=0, atol=1e-5)
    np.testing.assert_allclose(soft, ref.softmax_layer(pooled.tolist(), groups, temp),
                               rtol=1e-5, atol=1e-7)
    assert not cost.any()  # [cost] leaves its l.output at zero
    with torch.no_grad():  # model(x) is the last layer that is not [cost]
        np.testing.assert_array_equal(model(torch.from_numpy(x[None]))[0].numpy().ravel(),
                                      soft)


@pytest.mark.parametrize("case", RNG_CASES)
def test_connected_with_and_without_batch_norm(case):
    rng = np.random.default_rng(10 + case)
    c, h, w = (int(v) for v in rng.integers(1, 5, 3))
    out, bn = int(rng.integers(1, 7)), case % 2
    act = ["linear", "leaky", "logistic"][case % 3]
    model = _model(f"[connected]\noutput={out}\nbatch_normalize={bn}\nactivation={act}\n",
                   c, h, w)
    layer = model.layers[0]
    with torch.no_grad():
        for t in layer.darknet_tensors():
            t.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, t.shape).astype(np.float32)))
    x = _input(rng, c, h, w)
    weights = layer.linear.weight.detach().numpy()
    if bn:
        biases = layer.bn.bias.detach().numpy()
        stats = (layer.bn.weight.detach().numpy(), layer.bn.running_mean.numpy(),
                 layer.bn.running_var.numpy())
    else:
        biases, stats = layer.linear.bias.detach().numpy(), None
    funcs = {"linear": lambda v: v, "leaky": lambda v: v if v > 0 else 0.1 * v,
             "logistic": lambda v: 1 / (1 + np.exp(-v))}
    expect = ref.connected(x.ravel().tolist(), weights, biases, stats, funcs[act])
    np.testing.assert_allclose(_outputs(model, x)[0], expect, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", RNG_CASES)
def test_reorg_old_and_reorg3d(case):
    rng = np.random.default_rng(20 + case)
    s = int(rng.choice([2, 3]))
    c = s * s * int(rng.integers(1, 4))
    h, w = s * int(rng.integers(1, 4)), s * int(rng.integers(1, 4))
    x = _input(rng, c, h, w)
    old = _model(f"[reorg]\nstride={s}\n", c, h, w)
    new = _model(f"[reorg3d]\nstride={s}\n", c, h, w)
    flat = x.ravel().tolist()
    np.testing.assert_array_equal(_outputs(old, x)[0], ref.reorg_old(flat, c, h, w, s))
    np.testing.assert_array_equal(_outputs(new, x)[0], ref.reorg3d(flat, c, h, w, s))
    assert old.shapes[0] == new.shapes[0] and old.shapes[0].c == c * s * s


@pytest.mark.parametrize("case", RNG_CASES)
def test_region_output(case):
    rng = np.random.default_rng(30 + case)
    n, classes = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    h, w = (int(v) for v in rng.integers(1, 5, 2))
    sm = case % 2
    c = n * (classes + 5)
    x = _input(rng, c, h, w)
    model = _model(f"[region]\nclasses={classes}\nnum={n}\nsoftmax={sm}\n"
                   f"anchors={','.join(['1.5'] * 2 * n)}\n", c, h, w)
    expect = ref.region(x.ravel().tolist(), h, w, n, classes, bool(sm))
    np.testing.assert_allclose(_outputs(model, x)[0], expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", RNG_CASES)
def test_scale_channels(case):
    rng = np.random.default_rng(40 + case)
    c, h, w = (int(v) for v in rng.integers(1, 6, 3))
    wh = case % 2
    x = _input(rng, c, h, w)
    # layer 0 is the map; layer 1 makes the scale; layer 2 multiplies
    scale = (f"[convolutional]\nfilters=1\nsize=1\nactivation=logistic\n" if wh else
             "[avgpool]\n")
    model = _model(f"[convolutional]\nfilters={c}\nsize=1\nactivation=linear\n\n{scale}\n"
                   f"[scale_channels]\nfrom=-2\nscale_wh={wh}\n", c, h, w)
    source, factors, out = _outputs(model, x)
    expect = ref.scale_channels(factors.tolist(), source.tolist(), c, h, w, bool(wh))
    np.testing.assert_allclose(out, expect, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", RNG_CASES)
def test_dilated_and_shared_convolutions(case):
    rng = np.random.default_rng(50 + case)
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(4, 9)), int(rng.integers(4, 9))
    size, stride, dilation = int(rng.choice([3, 5])), int(rng.integers(1, 3)), int(
        rng.integers(2, 4))
    f = int(rng.integers(1, 4))
    x = _input(rng, c, h, w)
    body = (f"[convolutional]\nfilters={f}\nsize={size}\nstride={stride}\npad=1\n"
            f"dilation={dilation}\nactivation=linear\n")
    model = _model(body, c, h, w)
    layer = model.layers[0]
    expect = ref.conv_dilated(x, layer.conv.weight.detach().numpy(),
                              layer.conv.bias.detach().numpy(), size, stride, size // 2,
                              dilation)
    out = _outputs(model, x)[0]
    assert out.size == expect.size
    np.testing.assert_allclose(out, expect.ravel(), rtol=1e-5, atol=1e-5)
    shared = _model(f"[convolutional]\nfilters={c}\nsize=3\npad=1\nactivation=leaky\n\n"
                    f"[convolutional]\nfilters={c}\nsize=3\npad=1\nactivation=leaky\n"
                    f"share_index=-1\n", c, h, w)
    a, b = shared.layers
    assert a.conv.weight is b.conv.weight and b.darknet_tensors() == []
    assert sum(t.numel() for m in shared.layers for t in m.darknet_tensors()) == \
        c * 9 * c + c


@pytest.mark.parametrize("case", range(8))
def test_shortcut_of_other_sizes_adds_in_memory_order(case):
    """Darknet's flat shortcut: sources of another size (resnet50's downsampling blocks)
    add their first values in memory order, per-channel weights by output channel."""
    rng = np.random.default_rng(60 + case)
    c, h, w = int(rng.integers(1, 5)), 2 * int(rng.integers(1, 4)), 2 * int(rng.integers(1, 4))
    kind = ["none", "per_feature", "per_channel"][case % 3]
    norm = ["none", "relu", "softmax"][case % 3] if kind != "none" else "none"
    big_c = int(rng.integers(1, 6))
    body = (f"[convolutional]\nfilters={big_c}\nsize=1\nactivation=linear\n\n"
            f"[convolutional]\nfilters={c}\nsize=3\nstride=2\npad=1\nactivation=linear\n\n"
            f"[shortcut]\nfrom=-2\nactivation=linear\nweights_type={kind}\n"
            f"weights_normalization={norm}\n")
    model = _model(body, 2, h, w)
    layer = model.layers[2]
    if layer.weight is not None:
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(rng.normal(0, 1, layer.weight.shape)
                                                .astype(np.float32)))
    x = _input(rng, 2, h, w)
    big, small, out = _outputs(model, x)
    weights = None if layer.weight is None else layer.weight.detach().numpy()
    step = 1 if kind == "per_feature" else c
    flat_w = None if weights is None else weights.reshape(-1).tolist()
    expect = ref.shortcut_multilayer(small.tolist(), [big.tolist()], flat_w, step, norm)
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", RNG_CASES)
def test_local_avgpool_and_contrastive(case):
    rng = np.random.default_rng(70 + case)
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(2, 9)), int(rng.integers(2, 9))
    size = int(rng.integers(1, 4))
    stride = int(rng.integers(1, size + 1))
    pad = int(rng.integers(0, size))
    x = _input(rng, c, h, w)
    model = _model(f"[local_avgpool]\nsize={size}\nstride={stride}\npadding={pad}\n\n"
                   "[contrastive]\n", c, h, w)
    pooled, contrastive = _outputs(model, x)
    np.testing.assert_allclose(pooled, ref.local_avgpool(x.ravel().tolist(), c, h, w, size,
                                                         stride, pad), rtol=1e-5, atol=1e-6)
    assert contrastive.shape == pooled.shape and not contrastive.any()


@pytest.mark.parametrize("case", RNG_CASES)
def test_xnor_convolution(case):
    """Against a literal port only: Darknet's CPU build crashes on the xnor cfgs (it reads
    past the weights in binarize_weights; the port takes each filter's own weights)."""
    rng = np.random.default_rng(80 + case)
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(3, 8)), int(rng.integers(3, 8))
    f, size, stride = int(rng.integers(1, 4)), int(rng.choice([1, 3])), int(rng.integers(1, 3))
    x = _input(rng, c, h, w)
    model = _model(f"[convolutional]\nfilters={f}\nsize={size}\nstride={stride}\npad=1\n"
                   "xnor=1\nbatch_normalize=1\nactivation=linear\n", c, h, w)
    layer = model.layers[0]
    with torch.no_grad():
        layer.bn.running_var.fill_(1 - 1e-5)  # batch norm the identity
    expect = ref.conv_xnor(x, layer.conv.weight.detach().numpy(), size, stride, size // 2)
    np.testing.assert_allclose(_outputs(model, x)[0], expect.ravel(), rtol=1e-5, atol=1e-4)


def test_fast_path_equals_the_model_on_the_new_kinds():
    """``for_inference`` (batch norm folded, channels_last) on dilation, share_index, xnor,
    crnn, scale_channels, reorg, local_avgpool, avgpool, connected, softmax."""
    body = """
[convolutional]
filters=8
size=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
dilation=2
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
dilation=2
share_index=-1
activation=mish

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
xnor=1
activation=relu

[crnn]
batch_normalize=1
size=3
pad=1
output=8
hidden=4
activation=leaky

[avgpool]

[scale_channels]
from=-2

[reorg3d]
stride=2

[local_avgpool]
size=2
stride=2

[connected]
output=10
batch_normalize=1
activation=linear

[softmax]
"""
    model = _model(body, 3, 16, 16)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_var.uniform_(0.5, 2)
                m.running_mean.normal_(0, 0.1)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
        x = torch.rand(2, 3, 16, 16)
        out = model(x)
        fast = model.for_inference()(x)
    assert out.shape == (2, 10, 1, 1)
    torch.testing.assert_close(fast, out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", RNG_CASES)
def test_detection_head_candidates(case):
    """YOLOv1's [detection] head: every box a candidate, as get_detection_detections."""
    from darknet_py.infer import candidates, darknet_order

    rng = np.random.default_rng(90 + case)
    torch.manual_seed(case)
    side, num, classes = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 4))
    sqrt, soft = case % 2, (case // 2) % 2
    outputs = side * side * (5 * num + classes)
    model = _model(f"[connected]\noutput={outputs}\nactivation=logistic\n\n[detection]\n"
                   f"classes={classes}\ncoords=4\nnum={num}\nside={side}\nsqrt={sqrt}\n"
                   f"softmax={soft}\n", 3, 8, 8)
    x = _input(rng, 3, 8, 8)
    flat = _outputs(model, x)[1].tolist()
    expect = ref.detection_candidates(flat, side, num, classes, bool(sqrt), 0.2)
    with torch.no_grad():
        pred = model(torch.from_numpy(x[None]))[0][darknet_order(model.head_shapes)]
    keep = [k for k, e in enumerate(expect) if e[4] > 0.2]  # the others have no score
    boxes, obj, probs = candidates(pred, 0.2, (8, 8), (8, 8), letter_box=False)
    assert len(obj) == len(keep)
    np.testing.assert_allclose(boxes.numpy(), np.reshape([expect[k][:4] for k in keep],
                                                         (-1, 4)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(obj.numpy(), [expect[k][4] for k in keep], rtol=1e-6)
    want = np.reshape([expect[k][5] for k in keep], (-1, classes))
    settled = np.abs(want - 0.2) > 1e-5  # float32 vs double may fall either side of 0.2
    np.testing.assert_allclose(probs.numpy()[settled], want[settled], rtol=1e-5, atol=1e-7)


def test_activation_batchnorm_empty_and_implicit():
    """forward_activation_layer, forward_batchnorm_layer (inference), the EMPTY layer and
    forward_implicit_layer; [batchnorm] and [implicit] weights in Darknet's file order."""
    rng = np.random.default_rng(100)
    model = _model("[activation]\nactivation=leaky\n\n[batchnorm]\n\n[silence]\n\n"
                   "[implicit]\nfilters=5\natoms=2\n", 3, 4, 5)
    bn = model.layers[1]
    stats = [rng.uniform(0.5, 1.5, 3).astype(np.float32) for _ in range(4)]
    with torch.no_grad():
        for t, v in zip(bn.darknet_tensors(), stats):
            t.copy_(torch.from_numpy(v))
    x = _input(rng, 3, 4, 5)
    act, norm, empty, implicit = _outputs(model, x)
    leaky = np.where(x > 0, x, 0.1 * x)
    np.testing.assert_allclose(act, leaky.ravel(), rtol=1e-6)
    biases, scales, mean, var = (v[:, None, None] for v in stats)
    expect = (leaky - mean) / np.sqrt(var + .00001) * scales + biases
    np.testing.assert_allclose(norm, expect.ravel(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(empty, norm)
    weights = model.layers[3].weight.detach().numpy()
    np.testing.assert_array_equal(implicit, weights.ravel())
    assert model.shapes[3] == type(model.shapes[3])(5, 2, 1)
    assert [t.numel() for m in model.layers for t in m.darknet_tensors()] == [3, 3, 3, 3, 10]


CONV_LSTM = np.load(Path(__file__).parent / "data" / "darknet_conv_lstm.npz")


@pytest.mark.parametrize("name", ["plain", "peephole_bn", "groups"])
def test_conv_lstm_equals_darknet_c(name, tmp_path):
    """``[conv_lstm]`` between two layers: every layer's ``l.output`` equals Darknet C's
    after ``network_predict`` (stored by a generator outside the repo: random weights,
    peephole and batch norm, grouped 1x1 gates)."""
    weights = tmp_path / "w.weights"
    weights.write_bytes(CONV_LSTM[f"{name}_weights"].tobytes())
    model = Darknet.from_text(CONV_LSTM[f"{name}_cfg"].tobytes().decode())
    model.load_weights(weights)
    model.eval()
    with torch.no_grad():
        outs = model.layer_outputs(torch.from_numpy(CONV_LSTM[f"{name}_x"]))
    ours = torch.cat([o.reshape(-1) for o in outs]).numpy()
    np.testing.assert_allclose(ours, CONV_LSTM[f"{name}_outputs"], rtol=0, atol=1e-6)
    saved = tmp_path / "again.weights"
    model.save_weights(saved)
    assert saved.read_bytes() == weights.read_bytes()


def test_conv_lstm_refuses_what_darknets_cpu_forward_lacks():
    from darknet_py.errors import CfgError

    for keys, word in (("bottleneck=1", "bottleneck"), ("stride=2", "stride"),
                       ("size=3\npadding=0", "padding")):
        with pytest.raises(CfgError, match=word):
            Darknet.from_text(f"[net]\nwidth=8\nheight=8\nchannels=2\n\n[conv_lstm]\n"
                              f"output=2\n{keys}\n")
