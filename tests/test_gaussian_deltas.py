"""``[Gaussian_yolo]`` deltas against a literal port of ``forward_gaussian_yolo_layer``'s
training branch (``darknet_gaussian_reference.py``), on randomized heads, truths and
options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.train.gaussian_deltas import gaussian_deltas

from . import darknet_gaussian_reference as ref

LOSSES = ("mse", "giou", "diou", "ciou", "iou")


def _case(case: int):
    rng = np.random.default_rng(1000 + case)
    w, h = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    total, classes = int(rng.integers(2, 7)), int(rng.integers(1, 5))
    mask = sorted(rng.choice(total, int(rng.integers(1, total + 1)), replace=False).tolist())
    opts = {"iou_loss": LOSSES[case % 5], "ignore_thresh": float(rng.uniform(0.02, 0.5)),
            "truth_thresh": 1.0 if case % 3 else float(rng.uniform(0.02, 0.2)),
            "iou_thresh": 1.0 if case % 4 < 2 else float(rng.uniform(0.1, 0.5)),
            "iou_normalizer": float(rng.uniform(0.05, 1)), "obj_normalizer": float(
                rng.uniform(0.5, 2)), "cls_normalizer": float(rng.uniform(0.5, 2)),
            "uc_normalizer": float(rng.uniform(0.5, 2)),
            "objectness_smooth": int(case % 6 == 1), "scale_x_y": 1.0 if case % 2 else 1.1,
            "label_smooth_eps": 0.0 if case % 7 else 0.1}
    if case % 8 == 5:
        opts["max_delta"] = 0.5
    if case % 9 == 4:
        opts["counters_per_class"] = ",".join(str(int(v)) for v in
                                              rng.integers(1, 50, classes))
    net_w, net_h = 32 * w, 32 * h
    anchors = rng.uniform(4, 40, 2 * total).round(2)
    keys = "\n".join(f"{k}={v}" for k, v in opts.items())
    text = (f"[net]\nwidth={net_w}\nheight={net_h}\nchannels={len(mask) * (9 + classes)}\n\n"
            f"[Gaussian_yolo]\nclasses={classes}\nnum={total}\n"
            f"mask={','.join(map(str, mask))}\nanchors={','.join(map(str, anchors))}\n"
            f"{keys}\n")
    model = Darknet.from_text(text)
    batch = 2
    x = torch.from_numpy(rng.normal(0, 1.5, (batch, len(mask) * (9 + classes), h, w))
                         .astype(np.float32))
    truths = []
    for _ in range(batch):
        count = int(rng.integers(0, 5))
        rows = [[float(rng.uniform(0.01, 0.99)), float(rng.uniform(0.01, 0.99)),
                 float(rng.uniform(0.05, 0.9)), float(rng.uniform(0.05, 0.9)),
                 int(rng.integers(0, classes))] for _ in range(count)]
        if case % 5 == 3 and rows:
            rows.insert(1, [0.0, 0.5, 0.2, 0.2, 0])  # x = 0 ends the truths
        if rows and case % 4 == 1:  # a second truth in the first one's cell
            rows.append([rows[0][0], rows[0][1], rows[0][3], rows[0][2], classes - 1])
        truths.append(torch.tensor(rows, dtype=torch.float32).reshape(-1, 5))
    return model, x, truths, (net_w, net_h), anchors, mask, opts, classes


@pytest.mark.parametrize("case", range(30))
def test_gaussian_deltas_equal_darknets_loops(case):
    model, x, truths, net, anchors, mask, opts, classes = _case(case)
    layer, section = model.layers[0], model.cfg.layers[0]
    ours, figures = gaussian_deltas(layer, section, x, truths, net)
    n, _, h, w = x.shape
    width = max(len(t) for t in truths) + 1
    table = np.zeros((n, width * 5), np.float32)
    for b, t in enumerate(truths):
        table[b, : t.numel()] = t.reshape(-1).numpy()
    mult = None
    if "counters_per_class" in opts:
        counts = np.asarray(opts["counters_per_class"].split(","), np.float32)
        mult = (counts.max() / counts).tolist()
    keys = {k: v for k, v in opts.items() if k not in ("counters_per_class",)}
    l = ref.GaussianLayer(w=w, h=h, n=len(mask), classes=classes, mask=mask,  # noqa: E741
                          biases=anchors.astype(np.float32).tolist(), max_boxes=width,
                          classes_multipliers=mult, **keys)
    output = ref.forward_output(l, x.reshape(-1).numpy(), n)
    np.testing.assert_allclose(layer.activate(x).reshape(-1).numpy(), output, rtol=1e-6,
                               atol=1e-6)
    expect = ref.forward_gaussian_yolo_layer(l, output, table, n, *net)
    np.testing.assert_allclose(ours.reshape(-1).numpy(), expect["delta"], rtol=1e-4,
                               atol=1e-5)
    assert figures["count"] == expect["count"]
    assert figures["cost"] == pytest.approx(expect["cost"], rel=1e-4, abs=1e-6)
    assert figures["class"] / n == pytest.approx(expect["class_loss"], rel=1e-4, abs=1e-6)
    assert figures["iou"] / max(figures["count"], 1) == pytest.approx(expect["avg_iou"],
                                                                      abs=1e-5)
    assert figures["cat"] == pytest.approx(expect["avg_cat"], abs=1e-5)
