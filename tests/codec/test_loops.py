"""Φ's compiled loops against plain numpy / scikit-image versions of the same rules, and small hand-made
cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import label as sk_label

from unigs.codec._loops import groups, pixels, rows
from unigs.codec.color import LAB_SCALE, RGB_SCALE, feature_rows, features_np
from unigs.codec.config import DichotomyConfig
from unigs.codec.dichotomy import warm_up
from unigs.codec.workscale import upsample_ids

FAR_FACTOR = DichotomyConfig().far_factor


def blobs(shape, n, seed):
    """A random leaf map with connected blobs: noise ids, smoothed by a majority over 3×3 twice."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, n, shape)
    for _ in range(2):
        pad = np.pad(lab, 1, mode="edge")
        votes = np.stack([(pad[dy:dy + shape[0], dx:dx + shape[1]][None] == np.arange(n)[:, None, None])
                          for dy in range(3) for dx in range(3)]).sum(0)
        lab = votes.argmax(0)
    return lab


@pytest.mark.parametrize("shape, n, seed", [((40, 37), 4, 0), ((1, 9), 3, 1), ((23, 1), 2, 2),
                                            ((64, 64), 7, 3)])
def test_components_match_scikit_image_and_count_shared_edges(shape, n, seed):
    lab = blobs(shape, n, seed)
    comp, m, pa, pb, count = pixels.components(lab)
    expected = sk_label(lab, background=-1, connectivity=1) - 1
    np.testing.assert_array_equal(comp, expected)  # same regions, same numbering (raster order)
    assert m == expected.max() + 1
    codes = []
    for a, b in ((comp[:, 1:], comp[:, :-1]), (comp[1:], comp[:-1])):
        diff = a != b
        codes.append(np.minimum(a[diff], b[diff]) * m + np.maximum(a[diff], b[diff]))
    pairs, cnt = np.unique(np.concatenate(codes), return_counts=True)
    np.testing.assert_array_equal(pa, pairs // m)
    np.testing.assert_array_equal(pb, pairs % m)
    np.testing.assert_array_equal(count, cnt)


def test_settle_roots_cycles_at_their_smallest_id():
    parent = np.array([3, 0, 1, 1, 5, 4, 6, 6, 2])  # 0→3→1→0 cycle, 2 → it, 4↔5, 6 root, 7 → 6, 8 → 2
    groups._settle(parent)
    np.testing.assert_array_equal(parent, [0, 0, 0, 0, 4, 4, 6, 6, 0])


@pytest.mark.parametrize("use_rgb, use_lab, name", [(True, True, "rgb+lab"), (True, False, "rgb"),
                                                     (False, True, "lab")])
def test_compiled_features_equal_pixel_features(use_rgb, use_lab, name):
    col = np.random.default_rng(0).uniform(0, 255, (500, 3))
    col[:4] = [[0, 0, 0], [255, 255, 255], [10, 2, 0], [3, 3, 3]]  # both branches of both curves
    got = feature_rows(col, use_rgb, use_lab, RGB_SCALE, LAB_SCALE)
    np.testing.assert_allclose(got, features_np(col, name), rtol=0, atol=1e-9)


def test_dichotomy_splits_separated_modes_and_respects_the_leaf_cap():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]])
    x = np.concatenate([c + rng.normal(0, 0.3, (50, 3)) for c in centres])
    w = np.ones(len(x))
    leaf = rows.dichotomy(x, w, 1.0, 5.0, 256, FAR_FACTOR)
    assert len(np.unique(leaf)) == 4  # one leaf per mode, each mode whole
    assert all(len(np.unique(leaf[i * 50:(i + 1) * 50])) == 1 for i in range(4))
    assert len(np.unique(rows.dichotomy(x, w, 1.0, 5.0, 2, FAR_FACTOR))) == 2
    one = rows.dichotomy(x[:50], w[:50], 1.0, 5.0, 256, FAR_FACTOR)  # msd ≈ 0.27 < δ: no split
    assert (one == 0).all()


def test_merge_back_joins_a_mode_cut_in_two_and_keeps_distinct_modes():
    x = np.array([[0.0, 0], [0.5, 0], [1.0, 0], [20, 0]])
    w = np.ones(4)
    leaf = np.array([0, 0, 1, 2])  # a cut through the first mode
    np.testing.assert_array_equal(rows.merge_back(leaf, x, w, 1.0, 1.0, FAR_FACTOR), [0, 0, 0, 1])


