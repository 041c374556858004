"""UniGSMaskCompletionPipeline (LDMSeg mask inpainting by known-region replacement) on tiny components."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unigs.codec import palette
from unigs.io import masks_to_rle
from unigs.pipelines import UniGSMaskCompletionPipeline, core
from unigs.pipelines.mask_completion import load_partial


def _kw(seed=0, **extra):
    return {"num_inference_steps": 2, "generator": torch.Generator().manual_seed(seed), "output_type": "np",
            **extra}


def _partial(scene):
    image, _, masks = scene
    known = np.ones((32, 32), bool)
    known[:, 16:] = False  # the right half is hidden
    full = palette.encode(masks)
    return image, full, np.where(known[..., None], full, 0).astype(np.uint8), known


def test_known_region_is_kept_and_the_rest_completed(make_pipe, scene, monkeypatch):
    image, full, partial, known = _partial(scene)
    pipe = make_pipe(UniGSMaskCompletionPipeline)
    seen = []
    denoise = core.denoise
    monkeypatch.setattr(core, "denoise", lambda *a, **k: seen.append(k) or denoise(*a, **k))
    out = pipe(image, partial, known, **_kw())
    assert np.array_equal(out.colormaps[0][known], full[known])
    assert np.array_equal(out.images[0], image)
    held = seen[0]["known"]
    assert seen[0]["known_half"] == "image" and held.mask[:, :4].eq(0).all()
    cells = held.mask[0, 4]
    assert cells[:, :4].eq(1).all() and cells[:, 4:].eq(0).all()  # latent 8x8: left half known
    assert all(m.shape == (32, 32) for m in out.masks[0])
    again = pipe(image, partial, known, **_kw())
    assert np.array_equal(again.colormaps, out.colormaps)


def test_everything_known_returns_the_partial_map(make_pipe, scene):
    image, full, _, _ = _partial(scene)
    out = make_pipe(UniGSMaskCompletionPipeline)(image, scene[2], np.ones((32, 32), bool),
                                                 **_kw(resample_jumps=1))
    assert np.array_equal(out.colormaps[0], full)
    expected = {m.tobytes() for m in scene[2]} | {(~scene[2].any(0)).tobytes()}  # entities + background
    assert {m.tobytes() for m in out.masks[0]} == expected


def test_partial_from_json(tmp_path, scene):
    masks = scene[2]
    results = [{"segmentation": r, "score": 1.0} for r in masks_to_rle(masks)]
    (tmp_path / "p.json").write_text(json.dumps(results))
    assert np.array_equal(load_partial(tmp_path / "p.json"), masks)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="holds no list of RLE masks"):
        load_partial(tmp_path / "bad.json")


def test_bad_inputs_are_refused(make_pipe, scene):
    image, _, partial, known = _partial(scene)
    pipe = make_pipe(UniGSMaskCompletionPipeline)
    with pytest.raises(ValueError, match=r"known mask is 16x16 \(HxW\) but the image is 32x32"):
        pipe(image, partial, known[:16, :16], **_kw())
    with pytest.raises(ValueError, match=r"partial masks are 16x16 \(HxW\) but the image is 32x32"):
        pipe(image, partial[:16, :16], known, **_kw())
    off = partial.copy()
    off[:4, :4] = (100, 30, 200)
    with pytest.raises(ValueError, match="not palette colours"):
        pipe(image, off, known, **_kw())
    with pytest.raises(ValueError, match="colormap .* or entity masks"):
        pipe(image, partial.astype(np.float32), known, **_kw())


def test_a_batch_takes_one_partial_map_per_image(make_pipe, scene):
    image, full, partial, known = _partial(scene)
    everything = np.ones_like(known)
    out = make_pipe(UniGSMaskCompletionPipeline)(np.stack([image, image]), [partial, full],
                                                 np.stack([known, everything]), **_kw())
    assert np.array_equal(out.colormaps[1], full) and np.array_equal(out.colormaps[0][known], full[known])
    with pytest.raises(ValueError, match="masks gives 1 partial segmentations for 2 images"):
        make_pipe(UniGSMaskCompletionPipeline)(np.stack([image, image]), [partial], known, **_kw())
