"""unigs.visualize: overlay with known pixel values, outlines, and sheets of mixed tiles."""

from __future__ import annotations

import numpy as np
import pytest

from unigs.visualize import distinct_colors, mask_outline, overlay, sheet


def test_distinct_colors_are_distinct_and_deterministic():
    c = distinct_colors(20)
    assert c.shape == (20, 3) and c.dtype == np.uint8
    assert len({tuple(x) for x in c}) == 20
    np.testing.assert_array_equal(c, distinct_colors(20))
    assert distinct_colors(0).shape == (0, 3)


def test_mask_outline_of_square():
    m = np.zeros((5, 5), bool)
    m[1:4, 1:4] = True
    out = mask_outline(m)
    assert out.sum() == 8 and not out[2, 2] and out[1, 1]
    assert mask_outline(np.ones((2, 2), bool)).all()  # the image border counts as outside


def test_overlay_known_pixels():
    img = np.zeros((5, 5, 3), np.uint8)
    m = np.zeros((1, 5, 5), bool)
    m[0, 1:4, 1:4] = True
    out = overlay(img, m, colors=np.array([[200, 0, 0]], np.uint8), alpha=0.5)
    np.testing.assert_array_equal(out[2, 2], [100, 0, 0])  # interior: blended
    np.testing.assert_array_equal(out[1, 1], [200, 0, 0])  # outline: full colour
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])  # outside: untouched
    assert img.max() == 0  # input not modified


def test_overlay_later_mask_on_top_and_defaults():
    img = np.full((4, 4, 3), 50, np.uint8)
    masks = np.ones((2, 4, 4), bool)
    colors = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    out = overlay(img, masks, colors=colors, alpha=1.0)
    assert (out == [0, 0, 255]).all()
    np.testing.assert_array_equal(overlay(img, np.zeros((0, 4, 4), bool)), img)
    assert overlay(img[..., 0], masks[0]).shape == (4, 4, 3)  # grayscale image, single (H, W) mask


@pytest.mark.parametrize(
    "masks, kwargs",
    [
        (np.zeros((1, 3, 4), bool), {}),
        (np.zeros((1, 4, 4), bool), {"alpha": 1.5}),
        (np.zeros((2, 4, 4), bool), {"colors": np.zeros((1, 3), np.uint8)}),
    ],
)
def test_overlay_bad_inputs(masks, kwargs):
    with pytest.raises(ValueError):
        overlay(np.zeros((4, 4, 3), np.uint8), masks, **kwargs)


def test_sheet_layout_mixed_tiles():
    red = np.zeros((10, 20, 3), np.uint8)
    red[...] = (255, 0, 0)
    gray = np.full((30, 5), 0, np.uint8)
    boolean = np.ones((8, 8), bool)
    floats = np.zeros((12, 12), np.float32)
    rows = [[("red", red), ("gray", gray)], [("bool", boolean)], [("f", floats), ("x", red), ("y", red)]]
    out = sheet(rows, pad=4)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    # columns: widest of their tiles (20, 20, 20) -> widths 20 + 20 + 20 plus 4 gaps of 4 px
    assert out.shape[1] == 20 + 20 + 20 + 4 * 4
    # the red tile sits under its title, at the top-left of cell (0, 0)
    red_rows = np.flatnonzero((out[:, 4:24] == [255, 0, 0]).all(-1).all(-1))
    assert len(red_rows) == 10 and red_rows[0] > 4
    # the title row above it has ink (dark pixels) on the white background
    assert out[4:red_rows[0], 4:24].min() < 128
    # the bool tile is white (255) on white: its cell starts after row 0; the black float tile is present
    assert (out == 0).all(-1).sum() >= 12 * 12


def test_sheet_bad_inputs():
    with pytest.raises(ValueError):
        sheet([])
    with pytest.raises(ValueError):
        sheet([[("a", np.zeros((2, 2, 3), np.uint8))], []])
    with pytest.raises(ValueError, match="tile"):
        sheet([[("a", np.zeros((2, 2, 2, 2), np.uint8))]])
