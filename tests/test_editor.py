"""unigs.editor: brush-editor values → masks, names, sizes; the palette swatches."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from unigs import editor
from unigs.codec.palette import PALETTE


def _layer(h, w, box, alpha=255, rgb=(200, 30, 30)):
    layer = np.zeros((h, w, 4), np.uint8)
    y0, y1, x0, x1 = box
    layer[y0:y1, x0:x1, :3] = rgb
    layer[y0:y1, x0:x1, 3] = alpha
    return layer


def test_layer_masks_read_alpha_not_colour():
    # a black stroke (same colour as a black photo) and a stroke with faint alpha
    a = _layer(8, 10, (1, 3, 2, 5), rgb=(0, 0, 0))
    b = _layer(8, 10, (4, 8, 0, 10), alpha=40)
    masks = editor.layer_masks([a, None, b], (8, 10))
    assert masks.shape == (3, 8, 10) and masks.dtype == bool
    assert masks[0].sum() == 2 * 3 and masks[0, 1:3, 2:5].all()
    assert not masks[1].any()  # a deleted layer stays in place, empty
    assert not masks[2].any()  # alpha 40 < threshold: an anti-aliased fringe, not a stroke
    assert editor.layer_masks([b], (8, 10), threshold=1)[0].sum() == 40


def test_layer_masks_reject_wrong_shapes():
    with pytest.raises(ValueError, match="layer 1 must be RGBA"):
        editor.layer_masks([np.zeros((8, 10, 3), np.uint8)], (8, 10))
    with pytest.raises(ValueError, match="layer 2 is 10x9 px but the picture is 10x8"):
        editor.layer_masks([np.zeros((8, 10, 4), np.uint8), np.zeros((9, 10, 4), np.uint8)], (8, 10))


def test_parse_names_one_line_per_layer():
    assert editor.parse_names("region 1: dog, cat\n\nball ,\n\n") == [["dog", "cat"], [], ["ball"]]
    assert editor.parse_names("") == [] and editor.parse_names(None) == []


def test_names_for_regions():
    painted = np.array([True, False, True])
    assert editor.names_for_regions([["dog"], [], ["ball", "sky"]], painted) == [["dog"], ["ball", "sky"]]
    with pytest.raises(ValueError, match="layer 3 has a stroke but no names"):
        editor.names_for_regions([["dog"], ["cat"]], painted)
    # one painted layer takes every typed name, whichever layer it is
    assert editor.names_for_regions([["dog"], ["cat"]], np.array([False, True])) == [["dog", "cat"]]
    with pytest.raises(ValueError, match="at least one entity name"):
        editor.names_for_regions([], np.array([True]))


def test_working_size_keeps_aspect_and_multiple():
    assert editor.working_size(512, 512, 128, 16) == (128, 128)
    assert editor.working_size(480, 640, 128, 16) == (96, 128)
    assert editor.working_size(10, 1000, 128, 16) == (16, 128)  # never below one multiple
    with pytest.raises(ValueError, match="positive"):
        editor.working_size(0, 10, 128, 16)


def test_resize_masks_cover_rule():
    mask = np.zeros((1, 8, 8), bool)
    mask[0, :4, :2] = True  # covers half of each 2x2 block in columns 0-1 → kept (>= 0.5)
    mask[0, 6, 6] = True    # a quarter of its block → dropped
    small = editor.resize_masks(mask, (4, 4))
    assert small[0, :2, 0].all() and small[0].sum() == 2


def test_rgb_of_transparent_is_black():
    rgba = np.full((2, 2, 4), 200, np.uint8)
    rgba[0, 0, 3] = 0
    rgb = editor.rgb_of(rgba)
    assert rgb.shape == (2, 2, 3) and (rgb[0, 0] == 0).all() and (rgb[1, 1] == 200).all()
    with pytest.raises(ValueError, match="the photo must be"):
        editor.rgb_of(np.zeros((2, 2), np.uint8), "the photo")


def test_load_picture_refuses_non_images_and_huge(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read 'notes.png' as an image"):
        editor.load_picture(bad)
    huge = tmp_path / "huge.png"
    Image.new("1", (9000, 5000)).save(huge)  # 45 MP in a few KB: refused from the header
    with pytest.raises(ValueError, match="9000x5000 px"):
        editor.load_picture(huge)
    ok = tmp_path / "ok.png"
    Image.new("RGB", (6, 4), (1, 2, 3)).save(ok)
    assert editor.load_picture(ok).shape == (4, 6, 3)


def test_palette_swatches_cells_carry_their_colour():
    grid, px = 11, 20
    sw = editor.palette_swatches(grid, px)
    assert sw.shape == (grid * px, grid * px, 3)
    for cell in (0, 5, 60, 120):
        r, c = divmod(cell, grid)
        # the lower-right interior of a cell is free of label text and outline
        assert (sw[r * px + px - 4, c * px + px - 4] == PALETTE[cell]).all()
    with pytest.raises(ValueError, match="grid"):
        editor.palette_swatches(12)


def test_hex_color():
    assert editor.hex_color((255, 0, 16)) == "#ff0010"
