"""Image synthesis from an entity colormap (paper §3.4 "Image Synthesis"; Table 2, row 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inputs import to_names_batch, to_rgb_batch

# The sampler step count of this pipeline (the paper: 200 DDIM steps); the CLI reads it too.
# Default sampling (issue 16; docs/results.md, "Sampling"): the cheapest setting of
# benchmarks/sampling.py that is as good as the best on held-out scenes. At zero terminal SNR one
# DDIM step is the read-out x̂_0 = −v̂ at t = T. Synthesis keeps 20 steps (one step returns the blurred
# mean image, which the alignment metric does not see); guidance 1 aligns as well as 7.5 (0.555 vs 0.525
# at 20 steps on 8 scenes) at half the UNet work.
NUM_INFERENCE_STEPS = 20
GUIDANCE_SCALE = 1.0


class UniGSSynthesisPipeline(UniGSPipeline):
    """Entity colormap M_c + entity names → an image whose entities follow the colormap.

    Conditions (Table 2): m_c = J (all ones); control z^c = Υ(M_c); prompt "synthesis: generate {names}.".
    The colormap half is Table 2's ✗ (ẑ_0^s = Υ(M_c)): by default the core keeps it equal to the noised
    control and the returned colormap is the input one (see `unigs.pipelines.core`).
    """

    task = "synthesis"
    default_num_inference_steps = NUM_INFERENCE_STEPS

    @torch.no_grad()
    def __call__(
        self,
        names: str | list[str] | list[list[str]] | None,
        colormap: Any,
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
        delta: float = 10.0,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> UniGSPipelineOutput | tuple:
        """Synthesise an image laid out as `colormap`, showing entities called `names`.

        Args:
            names: entity names (at least one), shared by the batch or one list per image.
            colormap: RGB entity colormap(s) of any size (`unigs.codec.palette.encode`; black = background),
                in any image form of `unigs.pipelines.inputs`; resized nearest-neighbour, padded black.
            fix_known_half: keep the colormap half equal to the control (default; the returned colormaps
                and masks are the input's, exact); False denoises it freely and returns the model's own
                colormap and its masks.
            Other arguments as in :class:`UniGSInpaintPipeline`.

        Returns:
            images: the synthesised images, at the colormap's size; colormaps: the input colormaps (or the
            model's, see above); masks: Φ of those colormaps (background dropped).
        """
        colormaps = to_rgb_batch(colormap, name="colormap")
        return self.run_task(
            colormaps, None, to_names_batch(names, len(colormaps)), num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, negative_prompt=negative_prompt,
            num_images_per_prompt=num_images_per_prompt, height=height, width=width, generator=generator,
            latents=latents, eta=eta, prompt=prompt, prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds, fix_known_half=fix_known_half, delta=delta,
            output_type=output_type, return_dict=return_dict, callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)
