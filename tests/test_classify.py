"""``classifier predict`` and ``partial`` on backbones against Darknet C's own output, and the
pieces of Darknet's classifier preprocessing against their C definitions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from darknet_py.cli import main
from darknet_py.image import resize_image
from darknet_py.infer.classify import classifier_input, top_k

from .conftest import REFERENCE, SHARED, requires_shared

EXPECTED = json.loads((Path(__file__).parent / "data" / "darknet_classifier_predict.json")
                      .read_text())["lines"]


def test_top_k_is_darknets_including_ties():
    # Darknet's insertion cascade: a larger value pushes the earlier of two ties down
    assert top_k([0.1, 0.5, 0.5, 0.2, 0.9], 3) == [4, 2, 1]
    assert top_k([1.0, 1.0, 1.0], 2) == [0, 1]
    assert top_k([0.3], 5) == [0]


@pytest.mark.parametrize("shape, net", [((40, 90), (32, 32)), ((90, 40), (32, 32)),
                                        ((50, 50), (48, 24)), ((20, 30), (32, 48))])
def test_classifier_input_is_resize_min_then_crop_image(shape, net):
    """resize_min to the network width, then crop_image (edge-clamped) at the centre."""
    rng = np.random.default_rng(0)
    image = rng.random((*shape, 3), dtype=np.float32)
    w, h = net
    ih, iw = shape
    nw, nh = (w, ih * w // iw) if iw < ih else (iw * w // ih, w)
    resized = resize_image(image, nw, nh) if (nw, nh) != (iw, ih) else image
    dx, dy = int((nw - w) / 2), int((nh - h) / 2)
    expect = np.zeros((h, w, 3), np.float32)
    for j in range(h):
        for i in range(w):
            r, c = min(max(j + dy, 0), nh - 1), min(max(i + dx, 0), nw - 1)
            expect[j, i] = resized[r, c]
    np.testing.assert_array_equal(classifier_input(image, w, h), expect)


@requires_shared
@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_predict_prints_darknets_top_classes(key, tmp_path, capsys):
    name, image = key.split("/")
    meta = json.loads(str(np.load(REFERENCE / "zoo" / f"{name}.npz")["meta"]))
    cfg, weights = tmp_path / f"{name}.cfg", tmp_path / f"{name}.weights"
    cfg.write_text(meta["cfg_text"])
    subprocess.run([sys.executable, str(REFERENCE / "gen_weights.py"), str(cfg), str(weights),
                    "--seed", "11"], check=True, capture_output=True)
    names = tmp_path / "names.txt"
    names.write_text("".join(f"class{i}\n" for i in range(1000)))
    data = tmp_path / "c.data"
    data.write_text(f"classes=1000\nnames={names}\ntop=5\n")
    assert main(["classifier", "predict", str(data), str(cfg), str(weights),
                 str(SHARED / "images" / f"{image}.jpg")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("class")]
    assert lines == EXPECTED[key]


@requires_shared
def test_partial_cuts_a_backbone_as_darknet_does(tmp_path, capsys):
    """``partial`` on a headless backbone (the zoo's darknet53, gen_weights seed 11) at 40
    layers: byte for byte the file Darknet C's ``partial`` writes (its sha256)."""
    import hashlib

    meta = json.loads(str(np.load(REFERENCE / "zoo" / "darknet53.npz")["meta"]))
    cfg, weights = tmp_path / "darknet53.cfg", tmp_path / "darknet53.weights"
    cfg.write_text(meta["cfg_text"])
    subprocess.run([sys.executable, str(REFERENCE / "gen_weights.py"), str(cfg), str(weights),
                    "--seed", "11"], check=True, capture_output=True)
    out = tmp_path / "darknet53.conv.40"
    assert main(["partial", str(cfg), str(weights), str(out), "40"]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == (
        "b87056ea0151db0c5f60cbbeaee558ce973bd1bdcd73ca41b2fb49ee887f6c2f")


#: Darknet C's ``classifier valid`` on the zoo darknet19 (gen_weights seed 11), the first 8
#: coco128 images, labels class j = "nolabel<j>" except 562 -> 000000000009 and
#: 866 -> 000000000025, top=5
DARKNET_VALID = ["0: top 1: 1.000000, top 5: 1.000000", "1: top 1: 0.500000, top 5: 1.000000",
                 "2: top 1: 0.333333, top 5: 0.666667", "3: top 1: 0.250000, top 5: 0.500000",
                 "4: top 1: 0.200000, top 5: 0.400000", "5: top 1: 0.166667, top 5: 0.333333",
                 "6: top 1: 0.142857, top 5: 0.285714", "7: top 1: 0.125000, top 5: 0.250000"]


@requires_shared
def test_valid_prints_darknets_running_accuracy(tmp_path, capsys):
    meta = json.loads(str(np.load(REFERENCE / "zoo" / "darknet19.npz")["meta"]))
    cfg, weights = tmp_path / "darknet19.cfg", tmp_path / "darknet19.weights"
    cfg.write_text(meta["cfg_text"])
    subprocess.run([sys.executable, str(REFERENCE / "gen_weights.py"), str(cfg), str(weights),
                    "--seed", "11"], check=True, capture_output=True)
    images = sorted((SHARED / "datasets" / "coco128" / "images" / "train2017").glob("*.jpg"))
    (tmp_path / "valid.txt").write_text("".join(f"{p}\n" for p in images[:8]))
    labels = [f"nolabel{j}" for j in range(1000)]
    labels[562], labels[866] = "000000000009", "000000000025"  # a top-1 hit, a top-5 hit
    (tmp_path / "labels.txt").write_text("".join(f"{x}\n" for x in labels))
    data = tmp_path / "v.data"
    data.write_text(f"classes=1000\nlabels={tmp_path / 'labels.txt'}\n"
                    f"valid={tmp_path / 'valid.txt'}\ntop=5\n")
    assert main(["classifier", "valid", str(data), str(cfg), str(weights)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "top 1" in ln]
    assert lines == DARKNET_VALID


def test_a_bad_top_in_the_data_file_is_one_line(tmp_path, capsys):
    data = tmp_path / "c.data"
    (tmp_path / "names.txt").write_text("a\nb\n")
    data.write_text(f"classes=2\nnames={tmp_path / 'names.txt'}\ntop=five\n")
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n\n[avgpool]\n\n[connected]\n"
                   "output=2\nactivation=linear\n\n[softmax]\n")
    from darknet_py import Darknet

    Darknet(cfg).save_weights(tmp_path / "tiny.weights")
    assert main(["classifier", "predict", str(data), str(cfg), str(tmp_path / "tiny.weights"),
                 str(tmp_path / "x.jpg")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "top='five' must be a whole number" in err[0]
