"""OpenCV's 8-bit colour and resize arithmetic, on torch tensors (any device).

The integer parts are OpenCV's exactly; the float part of HSV->RGB is OpenCV's operation
for operation.  Used by the training pipeline that augments on the device
(``train/device_augment.py``), whose results must equal the CPU loader's cv2 calls.
"""

from __future__ import annotations

import numpy as np
import torch

HSV_SHIFT = 12  # OpenCV's hsv_shift


def _tables(device) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV's ``sdiv_table`` and ``hdiv_table180`` (``saturate_cast<int>`` rounds)."""
    i = np.arange(1, 256, dtype=np.float64)
    sdiv = np.r_[0, np.rint((255 << HSV_SHIFT) / i)]
    hdiv = np.r_[0, np.rint((180 << HSV_SHIFT) / (6 * i))]
    return (torch.tensor(sdiv, dtype=torch.int32, device=device),
            torch.tensor(hdiv, dtype=torch.int32, device=device))


def rgb_to_hsv8(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``cvtColor(COLOR_RGB2HSV)`` of uint8 values: (..., 3) int RGB -> int32 H in
    [0, 180), S and V in [0, 255], bit for bit."""
    sdiv, hdiv = _tables(rgb.device)
    r, g, b = (rgb[..., c].to(torch.int32) for c in range(3))
    v = torch.maximum(torch.maximum(r, g), b)
    diff = v - torch.minimum(torch.minimum(r, g), b)
    half = 1 << (HSV_SHIFT - 1)
    s = (diff * sdiv[v] + half) >> HSV_SHIFT
    h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * hdiv[diff] + half) >> HSV_SHIFT
    return torch.where(h < 0, h + 180, h), s, v


def hsv8_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor,
                truncate: torch.Tensor | bool = True) -> torch.Tensor:
    """``cvtColor(COLOR_HSV2RGB)`` of uint8 H (any value up to 255), S, V -> (..., 3)
    uint8 RGB.  OpenCV computes in float; its vector code truncates the result (``truncate``
    true), its scalar code rounds it."""
    f = torch.float32
    hh = h.to(f) * torch.tensor(6.0 / 180, dtype=f)
    sf = s.to(f) * torch.tensor(1 / 255, dtype=f)
    vf = v.to(f) * torch.tensor(1 / 255, dtype=f)
    sector = torch.trunc(hh)
    frac = hh - sector
    sector = (sector - torch.trunc(sector * torch.tensor(1 / 6, dtype=f)) * 6).to(torch.int64)
    one = torch.ones((), dtype=f, device=h.device)
    tab = torch.stack([vf, vf * (one - sf), vf * (one - sf * frac),
                       vf * (one - sf * (one - frac))], -1)
    # which of tab feeds R, G, B in each sector (OpenCV's sector_data, reversed for RGB)
    order = torch.tensor([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]],
                         device=h.device)
    rgb = torch.gather(tab, -1, order[sector.clamp(0, 5)]) * torch.tensor(255.0, dtype=f)
    rgb = torch.where(torch.as_tensor(truncate, device=h.device).unsqueeze(-1),
                      torch.trunc(rgb), torch.round(rgb))
    return rgb.clamp(0, 255).to(torch.uint8)


def scale_round(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``convertTo(uint8, alpha)``: the float product rounded (half to even), saturated."""
    return torch.round(x.to(torch.float32) * factor).clamp(0, 255).to(torch.int32)


def resize_vertical(top: torch.Tensor, bottom: torch.Tensor, w_top: torch.Tensor,
                    w_bottom: torch.Tensor) -> torch.Tensor:
    """cv::resize INTER_LINEAR's vertical pass on uint8 (``VResizeLinearVec_32s8u``): two
    horizontally interpolated rows (int, weights in 1/2048) -> uint8 values."""
    out = (((top >> 4) * w_top) >> 16) + (((bottom >> 4) * w_bottom) >> 16)
    return ((out + 2) >> 2).clamp(0, 255)
