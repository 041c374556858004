"""unigs.codec.snap: user-painted colormaps snapped to Ψ's palette, refused when off, re-encoded by Ψ."""

from __future__ import annotations

import numpy as np
import pytest

from unigs.codec import palette
from unigs.codec.snap import canonical_colormap, colormap_masks, snap_to_palette


def _masks():
    masks = np.zeros((2, 24, 24), bool)
    masks[0, :10, :10] = True
    masks[1, 12:, 8:] = True
    return masks


def test_exact_palette_map_is_unchanged_and_near_colours_snap():
    cmap = palette.encode(_masks())
    assert np.array_equal(snap_to_palette(cmap), cmap)
    noisy = cmap.astype(np.int16)
    noisy[_masks()[1]] += np.array([10, -12, 20], np.int16)
    noisy[~_masks().any(0)] = 15  # near-black background
    assert np.array_equal(snap_to_palette(np.clip(noisy, 0, 255).astype(np.uint8)), cmap)


def test_off_palette_colour_is_refused_in_one_sentence():
    cmap = palette.encode(_masks())
    cmap[:3, :3] = (100, 30, 200)  # 28/30/8 from the nearest levels
    with pytest.raises(ValueError, match=r"9 pixel\(s\) in 1 colour\(s\) .* RGB \(100, 30, 200\)") as err:
        snap_to_palette(cmap)
    assert "\n" not in str(err.value)
    assert snap_to_palette(cmap, tolerance=30)[0, 0].tolist() == [128, 0, 192]
    with pytest.raises(ValueError, match="uint8"):
        snap_to_palette(cmap.astype(np.float32))


def test_canonical_repaints_any_palette_colour_at_its_location():
    masks = _masks()
    user = np.zeros((24, 24, 3), np.uint8)
    user[masks[0]] = palette.PALETTE[100]  # colours picked "by eye", not the location colours
    user[masks[1]] = palette.PALETTE[3]
    assert np.array_equal(canonical_colormap(user), palette.encode(masks))
    region = np.zeros((24, 24), bool)
    region[12:] = True
    assert np.array_equal(canonical_colormap(user, region), palette.encode(masks[1:]))
    assert not canonical_colormap(user, np.zeros((24, 24), bool)).any()
    assert [m.sum() for m in colormap_masks(palette.encode(masks))] in ([100, 192], [192, 100])
