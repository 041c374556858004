"""Fixtures for the pipeline tests: tiny seeded components (32 px, latent 4x8x8) and a hand-made scene."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_components


@pytest.fixture(scope="module")
def components():
    """Tiny UniGS components (13/8 UNet with a 4-task embedding, x4 VAE, 32-d BERT, DDIM). Pipelines never
    modify their weights, so one set per test module is shared."""
    return tiny_components(seed=0)


@pytest.fixture
def scene():
    """A 32x32 RGB image with two rectangles on grey, a coarse mask around the lower-right one, and the
    exact masks `(2, 32, 32) bool` of the rectangles."""
    image = np.full((32, 32, 3), 120, dtype=np.uint8)
    masks = np.zeros((2, 32, 32), dtype=bool)
    masks[0, 2:12, 2:14] = True
    masks[1, 18:30, 16:30] = True
    image[masks[0]] = (200, 40, 40)
    image[masks[1]] = (30, 60, 210)
    coarse = np.zeros((32, 32), dtype=bool)
    coarse[16:32, 14:32] = True
    return image, coarse, masks


@pytest.fixture
def make_pipe(components):
    """`make_pipe(cls)`: a pipeline of `cls` on the tiny components, without progress bar."""

    def make(cls):
        pipe = cls.from_components(components)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return make