def test_blend_residual_matches_brute_force():
    rng = np.random.default_rng(1)
    anchors = rng.uniform(0, 32, (7, 3))
    x = rng.uniform(0, 32, (300, 3))
    x[:3] = 0.3 * anchors[1] + 0.7 * anchors[2]  # exact blends of two near anchors
    got = rows.blend_residual(x, anchors, True)

    def seg(p, a, b):
        t = np.clip((p - a) @ (b - a) / max((b - a) @ (b - a), 1e-12), 0, 1)
        return ((p - a - t * (b - a)) ** 2).sum()

    for i, p in enumerate(x):
        near = np.argsort(((anchors - p) ** 2).sum(1), kind="stable")[:4]
        want = min([seg(p, anchors[a], anchors[b]) for j, a in enumerate(near) for b in near[j:]]
                   + [seg(p, anchors[0], anchors[a]) for a in near])
        assert got[i] == pytest.approx(want, abs=1e-9)
    assert np.allclose(got[:3], 0, atol=1e-9)
    assert np.isinf(rows.blend_residual(x, anchors[:0], False)).all()


def test_midpoint_cuts_a_ramp_against_black_at_its_middle():
    img = np.zeros((1, 12, 3), np.uint8)
    img[0, 4:] = 200  # entity 1 …
    img[0, 2], img[0, 3] = 60, 140  # … with a blurred edge: 60 lies below the middle (100), 140 above
    pix = np.zeros((1, 12), np.int64)
    pix[0, 2:] = 1
    out = pixels.midpoint(pix.copy(), img, 3)
    np.testing.assert_array_equal(out[0], [0, 0, 0] + [1] * 9)


def test_fill_holes_fills_specks_and_keeps_large_background():
    pix = np.ones((10, 10), np.int64)
    pix[:, 7:] = 2
    pix[2, 2] = 0  # a 1-px speck inside entity 1
    pix[5:7, 7:9] = 0  # a 4-px speck sharing 2 edges with 1 and 6 with 2 (not under min_area 4)
    pix[9, :3] = 0  # a 3-px background strip at the border
    out = pixels.fill_holes(pix.copy(), 4)
    assert out[2, 2] == 1 and (out[9, :3] == 1).all()  # both under 4 px: filled by their neighbour
    assert (out[5:7, 7:9] == 0).all()  # 4 px is not a speck
    out = pixels.fill_holes(pix.copy(), 5)
    assert (out[5:7, 7:9] == 2).all()  # the entity with the longer shared boundary wins


def test_few_bins():
    flat = np.zeros((64, 64, 3), np.uint8)
    flat[:, 32:] = (200, 10, 90)
    assert pixels.few_bins(flat, 4, 5, 2) and not pixels.few_bins(flat, 4, 5, 1)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert not pixels.few_bins(noise, 4, 5, 100)


@pytest.mark.parametrize("shape, f", [((64, 48), 4), ((67, 50), 4), ((30, 31), 3)])
def test_upsample_matches_a_per_pixel_reading_of_the_rule(shape, f):
    """Every full-res pixel: its block's 3×3 neighbourhood of ids (clamped); one id → it; else the id whose
    mean colour (over the small map; −1 = the id-less pixels) is closest, ties to the block's own id."""
    rng = np.random.default_rng(f)
    H, W = shape
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    small = pixels.box_down(img, f)
    h, w = small.shape[:2]
    ids = blobs((h, w), 4, f) - 1  # ids −1..2
    colors = np.array([[10, 20, 30], [200, 0, 0], [0, 200, 0]], np.uint8)
    out, out_colors, rank = upsample_ids(ids, colors, small, img, f)
    if rank is not None:  # stored id i is output entity rank[i]
        out = np.where(out >= 0, rank[np.maximum(out, 0)], -1)
    table = {i: small[ids == i].mean(0) if (ids == i).any() else np.zeros(3) for i in range(-1, 3)}
    full = np.empty((H, W), np.int64)
    for y in range(H):
        for x in range(W):
            by, bx = y // f, x // f
            own = ids[by, bx]
            cand = [own] + [ids[min(max(by + dy, 0), h - 1), min(max(bx + dx, 0), w - 1)]
                            for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            cand = list(dict.fromkeys(cand))
            d = [((img[y, x].astype(np.float32) - table[c].astype(np.float32)) ** 2).sum() for c in cand]
            full[y, x] = cand[int(np.argmin(d))]
    area = {i: (full == i).sum() for i in range(3)}
    order = sorted((i for i in range(3) if area[i]), key=lambda i: (-area[i], *colors[i].tolist()))
    expected = np.full((H, W), -1)
    for rank, i in enumerate(order):
        expected[full == i] = rank
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out_colors, colors[order])


def test_warm_up_compiles_every_path_it_names():
    warm_up()  # degraded, painted and small maps, regions on and off: must run without error
    for kernel in (pixels.pixel_codes, pixels.refine_blocks, pixels.masks_of, groups.merge_rounds):
        assert kernel.signatures, kernel  # compiled (or loaded from the cache) by now
