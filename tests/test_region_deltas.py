"""``[region]`` deltas against a literal port of ``forward_region_layer``'s training
branch (``darknet_region_reference.py``), on randomized heads, truths and options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.train.region_deltas import region_deltas

from . import darknet_region_reference as ref


@pytest.mark.parametrize("case", range(40))
def test_region_deltas_equal_darknets_loops(case):
    rng = np.random.default_rng(case)
    w, h = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    n, classes = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    opts = {"softmax": int(case % 2), "thresh": float(rng.uniform(0.3, 0.7)),
            "classfix": -1 if case % 5 == 4 else 0, "noobject_scale": float(rng.uniform(.5, 2)),
            "object_scale": float(rng.uniform(1, 5)), "class_scale": float(rng.uniform(.5, 2)),
            "coord_scale": float(rng.uniform(.5, 2)), "rescore": int(case % 3 == 0),
            "bias_match": int(case % 4 < 2), "focal_loss": int(case % 7 == 3)}
    if case % 5 == 2:
        opts["classfix"] = 1 + case % 2
    seen = 0 if case % 2 else 20000
    anchors = rng.uniform(0.5, 4, 2 * n).round(3)
    keys = "\n".join(f"{k}={v}" for k, v in opts.items())
    text = (f"[net]\nwidth={32 * w}\nheight={32 * h}\nchannels={n * (5 + classes)}\n\n"
            f"[region]\nclasses={classes}\nnum={n}\nanchors={','.join(map(str, anchors))}\n"
            f"{keys}\n")
    model = Darknet.from_text(text)
    layer, section = model.layers[0], model.cfg.layers[0]
    x = torch.from_numpy(rng.normal(0, 1.5, (1, n * (5 + classes), h, w)).astype(np.float32))
    count = int(rng.integers(0, 5))
    rows = [[float(rng.uniform(0.01, 0.99)), float(rng.uniform(0.01, 0.99)),
             float(rng.uniform(0.05, 0.9)), float(rng.uniform(0.05, 0.9)),
             int(rng.integers(0, classes + (case % 3 == 1)))] for _ in range(count)]
    if case % 4 == 3 and rows:
        rows.insert(1, [0.0, 0.5, 0.2, 0.2, 0])  # x = 0 ends the truths
    if case % 6 == 5 and rows:  # a second truth on the first one's cell and anchor
        rows.insert(1, [*rows[0][:4], (rows[0][4] + 1) % classes])
    truth = torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)
    ours, sums = region_deltas(layer, section, x, [truth], seen)
    figures: dict = {}
    expect = ref.region_delta(x.reshape(-1).tolist(), truth.tolist(), w, h, n, classes,
                              anchors.astype(np.float32).tolist(), opts, seen, figures)
    np.testing.assert_allclose(ours.reshape(-1).numpy(), expect, rtol=1e-4, atol=1e-5)
    for key, value in figures.items():
        assert sums[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    assert sums["cost"] == pytest.approx(sum(v * v for v in expect), rel=1e-4, abs=1e-6)
