"""JPEG pixels exactly as Darknet's ``load_image`` gets them from stb_image.

Darknet decodes with stb_image; libjpeg (OpenCV) differs from it by up to 3/255 per pixel,
which moves detection probabilities in the third decimal.  Here the entropy decoding
(baseline or progressive) is left to libjpeg through ``jpeglib``, which hands back the
quantized DCT coefficients unchanged; everything after that is stb_image's pipeline,
written in numpy:

- dequantization into 16-bit ``short`` (``stbi__jpeg_decode_block``, ``stbi__jpeg_finish``);
- stb's integer IDCT (jidctint's DCT_ISLOW at 12 fractional bits) in the form of its SSE2
  kernel, which Darknet's x86-64 build runs: 16-bit adds, 32-bit products, 16-bit
  saturation after each pass, an unsigned 8-bit pack at the end;
- "fancy" chroma upsampling (``stbi__resample_row_v_2``, ``_h_2``, ``_hv_2``, nearest
  for other factors) with stb's row bookkeeping at the image edges;
- the fixed-point YCbCr -> RGB of ``stbi__YCbCr_to_RGB_row`` (20 fractional bits, the
  Cb term of green truncated to 16).

Only 8-bit YCbCr, RGB and grayscale JPEGs are handled; ``decode_stb`` raises
``StbUnsupported`` for others (CMYK, YCCK), and callers fall back to OpenCV.
"""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

# jpeglib's C side is not safe to call from several threads at once (concurrent calls
# crashed with SIGBUS): one read at a time; the numpy stages run in parallel.
_JPEGLIB = threading.Lock()


class StbUnsupported(Exception):
    """A JPEG this port does not reproduce (the caller decodes it another way)."""


def _f2f(x: float) -> int:
    return int(x * 4096 + 0.5)  # stbi__f2f


# The SSE2 kernel's paired constants (dct_const): (even lane, odd lane) per rotation.
C = {name: _f2f(v) for name, v in {
    "r0": 0.5411961, "m1_84": -1.847759065, "p0_76": 0.765366865, "p1_17": 1.175875602,
    "m0_89": -0.899976223, "m2_56": -2.562915447, "m1_96": -1.961570560, "m0_39": -0.390180644,
    "p0_29": 0.298631336, "p2_05": 2.053119869, "p3_07": 3.072711026, "p1_50": 1.501321110,
}.items()}


def _sat16(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -32768, 32767).astype(np.int16)


def _rot(x: np.ndarray, y: np.ndarray, c0: tuple[int, int], c1: tuple[int, int]):
    """``dct_rot``: two dot products of (x, y) 16-bit lanes, 32-bit results."""
    x, y = x.astype(np.int32), y.astype(np.int32)
    return x * c0[0] + y * c0[1], x * c1[0] + y * c1[1]


def _idct_pass(rows: list[np.ndarray], bias: int, shift: int) -> list[np.ndarray]:
    """One 1-D pass of the kernel over 8 rows of 16-bit lanes (``dct_pass``)."""
    r0, r1, r2, r3, r4, r5, r6, r7 = rows
    t2e, t3e = _rot(r2, r6, (C["r0"], C["r0"] + C["m1_84"]), (C["r0"] + C["p0_76"], C["r0"]))
    t0e = (r0 + r4).astype(np.int32) << 12  # 16-bit add (wraps), then widened
    t1e = (r0 - r4).astype(np.int32) << 12
    x0, x3, x1, x2 = t0e + t3e, t0e - t3e, t1e + t2e, t1e - t2e
    y0, y2 = _rot(r7, r3, (C["m1_96"] + C["p0_29"], C["m1_96"]),
                  (C["m1_96"], C["m1_96"] + C["p3_07"]))
    y1, y3 = _rot(r5, r1, (C["m0_39"] + C["p2_05"], C["m0_39"]),
                  (C["m0_39"], C["m0_39"] + C["p1_50"]))
    y4, y5 = _rot(r1 + r7, r3 + r5, (C["p1_17"] + C["m0_89"], C["p1_17"]),
                  (C["p1_17"], C["p1_17"] + C["m2_56"]))
    x4, x5, x6, x7 = y0 + y4, y1 + y5, y2 + y5, y3 + y4
    out = [None] * 8
    for a, b, lo, hi in ((x0, x7, 0, 7), (x1, x6, 1, 6), (x2, x5, 2, 5), (x3, x4, 3, 4)):
        a = a + bias
        out[lo], out[hi] = _sat16((a + b) >> shift), _sat16((a - b) >> shift)
    return out


