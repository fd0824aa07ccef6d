"""Small structured images and a torch thread setting shared by the network tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Two cores shared by several test runs: a second torch thread makes tiny models 10x slower here.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def shape_images(count: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Discs (label 0) and bars (label 1) of random size and place on a faint noisy background, uint8."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    images = np.zeros((count, size, size), dtype=np.uint8)
    labels = np.arange(count) % 2
    for index, label in enumerate(labels):
        canvas = rng.uniform(0, 30, (size, size))
        centre_r, centre_c = rng.uniform(size * 0.3, size * 0.7, 2)
        if label == 0:
            radius = rng.uniform(size * 0.15, size * 0.3)
            mask = (rows - centre_r) ** 2 + (cols - centre_c) ** 2 <= radius**2
        else:
            half_long, half_short = rng.uniform(size * 0.3, size * 0.45), rng.uniform(1, size * 0.06)
            if rng.random() < 0.5:
                half_long, half_short = half_short, half_long
            mask = (np.abs(rows - centre_r) <= half_long) & (np.abs(cols - centre_c) <= half_short)
        canvas[mask] = rng.uniform(180, 255)
        images[index] = canvas.astype(np.uint8)
    return images, labels
