"""Tests for Ψ, the location-aware palette (unigs.codec.palette, paper §3.2)."""

from __future__ import annotations

import contextlib
import io
import time
import warnings

import numpy as np
import pytest

from unigs.codec import palette as P


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def reference_cell(mask: np.ndarray, grid: int) -> int:
    """Plain per-pixel reference for the centre-of-mass cell."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean() + 0.5, xs.mean() + 0.5
    h, w = mask.shape
    row = min(int(cy * grid // h), grid - 1)
    col = min(int(cx * grid // w), grid - 1)
    return row * grid + col


# ------------------------------------------------------------------------------------------- palette
def test_palette_has_124_unique_colours_without_black():
    assert P.PALETTE.shape == (124, 3) and P.PALETTE.dtype == np.uint8
    assert len(np.unique(P.PALETTE, axis=0)) == 124
    assert not (P.PALETTE == 0).all(axis=1).any()
    assert set(np.unique(P.PALETTE).tolist()) == set(P.LEVELS) == {0, 64, 128, 192, 255}


def test_palette_order_is_nested_r_g_b():
    assert P.PALETTE[:5].tolist() == [[0, 0, 64], [0, 0, 128], [0, 0, 192], [0, 0, 255], [0, 64, 0]]
    assert P.PALETTE[23].tolist() == [0, 255, 255]
    assert P.PALETTE[24].tolist() == [64, 0, 0]
    assert P.PALETTE[-1].tolist() == [255, 255, 255]
    with pytest.raises(ValueError):
        P.PALETTE[0, 0] = 1  # read-only


def test_color_to_cell_roundtrip_and_non_palette():
    for i, colour in enumerate(P.PALETTE):
        assert P.color_to_cell(colour) == i
    assert P.color_to_cell((0, 0, 0)) == -1
    assert P.color_to_cell((1, 0, 64)) == -1
    assert P.color_to_cell((100, 100, 100)) == -1
    with pytest.raises(ValueError, match="shape"):
        P.color_to_cell((1, 2))


def test_nearest_palette_index_matches_brute_force():
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, size=(500, 3))
    candidates = np.concatenate([np.zeros((1, 3)), P.PALETTE.astype(float)])  # black first → −1
    dist = ((colours[:, None, :] - candidates[None]) ** 2).sum(-1)
    expected = np.argmin(dist, axis=1) - 1
    got = P.nearest_palette_index(colours)
    assert (got == expected).all()
    assert P.nearest_palette_index(P.PALETTE).tolist() == list(range(124))


def test_nearest_palette_index_shapes_black_and_noise():
    img = np.zeros((4, 5, 3), dtype=np.uint8)
    img[1, 2] = (250, 70, 3)  # ≈ (255, 64, 0)
    out = P.nearest_palette_index(img)
    assert out.shape == (4, 5) and out.dtype == np.int64
    assert out[0, 0] == -1
    assert out[1, 2] == P.color_to_cell((255, 64, 0))
    assert P.nearest_palette_index(np.array([20.0, 30.0, 31.9])) == -1  # near black is background
    with pytest.raises(ValueError, match="shape"):
        P.nearest_palette_index(np.zeros((4, 2)))


# --------------------------------------------------------------------------------------------- cells
def test_cell_of_known_answers():
    # 110 × 110 image, b = 11: each cell is 10 × 10 px.
    assert P.cell_of(box(110, 110, 0, 10, 0, 10), 11) == 0
    assert P.cell_of(box(110, 110, 0, 10, 100, 110), 11) == 10
    assert P.cell_of(box(110, 110, 100, 110, 0, 10), 11) == 110
    assert P.cell_of(box(110, 110, 100, 110, 100, 110), 11) == 120
    assert P.cell_of(box(110, 110, 50, 60, 20, 30), 11) == 5 * 11 + 2  # row from y, col from x
    assert P.cell_of(box(110, 110, 0, 110, 0, 110), 11) == 60  # the whole image: the centre cell
    assert P.cell_of(box(64, 64, 0, 64, 0, 64), 2) == 3  # centre exactly on a line: floor → lower right
    assert P.cell_of(np.zeros((8, 8), bool), 11) == -1


def test_centre_cells_matches_reference_on_random_masks():
    rng = np.random.default_rng(1)
    masks = rng.random((30, 37, 53)) < rng.random((30, 1, 1)) * 0.2
    masks[0] = False
    got = P.centre_cells(masks, 7)
    assert got[0] == -1
    assert got[1:].tolist() == [reference_cell(m, 7) for m in masks[1:]]


# --------------------------------------------------------------------------------------- assignment
def test_encode_paints_cell_colours_and_black_background():
    a = box(110, 110, 0, 10, 0, 10)
    b = box(110, 110, 50, 60, 20, 30)
    colormap = P.encode(np.stack([a, b]))
    assert colormap.shape == (110, 110, 3) and colormap.dtype == np.uint8
    assert (colormap[a] == P.PALETTE[0]).all()
    assert (colormap[b] == P.PALETTE[57]).all()
    assert (colormap[~(a | b)] == 0).all()


def test_overlap_larger_first_smaller_on_top():
    table = box(110, 110, 40, 100, 0, 110)
    cup = box(110, 110, 60, 70, 50, 60)
    for masks in (np.stack([table, cup]), np.stack([cup, table])):
        assignment = P.assign(masks)
        colormap = P.encode(masks)
        big, small = (0, 1) if masks[0].sum() > masks[1].sum() else (1, 0)
        assert assignment.paint_order.tolist() == [big, small]
        assert (colormap[cup] == assignment.colors[small]).all()
        assert (colormap[table & ~cup] == assignment.colors[big]).all()


def test_equal_areas_painted_in_index_order():
    a = box(20, 20, 0, 10, 0, 10)
    b = box(20, 20, 5, 15, 5, 15)
    assignment = P.assign(np.stack([a, b]), grid=2)
    assert assignment.paint_order.tolist() == [0, 1]
    assert (P.encode(np.stack([a, b]), grid=2)[a & b] == assignment.colors[1]).all()


def test_strict_vs_nearest_collision():
    # Both centres in cell 0 of a 2 × 2 grid; the larger one (index 1) keeps it.
    small = box(40, 40, 2, 6, 2, 6)
    large = box(40, 40, 0, 15, 0, 15)
    masks = np.stack([small, large])
    strict = P.assign(masks, grid=2, collisions="strict")
    assert strict.cells.tolist() == [0, 0] and not strict.moved.any()
    nearest = P.assign(masks, grid=2, collisions="nearest")
    # Free cells 1 (right) and 2 (below) are both at distance 1: the lower index wins.
    assert nearest.cells.tolist() == [1, 0]
    assert nearest.moved.tolist() == [True, False]
    assert (nearest.colors == P.PALETTE[[1, 0]]).all()
    colormap = P.encode(masks, grid=2)
    assert (colormap[small] == P.PALETTE[1]).all()
    assert (colormap[large & ~small] == P.PALETTE[0]).all()


def test_nearest_moves_to_the_closest_free_cell():
    # 3 × 3 grid on 30 × 30: three entities centred in cell 4 (centre). Largest keeps 4; the next goes
    # to 1 (the lowest of the four distance-1 neighbours 1, 3, 5, 7), the third to 3.
    masks = np.stack([box(30, 30, 10, 20, 10, 20), box(30, 30, 12, 18, 12, 18), box(30, 30, 14, 16, 14, 16)])
    assert P.assign(masks, grid=3).cells.tolist() == [4, 1, 3]


def test_nearest_uses_spare_colours_once_grid_is_full():
    # grid 1: one cell, so entities 2..N take spare colours 1, 2, ... in area order.
    masks = np.stack([box(10, 10, 0, 10 - i, 0, 10) for i in range(5)])
    assignment = P.assign(masks, grid=1)
    assert assignment.cells.tolist() == [0, 1, 2, 3, 4]
    assert len(np.unique(assignment.colors, axis=0)) == 5


def test_more_entities_than_colours_raises_only_in_nearest():
    masks = np.zeros((125, 12, 12), dtype=bool)
    masks.reshape(125, -1)[np.arange(125), np.arange(125)] = True  # one distinct pixel each
    with pytest.raises(ValueError, match="125"):
        P.assign(masks)
    assert P.assign(masks, collisions="strict").cells.min() >= 0
    assert len(np.unique(P.assign(masks[:124]).cells)) == 124


def test_empty_masks_warn_and_get_black():
    masks = np.stack([box(20, 20, 0, 5, 0, 5), np.zeros((20, 20), bool)])
    with pytest.warns(UserWarning, match="empty"):
        assignment = P.assign(masks)
    assert assignment.cells.tolist()[1] == -1
    assert assignment.colors[1].tolist() == [0, 0, 0] and not assignment.moved[1]
    with pytest.warns(UserWarning):
        assert (P.encode(masks)[masks[0]] == assignment.colors[0]).all()


def test_no_entities_gives_black_and_single_mask_is_accepted():
    assert (P.encode(np.zeros((0, 6, 7), bool)) == 0).all()
    assert P.encode(np.zeros((0, 6, 7), bool)).shape == (6, 7, 3)
    single = box(10, 10, 0, 3, 0, 3)
    assert (P.encode(single) == P.encode(single[None])).all()
    assert (P.encode(single.astype(np.uint8)) == P.encode(single)).all()  # 0/1 integers accepted


@pytest.mark.parametrize(
    ("masks", "match"),
    [
        (np.zeros((2, 4, 4), dtype=np.float32), "dtype float32"),
        (np.full((1, 4, 4), 2, dtype=np.uint8), "binary"),
        (np.full((1, 4, 4), -1, dtype=np.int64), "binary"),
        (np.zeros((1, 1, 4, 4), dtype=bool), r"shape \(1, 1, 4, 4\)"),
        (np.zeros(4, dtype=bool), r"shape \(4,\)"),
        (np.zeros((2, 0, 4), dtype=bool), "non-empty image size"),
        (np.array([["a"]]), "dtype"),
    ],
)
def test_bad_masks_rejected(masks, match):
    with pytest.raises(ValueError, match=match):
        P.encode(masks)


@pytest.mark.parametrize("grid", [0, -3, 12, 2.0, True, "11"])
def test_bad_grid_rejected(grid):
    with pytest.raises(ValueError, match="grid"):
        P.assign(np.zeros((1, 4, 4), bool), grid=grid)


def test_bad_collision_mode_named():
    with pytest.raises(ValueError, match="'closest'"):
        P.encode(box(4, 4, 0, 1, 0, 1), collisions="closest")


# ------------------------------------------------------------------------------------------ coverage
def test_coverage_stats_counts():
    collide = np.stack([box(40, 40, 2, 6, 2, 6), box(40, 40, 0, 15, 0, 15), box(40, 40, 30, 40, 30, 40)])
    alone = np.stack([box(40, 40, 0, 5, 0, 5), np.zeros((40, 40), bool)])
    stats = P.coverage_stats(iter([collide, alone]), grid=2)
    assert (stats.images, stats.entities) == (2, 4)
    assert stats.unique_strict == 2  # the two colliding ones share a colour
    assert (stats.kept_nearest, stats.moved_nearest) == (3, 1)
    assert stats.strict_coverage == 0.5 and stats.kept_ratio == 0.75
    empty = P.coverage_stats([])
    assert empty.entities == 0 and empty.strict_coverage == 1.0


# --------------------------------------------------------------------------------------------- speed
def test_encode_512_with_20_entities_is_fast():
    rng = np.random.default_rng(0)
    masks = np.zeros((20, 512, 512), dtype=bool)
    for m in masks:
        y, x = rng.integers(0, 400, 2)
        hh, ww = rng.integers(10, 200, 2)
        m[y : y + hh, x : x + ww] = True
    P.encode(masks)
    start = time.perf_counter()
    for _ in range(5):
        P.encode(masks)
    per_call = (time.perf_counter() - start) / 5
    assert per_call < 0.1  # ≈ 5 ms measured on 2 shared cores; generous bound for loaded machines


# ----------------------------------------------------------------------------------------- real data
def _coco_val_stacks(coco_mini, limit: int):
    pycocotools_coco = pytest.importorskip("pycocotools.coco")
    stacks = []
    # pycocotools prints progress and raises a numpy-2 DeprecationWarning: neither is ours.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        coco = pycocotools_coco.COCO(str(coco_mini / "annotations" / "instances_val2017.json"))
        for image_id in sorted(coco.getImgIds()):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
            if len(anns) >= 5:
                stacks.append(np.stack([coco.annToMask(a).astype(bool) for a in anns]))
            if len(stacks) == limit:
                break
    return stacks


def test_real_coco_masks_all_distinguishable_in_nearest_mode(coco_mini):
    stacks = _coco_val_stacks(coco_mini, limit=6)
    assert len(stacks) == 6
    for masks in stacks:
        masks = masks[masks.any(axis=(1, 2))]
        assignment = P.assign(masks)
        colormap = P.encode(masks)
        assert len(np.unique(assignment.colors, axis=0)) == len(masks)  # every entity its own colour
        assert (assignment.cells >= 0).all()
        # Each entity's colour marks exactly the pixels of its mask not covered by later-painted ones.
        covered = np.zeros(masks.shape[1:], dtype=bool)
        for i in assignment.paint_order[::-1]:
            own = (colormap == assignment.colors[i]).all(-1)
            assert np.array_equal(own, masks[i] & ~covered)
            covered |= masks[i]
        assert ((colormap == 0).all(-1) == ~masks.any(0)).all()
        # Reading colours back maps each visible pixel to its entity's palette index.
        idx = P.nearest_palette_index(colormap)
        assert set(np.unique(idx[idx >= 0]).tolist()) <= set(assignment.cells.tolist())
    stats = P.coverage_stats(stacks)
    assert stats.entities == sum(int(m.any(axis=(1, 2)).sum()) for m in stacks)
    assert stats.unique_strict <= stats.kept_nearest < stats.entities  # real layouts do collide
