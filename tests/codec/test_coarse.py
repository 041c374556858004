"""Tests for Ω, the coarse-mask generator (unigs.codec.coarse, supplementary Algorithm 1)."""

from __future__ import annotations

import numpy as np
import pytest

from unigs.codec import coarse as C


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def is_rectangle(region: np.ndarray) -> bool:
    x0, y0, x1, y1 = C.mask_bbox(region)
    return bool(region[y0:y1, x0:x1].all()) and region.sum() == (x1 - x0) * (y1 - y0)


ENTITY = box(128, 160, 40, 80, 30, 90)


# ----------------------------------------------------------------------------------------------- boxes
def test_mask_bbox_known_answers():
    assert C.mask_bbox(box(10, 12, 2, 5, 3, 9)) == (3, 2, 9, 5)  # (x0, y0, x1, y1), exclusive ends
    assert C.mask_bbox(box(10, 12, 0, 10, 0, 12)) == (0, 0, 12, 10)
    union = np.stack([box(10, 12, 1, 2, 1, 2), box(10, 12, 7, 9, 8, 11)])
    assert C.mask_bbox(union) == (1, 1, 11, 9)
    single = np.zeros((5, 5), np.uint8)
    single[4, 0] = 1
    assert C.mask_bbox(single) == (0, 4, 1, 5)


def test_extended_bbox_stays_within_40_percent_of_free_space():
    bbox, shape = (30, 40, 90, 80), (128, 160)
    free = np.array([30, 40, 160 - 90, 128 - 80])
    seen = []
    for seed in range(200):
        ext = C.extended_bbox(bbox, shape, np.random.default_rng(seed))
        step = np.array([bbox[0] - ext[0], bbox[1] - ext[1], ext[2] - bbox[2], ext[3] - bbox[3]])
        assert (step >= 0).all() and (step <= np.floor(0.4 * free)).all()
        seen.append(step)
    seen = np.array(seen)
    assert (seen.min(0) == 0).all() and (seen.max(0) == np.floor(0.4 * free)).all()  # both ends reached


def test_extended_bbox_at_the_border_does_not_move():
    assert C.extended_bbox((0, 0, 16, 8), (8, 16), np.random.default_rng(0)) == (0, 0, 16, 8)


