"""Referring segmentation (paper §3.4 "Referring Segmentation"; Table 2, row 3)."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch

from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inputs import to_mask_batch, to_names_batch, to_rgb_batch

# The sampler step count of this pipeline (the paper: 200 DDIM steps); the CLI reads it too.
# Default sampling (issue 16; docs/results.md, "Sampling"): the cheapest setting of
# benchmarks/sampling.py that is as good as the best on held-out scenes. At zero terminal SNR one
# DDIM step is the read-out x̂_0 = −v̂ at t = T.
NUM_INFERENCE_STEPS = 1
GUIDANCE_SCALE = 1.0
# Φ's settings for this pipeline's predicted colormaps (`UniGSPipeline.readout`; issue 16): the one-step
# read-out is a conditional mean whose things are faint blurred blobs, which the codec's settings (tuned on
# VAE round trips of exact colormaps) break into rings or drop. Chosen on val scenes and checked on test by
# benchmarks/readout.py (docs/results.md, "Read-out of model colormaps"): δ = 20 won on val with both the
# step-4000 and the stage-4 model (the best mean of mIoU and recall, +0.03–0.05).
READOUT = MappingProxyType({"delta": 20.0})


class UniGSReferringPipeline(UniGSPipeline):
    """Image + coarse mask m_c + entity names → masks of the named entities inside m_c.

    Conditions (Table 2): m_c = the given coarse mask; control z^c = Υ(I_0) (the image is *not* cut out);
    prompt "referring: find {names}.". The image half is Table 2's ✗ and is pinned to the control by default.
    A name that is not in the region yields no mask: the model was trained with negative names whose target
    colormap is empty (§3.4, λ), so its colormap stays black and Φ (background dropped) returns nothing.
    """

    task = "referring"
    clip_to_region = True
    default_num_inference_steps = NUM_INFERENCE_STEPS
    readout = READOUT

    @torch.no_grad()
    def __call__(
        self,
        names: str | list[str] | list[list[str]] | None,
        image: Any,
        mask_image: Any,
        num_inference_steps: int = NUM_INFERENCE_STEPS,
        guidance_scale: float = GUIDANCE_SCALE,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        prompt: str | list[str] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        fix_known_half: bool = True,
        delta: float | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> UniGSPipelineOutput | tuple:
        """Find the entities called `names` inside the region `mask_image` of `image` (any size).

        Args:
            fix_known_half: pin the image half to the control (default; the returned images are the inputs);
                False denoises it freely and returns the model's reconstruction.
            delta: Φ's δ; None (default): this module's READOUT, chosen for model-predicted colormaps.
            Other arguments as in :class:`UniGSInpaintPipeline`.

        Returns:
            masks: `(K, H, W) bool` per image at the input's size, clipped to m_c, K = 0 when nothing named
            is found; colormaps: the predicted colormaps, black outside m_c.
        """
        images = to_rgb_batch(image)
        coarse = to_mask_batch(mask_image, len(images), images.shape[1:3])
        return self.run_task(
            images, coarse, to_names_batch(names, len(images)), num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, negative_prompt=negative_prompt,
            num_images_per_prompt=num_images_per_prompt, height=height, width=width, generator=generator,
            latents=latents, eta=eta, prompt=prompt, prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds, fix_known_half=fix_known_half, delta=delta,
            output_type=output_type, return_dict=return_dict, callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)
