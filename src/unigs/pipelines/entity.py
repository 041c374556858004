"""Entity segmentation (paper §3.4 "Entity Segmentation"; Table 2, row 4; LDMSeg's task)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unigs.conditions import full_mask
from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inputs import to_rgb_batch


class UniGSEntityPipeline(UniGSPipeline):
    """Image → all entity masks, class-agnostic, covering the whole image.

    Conditions (Table 2): m_c = J; control z^c = Υ(I_0); prompt "panoptic: all entities.". The image half is
    Table 2's ✗ and is pinned to the control by default. Φ keeps the background: every cluster of the
    colormap, black included, is an entity (supplementary §6, "the background is not removed").
    """

    task = "entity"
    known_half = "image"

    @torch.no_grad()
    def __call__(
        self,
        image: Any,
        num_inference_steps: int = 200,
        guidance_scale: float = 1.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        prompt: str | list[str] | None = None,
        fix_known_half: bool = True,
        delta: float = 10.0,
        output_type: str = "pil",
    ) -> UniGSPipelineOutput:
        """Segment every entity of `image`.

        Args:
            guidance_scale: default 1 (no guidance): the prompt is the same fixed sentence for every image, so
                guiding against "" only sharpens the task, at twice the cost.
            fix_known_half: as in :class:`UniGSReferringPipeline`.
            Other arguments as in :class:`UniGSInpaintPipeline`.

        Returns:
            masks: `(K, H, W) bool` per image, background kept as entities.
        """
        # 1. Convert and check inputs.
        images = to_rgb_batch(image)
        batch, h, w = images.shape[:3]
        self.check_inputs(images, num_inference_steps, guidance_scale, output_type)

        # 2. Table-2 conditions: m_c = J, control = I_0, the fixed panoptic prompt.
        coarse = np.stack([full_mask(h, w)] * batch)
        controls = self.build_controls(coarse, images=images)
        prompts = self.build_prompts(prompt, [[] for _ in range(batch)])

        # 3. Denoise (image half pinned to the control unless fix_known_half=False).
        z0 = self.generate(prompts, controls, coarse, num_inference_steps=num_inference_steps,
                           guidance_scale=guidance_scale, generator=generator, latents=latents, eta=eta,
                           fix_known_half=fix_known_half)

        # 4. Decode the colormap half (and the image half only when the model generated it).
        if fix_known_half:
            colormaps, out_images = self.decode_latents(z0[:, 4:]), images
        else:
            decoded = self.decode_latents(torch.cat([z0[:, :4], z0[:, 4:]]))
            out_images, colormaps = decoded[:batch], decoded[batch:]

        # 5. Φ with the background kept.
        masks = self.masks_from_colormaps(colormaps, None, delta, keep_background=True)
        return self.format_output(out_images, colormaps, masks, output_type)
