"""UniGSTwoStagePipeline (TCIG: synthesis, then refinement at strength S) on tiny components."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_sd_inpaint_components

from unigs.codec import palette
from unigs.pipelines import UniGSSynthesisPipeline, UniGSTwoStagePipeline
from unigs.pipelines.two_stage import check_refine_strength, refiner_from_components


def _run(pipe, cmap, strength, seed=0, **kwargs):
    kwargs.setdefault("output_type", "np")
    return pipe(["dog", "sky"], cmap, refine_strength=strength, num_inference_steps=4,
                generator=torch.Generator().manual_seed(seed), **kwargs)


def test_strength_zero_is_stage_one_and_refinement_keeps_the_layout(make_pipe, scene):
    cmap = palette.encode(scene[2])
    pipe = make_pipe(UniGSTwoStagePipeline)
    plain = make_pipe(UniGSSynthesisPipeline)(["dog", "sky"], cmap, num_inference_steps=4, output_type="np",
                                              generator=torch.Generator().manual_seed(0))
    zero = _run(pipe, cmap, 0.0)
    assert np.array_equal(zero.images, zero.stage1_images)
    assert np.array_equal(zero.stage1_images, plain.images)  # stage 1 is plain UniGS synthesis
    half = _run(pipe, cmap, 0.5)
    assert np.array_equal(half.stage1_images, plain.images)
    assert half.images.shape == (1, 32, 32, 3) and not np.array_equal(half.images, half.stage1_images)
    assert np.array_equal(half.colormaps[0], cmap)  # the layout output is the input colormap
    assert {m.tobytes() for m in half.masks[0]} == {m.tobytes() for m in scene[2]}
    again = _run(pipe, cmap, 0.5)
    assert np.array_equal(again.images, half.images)  # seeded
    pil = _run(pipe, cmap, 0.25, output_type="pil")
    assert pil.images[0].size == (32, 32) and pil.stage1_images[0].size == (32, 32)


def test_refine_runs_int_steps_times_strength(make_pipe, scene):
    pipe = make_pipe(UniGSTwoStagePipeline)
    calls = []
    hook = pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        pipe.refine([["dog"]], scene[0], 0.5, num_inference_steps=6, guidance_scale=1.0)
    finally:
        hook.remove()
    assert len(calls) == 3


@pytest.mark.parametrize("bad", [1.5, -0.2, float("nan"), "high", None])
def test_strength_outside_unit_interval_is_refused_in_one_sentence(make_pipe, scene, bad):
    pipe = make_pipe(UniGSTwoStagePipeline)
    with pytest.raises(ValueError, match=r"^refine strength must be a number in \[0, 1\], is "):
        _run(pipe, palette.encode(scene[2]), bad)
    assert check_refine_strength(1) == 1.0


def test_a_local_sd_inpainting_model_as_refiner(make_pipe, scene):
    cmap = palette.encode(scene[2])
    pipe = make_pipe(UniGSTwoStagePipeline)
    pipe.refiner = refiner_from_components(tiny_sd_inpaint_components(seed=1, clip=True))
    out = _run(pipe, cmap, 0.5, guidance_scale=1.0)
    assert out.images.shape == (1, 32, 32, 3) and out.images.dtype == np.uint8
    assert not np.array_equal(out.images, out.stage1_images)


def test_refiner_needs_an_sd_unet(components):
    with pytest.raises(ValueError, match=r"\(inpainting\) input channels, this one has 13"):
        refiner_from_components(components)
