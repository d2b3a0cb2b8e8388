"""Slow, literal transcriptions of stb_image's scalar JPEG kernels, for testing the
vectorized port in ``darknet_py.image.stb`` (loop by loop, integer by integer; Python ints
do not overflow, so inputs stay in the ranges real JPEGs produce)."""

from __future__ import annotations


def f2f(x: float) -> int:
    return int(x * 4096 + 0.5)


def idct_1d(s0, s1, s2, s3, s4, s5, s6, s7):
    """STBI__IDCT_1D: returns (x0, x1, x2, x3, t0, t1, t2, t3)."""
    p2, p3 = s2, s6
    p1 = (p2 + p3) * f2f(0.5411961)
    t2 = p1 + p3 * f2f(-1.847759065)
    t3 = p1 + p2 * f2f(0.765366865)
    p2, p3 = s0, s4
    t0 = (p2 + p3) * 4096
    t1 = (p2 - p3) * 4096
    x0, x3, x1, x2 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    t0, t1, t2, t3 = s7, s5, s3, s1
    p3, p4, p1, p2 = t0 + t2, t1 + t3, t0 + t3, t1 + t2
    p5 = (p3 + p4) * f2f(1.175875602)
    t0 = t0 * f2f(0.298631336)
    t1 = t1 * f2f(2.053119869)
    t2 = t2 * f2f(3.072711026)
    t3 = t3 * f2f(1.501321110)
    p1 = p5 + p1 * f2f(-0.899976223)
    p2 = p5 + p2 * f2f(-2.562915447)
    p3 = p3 * f2f(-1.961570560)
    p4 = p4 * f2f(-0.390180644)
    t3 += p1 + p4
    t2 += p2 + p3
    t1 += p2 + p4
    t0 += p1 + p3
    return x0, x1, x2, x3, t0, t1, t2, t3


def clamp(x: int) -> int:
    return 0 if x < 0 else 255 if x > 255 else x


def idct_block(d: list[int]) -> list[list[int]]:
    """stbi__idct_block on 64 dequantized coefficients (natural order) -> 8x8 pixels."""
    v = [0] * 64
    for i in range(8):
        col = [d[i + 8 * k] for k in range(8)]
        if all(c == 0 for c in col[1:]):
            for k in range(8):
                v[i + 8 * k] = col[0] * 4
            continue
        x0, x1, x2, x3, t0, t1, t2, t3 = idct_1d(*col)
        x0, x1, x2, x3 = x0 + 512, x1 + 512, x2 + 512, x3 + 512
        v[i + 0], v[i + 56] = (x0 + t3) >> 10, (x0 - t3) >> 10
        v[i + 8], v[i + 48] = (x1 + t2) >> 10, (x1 - t2) >> 10
        v[i + 16], v[i + 40] = (x2 + t1) >> 10, (x2 - t1) >> 10
        v[i + 24], v[i + 32] = (x3 + t0) >> 10, (x3 - t0) >> 10
    out = []
    for i in range(8):
        x0, x1, x2, x3, t0, t1, t2, t3 = idct_1d(*v[8 * i:8 * i + 8])
        bias = 65536 + (128 << 17)
        x0, x1, x2, x3 = x0 + bias, x1 + bias, x2 + bias, x3 + bias
        row = [0] * 8
        row[0], row[7] = clamp((x0 + t3) >> 17), clamp((x0 - t3) >> 17)
        row[1], row[6] = clamp((x1 + t2) >> 17), clamp((x1 - t2) >> 17)
        row[2], row[5] = clamp((x2 + t1) >> 17), clamp((x2 - t1) >> 17)
        row[3], row[4] = clamp((x3 + t0) >> 17), clamp((x3 - t0) >> 17)
        out.append(row)
    return out


def resample_row(kind: str, near: list[int], far: list[int], w: int, hs: int) -> list[int]:
    """stbi__resample_row_v_2 / _h_2 / _hv_2 (scalar) and _generic (nearest)."""
    out = [0] * (2 * w + 2)
    if kind == "v2":
        return [(3 * near[i] + far[i] + 2) >> 2 for i in range(w)]
    if kind == "h2":
        inp = near
        if w == 1:
            return [inp[0], inp[0]]
        out[0] = inp[0]
        out[1] = (inp[0] * 3 + inp[1] + 2) >> 2
        i = 1
        while i < w - 1:
            n = 3 * inp[i] + 2
            out[i * 2] = (n + inp[i - 1]) >> 2
            out[i * 2 + 1] = (n + inp[i + 1]) >> 2
            i += 1
        out[i * 2] = (inp[w - 2] * 3 + inp[w - 1] + 2) >> 2
        out[i * 2 + 1] = inp[w - 1]
        return out[:2 * w]
    if kind == "hv2":
        if w == 1:
            v = (3 * near[0] + far[0] + 2) >> 2
            return [v, v]
        t1 = 3 * near[0] + far[0]
        out[0] = (t1 + 2) >> 2
        for i in range(1, w):
            t0, t1 = t1, 3 * near[i] + far[i]
            out[i * 2 - 1] = (3 * t0 + t1 + 8) >> 4
            out[i * 2] = (3 * t1 + t0 + 8) >> 4
        out[w * 2 - 1] = (t1 + 2) >> 2
        return out[:2 * w]
    out = [0] * (w * hs)
    for i in range(w):
        for j in range(hs):
            out[i * hs + j] = near[i]
    return out


def upsample_plane(plane: list[list[int]], hs: int, vs: int, comp_y: int, width: int,
                   height: int) -> list[list[int]]:
    """load_jpeg_image's per-row loop for one component (line0/line1, ystep, ypos)."""
    kind = {(1, 1): "copy", (1, 2): "v2", (2, 1): "h2", (2, 2): "hv2"}.get((hs, vs), "near")
    w_lores = (width + hs - 1) // hs
    ystep, ypos, line0, line1 = vs >> 1, 0, 0, 0
    rows = []
    for _ in range(height):
        y_bot = ystep >= (vs >> 1)
        near, far = (plane[line1], plane[line0]) if y_bot else (plane[line0], plane[line1])
        row = list(near[:w_lores]) if kind == "copy" else resample_row(kind, near, far, w_lores, hs)
        rows.append(row[:width])
        ystep += 1
        if ystep >= vs:
            ystep = 0
            line0 = line1
            ypos += 1
            if ypos < comp_y:
                line1 += 1
    return rows


def float2fixed(x: float) -> int:
    return int(x * 4096.0 + 0.5) << 8


def ycbcr_to_rgb(y: int, cb: int, cr: int) -> tuple[int, int, int]:
    """stbi__YCbCr_to_RGB_row for one pixel (32-bit ints, as C computes them)."""
    def i32(x):
        return (x + 2 ** 31) % 2 ** 32 - 2 ** 31

    y_fixed = (y << 20) + (1 << 19)
    cr, cb = cr - 128, cb - 128
    r = i32(y_fixed + cr * float2fixed(1.40200))
    g = i32(y_fixed + cr * -float2fixed(0.71414) + (i32(cb * -float2fixed(0.34414)) & -65536))
    b = i32(y_fixed + cb * float2fixed(1.77200))
    return tuple(max(0, min(255, v >> 20)) for v in (r, g, b))
