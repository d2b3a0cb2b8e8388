"""Parity with Darknet C: the reference outputs in ../shared/reference (see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.image import load_image
from darknet_py.infer import Detector, candidates, darknet_order, report_lines
from darknet_py.infer.report import json_frame

from .conftest import FWD_REFS, SHARED, head_inputs, requires_shared

pytestmark = requires_shared

RAW_TOL = 1e-4  # of max|ref|; a plain fp32 port reaches ~3e-6


def _heads_shape(model: Darknet) -> list[tuple[int, int, int]]:
    return [(model.layers[i].num_anchors, model.shapes[i].h, model.shapes[i].w)
            for i in model.yolo_indices]


@pytest.fixture(scope="module")
def forward_results(ref_models):
    """name -> (model heads, model output, ref); computed once per cfg."""
    cache = {}

    def get(name, path="model"):
        if (name, path) not in cache:
            ref = ref_models.ref(name)
            model = Darknet(ref_models.cfg(name)).eval()
            model.load_weights(ref_models.weights(name))
            run = model if path == "model" else model.for_inference()  # the fast path
            heads, out = head_inputs(run, torch.from_numpy(ref["input"]))
            cache.clear()  # keep one big model's results at a time
            cache[(name, path)] = (_heads_shape(model), [h.contiguous().numpy() for h in heads],
                                   out[0], ref)
        return cache[(name, path)]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", FWD_REFS)
def test_reference_weights_regenerate(ref_models, name):
    from darknet_py.assets import sha256

    assert sha256(ref_models.weights(name)) == ref_models.expected_sha256(name)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["model", "fast"])
@pytest.mark.parametrize("name", FWD_REFS)
def test_raw_heads_match_darknet(forward_results, name, path):
    _shapes, heads, _out, ref = forward_results(name, path)
    assert len(heads) == len(ref["meta"]["heads"])
    for k, head in enumerate(heads):
        expected = ref[f"dn_yolo_in_{k}"]
        assert head.shape == expected.shape
        rel = np.abs(head - expected).max() / np.abs(expected).max()
        assert rel <= RAW_TOL, f"head {k}: max|d| / max|ref| = {rel:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("path", ["model", "fast"])
@pytest.mark.parametrize("name", FWD_REFS)
def test_decoded_detections_match_darknet(forward_results, name, path):
    shapes, _heads, out, ref = forward_results(name, path)
    meta = ref["meta"]
    net = (meta["net_w"], meta["net_h"])
    thresh = meta["det_thresh"]
    pred = out[darknet_order(shapes)]
    boxes, obj, probs = candidates(pred, thresh, net, net, letter_box=False)
    # Darknet's index of each candidate, to compare value by value
    offsets = np.cumsum([0] + [a * h * w for a, h, w in shapes])
    keep = torch.nonzero(pred[:, 4] > thresh).flatten().numpy()
    head = np.searchsorted(offsets, keep, side="right") - 1
    ours = {}
    for i, k in enumerate(keep):
        a, h, w = shapes[head[i]]
        local = k - offsets[head[i]]
        row, col, anchor = local // (w * a), (local // a) % w, local % a
        ours[(head[i], anchor, row, col)] = i
    ref_keys = [tuple(int(v) for v in idx) for idx in ref["dn_det_index"]]
    missing = [key for key in ref_keys if key not in ours]
    extra = set(ours) - set(ref_keys)
    # a candidate may only flip where objectness sits on the threshold
    for key in missing:
        j = ref_keys.index(key)
        assert abs(float(ref["dn_det_objectness"][j]) - thresh) < 1e-5, key
    for key in extra:
        assert abs(float(obj[ours[key]]) - thresh) < 1e-5, key
    both = [(ours[key], j) for j, key in enumerate(ref_keys) if key in ours]
    mine = np.array([i for i, _ in both])
    theirs = np.array([j for _, j in both])
    assert len(both) == len(ref_keys) - len(missing) > 0
    np.testing.assert_allclose(obj.numpy()[mine], ref["dn_det_objectness"][theirs], atol=1e-4)
    np.testing.assert_allclose(probs.numpy()[mine], ref["dn_det_prob"][theirs], atol=1e-4)
    b, rb = boxes.numpy()[mine], ref["dn_det_bbox"][theirs]
    np.testing.assert_allclose(b[:, :2], rb[:, :2], atol=1e-4)
    np.testing.assert_allclose(b[:, 2:], rb[:, 2:], rtol=1e-3, atol=1e-5)


def _real(refio, image: str) -> dict:
    return refio.load(SHARED / "reference" / f"real_{image}.npz")


@pytest.mark.parametrize("image", ["bus", "zidane"])
def test_real_raw_heads_match_darknet(real_model, refio, image):
    ref = _real(refio, image)
    heads, _ = head_inputs(real_model, torch.from_numpy(ref["input"]))
    for k, head in enumerate(heads):
        expected = ref[f"yolov4-tiny/dn_yolo_in_{k}"]
        rel = np.abs(head.numpy() - expected).max() / np.abs(expected).max()
        assert rel <= RAW_TOL, f"head {k}: {rel:.2e}"


def _final(dets, thresh=0.25):
    """(class, prob, left, top, width, height) of every reported (det, class), sorted."""
    px = dets.boxes_pixels().numpy()
    return sorted((j, p, *px[row]) for row, j, p in dets.labels(thresh))


def _ref_final(ref):
    P = "yolov4-tiny/"
    return sorted((int(c), float(p), *box) for c, p, box in
                  zip(ref[P + "dn_final_class"], ref[P + "dn_final_prob"],
                      ref[P + "dn_final_bbox_px_ltwh"]))


def _assert_same_detections(ours, theirs, prob_tol, px_tol):
    assert [d[0] for d in ours] == [d[0] for d in theirs]
    for a, b in zip(ours, theirs):
        assert abs(a[1] - b[1]) <= prob_tol, (a, b)
        assert max(abs(x - y) for x, y in zip(a[2:], b[2:])) <= px_tol, (a, b)


@pytest.mark.parametrize("image", ["bus", "zidane"])
def test_final_detections_from_darknet_input(real_model, refio, image):
    """Darknet's preprocessed input -> our detector -> Darknet's final detections."""
    ref = _real(refio, image)
    meta = ref["meta"]
    det = Detector(real_model)
    with torch.no_grad():
        pred = real_model(torch.from_numpy(ref["input"]))[0]
    dets = det.postprocess(pred, (meta["image_w"], meta["image_h"]))
    _assert_same_detections(_final(dets), _ref_final(ref), prob_tol=1e-5, px_tol=0.01)


# These references come from Darknet built without OpenCV, so its pixels are stb_image's:
# the stb decoder gives them exactly and the detections to float rounding.
@pytest.mark.parametrize("image", ["bus", "zidane"])
def test_final_detections_from_image_file(real_model, refio, image):
    """The original JPEG through our own loading (``stb``) and Darknet's resize."""
    ref = _real(refio, image)
    dets = Detector(real_model, decoder="stb")([SHARED / "images" / f"{image}.jpg"])[0]
    _assert_same_detections(_final(dets), _ref_final(ref), prob_tol=1e-5, px_tol=0.01)