def idct_blocks(coef: np.ndarray) -> np.ndarray:
    """Dequantized coefficients (N, 8, 8) int16, natural order [v][u] -> pixels (N, 8, 8)
    uint8 [y][x], as ``stbi__idct_simd``."""
    with np.errstate(over="ignore"):  # the kernel's 16-bit adds wrap, as SSE2's do
        cols = _idct_pass([coef[:, k, :] for k in range(8)], 512, 10)  # [y] x lanes [u]
        t = np.stack(cols, 1).transpose(0, 2, 1)  # [u][y]
        rows = _idct_pass([t[:, k, :] for k in range(8)], 65536 + (128 << 17), 17)  # [x][y]
    return np.clip(np.stack(rows, 1), 0, 255).astype(np.uint8).transpose(0, 2, 1)


def _plane(blocks: np.ndarray, table: np.ndarray) -> np.ndarray:
    """One component's (BH, BW, 8, 8) quantized coefficients -> its (BH*8, BW*8) pixels."""
    bh, bw = blocks.shape[:2]
    deq = (blocks.astype(np.int32) * table.astype(np.int32)).astype(np.int16)  # short wraps
    pix = idct_blocks(deq.reshape(-1, 8, 8)).reshape(bh, bw, 8, 8)
    return pix.transpose(0, 2, 1, 3).reshape(bh * 8, bw * 8)


def _source_rows(height: int, vs: int, comp_y: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output row: the (near, far) component rows stb's resampler reads."""
    near, far = np.empty(height, np.int64), np.empty(height, np.int64)
    ystep, line0, line1, ypos = vs >> 1, 0, 0, 0
    for j in range(height):
        bottom = ystep >= (vs >> 1)
        near[j], far[j] = (line1, line0) if bottom else (line0, line1)
        ystep += 1
        if ystep >= vs:
            ystep, line0 = 0, line1
            ypos += 1
            if ypos < comp_y:
                line1 += 1
    return near, far


def _div(x: np.ndarray, shift: int) -> np.ndarray:
    return (x >> shift).astype(np.uint8)


def _upsample_h2(t: np.ndarray, vertical: bool) -> np.ndarray:
    """Horizontal 2x: ``_hv_2`` on 3*near+far sums (``vertical``) or ``_h_2`` on pixels."""
    n, w = t.shape
    out = np.empty((n, 2 * w), np.uint8)
    if w == 1:
        out[:, 0] = out[:, 1] = _div(t[:, 0] + 2, 2) if vertical else t[:, 0]
        return out
    if vertical:
        out[:, 0] = _div(t[:, 0] + 2, 2)
        out[:, 1:2 * w - 1:2] = _div(3 * t[:, :-1] + t[:, 1:] + 8, 4)
        out[:, 2:2 * w - 1:2] = _div(3 * t[:, 1:] + t[:, :-1] + 8, 4)
        out[:, 2 * w - 1] = _div(t[:, -1] + 2, 2)
        return out
    out[:, 0] = t[:, 0]
    out[:, 1] = _div(3 * t[:, 0] + t[:, 1] + 2, 2)
    mid = 3 * t[:, 1:w - 1] + 2
    out[:, 2:2 * w - 2:2] = _div(mid + t[:, :w - 2], 2)
    out[:, 3:2 * w - 2:2] = _div(mid + t[:, 2:], 2)
    out[:, 2 * w - 2] = _div(3 * t[:, w - 2] + t[:, w - 1] + 2, 2)  # stb's last pair
    out[:, 2 * w - 1] = t[:, w - 1]
    return out


def upsample(plane: np.ndarray, hs: int, vs: int, comp_x: int, comp_y: int,
             width: int, height: int) -> np.ndarray:
    """A component plane at full size (height, width), as stb's resamplers make it."""
    near, far = _source_rows(height, vs, comp_y)
    w = (width + hs - 1) // hs
    a = plane[near, :w].astype(np.int32)
    b = plane[far, :w].astype(np.int32)
    if hs == 1 and vs == 1:
        out = a.astype(np.uint8)
    elif hs == 1 and vs == 2:
        out = _div(3 * a + b + 2, 2)
    elif hs == 2 and vs == 1:
        out = _upsample_h2(a, vertical=False)
    elif hs == 2 and vs == 2:
        out = _upsample_h2(3 * a + b, vertical=True)
    else:  # nearest neighbour
        out = np.repeat(a, hs, axis=1).astype(np.uint8)
    return out[:, :width]


def _fixed(x: float) -> int:
    return int(x * 4096.0 + 0.5) << 8  # stbi__float2fixed


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """``stbi__YCbCr_to_RGB_row`` on whole planes -> (H, W, 3) uint8."""
    yf = (y.astype(np.int32) << 20) + (1 << 19)
    cr = cr.astype(np.int32) - 128
    cb = cb.astype(np.int32) - 128
    out = np.empty((*y.shape, 3), np.uint8)
    green_cb = cb * -_fixed(0.34414)
    green_cb &= np.int32(-65536)  # stb keeps only the top 16 bits of this term
    for channel, term in enumerate((cr * _fixed(1.40200), cr * -_fixed(0.71414) + green_cb,
                                    cb * _fixed(1.77200))):
        term += yf
        term >>= 20
        np.clip(term, 0, 255, out=term)
        out[..., channel] = term
    return out


def jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) of each header segment of JPEG ``data``, up to the first scan."""
    k = 2
    while k + 4 <= len(data) and data[k] == 0xFF:
        marker, length = data[k + 1], int.from_bytes(data[k + 2:k + 4], "big")
        if marker == 0xDA:  # start of scan: the headers are over
            return
        yield marker, data[k + 4:k + 2 + length]
        k += 2 + length


def jpeg_markers(data: bytes) -> tuple[bool, int | None, tuple[int, ...]]:
    """What stb reads from the headers to tell RGB from YCbCr: a JFIF APP0 marker, the
    Adobe APP14 transform flag, and the frame's component ids."""
    jfif, transform, ids = False, None, ()
    for marker, body in jpeg_segments(data):
        if marker == 0xE0 and body.startswith(b"JFIF\0"):
            jfif = True
        elif marker == 0xEE and body.startswith(b"Adobe") and len(body) >= 12:
            transform = body[11]
        elif marker in (0xC0, 0xC1, 0xC2) and len(body) >= 6:
            ids = tuple(body[6 + 3 * i] for i in range(body[5]) if 6 + 3 * i < len(body))
    return jfif, transform, ids


