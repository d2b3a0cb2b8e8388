"""Darknet's classifier at inference (``predict_classifier``): the image resized so its
shorter side is the network width (``resize_min``), the centre cropped to the network size
(``crop_image``, edges repeated), the network's output, and its ``top_k``."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..image import load_image, resize_image
from ..image.decode import DEFAULT_DECODER
from ..nn.model import Darknet, module_device
from .detector import inference_model


def classifier_input(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """RGB float32 (H, W, 3) -> the (h, w, 3) input ``predict_classifier`` makes: the
    shorter side resized to ``w`` (Darknet's ``resize_min``), then the centre ``w`` x ``h``
    (``crop_image``: rows and columns outside are the nearest edge's)."""
    ih, iw = image.shape[:2]
    nw, nh = (w, ih * w // iw) if iw < ih else (iw * w // ih, w)
    if (nw, nh) != (iw, ih):
        image = resize_image(image, nw, nh)
    dx, dy = int((nw - w) / 2), int((nh - h) / 2)  # C's division truncates toward 0
    rows = np.clip(np.arange(h) + dy, 0, nh - 1)
    cols = np.clip(np.arange(w) + dx, 0, nw - 1)
    return np.ascontiguousarray(image[rows][:, cols])


def top_k(values: Sequence[float], k: int) -> list[int]:
    """Darknet's ``top_k``: the indices of the ``k`` largest, largest first, ties ordered
    as its insertion cascade leaves them."""
    index = [-1] * k
    for i, v in enumerate(values):
        curr = i
        for j in range(k):
            if index[j] < 0 or values[curr] > values[index[j]]:
                curr, index[j] = index[j], curr
    return [i for i in index if i >= 0]


@torch.no_grad()
def classify(model: Darknet, image: str | np.ndarray,
             decoder: str = DEFAULT_DECODER) -> torch.Tensor:
    """The network's output for one image (path, or RGB float32 array), flattened:
    ``network_predict`` on the ``classifier_input``.  The model is used as it is when in
    eval mode in float32, else an eval-mode copy (``inference_model``); it is not changed."""
    rgb = load_image(image, decoder) if isinstance(image, str) else image
    x = classifier_input(rgb, model.width, model.height)
    device = module_device(model)
    net = inference_model(model, device, torch.float32)
    tensor = torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).to(device)
    return net(tensor).reshape(-1).float().cpu()
