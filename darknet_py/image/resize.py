"""Darknet's resizes of RGB float32 images (H x W x 3): ``resize_image`` and
``letterbox_image``, in float32 as Darknet computes them, on the CPU or a GPU."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..ops.boxes import letterbox_size


def resize_image(im: np.ndarray | Tensor, w: int, h: int) -> np.ndarray | Tensor:
    """Darknet's ``resize_image``: bilinear in two passes (columns, then rows), in float32.

    Corners map to corners (scale ``(in-1)/(out-1)``); the last output column
    copies the last input column and the last row takes only the ``(1-dy)``
    share of its source row, exactly as Darknet does.  ``im`` is H x W x C, a numpy
    array or a tensor on any device (the result is of the same kind and device).
    """
    if not isinstance(im, Tensor):
        return resize_image(torch.from_numpy(np.asarray(im, dtype=np.float32)), w, h).numpy()
    im = im.float()
    in_h, in_w = im.shape[:2]
    if (in_w, in_h) == (w, h):
        return im.clone()
    f32 = dict(dtype=torch.float32, device=im.device)

    def scale(n_in: int, n_out: int) -> Tensor:
        if n_out <= 1:
            return torch.zeros((), **f32)
        return torch.tensor(n_in - 1, **f32) / torch.tensor(n_out - 1, **f32)

    sx = torch.arange(w, **f32) * scale(in_w, w)
    ix = sx.long()
    dx = (sx - ix.float())[None, :, None]
    ix = ix.clamp(max=in_w - 1)
    part = (1 - dx) * im[:, ix] + dx * im[:, (ix + 1).clamp(max=in_w - 1)]
    if in_w == 1:
        part[:] = im[:, in_w - 1: in_w]
    else:
        part[:, w - 1] = im[:, in_w - 1]

    sy = torch.arange(h, **f32) * scale(in_h, h)
    iy = sy.long().clamp(max=in_h - 1)
    dy = (sy - iy.float())[:, None, None]
    out = (1 - dy) * part[iy]
    if in_h > 1:
        rows = slice(0, h - 1)
        out[rows] += dy[rows] * part[(iy[rows] + 1).clamp(max=in_h - 1)]
    return out


def letterbox_image(im: np.ndarray | Tensor, w: int, h: int) -> np.ndarray | Tensor:
    """Darknet's ``letterbox_image``: resize keeping aspect ratio, centre on 0.5 grey
    (numpy array or tensor, as ``resize_image``)."""
    in_h, in_w = im.shape[:2]
    new_w, new_h = letterbox_size(in_w, in_h, w, h)
    resized = resize_image(im, new_w, new_h)
    if isinstance(resized, Tensor):
        boxed = torch.full((h, w, im.shape[2]), 0.5, dtype=torch.float32, device=im.device)
    else:
        boxed = np.full((h, w, im.shape[2]), 0.5, dtype=np.float32)
    top, left = (h - new_h) // 2, (w - new_w) // 2
    boxed[top: top + new_h, left: left + new_w] = resized
    return boxed


def network_input(im: np.ndarray | Tensor, w: int, h: int,
                  letter_box: bool) -> np.ndarray | Tensor:
    """The ``w`` x ``h`` network input of an image: letterboxed or stretched, as the
    cfg's ``letter_box`` says (Darknet's ``detector test`` preprocessing)."""
    return letterbox_image(im, w, h) if letter_box else resize_image(im, w, h)
