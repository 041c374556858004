"""Mask records in SAM's automatic-mask-generator format, and the colour-purity score."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from unigs.codec import palette
from unigs.records import color_purity, mask_records


def _two_boxes():
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:10, 3:13] = True
    masks[1, 12:18, 15:29] = True
    return masks


def test_purity_is_one_for_flat_palette_colours_and_drops_with_mixed_ones():
    masks = _two_boxes()
    cmap = palette.encode(masks)
    assert np.array_equal(color_purity(cmap, masks), [1.0, 1.0])
    noisy = cmap.copy()
    noisy[2:6, 3:13] = (200, 10, 10)  # half of entity 0 drifts to another palette colour
    got = color_purity(noisy, masks)
    assert got[0] == pytest.approx(0.5) and got[1] == 1.0
    nudged = np.clip(cmap.astype(int) + 20, 0, 255).astype(np.uint8)  # within rounding of the levels
    assert np.array_equal(color_purity(nudged, masks), [1.0, 1.0])
    assert color_purity(cmap, np.zeros((1, 20, 30), bool))[0] == 0.0
    with pytest.raises(ValueError, match="colormap and"):
        color_purity(cmap, masks[:, :10])


def test_records_coco_rle_and_binary_mask():
    masks = np.concatenate([_two_boxes(), np.zeros((1, 20, 30), bool)])
    records = mask_records(masks, [0.9, 0.5, 0.1], image_id=7, names=["dog", None, "cat"])
    assert len(records) == 2  # the empty mask is left out
    first = records[0]
    assert first["image_id"] == 7 and first["category_id"] == 1 and first["name"] == "dog"
    assert first["area"] == 80 and first["bbox"] == [3.0, 2.0, 10.0, 8.0] and first["score"] == 0.9
    assert "name" not in records[1]
    raw = {"size": first["segmentation"]["size"], "counts": first["segmentation"]["counts"].encode()}
    assert np.array_equal(mask_utils.decode(raw).astype(bool), masks[0])
    binary = mask_records(masks, [0.9, 0.5, 0.1], output_mode="binary_mask")
    assert np.array_equal(np.array(binary[1]["segmentation"], dtype=bool), masks[1])
    with pytest.raises(ValueError, match="output_mode must be one of"):
        mask_records(masks, [1, 1, 1], output_mode="polygon")
    with pytest.raises(ValueError, match="3 masks, 2 scores"):
        mask_records(masks, [1, 1])
