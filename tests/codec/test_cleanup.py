"""Φ's region clean-up: the compiled stages against the plain numpy + scikit-image reference, on the same
leaf maps (so any difference is the clean-up's), and each stage's effect on hand-made maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unigs.codec import reference
from unigs.codec.config import STAGES, DichotomyConfig
from unigs.codec.degrade import simulate_latent_roundtrip
from unigs.codec.dichotomy import clean_up, decode
from unigs.codec.histogram import colour_units
from unigs.codec.leaves import colour_leaves
from unigs.codec.palette import PALETTE, encode

FIXTURES = Path(__file__).parent / "fixtures"


def leaf_map(img: np.ndarray, cfg: DichotomyConfig):
    """The Eq. 6–7 leaves of a map as the clean-up sees them: (labels (H, W), k, background leaf)."""
    units = colour_units(img, cfg)
    leaf, k, bg_id = colour_leaves(units, cfg)
    return units.to_pixels(leaf, k), k, bg_id


def synthetic(seed: int, size: int = 72):
    """A decoded-looking map built to hit every stage: rectangles of close colours touching (B1), a darker
    ring round one entity (B2), a shade shared by two entities of one hue (a shared ramp), one colour in
    two places (B3), 1–3 px specks (A, holes), blurred edges against black (C); then pixel noise."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.float64)
    for _ in range(6):
        y, x = rng.integers(0, size - 12, 2)
        h, w = rng.integers(8, 30, 2)
        img[y:y + h, x:x + w] = PALETTE[rng.integers(1, len(PALETTE))]
    base = PALETTE[rng.integers(1, len(PALETTE))].astype(np.float64)
    img[4:20, 4:20] = base
    img[2:22, 2:4] = img[2:22, 20:22] = base * 0.55  # darker ring (sides)
    img[30:40, 30:44], img[30:40, 46:60] = base, base * 0.9 + 8  # one hue, two shades, a shared darker …
    img[40:43, 30:60] = base * 0.5  # … ramp below both
    img[size - 12:size - 4, 2:10] = base  # same colour, apart
    for _ in range(8):
        y, x = rng.integers(0, size - 3, 2)
        img[y:y + rng.integers(1, 4), x:x + rng.integers(1, 4)] = rng.uniform(0, 255, 3)
    blur = img.copy()
    blur[1:-1, 1:-1] = sum(img[1 + dy:size - 1 + dy, 1 + dx:size - 1 + dx]
                           for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    return np.clip(blur + rng.normal(0, 3, img.shape), 0, 255).round().astype(np.uint8)


def inputs():
    """(name, map): real VAE round trips, the latent round-trip model on painted scenes, synthetic maps."""
    for i in (0, 3, 7, 10):
        yield f"vae{i}", np.array(Image.open(FIXTURES / f"vae_roundtrip_{i:02d}.png"))
    for seed in range(2):
        rng = np.random.default_rng(seed)
        masks = np.zeros((5, 96, 96), bool)
        for m in masks:
            y, x = rng.integers(0, 70, 2)
            m[y:y + rng.integers(6, 40), x:x + rng.integers(6, 40)] = True
        yield f"roundtrip{seed}", simulate_latent_roundtrip(encode(masks), rng)
    for seed in range(3):
        yield f"synthetic{seed}", synthetic(seed)


CASES = list(inputs())
CONFIGS = [DichotomyConfig(), DichotomyConfig(keep_background=True), DichotomyConfig(features="lab"),
           DichotomyConfig(delta=4.0, min_area=8), DichotomyConfig(snap_to_palette=True)] + [
    DichotomyConfig(keep_background=True, stages=tuple(s for s in STAGES if s != drop)) for drop in STAGES]


def assert_same_clean_up(name, img, configs):
    # Same leaf map into both: the compiled stages and the numpy + scikit-image restatement must agree
    # pixel for pixel, colours included.
    for cfg in configs:
        labels, k, bg_id = leaf_map(img, cfg)
        fast_ids, fast_colors = clean_up(labels, k, bg_id, img, cfg)
        ref_ids, ref_colors = reference.clean_up(labels, k, bg_id, img, cfg)
        np.testing.assert_array_equal(fast_ids, ref_ids, err_msg=f"{name} {cfg}")
        np.testing.assert_array_equal(fast_colors, ref_colors, err_msg=f"{name} {cfg}")


@pytest.mark.parametrize("which", [0, 4, 6])  # a real VAE map, a latent round trip, a synthetic map
def test_fast_clean_up_equals_the_reference(which):
    assert_same_clean_up(*CASES[which], CONFIGS[:2])


@pytest.mark.slow
@pytest.mark.parametrize(("name", "img"), CASES, ids=[n for n, _ in CASES])
def test_fast_clean_up_equals_the_reference_everywhere(name, img):
    # Every input under every config, each stage dropped in turn too (~10 min on a loaded 2-core box).
    assert_same_clean_up(name, img, CONFIGS)


def test_every_stage_changes_some_input():
    # Otherwise the agreement above would not cover that stage.
    full = DichotomyConfig(keep_background=True)
    changed = set()
    for _, img in CASES:
        labels, k, bg_id = leaf_map(img, full)
        ids, _ = clean_up(labels, k, bg_id, img, full)
        for drop in STAGES:
            cfg = full.replace(stages=tuple(s for s in STAGES if s != drop))
            if not np.array_equal(clean_up(labels, k, bg_id, img, cfg)[0], ids):
                changed.add(drop)
    assert changed == set(STAGES)


def test_bad_stage_names_raise():
    with pytest.raises(ValueError, match="stages"):
        decode(np.zeros((8, 8, 3), np.uint8), stages=("tiny", "nope"))
    with pytest.raises(ValueError, match="stages"):
        DichotomyConfig(stages="tiny")
    with pytest.raises(TypeError, match="unknown"):
        decode(np.zeros((8, 8, 3), np.uint8), colour="red")
