"""-show_imgs: augmented samples drawn with their boxes."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from darknet_py.train.show import draw_truth, show_first


def test_boxes_are_drawn_where_darknet_draws_them():
    x = torch.zeros(3, 40, 50, dtype=torch.uint8)
    x[0] = 200  # red
    picture = draw_truth(x, torch.tensor([[1, 0.5, 0.5, 0.4, 0.5]]))
    assert picture.shape == (40, 50, 3) and tuple(picture[0, 0]) == (0, 0, 200)  # BGR
    # left = int((0.5 - 0.2) * 50) = 15, right = 35, top = 10, bottom = 30
    assert tuple(picture[10, 15]) == tuple(picture[30, 35]) == (255, 255, 255)
    assert tuple(picture[20, 25]) == (0, 0, 200) and tuple(picture[9, 15]) == (0, 0, 200)
    floats = draw_truth(x.float() / 255, torch.zeros(0, 5))
    assert np.array_equal(floats, cv2.cvtColor(x.numpy().transpose(1, 2, 0), cv2.COLOR_RGB2BGR))


def test_show_first_passes_batches_through_and_writes_the_first(tmp_path):
    batches = [(torch.full((2, 3, 8, 8), k, dtype=torch.uint8),
                torch.tensor([[1, 0, .5, .5, .5, .5]])) for k in range(3)]
    out = list(show_first(iter(batches), 2, tmp_path))
    assert all(a[0] is b[0] for a, b in zip(out, batches)) and len(out) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "aug_0_0.jpg", "aug_0_1.jpg", "aug_1_0.jpg", "aug_1_1.jpg"]
