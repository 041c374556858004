"""The related systems' pipelines through main's mechanisms: working frames (any input size, outputs at that
size), run_task's callbacks and interrupt, num_images_per_prompt; `frame.known_to_work`."""

from __future__ import annotations

import numpy as np
import torch

from unigs.codec import palette
from unigs.pipelines import (
    UniGSGuidedInpaintPipeline,
    UniGSMaskCompletionPipeline,
    UniGSTwoStagePipeline,
    core,
    frame,
)

H, W = 37, 45  # non-square, not a multiple of the tiny model's size multiple


def _scene():
    masks = np.zeros((2, H, W), bool)
    masks[0, 2:15, 3:20] = True
    masks[1, 20:35, 22:43] = True
    image = np.full((H, W, 3), 120, np.uint8)
    image[masks[0]], image[masks[1]] = (200, 40, 40), (30, 60, 210)
    hole = np.zeros((H, W), bool)
    hole[18:, 20:] = True
    return image, masks, hole


def _kw(**extra):
    return {"num_inference_steps": 2, "generator": torch.Generator().manual_seed(0), "output_type": "np",
            **extra}


def test_known_to_work_is_strict_and_leaves_the_padding_unknown():
    fr = frame.plan_frame(H, W, (32, 32), 8)
    assert fr.padded != fr.resized  # the frame pads
    known = np.zeros((1, H, W), bool)
    known[:, :, :20] = True
    work = frame.known_to_work(known, fr)
    assert work.shape == (1, *fr.padded)
    assert not work[:, fr.resized[0]:].any() and not work[:, :, fr.resized[1]:].any()
    back = frame.to_original(work, fr, "mask")
    assert not (back & ~known).any()  # never claims an unknown pixel
    assert work[0, : fr.resized[0], :10].all()


def test_mask_completion_at_any_size_with_callbacks_and_interrupt(make_pipe):
    image, masks, _ = _scene()
    full = palette.encode(masks)
    known = np.zeros((H, W), bool)
    known[:, :21] = True
    partial = np.where(known[..., None], full, 0).astype(np.uint8)
    pipe = make_pipe(UniGSMaskCompletionPipeline)
    steps = []

    def callback(p, i, t, kwargs):
        steps.append(i)
        assert kwargs["latents"].shape[1] == 8
        return {}

    out = pipe(image, partial, known, callback_on_step_end=callback, num_images_per_prompt=2, **_kw())
    assert out.colormaps.shape == (2, H, W, 3) and out.images.shape == (2, H, W, 3)
    assert all(np.array_equal(c[known], full[known]) for c in out.colormaps)  # exact on known pixels
    assert all(m.shape[1:] == (H, W) for m in out.masks) and steps == [0, 1]

    def stop(p, i, t, kwargs):
        p._interrupt = True
        return {}

    calls = []
    hook = pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        pipe(image, partial, known, callback_on_step_end=stop, **_kw(num_inference_steps=5))
    finally:
        hook.remove()
    assert len(calls) == 1


def test_guided_inpainting_at_any_size_holds_latents_in_the_working_frame(make_pipe, monkeypatch):
    image, masks, hole = _scene()
    guide = palette.encode(masks[1:] & hole[None])
    pipe = make_pipe(UniGSGuidedInpaintPipeline)
    seen = []
    denoise = core.denoise
    monkeypatch.setattr(core, "denoise", lambda *a, **k: seen.append(k) or denoise(*a, **k))
    out = pipe(["ball"], image, hole, colormap=guide, **_kw())
    assert out.images.shape == (1, H, W, 3) and np.array_equal(out.images[0][~hole], image[~hole])
    assert np.array_equal(out.colormaps[0], guide) and np.array_equal(out.guides[0], guide)
    fr = pipe.working_frame(H, W)
    latent = (fr.padded[0] // pipe.vae_scale_factor, fr.padded[1] // pipe.vae_scale_factor)
    known = seen[-1]["known"]
    assert known.values.shape[-2:] == latent and known.mask[:, 4:].eq(1).all()
    assert known.mask[:, :4].sum() > 0 and known.mask[:, :4, latent[0] - 1].eq(0).all()  # padding row
    predicted = pipe(["ball"], image, hole, num_images_per_prompt=2, **_kw())
    assert predicted.images.shape == predicted.onestep_images.shape == (2, H, W, 3)
    assert predicted.guides.shape == (2, H, W, 3) and not predicted.guides[:, ~hole].any()


def test_two_stage_at_any_size(make_pipe):
    _, masks, _ = _scene()
    cmap = palette.encode(masks)
    out = make_pipe(UniGSTwoStagePipeline)(["dog", "sky"], cmap, refine_strength=0.5, **_kw())
    assert out.images.shape == out.stage1_images.shape == (1, H, W, 3)
    assert not np.array_equal(out.images, out.stage1_images)
    assert np.array_equal(out.colormaps[0], cmap) and out.masks[0].shape[1:] == (H, W)