OPENCV_BUILD = json.loads((Path(__file__).parent / "data" / "darknet_opencv_detections.json")
                          .read_text())


@pytest.mark.parametrize("frame", OPENCV_BUILD["frames"], ids=lambda f: f["filename"])
def test_default_decoder_matches_darknet_built_with_opencv(real_model, frame):
    """The default decoder (``opencv``) against Darknet C built with OPENCV=1 (its ``-out``
    JSON, 6 decimals): the same detections to the last printed digit."""
    dets = Detector(real_model)([SHARED / "images" / frame["filename"]])[0]
    ours = json_frame(dets, [str(j) for j in range(80)], 0.25, 1, frame["filename"])
    key = lambda o: (o["class_id"], round(o["confidence"], 3))  # noqa: E731
    mine, theirs = sorted(ours["objects"], key=key), sorted(frame["objects"], key=key)
    assert [o["class_id"] for o in mine] == [o["class_id"] for o in theirs]
    for a, b in zip(mine, theirs):
        assert abs(a["confidence"] - b["confidence"]) <= 3e-6, (a, b)
        for k, v in a["relative_coordinates"].items():
            assert abs(v - b["relative_coordinates"][k]) <= 3e-6, (a, b)


def test_printed_lines_match_darknet(real_model, refio, coco_names):
    """detector test's printed lines, from Darknet's own preprocessed input."""
    ref = _real(refio, "bus")
    det = Detector(real_model)
    with torch.no_grad():
        pred = real_model(torch.from_numpy(ref["input"]))[0]
    dets = det.postprocess(pred, (ref["meta"]["image_w"], ref["meta"]["image_h"]))
    printed = ref["meta"]["nets"]["yolov4-tiny"]["cli"]["stdout_tail"].splitlines()
    expected = [line for line in printed if "%" in line]
    assert report_lines(dets, coco_names, 0.25, ext_output=True) == expected


@pytest.mark.parametrize("image", ["bus", "zidane"])
def test_image_loading_equals_darknet(refio, image):
    """The stb decode + Darknet's resize = Darknet's (built without OpenCV) input, exactly;
    the default opencv decode is that build's within 3/255 (libjpeg's IDCT, not stb's)."""
    from darknet_py.image import resize_image

    ref = _real(refio, image)
    path = SHARED / "images" / f"{image}.jpg"
    x = resize_image(load_image(path, decoder="stb"), 416, 416)
    np.testing.assert_array_equal(x.transpose(2, 0, 1)[None], ref["input"])
    d = np.abs(resize_image(load_image(path), 416, 416).transpose(2, 0, 1)[None] - ref["input"])
    assert 0 < d.max() <= 3 / 255 + 1e-6


@pytest.mark.slow
def test_shipped_p7_cfg_warns_and_matches_reference(ref_models, layout_tool, tmp_path, caplog):
    """The shipped cspx-p7-mish.cfg (num=16, 20 anchors) as is: warn, use the 20 anchors."""
    shipped = tmp_path / "cspx-p7-mish.cfg"
    layout_tool.edit_cfg(str(SHARED / "cfg" / "cspx-p7-mish.cfg"), str(shipped),
                         {"net": {"width": "256", "height": "256"}})
    ref = ref_models.ref("cspx-p7-mish")
    model = Darknet(shipped).eval()
    assert "num=16 but 20 anchors are listed" in caplog.text
    model.load_weights(ref_models.weights("cspx-p7-mish"))
    heads, _ = head_inputs(model, torch.from_numpy(ref["input"]))
    for k, head in enumerate(heads):
        expected = ref[f"dn_yolo_in_{k}"]
        assert np.abs(head.numpy() - expected).max() / np.abs(expected).max() <= RAW_TOL
    assert model.layers[model.yolo_indices[-1]].anchors[-1].tolist() == [1408.0, 1408.0]
