"""Multi-class multi-region inpainting (paper §3.3; Table 2, row 1): fill a coarse region with the named
entities and return the image together with its entity colormap and masks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inputs import to_mask_batch, to_names_batch, to_rgb_batch

# The sampler step count of this pipeline (the paper: 200 DDIM steps); the CLI reads it too.
# Default sampling (issue 16; docs/results.md, "Sampling"): the cheapest setting of
# benchmarks/sampling.py that is as good as the best on held-out scenes. At zero terminal SNR one
# DDIM step is the read-out x̂_0 = −v̂ at t = T.
NUM_INFERENCE_STEPS = 20
GUIDANCE_SCALE = 1.0


class UniGSInpaintPipeline(UniGSPipeline):
    """Image + coarse mask m_c + entity names → inpainted image, its colormap and the entity masks.

    Conditions (Table 2): m_c = the given coarse mask; control z^c = Υ(I_0 ⊙ (1 − m_c)); prompt
    "inpainting: generate {names}."; both output halves are generated.

    >>> pipe = UniGSInpaintPipeline.from_pretrained("model")                      # doctest: +SKIP
    >>> out = pipe(["dog"], image, mask, num_inference_steps=50, generator=torch.Generator().manual_seed(0))
    >>> out.images[0], out.colormaps[0], out.masks[0].shape                       # doctest: +SKIP
    """

    task = "inpainting"
    clip_to_region = True
    default_num_inference_steps = NUM_INFERENCE_STEPS

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
        paste_back: bool = True,
        delta: float = 10.0,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> UniGSPipelineOutput | tuple:
        """Inpaint the region `mask_image` (1 = fill) of `image` with entities called `names`.

        Args:
            names: entity names, one list shared by the batch or one list per image (at least one name,
                unless `prompt` or `prompt_embeds` replaces the Table-2 prompt).
            image: RGB image(s) of any size, see `unigs.pipelines.inputs` for the accepted forms.
            mask_image: coarse mask(s) m_c, same size as `image`.
            num_inference_steps: sampler steps (default `NUM_INFERENCE_STEPS`, the paper's 200 DDIM steps).
            guidance_scale: classifier-free guidance against the negative prompt; <= 1 disables it.
            negative_prompt: the unconditional branch's prompt (default ""), one or one per image.
            num_images_per_prompt: outputs per input (B = inputs × this).
            height, width: the working box in pixels (`unigs.pipelines.frame`): the input is resized to fit
                inside it, aspect kept, and padded to the size multiple; default: the model's size
                (`default_size`) on both sides. Outputs always come back at the input's own size.
            generator: seeds the initial noise; the same seed gives the same output.
            latents: optional initial noise `(B, 8, h, w)` of the padded working frame.
            eta: DDIM η (0 = deterministic DDIM).
            prompt: override the Table-2 prompt (default: `conditions.prompt_for("inpainting", names)`).
            prompt_embeds, negative_prompt_embeds: precomputed text states `(inputs, 77, D)` instead of
                `prompt` / `negative_prompt`.
            paste_back: copy the original pixels outside m_c into the output image (the VAE round trip
                otherwise alters them); the colormap is always black outside m_c.
            delta: Φ's stopping threshold δ (`unigs.codec.dichotomy.decode`).
            output_type: "pil", "np" or "pt".
            return_dict: False returns the tuple `(images, colormaps, masks, rles, scores)`.
            callback_on_step_end: `f(pipe, step, timestep, callback_kwargs) -> dict`, called after every
                step; `callback_kwargs["latents"]` is the `(B, 8, h, w)` latent, and a returned
                `{"latents": ...}` replaces it. Set `pipe._interrupt = True` inside it to stop early.
            callback_on_step_end_tensor_inputs: keys passed to the callback (`["latents"]`).
        """
        images = to_rgb_batch(image)
        coarse = to_mask_batch(mask_image, len(images), images.shape[1:3])
        return self.run_task(
            images, coarse, to_names_batch(names, len(images)), num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, negative_prompt=negative_prompt,
            num_images_per_prompt=num_images_per_prompt, height=height, width=width, generator=generator,
            latents=latents, eta=eta, prompt=prompt, prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds, fix_known_half=True, paste_back=paste_back,
            delta=delta, output_type=output_type, return_dict=return_dict,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)
