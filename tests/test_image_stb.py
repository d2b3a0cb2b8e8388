"""Darknet's pixels: the stb_image JPEG port against Darknet's stored inputs, against a
literal transcription of stb's scalar kernels, and across JPEG encodings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from darknet_py.image import load_image, load_rgb8, resize_image
from darknet_py.image.stb import decode_stb, idct_blocks, upsample, ycbcr_to_rgb

from . import stb_reference as ref
from .conftest import ROOT, SHARED, requires_shared

SAMPLE = ROOT / "darknet_py" / "assets" / "astronaut.jpg"


@requires_shared
@pytest.mark.parametrize("name", ["bus", "zidane"])
def test_load_and_resize_equal_darknets_input(name, refio):
    stored = refio.load(SHARED / "reference" / f"real_{name}.npz")["input"][0]
    ours = resize_image(load_image(SHARED / "images" / f"{name}.jpg", decoder="stb"), 416, 416)
    assert np.abs(ours - stored.transpose(1, 2, 0)).max() <= 1e-6


def test_idct_equals_stbs_scalar_idct_on_random_blocks():
    rng = np.random.default_rng(0)
    blocks = np.zeros((300, 8, 8), np.int16)
    for k in range(300):  # DC-heavy blocks with sparse AC, and dense ones
        dense = k % 3 == 0
        scale = rng.integers(1, 60)
        mask = rng.random((8, 8)) < (0.9 if dense else 0.15)
        blocks[k] = (rng.normal(0, scale, (8, 8)) * mask).astype(np.int16)
        blocks[k, 0, 0] = rng.integers(-1024, 1024)
    blocks[0] = 0
    blocks[1, 0, 0] = 1016  # saturated white and black
    blocks[2, 0, 0] = -1024
    ours = idct_blocks(blocks)
    for k in range(300):
        expected = ref.idct_block([int(v) for v in blocks[k].reshape(-1)])
        assert ours[k].tolist() == expected, k


@pytest.mark.parametrize("hs, vs", [(1, 1), (1, 2), (2, 1), (2, 2), (4, 1)])
@pytest.mark.parametrize("width, height", [(1, 1), (2, 3), (9, 7), (33, 17)])
def test_upsampling_equals_stbs_row_loop(hs, vs, width, height):
    rng = np.random.default_rng(width * 100 + height)
    comp_x, comp_y = -(-width // hs), -(-height // vs)
    plane = rng.integers(0, 256, (comp_y + 8, comp_x + 8), dtype=np.uint8)  # MCU padding
    ours = upsample(plane, hs, vs, comp_x, comp_y, width, height)
    expected = ref.upsample_plane(plane.tolist(), hs, vs, comp_y, width, height)
    assert ours.tolist() == expected


def test_color_conversion_equals_stbs_fixed_point():
    y, cb, cr = np.meshgrid(np.arange(0, 256, 5), np.arange(0, 256, 3), np.arange(0, 256, 7),
                            indexing="ij")
    ours = ycbcr_to_rgb(y.ravel()[None], cb.ravel()[None], cr.ravel()[None])[0]
    expected = [ref.ycbcr_to_rgb(a, b, c) for a, b, c in zip(y.ravel(), cb.ravel(), cr.ravel())]
    assert [tuple(p) for p in ours.tolist()] == expected


def _encode(tmp_path, image, name, *params):
    path = tmp_path / name
    assert cv2.imwrite(str(path), image, list(params))
    return path


@pytest.mark.parametrize("sampling", ["411", "420", "422", "440", "444"])
def test_every_chroma_layout_is_close_to_libjpeg(tmp_path, sampling):
    image = cv2.imread(str(SAMPLE))[:77, :93]  # sizes that are not multiples of 16
    flag = getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{sampling}")
    path = _encode(tmp_path, image, f"s{sampling}.jpg", cv2.IMWRITE_JPEG_SAMPLING_FACTOR, flag)
    ours = decode_stb(path)
    libjpeg = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert ours.shape == libjpeg.shape
    assert np.abs(ours.astype(int) - libjpeg).max() <= 4  # libjpeg's own upsampling differs


def test_progressive_decodes_like_baseline(tmp_path):
    image = cv2.imread(str(SAMPLE))[:100, :131]
    base = _encode(tmp_path, image, "base.jpg", cv2.IMWRITE_JPEG_QUALITY, 90)
    prog = _encode(tmp_path, image, "prog.jpg", cv2.IMWRITE_JPEG_QUALITY, 90,
                   cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    assert prog.read_bytes() != base.read_bytes()
    np.testing.assert_array_equal(decode_stb(prog), decode_stb(base))  # same coefficients


def test_grayscale_png_and_bytes(tmp_path):
    image = cv2.imread(str(SAMPLE))[:50, :60]
    gray = _encode(tmp_path, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), "g.jpg")
    rgb = decode_stb(gray)
    assert rgb.shape == (50, 60, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    png = _encode(tmp_path, image, "p.png")
    np.testing.assert_array_equal(load_rgb8(png), cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    jpg = _encode(tmp_path, image, "c.jpg")
    np.testing.assert_array_equal(decode_stb(jpg.read_bytes()), decode_stb(jpg))
    assert np.abs(load_rgb8(jpg, "opencv").astype(int) - load_rgb8(jpg, "stb")).max() <= 4


def test_rgb_coded_jpegs_skip_the_colour_transform(tmp_path):
    from darknet_py.image.stb import jpeg_markers

    image = cv2.imread(str(SAMPLE))[:40, :48]
    path = _encode(tmp_path, image, "ycc.jpg")
    data = bytearray(path.read_bytes())
    jfif, transform, ids = jpeg_markers(bytes(data))
    assert jfif and transform is None and ids == (1, 2, 3)
    sof = next(k for k in range(len(data) - 1) if data[k] == 0xFF and data[k + 1] == 0xC0)
    sos = next(k for k in range(len(data) - 1) if data[k] == 0xFF and data[k + 1] == 0xDA)
    for i, letter in enumerate(b"RGB"):  # component ids 'R', 'G', 'B': stb reads RGB
        data[sof + 10 + 3 * i] = letter
        data[sos + 5 + 2 * i] = letter  # the scan names its components by id too
    rgb_path = tmp_path / "rgb.jpg"
    rgb_path.write_bytes(bytes(data))
    assert jpeg_markers(bytes(data))[2] == (82, 71, 66)
    planes = decode_stb(rgb_path)  # the decoded planes as they are
    np.testing.assert_array_equal(ycbcr_to_rgb(planes[..., 0], planes[..., 1], planes[..., 2]),
                                  decode_stb(path))
