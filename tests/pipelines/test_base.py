"""What the four pipelines share: construction, the Φ step with a coarse region, output packing."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from unigs.codec import palette
from unigs.io import rle_to_masks
from unigs.pipelines import (
    PIPELINES,
    UniGSEntityPipeline,
    UniGSInpaintPipeline,
    UniGSPipeline,
    UniGSPipelineOutput,
    pipeline_for_task,
)


def test_pipeline_for_task_and_unknown_task(components):
    for task, cls in PIPELINES.items():
        pipe = pipeline_for_task(task, components)
        assert type(pipe) is cls and pipe.task == task
        assert pipe.meta.image_size == 32
    with pytest.raises(ValueError, match="'panoptic'"):
        pipeline_for_task("panoptic", components)


def test_a_subclass_with_an_unknown_task_is_refused(components):
    class Bad(UniGSPipeline):
        task = "depth"

    with pytest.raises(ValueError, match="'depth'"):
        Bad.from_components(components)


def test_size_multiple_is_vae_factor_times_unet_downsampling(components):
    pipe = UniGSEntityPipeline.from_components(components)
    assert pipe.vae_scale_factor == 4  # 3 VAE blocks
    assert pipe.size_multiple == 8  # x2 from the 2-block tiny UNet


def _two_entities():
    masks = np.zeros((2, 32, 32), dtype=bool)
    masks[0, 2:12, 2:14] = True
    masks[1, 18:30, 16:30] = True
    return masks, palette.encode(masks)


def test_masks_from_colormaps_known_answer():
    masks, cmap = _two_entities()
    got = UniGSPipeline.masks_from_colormaps(cmap[None], None, 10.0, keep_background=False)[0]
    assert got.shape == (2, 32, 32)
    assert sorted(m.sum() for m in got) == sorted(m.sum() for m in masks)
    assert {m.tobytes() for m in got} == {m.tobytes() for m in masks}
    with_bg = UniGSPipeline.masks_from_colormaps(cmap[None], None, 10.0, keep_background=True)[0]
    assert len(with_bg) == 3 and with_bg.any(0).all()  # background is an entity too, covering the rest


def test_masks_are_clipped_to_the_region_and_empties_dropped():
    masks, cmap = _two_entities()
    region = np.zeros((1, 32, 32), dtype=bool)
    region[0, 16:, 20:] = True  # half of entity 1, none of entity 0
    got = UniGSPipeline.masks_from_colormaps(cmap[None], region, 10.0, keep_background=False)[0]
    assert got.shape == (1, 32, 32)
    assert np.array_equal(got[0], masks[1] & region[0])
    black = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    none = UniGSPipeline.masks_from_colormaps(black, region, 10.0, keep_background=False)[0]
    assert none.shape == (0, 32, 32)


def test_format_output_round_trips_rles():
    masks, cmap = _two_entities()
    images = np.zeros((1, 32, 32, 3), np.uint8)
    out = UniGSPipeline.format_output(images, cmap[None], [masks], "pt")
    assert isinstance(out, UniGSPipelineOutput)
    assert out.images.shape == (1, 3, 32, 32) and out.masks[0].dtype == torch.bool
    assert np.array_equal(rle_to_masks(out.rles[0]), masks)
    empty = UniGSPipeline.format_output(images, images, [np.zeros((0, 32, 32), bool)], "np")
    assert empty.rles == [[]] and empty.masks[0].shape == (0, 32, 32)


def test_check_inputs_messages(components, scene):
    image, coarse, _ = scene
    pipe = UniGSInpaintPipeline.from_components(components)
    images = image[None]
    with pytest.raises(ValueError, match="height must be a positive integer"):
        pipe.check_inputs(images, 2, 1.0, "np", height=0)
    with pytest.raises(ValueError, match="num_images_per_prompt"):
        pipe.check_inputs(images, 2, 1.0, "np", num_images_per_prompt=0)
    with pytest.raises(ValueError, match="'prompt_embeds'"):
        pipe.check_inputs(images, 2, 1.0, "np", callback_on_step_end_tensor_inputs=["prompt_embeds"])
    with pytest.raises(ValueError, match="num_inference_steps"):
        pipe.check_inputs(images, 0, 1.0, "np")
    with pytest.raises(ValueError, match="guidance_scale"):
        pipe.check_inputs(images, 2, -1.0, "np")
    with pytest.raises(ValueError, match="'latent'"):
        pipe.check_inputs(images, 2, 1.0, "latent")
    with pytest.raises(ValueError, match="at least one entity name"):
        pipe.check_inputs(images, 2, 1.0, "np", names=[[]])


def test_names_outside_the_model_vocabulary_are_warned_about(components, scene):
    from unigs.pipelines import UniGSReferringPipeline

    image, coarse, _ = scene
    pipe = UniGSReferringPipeline.from_components(components)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.warn_unknown_names([["dog"]]) == []  # no vocabulary in the meta: nothing to say
    pipe.meta = dataclasses.replace(pipe.meta, vocabulary=("ball", "sky"), domain="procedural scenes")
    with pytest.warns(UserWarning, match=r"does not know 'dog'.*knows: ball, sky"):
        pipe(["Ball", "dog"], image, coarse, num_inference_steps=1, output_type="np")
    assert pipe.warn_unknown_names([["BALL "], ["sky"]]) == []


def test_a_widened_sd_inpainting_model_says_its_colormaps_are_untrained(scene):
    from tiny_models import tiny_sd_inpaint_components

    from unigs.models.unet import widen_unet
    from unigs.pipelines import UniGSReferringPipeline, UniGSSynthesisPipeline

    sd = tiny_sd_inpaint_components(seed=0)
    sd.unet = widen_unet(sd.unet, num_tasks=4)
    image, coarse, _ = scene
    pipe = UniGSReferringPipeline.from_components(sd)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.colormap_untrained
    with pytest.warns(UserWarning, match="colormap output channels are all zero"):
        pipe(["dog"], image, coarse, num_inference_steps=1, output_type="np")
    synth = UniGSSynthesisPipeline.from_components(sd)  # reads no model colormap: nothing to say
    synth.set_progress_bar_config(disable=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synth(["dog"], palette.encode(scene[2]), num_inference_steps=1, output_type="np")


def test_a_trained_unigs_model_is_not_flagged(components):
    assert not UniGSEntityPipeline.from_components(components).colormap_untrained
