"""UniGSGuidedInpaintPipeline (SPG-Net: predict, edit, inpaint guided by the colormap) on tiny components."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unigs.codec import palette
from unigs.pipelines import UniGSGuidedInpaintPipeline, core


def _kw(seed=0):
    return {"num_inference_steps": 2, "generator": torch.Generator().manual_seed(seed), "output_type": "np"}


def _edited(scene):
    """A guide: the hole holds one entity (the lower-right rectangle) — and an edit that makes it smaller."""
    _, hole, masks = scene
    guide = palette.encode(masks[1:] & hole[None])
    smaller = masks[1:].copy()
    smaller[:, 18:30, 16:22] = False
    return guide, palette.encode(smaller)


def test_predict_gives_an_editable_palette_colormap(make_pipe, scene):
    image, hole, _ = scene
    pred = make_pipe(UniGSGuidedInpaintPipeline).predict_colormap(["ball"], image, hole, **_kw())
    guide = pred.guides[0]
    assert guide.shape == (32, 32, 3) and not guide[~hole].any()  # black outside the hole
    colours = {tuple(c) for c in guide.reshape(-1, 3)} - {(0, 0, 0)}
    assert colours <= {tuple(c) for c in palette.PALETTE}  # exact palette colours only
    assert pred.onestep_images.shape == (1, 32, 32, 3)


def test_guided_inpainting_follows_the_colormap(make_pipe, scene, monkeypatch):
    image, hole, _ = scene
    guide, edited = _edited(scene)
    pipe = make_pipe(UniGSGuidedInpaintPipeline)
    seen = []
    denoise = core.denoise
    monkeypatch.setattr(core, "denoise", lambda *a, **k: seen.append(k) or denoise(*a, **k))
    a = pipe(["ball"], image, hole, colormap=guide, **_kw())
    assert np.array_equal(a.images[0][~hole], image[~hole])  # paste-back outside the hole
    assert np.array_equal(a.guides[0], guide) and np.array_equal(a.colormaps[0], guide)
    assert {m.tobytes() for m in a.masks[0]} == {(scene[2][1] & hole).tobytes()}
    assert a.onestep_images is None
    # the core held the colormap half (everywhere) and the image outside the hole (whole latent cells)
    known = seen[-1]["known"]
    assert seen[-1]["known_half"] is None and known.mask[:, 4:].eq(1).all()
    outside = core.known_cells(torch.from_numpy(~hole)[None], (8, 8))
    assert torch.equal(known.mask[:, :4], outside.expand(1, 4, 8, 8))
    again = pipe(["ball"], image, hole, colormap=guide, **_kw())
    assert np.array_equal(again.images, a.images)
    b = pipe(["ball"], image, hole, colormap=edited, **_kw())
    assert not np.array_equal(b.images[0][hole], a.images[0][hole])  # the edit changes the painting


def test_without_colormap_it_predicts_first(make_pipe, scene):
    image, hole, _ = scene
    out = make_pipe(UniGSGuidedInpaintPipeline)(["ball"], image, hole, resample_jumps=1, **_kw())
    assert out.onestep_images.shape == (1, 32, 32, 3) and out.images.shape == (1, 32, 32, 3)
    assert not out.guides[0][~hole].any()


def test_bad_colormaps_are_refused(make_pipe, scene):
    image, hole, _ = scene
    guide, _ = _edited(scene)
    pipe = make_pipe(UniGSGuidedInpaintPipeline)
    off = guide.copy()
    off[20:24, 20:24] = (100, 30, 200)
    with pytest.raises(ValueError, match=r"not palette colours \(e\.g\. RGB \(100, 30, 200\)"):
        pipe(["ball"], image, hole, colormap=off, **_kw())
    with pytest.raises(ValueError, match="colormap is 16x16 .* the image is 32x32"):
        pipe(["ball"], image, hole, colormap=guide[:16, :16], **_kw())
