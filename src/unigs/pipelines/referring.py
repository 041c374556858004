"""Referring segmentation (paper §3.4 "Referring Segmentation"; Table 2, row 3)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inputs import to_mask_batch, to_names_batch, to_rgb_batch


class UniGSReferringPipeline(UniGSPipeline):
    """Image + coarse mask m_c + entity names → masks of the named entities inside m_c.

    Conditions (Table 2): m_c = the given coarse mask; control z^c = Υ(I_0) (the image is *not* cut out);
    prompt "referring: find {names}.". The image half is Table 2's ✗ and is pinned to the control by default.
    A name that is not in the region yields no mask: the model was trained with negative names whose target
    colormap is empty (§3.4, λ), so its colormap stays black and Φ (background dropped) returns nothing.
    """

    task = "referring"
    known_half = "image"

    @torch.no_grad()
    def __call__(
        self,
        names: str | list[str] | list[list[str]],
        image: Any,
        mask_image: Any,
        num_inference_steps: int = 200,
        guidance_scale: float = 7.5,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        prompt: str | list[str] | None = None,
        fix_known_half: bool = True,
        delta: float = 10.0,
        output_type: str = "pil",
    ) -> UniGSPipelineOutput:
        """Find the entities called `names` inside the region `mask_image` of `image`.

        Args:
            fix_known_half: pin the image half to the control (default; the returned images are the inputs);
                False denoises it freely and returns the model's reconstruction.
            Other arguments as in :class:`UniGSInpaintPipeline`.

        Returns:
            masks: `(K, H, W) bool` per image, clipped to m_c, K = 0 when nothing named is found;
            colormaps: the predicted colormaps, black outside m_c.
        """
        # 1. Convert and check inputs.
        images = to_rgb_batch(image)
        batch = len(images)
        coarse = to_mask_batch(mask_image, batch, images.shape[1:3])
        names = to_names_batch(names, batch)
        self.check_inputs(images, num_inference_steps, guidance_scale, output_type,
                          names=names if prompt is None else None)

        # 2. Table-2 conditions: control = I_0, m_c = the coarse mask.
        controls = self.build_controls(coarse, images=images)
        prompts = self.build_prompts(prompt, names)

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
        colormaps = (colormaps * coarse[..., None]).astype(np.uint8)

        # 5. Φ: masks inside the coarse region, background dropped.
        masks = self.masks_from_colormaps(colormaps, coarse, delta, keep_background=False)
        return self.format_output(out_images, colormaps, masks, output_type)