def _is_rgb(data: bytes) -> bool:
    """stb's test for a 3-component file coded as RGB: component ids 'R', 'G', 'B', or an
    Adobe marker saying "no transform" without a JFIF marker."""
    jfif, transform, ids = jpeg_markers(data)
    return ids == (82, 71, 66) or (transform == 0 and not jfif)


def decode_stb(source: str | Path | bytes, data: bytes | None = None) -> np.ndarray:
    """A JPEG file (or its bytes) -> RGB uint8 (H, W, 3), stb_image's pixels; ``data``
    are the file's bytes when the caller has read them already."""
    import jpeglib

    if isinstance(source, bytes):
        with tempfile.NamedTemporaryFile(suffix=".jpg") as tmp:
            tmp.write(source)
            tmp.flush()
            return decode_stb(tmp.name, source)
    if data is None:
        data = Path(source).read_bytes()
    with _JPEGLIB:
        jpeg = jpeglib.read_dct(str(source))
        jpeg.load()
        n = jpeg.num_components
        if n not in (1, 3) or jpeg.has_black:
            raise StbUnsupported(f"{n} components ({jpeg.jpeg_color_space})")
        height, width = jpeg.height, jpeg.width
        factors = np.asarray(jpeg.samp_factor).reshape(n, 2)  # (v, h) per component
        components = [np.asarray(b) for b in [jpeg.Y, jpeg.Cb, jpeg.Cr][:n]]
        tables = [np.asarray(jpeg.qt[jpeg.quant_tbl_no[k]]) for k in range(n)]
    v_max, h_max = int(factors[:, 0].max()), int(factors[:, 1].max())
    planes = []
    for k, blocks in enumerate(components):
        v, h = int(factors[k, 0]), int(factors[k, 1])
        table = tables[k]
        comp_x = math.ceil(width * h / h_max)
        comp_y = math.ceil(height * v / v_max)
        planes.append(upsample(_plane(blocks, table), h_max // h, v_max // v,
                               comp_x, comp_y, width, height))
    if n == 1:
        return np.repeat(planes[0][:, :, None], 3, axis=2)
    if _is_rgb(data):
        return np.stack(planes, -1)
    return ycbcr_to_rgb(*planes)
