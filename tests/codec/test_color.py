"""sRGB → CIELAB in torch, checked against skimage.color.rgb2lab."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from unigs.codec.color import check_rgb, rgb_to_lab
from unigs.codec.palette import PALETTE


def test_matches_skimage_on_random_and_palette_colours():
    rng = np.random.default_rng(0)
    rgb = np.concatenate([rng.integers(0, 256, (2000, 3)), PALETTE, [[0, 0, 0], [255, 255, 255]]])
    rgb = rgb.astype(np.uint8)
    ours = rgb_to_lab(rgb)
    assert ours.dtype == np.float32 and ours.shape == rgb.shape
    np.testing.assert_allclose(ours, rgb2lab(rgb / 255.0), atol=1e-3)


def test_known_values():
    lab = rgb_to_lab(np.array([[0, 0, 0], [255, 255, 255], [128, 128, 128]], np.uint8))
    np.testing.assert_allclose(lab[0], [0, 0, 0], atol=1e-4)
    np.testing.assert_allclose(lab[1], [100, 0, 0], atol=1e-2)
    np.testing.assert_allclose(lab[2, 0], 53.585, atol=1e-2)  # mid grey: L* = 53.59, neutral a*, b*
    np.testing.assert_allclose(lab[2, 1:], [0, 0], atol=1e-2)


def test_torch_in_torch_out_and_float_input_match_uint8():
    rgb = torch.randint(0, 256, (4, 5, 3), dtype=torch.uint8)
    lab = rgb_to_lab(rgb)
    assert isinstance(lab, torch.Tensor) and lab.shape == (4, 5, 3) and lab.dtype == torch.float32
    torch.testing.assert_close(rgb_to_lab(rgb.float()), lab)
    assert rgb_to_lab(rgb.double()).dtype == torch.float64


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([[0, 0, 0]], "numpy array or torch tensor"),
        (np.zeros((4, 4), np.uint8), r"shape \(\.\.\., 3\)"),
        (np.zeros((4, 3), np.int32), "dtype"),
        (np.full((2, 3), 256.0), r"\[0, 255\]"),
        (np.full((2, 3), -1.0), r"\[0, 255\]"),
        (np.full((2, 3), np.nan), "NaN"),
    ],
)
def test_bad_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        rgb_to_lab(bad)
    with pytest.raises(ValueError, match=match):
        check_rgb(bad)