@pytest.mark.parametrize("bbox", [(5, 5, 5, 9), (0, 0, 17, 4), (-1, 0, 3, 3), (3, 3, 2, 2), (1, 2, 3)])
def test_extended_bbox_bad_boxes(bbox):
    with pytest.raises(ValueError, match="bbox"):
        C.extended_bbox(bbox, (8, 16), np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------- bezier
def test_quadratic_bezier_known_points():
    nodes = [(0, 0), (1, 2), (2, 0)]
    pts = C.quadratic_bezier(nodes, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(pts, [[0, 0], [1, 1], [2, 0]])  # B(.5) = P0/4 + P1/2 + P2/4
    with pytest.raises(ValueError, match="shape"):
        C.quadratic_bezier([(0, 0), (1, 1)], [0.5])


def test_blob_polygon_without_jitter_follows_the_curves():
    bbox, ext = (20, 20, 60, 40), (10, 5, 70, 50)
    poly = C.blob_polygon(bbox, ext, np.random.default_rng(0), jitter=0)
    assert poly.shape == (72, 2)  # 4 curves × 18 samples (t = 0.05 … 0.90)
    top = poly[:18]
    assert (top[:, 1] <= 20).all() and np.isclose(top[:, 1].min(), 0.5 * 5 + 0.25 * 40)  # bulges up
    np.testing.assert_allclose(top[0], C.quadratic_bezier([(20, 20), (40, 5), (60, 20)], [0.05])[0])
    # Curves chain top → right → down → left: each starts near where the previous one ended.
    starts = poly[[0, 18, 36, 54]]
    assert (starts[:, 0] > 40).tolist() == [False, True, True, False]
    assert (starts[:, 1] > 30).tolist() == [False, False, True, True]


def test_blob_polygon_jitter_is_bounded():
    bbox, ext = (20, 20, 60, 40), (10, 5, 70, 50)
    plain = C.blob_polygon(bbox, ext, np.random.default_rng(0), jitter=0)
    noisy = C.blob_polygon(bbox, ext, np.random.default_rng(0), jitter=5)
    delta = noisy - plain
    assert np.abs(delta).max() <= 5 + 1e-9 and np.allclose(delta, np.round(delta)) and np.abs(delta).max() > 0


def test_one_pixel_entity_gives_a_small_blob_near_it():
    entity = box(64, 64, 30, 31, 40, 41)
    for seed in range(10):
        region = C.coarse_mask(entity, np.random.default_rng(seed), p_blob=1.0)
        x0, y0, x1, y1 = C.mask_bbox(region)  # raises if the region were empty
        assert x0 >= 40 - 16 - 6 and x1 <= 41 + 9 + 6 and y0 >= 30 - 12 - 6 and y1 <= 31 + 13 + 6


# ------------------------------------------------------------------------------------------ coarse Ω
def test_coarse_mask_shape_dtype_and_determinism():
    a = C.coarse_mask(ENTITY, np.random.default_rng(7))
    b = C.coarse_mask(ENTITY, np.random.default_rng(7))
    assert a.shape == (128, 160) and a.dtype == bool
    assert np.array_equal(a, b)
    different = [C.coarse_mask(ENTITY, np.random.default_rng(s)) for s in range(8)]
    assert len({m.tobytes() for m in different}) > 1


def test_box_mode_is_the_extended_box():
    for seed in range(10):
        region = C.coarse_mask(ENTITY, np.random.default_rng(seed), p_blob=0.0)
        ext = C.extended_bbox(C.mask_bbox(ENTITY), ENTITY.shape, np.random.default_rng(seed))
        assert C.mask_bbox(region) == ext and is_rectangle(region)
        assert region[ENTITY].all()


def test_blob_mode_covers_most_of_the_entity():
    for seed in range(20):
        region = C.coarse_mask(ENTITY, np.random.default_rng(seed), p_blob=1.0)
        assert not is_rectangle(region)
        assert region[ENTITY].mean() > 0.9
        x0, y0, x1, y1 = C.mask_bbox(region)
        assert x0 >= 30 - 12 - 6 and x1 <= 90 + 28 + 6  # inside the extended box, ±jitter
        assert y0 >= 40 - 16 - 6 and y1 <= 80 + 19 + 6


def test_both_modes_reached_over_seeds():
    kinds = [is_rectangle(C.coarse_mask(ENTITY, np.random.default_rng(s))) for s in range(40)]
    assert 5 < sum(kinds) < 35


def test_union_of_several_masks_is_covered():
    masks = np.stack([box(100, 100, 10, 20, 10, 20), box(100, 100, 70, 85, 60, 90)])
    for seed in range(10):
        region = C.coarse_mask(masks, np.random.default_rng(seed), p_blob=0.0)
        assert region[masks.any(0)].all()
        blob = C.coarse_mask(masks, np.random.default_rng(seed), p_blob=1.0)
        assert blob[10:85, 10:90].mean() > 0.85  # the union's box, minus corners


def test_integer_masks_accepted():
    as_int = ENTITY.astype(np.int32)
    assert np.array_equal(
        C.coarse_mask(as_int, np.random.default_rng(3)), C.coarse_mask(ENTITY, np.random.default_rng(3))
    )


@pytest.mark.parametrize(
    ("masks", "match"),
    [
        (np.zeros((16, 16), bool), "empty"),
        (np.zeros((3, 16, 16), bool), "empty"),
        (np.zeros((0, 16, 16), bool), "non-empty"),
        (np.zeros((16,), bool), "shape"),
        (np.ones((16, 16), np.float32), "dtype float32"),
        (np.full((16, 16), 3, np.uint8), "binary"),
    ],
)
def test_bad_masks_rejected(masks, match):
    with pytest.raises(ValueError, match=match):
        C.coarse_mask(masks, np.random.default_rng(0))


def test_bad_arguments_rejected():
    with pytest.raises(ValueError, match="rng"):
        C.coarse_mask(ENTITY, 0)
    with pytest.raises(ValueError, match="p_blob"):
        C.coarse_mask(ENTITY, np.random.default_rng(0), p_blob=1.5)
    with pytest.raises(ValueError, match="jitter"):
        C.coarse_mask(ENTITY, np.random.default_rng(0), jitter=-1)
    with pytest.raises(ValueError, match="jitter"):
        C.coarse_mask(ENTITY, np.random.default_rng(0), jitter=2.5)
