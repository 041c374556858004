"""The latent round-trip degradation model (unigs.codec.degrade)."""

from __future__ import annotations

import numpy as np
import pytest

from unigs.codec.degrade import simulate_latent_roundtrip

QUIET = dict(latent_noise_std=0.0, gain_std=0.0, offset_std=0.0, noise_std=0.0)


def halves(h=64, w=64):
    cm = np.zeros((h, w, 3), np.uint8)
    cm[:, w // 2 :] = (192, 64, 0)
    return cm


def test_shape_dtype_and_seeded_determinism():
    cm = halves()
    a = simulate_latent_roundtrip(cm, np.random.default_rng(3))
    b = simulate_latent_roundtrip(cm, np.random.default_rng(3))
    c = simulate_latent_roundtrip(cm, np.random.default_rng(4))
    assert a.shape == cm.shape and a.dtype == np.uint8 and a.flags.c_contiguous
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_noise_free_flat_map_is_unchanged():
    cm = np.full((40, 56, 3), (64, 128, 255), np.uint8)
    np.testing.assert_array_equal(simulate_latent_roundtrip(cm, np.random.default_rng(0), **QUIET), cm)


def test_edges_become_ramps_about_two_cells_wide():
    out = simulate_latent_roundtrip(halves(), np.random.default_rng(0), **QUIET)
    row = out[10, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 192
    assert np.all(np.diff(row) >= 0)  # monotone ramp
    blended = np.flatnonzero((row > 0) & (row < 192))
    assert 8 <= len(blended) <= 16  # soft boundary ≈ one to two latent cells (factor 8)


def test_default_noise_is_a_few_grey_levels_inside_flat_regions():
    cm = np.full((128, 128, 3), (128, 128, 128), np.uint8)
    out = simulate_latent_roundtrip(cm, np.random.default_rng(0)).astype(float)
    centred = out - out.mean((0, 1))  # the per-image colour cast is a global shift
    assert 1.0 < centred.std() < 5.0
    assert np.abs(out.mean((0, 1)) - 128).max() < 20


def test_sizes_not_multiple_of_factor():
    out = simulate_latent_roundtrip(halves(37, 53), np.random.default_rng(0), factor=8)
    assert out.shape == (37, 53, 3)


@pytest.mark.parametrize(
    ("cm", "kwargs", "match"),
    [
        (np.zeros((8, 8), np.uint8), {}, "shape"),
        (np.zeros((8, 8, 3), np.float32), {}, "uint8"),
        (np.zeros((8, 8, 3), np.uint8), {"factor": 0}, "factor"),
        (np.zeros((8, 8, 3), np.uint8), {"noise_std": -1.0}, "noise_std"),
        (np.zeros((8, 8, 3), np.uint8), {"gain_std": "a"}, "gain_std"),
    ],
)
def test_bad_input_raises(cm, kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_latent_roundtrip(cm, np.random.default_rng(0), **kwargs)


def test_rng_must_be_a_generator():
    with pytest.raises(ValueError, match="Generator"):
        simulate_latent_roundtrip(halves(), 0)
