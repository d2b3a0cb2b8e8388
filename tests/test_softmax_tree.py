"""yolo9000's softmax tree (``tree=``): the tree file's groups as Darknet's ``read_tree``
makes them, and ``[region]`` / ``[softmax]`` with a tree against Darknet C (layer outputs
after ``network_predict`` and ``get_network_boxes``' candidates, stored by a generator
outside the repo, on a hand-written 14-class tree)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.cfg.tree import parse_tree
from darknet_py.errors import CfgError
from darknet_py.infer.detections import candidates, darknet_order

from .conftest import ROOT

REF = np.load(ROOT / "tests" / "data" / "darknet_softmax_tree.npz")
TREE = REF["tree"].tobytes().decode()


def test_groups_are_read_trees():
    t = parse_tree(TREE)
    assert t.n == 14 and t.parent[:5] == (-1, -1, 0, 0, 0)
    assert t.group_offset == (0, 2, 5, 7, 9, 11) and t.group_size == (2, 3, 2, 2, 2, 3)
    assert t.depth()[7] == 2 and t.group_index()[12] == 5
    with pytest.raises(CfgError, match="not an earlier line"):
        parse_tree("a -1\nb 5\n", "bad.tree")


def _model(name: str, tmp_path) -> Darknet:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "t.tree").write_text(TREE)
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(REF[f"{name}_cfg"].tobytes().decode())
    weights = tmp_path / f"{name}.weights"
    weights.write_bytes(REF[f"{name}_weights"].tobytes())
    model = Darknet(cfg)  # tree=data/t.tree: found beside the cfg
    model.load_weights(weights)
    return model.eval()


@pytest.mark.parametrize("name", ["region", "region_soft", "softmax"])
def test_layer_outputs_equal_darknet_c(name, tmp_path):
    model = _model(name, tmp_path)
    with torch.no_grad():
        outs = model.layer_outputs(torch.from_numpy(REF[f"{name}_x"]))
    ours = torch.cat([o.reshape(-1) for o in outs]).numpy()
    expect = REF[f"{name}_outputs"]
    np.testing.assert_allclose(ours, expect, rtol=0, atol=1e-5 * max(1, np.abs(expect).max()))


@pytest.mark.parametrize("name", ["region", "region_soft"])
def test_candidates_equal_get_network_boxes(name, tmp_path):
    model = _model(name, tmp_path)
    with torch.no_grad():
        pred = model(torch.from_numpy(REF[f"{name}_x"]))[0]
    order = darknet_order(model.head_shapes)
    final = model.final_scores()[order]
    size = (model.width, model.height)
    thresh = 0.2
    boxes, obj, probs = candidates(pred[order], thresh, size, size, False, final)
    dets = REF[f"{name}_dets"]
    count, width = int(dets[0]), 4 + 1 + 14
    rows = dets[1:].reshape(count, width)
    # Darknet's candidates: objectness 1, probabilities (obj > thresh) ? p : 0; its
    # printing then keeps those above thresh.  darknet-py keeps obj > thresh candidates.
    layer_obj = model.layer_outputs(torch.from_numpy(REF[f"{name}_x"]))[-1][0]
    scale = layer_obj.reshape(-1, 5 + 14)[:, 4].detach().numpy()
    kept = scale > thresh
    assert int(kept.sum()) == len(boxes) and (rows[:, 4] == 1).all()
    np.testing.assert_allclose(boxes.numpy(), rows[kept, :4], rtol=1e-5, atol=1e-6)
    expect = np.where(rows[kept, 5:] > thresh, rows[kept, 5:], 0)
    np.testing.assert_allclose(probs.numpy(), expect, rtol=1e-5, atol=1e-6)
    assert (expect > 0).any()  # the tree's deep classes are reached


def test_missing_tree_and_wrong_size_are_one_line(tmp_path):
    text = REF["softmax_cfg"].tobytes().decode()
    cfg = tmp_path / "s.cfg"
    cfg.write_text(text)
    with pytest.raises(CfgError, match=r"tree=data/t.tree: no such file"):
        Darknet(cfg)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.tree").write_text("a -1\nb -1\n")
    with pytest.raises(CfgError, match="has 2 classes, but the input has 14"):
        Darknet(cfg)


def test_training_a_tree_is_refused(tmp_path):
    model = _model("region", tmp_path)
    with pytest.raises(CfgError, match="softmax tree"):
        model.darknet_loss()
