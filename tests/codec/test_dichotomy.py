"""Φ, the progressive dichotomy decoder: hand-made colormaps, real coco-mini layouts, the slow reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from unigs.codec.color import RGB_SCALE, pixel_features
from unigs.codec.degrade import simulate_latent_roundtrip
from unigs.codec.dichotomy import decode, decode_reference, decode_with_colors
from unigs.codec.histogram import flat_mask, flat_mask_numpy
from unigs.codec.palette import PALETTE, assign, encode
from unigs.codec.workscale import box_down, work_factor
from unigs.evaluate.metrics import best_match_scores, iou_matrix, pool_match_scores

RED, GREEN, BLUE = (192, 0, 0), (0, 192, 64), (64, 64, 255)


def blocks(size=96):
    """Three rectangles on black, areas 40·40 > 30·50 > 32·30 (wide enough to keep flat pixels after an
    ×8 latent round trip); returns the colormap and the three masks, in area order."""
    cm = np.zeros((size, size, 3), np.uint8)
    boxes = [((4, 44), (4, 44), RED), ((50, 80), (4, 54), GREEN), ((60, 92), (62, 92), BLUE)]
    masks = []
    for (y0, y1), (x0, x1), color in boxes:
        cm[y0:y1, x0:x1] = color
        m = np.zeros((size, size), bool)
        m[y0:y1, x0:x1] = True
        masks.append(m)
    return cm, np.stack(masks)


def matched_ious(pred, gt):
    """Best IoU of each gt mask, and the number of predicted masks."""
    return best_match_scores(pred, gt).best_iou, len(pred)


# ------------------------------------------------------------------------------------- clean maps
def test_clean_blocks_exact_masks_ordered_by_area_and_colours():
    cm, gt = blocks()
    masks, colors = decode_with_colors(cm)
    assert masks.dtype == bool and masks.shape == (3, 96, 96)
    np.testing.assert_array_equal(masks, gt)  # order: area descending
    np.testing.assert_array_equal(colors, [RED, GREEN, BLUE])
    assert colors.dtype == np.uint8


def test_keep_background_adds_the_black_region():
    cm, gt = blocks()
    masks = decode(cm, keep_background=True)
    assert len(masks) == 4
    np.testing.assert_array_equal(masks[0], ~gt.any(0))  # background is the largest
    assert masks.sum(0).max() == 1 and masks.any(0).all()  # a partition of the image


def test_tiny_entities_survive_on_painted_maps():
    cm, _ = blocks()
    cm[94, 10] = (255, 255, 0)  # a single pixel
    cm[2:4, 92] = (0, 64, 64)  # two pixels of a dark colour next to black
    masks, colors = decode_with_colors(cm)
    assert len(masks) == 5
    assert {tuple(c) for c in colors[-2:]} == {(255, 255, 0), (0, 64, 64)}
    assert masks[list(map(tuple, colors)).index((255, 255, 0))].sum() == 1


def test_closest_palette_colours_are_separated():
    cm = np.zeros((64, 64, 3), np.uint8)
    cm[:, :32] = (0, 255, 255)  # the two closest palette colours in feature space
    cm[:, 32:] = (64, 255, 255)
    cm[30:34, 30:34] = (64, 255, 192)
    assert len(decode(cm)) == 3


def test_encode_decode_roundtrip_on_coco_mini(coco_mini):
    from unigs.data.coco import CocoEntities

    data = CocoEntities(coco_mini / "annotations" / "instances_val2017.json")
    checked = 0
    for i in range(8):
        m = torch.from_numpy(data[i].masks)[None].float()
        masks = F.interpolate(m, size=(256, 256), mode="nearest")[0].bool().numpy()
        masks = masks[masks.reshape(len(masks), -1).any(1)]
        cm = encode(masks)
        colors = assign(masks).colors
        visible = np.stack([mk & (cm == c).all(-1) for mk, c in zip(masks, colors, strict=True)])
        visible = visible[visible.reshape(len(visible), -1).any(1)]
        pred = decode(cm)
        assert len(pred) == len(visible)
        best = iou_matrix(pred, visible).max(0)
        np.testing.assert_array_equal(best, 1.0)
        checked += len(visible)
    assert checked > 20


# ---------------------------------------------------------------------------------- decoded maps
def test_entities_narrower_than_three_latent_cells_are_found_by_the_fallback():
    # A 16 px wide entity owns no flat pixel after the ×8 round trip; the fallback dichotomy on all pixels
    # of the colours no kept leaf explains finds it.
    cm = np.zeros((96, 96, 3), np.uint8)
    cm[:, :48] = RED
    cm[40:56, 64:80] = BLUE
    gt = np.stack([(cm == RED).all(-1), (cm == BLUE).all(-1)])
    deg = simulate_latent_roundtrip(cm, np.random.default_rng(0))
    masks, colors = decode_with_colors(deg)
    assert len(colors) == 2 and colors[0, 0] > 150 and colors[1, 2] > 150
    assert best_match_scores(masks, gt).best_iou.min() > 0.6
    assert len(decode(deg, regions=False)) >= 1  # the ablation runs


def test_map_without_black_and_with_few_flat_pixels():
    # No near-black colour and fewer flat pixels than min_area (an untrained VAE's output): no leaf is
    # kept by the first dichotomy, the fallback takes every colour; the masks cover the whole map.
    rng = np.random.default_rng(0)
    cm = rng.integers(64, 256, (64, 64, 3), dtype=np.uint8)
    cm[8:16, 8:16] = (200, 100, 100)
    masks = decode(cm)
    assert len(masks) >= 1 and masks.sum(0).max() == 1 and masks.any(0).all()


def test_dark_speck_inside_an_entity_is_filled():
    # Fig. 3 "black holes": a near-black speck inside an entity is a tiny region, it joins its neighbour.
    cm, gt = blocks(128)
    deg = simulate_latent_roundtrip(cm, np.random.default_rng(0))
    deg[20:23, 20:23] = (10, 0, 0)
    masks = decode(deg)
    assert len(masks) == 3
    red = masks[np.argmax(iou_matrix(masks, gt[:1])[:, 0])]
    assert red[20:23, 20:23].all()


def test_degraded_blocks_are_recovered():
    cm, gt = blocks(128)
    for seed in range(3):
        deg = simulate_latent_roundtrip(cm, np.random.default_rng(seed))
        best, k = matched_ious(decode(deg), gt)
        assert k == 3 and best.min() > 0.8, (seed, best)


def test_delta_controls_the_split():
    cm, gt = blocks(128)
    deg = simulate_latent_roundtrip(cm, np.random.default_rng(0))
    # Nothing ever splits: the near-black background (split off first) and one foreground entity.
    assert len(decode(deg, delta=1e6, keep_background=True)) == 2
    assert len(decode(deg, delta=1e6)) == 1
    assert len(decode(deg, delta=10.0)) == 3


def test_snap_to_palette_reports_palette_colours():
    cm = np.zeros((128, 128, 3), np.uint8)
    cm[:64] = PALETTE[40]
    cm[64:, 64:] = PALETTE[7]
    deg = simulate_latent_roundtrip(cm, np.random.default_rng(1))
    _, colors = decode_with_colors(deg, snap_to_palette=True)
    assert {tuple(c) for c in colors} == {tuple(PALETTE[40]), tuple(PALETTE[7])}


@pytest.mark.parametrize("features", ["rgb", "lab", "rgb+lab"])
def test_feature_variants_decode(features):
    cm, gt = blocks(128)
    deg = simulate_latent_roundtrip(cm, np.random.default_rng(0))
    best, _ = matched_ious(decode(deg, features=features), gt)
    assert best.min() > 0.8


# ------------------------------------------------------------------------------ real VAE round trips
FIXTURES = Path(__file__).parent / "fixtures"


def vae_roundtrips():
    """12 colormaps that went through the project's small VAE (runs/vae/vae, diffusers AutoencoderKL, ×4,
    posterior mean, 128 px) and their ground-truth masks. Made from the first 12 held-out scenes of
    ``SceneDataset("val", 48, 128)`` with 1–3 random thing entities each (numpy seed 0), ``palette.encode``
    → ``encode_images`` → ``decode_latents``; PNG (lossless) and packed bits."""
    packed = np.load(FIXTURES / "vae_roundtrip_masks.npz")
    for i in range(12):
        cm = np.array(Image.open(FIXTURES / f"vae_roundtrip_{i:02d}.png"))
        yield cm, np.unpackbits(packed[f"m{i:02d}"], axis=-1, count=cm.shape[1]).astype(bool)


def test_real_vae_roundtrips_decode():
    # Measured: mIoU 0.829, recall 0.957 over 23 entities (before the fallback and the region clean-up:
    # 0.339 / 0.391; regions=False: see below).
    data = list(vae_roundtrips())
    assert len(data) == 12 and all(cm.shape == (128, 128, 3) for cm, _ in data)
    pooled = pool_match_scores([best_match_scores(decode(cm), gt) for cm, gt in data])
    assert pooled.miou > 0.75 and pooled.recall > 0.85, pooled
    ablation = pool_match_scores([best_match_scores(decode(cm, regions=False), gt) for cm, gt in data])
    assert ablation.miou < pooled.miou - 0.15, ablation


def test_fast_path_agrees_with_reference_on_real_vae_roundtrip():
    cm, _ = next(vae_roundtrips())
    fast, ref = decode(cm), decode_reference(cm)
    assert len(fast) == len(ref)
    iou = iou_matrix(fast, ref)
    assert iou.max(0).min() > 0.9 and iou.max(1).min() > 0.9


# ------------------------------------------------------------------------------ fast vs reference
def test_fast_path_agrees_with_reference_on_clean_map():
    cm, _ = blocks(64)
    np.testing.assert_array_equal(decode(cm), decode_reference(cm))
    np.testing.assert_array_equal(decode(cm, keep_background=True),
                                  decode_reference(cm, keep_background=True))


@pytest.mark.parametrize(("seed", "bin_size", "min_iou"), [(0, 2, 0.97), (1, 2, 0.97), (0, 8, 0.9)])
def test_fast_path_agrees_with_reference_on_degraded_map(seed, bin_size, min_iou):
    # The histogram represents a bin by its centre (≤ bin_size/2 grey levels off), which moves blurred
    # boundaries by a fraction of a pixel per level; with fine bins the two paths coincide.
    cm, _ = blocks(128)
    deg = simulate_latent_roundtrip(cm, np.random.default_rng(seed))
    fast, ref = decode(deg, bin_size=bin_size), decode_reference(deg)
    assert len(fast) == len(ref) == 3
    iou = iou_matrix(fast, ref)
    assert iou.max(0).min() > min_iou and iou.max(1).min() > min_iou


# ------------------------------------------------------------------------------------- work scale
def big_blocks(scale=4, seed=0):
    """blocks(128) ×scale (nearest), then the latent round trip at that size: a decoded 512² map."""
    cm, gt = blocks(128)
    cm = np.repeat(np.repeat(cm, scale, 0), scale, 1)
    gt = np.repeat(np.repeat(gt, scale, 1), scale, 2)
    return simulate_latent_roundtrip(cm, np.random.default_rng(seed)), gt


def test_box_down_is_the_rounded_block_mean():
    rng = np.random.default_rng(0)
    for shape, f in (((64, 64), 4), ((30, 21), 4), ((17, 33), 2), ((48, 48), 16)):
        img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        hs, ws = -(-shape[0] // f), -(-shape[1] // f)
        padded = np.pad(img, ((0, hs * f - shape[0]), (0, ws * f - shape[1]), (0, 0)), mode="edge")
        mean = padded.reshape(hs, f, ws, f, 3).astype(np.float64).mean((1, 3))
        np.testing.assert_array_equal(box_down(img, f), np.floor(mean + 0.5).astype(np.uint8))


def test_work_factor():
    assert work_factor((512, 512), 128) == 4 and work_factor((512, 384), 128) == 3
    assert work_factor((255, 1000), 128) == 1 and work_factor((256, 256), 128) == 2
    assert work_factor((4096, 4096), None) == 1


def test_work_scale_matches_full_resolution_decode():
    deg, gt = big_blocks()
    scaled, full = decode(deg), decode(deg, work_size=None)
    assert len(scaled) == len(full) == 3
    iou = iou_matrix(scaled, full)
    assert iou.max(0).min() > 0.97 and iou.max(1).min() > 0.97
    assert best_match_scores(scaled, gt).best_iou.min() > 0.95


def test_work_scale_refines_boundaries_to_the_pixel(monkeypatch):
    # Two colours split at column 301 (not on the 4-px block grid), light noise: no blocky boundary.
    from unigs.codec import workscale

    calls = []
    upsample = workscale.upsample_ids
    monkeypatch.setattr(workscale, "upsample_ids", lambda *a: calls.append(a[-1]) or upsample(*a))
    rng = np.random.default_rng(0)
    cm = np.zeros((512, 512, 3), np.float64)
    cm[:, :301] = RED
    cm[:, 301:] = BLUE
    cm[100:220, 150:390] = GREEN
    cm = np.clip(cm + rng.normal(0, 3, cm.shape), 0, 255).astype(np.uint8)
    gt = np.zeros((3, 512, 512), bool)
    gt[1, :, :301], gt[0, :, 301:], gt[2, 100:220, 150:390] = True, True, True
    gt[:2, 100:220, 150:390] = False
    masks = decode(cm)
    assert calls == [4]  # decoded at 128² and brought back
    assert len(masks) == 3
    np.testing.assert_array_equal(best_match_scores(masks, gt).best_iou, 1.0)


def test_work_scale_agrees_with_reference_and_torch():
    deg, _ = big_blocks(scale=2, seed=1)  # 256²: work factor 2
    fast, ref = decode(deg), decode_reference(deg)
    assert len(fast) == len(ref) == 3
    iou = iou_matrix(fast, ref)
    assert iou.max(0).min() > 0.95 and iou.max(1).min() > 0.95
    masks, colors = decode_with_colors(deg)
    t_masks, t_colors = decode_with_colors(torch.from_numpy(deg))
    np.testing.assert_array_equal(t_masks.numpy(), masks)
    np.testing.assert_array_equal(t_colors.numpy(), colors)


def test_painted_large_maps_skip_the_work_scale():
    cm, gt = blocks(128)
    cm = np.repeat(np.repeat(cm, 4, 0), 4, 1)
    np.testing.assert_array_equal(decode(cm), np.repeat(np.repeat(gt, 4, 1), 4, 2))


# ------------------------------------------------------------------------------------ containers
def test_torch_batch_and_float_inputs():
    cm, gt = blocks()
    t = torch.from_numpy(cm)
    masks, colors = decode_with_colors(t)
    assert isinstance(masks, torch.Tensor) and masks.dtype == torch.bool and isinstance(colors, torch.Tensor)
    np.testing.assert_array_equal(masks.numpy(), gt)
    batch = decode(torch.stack([t, t.flip(1)]))
    assert isinstance(batch, list) and len(batch) == 2
    np.testing.assert_array_equal(batch[1].numpy(), gt[:, :, ::-1])
    np.testing.assert_array_equal(decode(cm.astype(np.float32)), gt)
    ms, cs = decode_with_colors(np.stack([cm, cm]))
    assert len(ms) == len(cs) == 2 and ms[0].shape == (3, 96, 96)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 7), (6, 6), (13, 14), (33, 30), (64, 64)])
def test_numpy_flat_mask_equals_torchflat_mask(shape):
    # The numpy path computes the flat cells in int16 cell sums; they must equal the float torch cells,
    # clipped border cells (sizes not divisible by 4) included.
    rng = np.random.default_rng(sum(shape))
    for img in (rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
                (rng.integers(0, 4, (*shape, 1)) * np.arange(1, 4) * 20).astype(np.uint8)):
        expected = flat_mask(torch.from_numpy(img), 24.0).numpy()
        np.testing.assert_array_equal(flat_mask_numpy(img, 24.0), expected)
        assert expected.any() or img.std() > 50  # the structured image has flat cells


@pytest.mark.parametrize(("size", "seed"), [(128, 0), (100, 1), (77, 2)])
def test_numpy_and_torch_paths_give_identical_masks(size, seed):
    cm, _ = blocks(128)
    deg = simulate_latent_roundtrip(cm, np.random.default_rng(seed))[:size, :size]
    masks, colors = decode_with_colors(deg)
    t_masks, t_colors = decode_with_colors(torch.from_numpy(deg))
    assert isinstance(t_masks, torch.Tensor) and len(masks) >= 2
    np.testing.assert_array_equal(t_masks.numpy(), masks)
    np.testing.assert_array_equal(t_colors.numpy(), colors)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_matches_cpu():
    cm, _ = blocks(128)
    deg = torch.from_numpy(simulate_latent_roundtrip(cm, np.random.default_rng(0)))
    gpu = decode(deg.cuda()[None])[0]
    assert gpu.device.type == "cuda"
    np.testing.assert_array_equal(gpu.cpu().numpy(), decode(deg.numpy()))


def test_pixel_features_scaling():
    f = pixel_features(np.array([[0, 0, 0], [64, 0, 0], [255, 255, 255]], np.uint8))
    assert f.shape == (3, 6) and f.dtype == np.float32
    np.testing.assert_allclose(f[1, 0] - f[0, 0], 64 * RGB_SCALE)  # one palette step = 8 units
    np.testing.assert_allclose(f[2, 3], 100 / 3, atol=1e-3)  # L* of white, scaled
    assert pixel_features(np.zeros((2, 3), np.uint8), "rgb").shape == (2, 3)
    assert pixel_features(torch.zeros((5, 2, 3)), "lab").shape == (5, 2, 3)


# ------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("colormap", "kwargs", "match"),
    [
        (np.zeros((8, 8), np.uint8), {}, "shape"),
        (np.zeros((8, 8, 4), np.uint8), {}, "shape"),
        (np.zeros((2, 2, 8, 8, 3), np.uint8), {}, "shape"),
        (np.zeros((8, 8, 3), np.int32), {}, "dtype"),
        (np.full((8, 8, 3), 300.0), {}, r"\[0, 255\]"),
        (np.full((8, 8, 3), np.nan), {}, "NaN"),
        ([[[0, 0, 0]]], {}, "numpy array or torch tensor"),
        (np.zeros((8, 8, 3), np.uint8), {"delta": 0}, "delta"),
        (np.zeros((8, 8, 3), np.uint8), {"delta": -1.0}, "delta"),
        (np.zeros((8, 8, 3), np.uint8), {"delta": "10"}, "delta"),
        (np.zeros((8, 8, 3), np.uint8), {"features": "hsv"}, "features"),
        (np.zeros((8, 8, 3), np.uint8), {"min_area": 0}, "min_area"),
        (np.zeros((8, 8, 3), np.uint8), {"bin_size": 3}, "bin_size"),
        (np.zeros((8, 8, 3), np.uint8), {"edge_threshold": 0.0}, "edge_threshold"),
        (np.zeros((8, 8, 3), np.uint8), {"work_size": 0}, "work_size"),
        (np.zeros((8, 8, 3), np.uint8), {"work_size": 64.0}, "work_size"),
    ],
)
def test_bad_input_raises(colormap, kwargs, match):
    with pytest.raises(ValueError, match=match):
        decode(colormap, **kwargs)
    with pytest.raises(ValueError, match=match):
        decode_reference(colormap, **kwargs)


def test_reference_takes_one_colormap():
    with pytest.raises(ValueError, match="one"):
        decode_reference(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="features"):
        pixel_features(np.zeros((2, 3), np.uint8), "xyz")
