"""Multi-class multi-region inpainting (paper §3.3; Table 2, row 1): fill a coarse region with the named
entities and return the image together with its entity colormap and masks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inputs import to_mask_batch, to_names_batch, to_rgb_batch


class UniGSInpaintPipeline(UniGSPipeline):
    """Image + coarse mask m_c + entity names → inpainted image, its colormap and the entity masks.

    Conditions (Table 2): m_c = the given coarse mask; control z^c = Υ(I_0 ⊙ (1 − m_c)); prompt
    "inpainting: generate {names}."; both output halves are generated.

    >>> pipe = UniGSInpaintPipeline.from_components(load_unigs("model"))          # doctest: +SKIP
    >>> out = pipe(["dog"], image, mask, num_inference_steps=50, generator=torch.Generator().manual_seed(0))
    >>> out.images[0], out.colormaps[0], out.masks[0].shape                       # doctest: +SKIP
    """

    task = "inpainting"
    known_half = None

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
        paste_back: bool = True,
        delta: float = 10.0,
        output_type: str = "pil",
    ) -> UniGSPipelineOutput:
        """Inpaint the region `mask_image` (1 = fill) of `image` with entities called `names`.

        Args:
            names: entity names, one list shared by the batch or one list per image (at least one name).
            image: RGB image(s), see `unigs.pipelines.inputs` for the accepted forms.
            mask_image: coarse mask(s) m_c, same size as `image`.
            num_inference_steps: sampler steps (paper: 200 DDIM steps).
            guidance_scale: classifier-free guidance against the "" prompt; <= 1 disables it.
            generator: seeds the initial noise; the same seed gives the same output.
            latents: optional initial noise `(B, 8, h, w)`.
            eta: DDIM η (0 = deterministic DDIM).
            prompt: override the Table-2 prompt (default: `conditions.prompt_for("inpainting", names)`).
            paste_back: copy the original pixels outside m_c into the output image (the VAE round trip
                otherwise alters them); the colormap is always black outside m_c.
            delta: Φ's stopping threshold δ (`unigs.codec.dichotomy.decode`).
            output_type: "pil", "np" or "pt".
        """
        # 1. Convert and check inputs.
        images = to_rgb_batch(image)
        batch = len(images)
        coarse = to_mask_batch(mask_image, batch, images.shape[1:3])
        names = to_names_batch(names, batch)
        self.check_inputs(images, num_inference_steps, guidance_scale, output_type,
                          names=names if prompt is None else None)

        # 2. Table-2 conditions: control = I_0 ⊙ (1 − m_c), prompt from the template.
        controls = self.build_controls(coarse, images=images)
        prompts = self.build_prompts(prompt, names)

        # 3. Denoise both halves from noise (shared core).
        z0 = self.generate(prompts, controls, coarse, num_inference_steps=num_inference_steps,
                           guidance_scale=guidance_scale, generator=generator, latents=latents, eta=eta,
                           fix_known_half=True)

        # 4. Decode image and colormap (one VAE call for both halves).
        decoded = self.decode_latents(torch.cat([z0[:, :4], z0[:, 4:]]))
        out_images, colormaps = decoded[:batch], decoded[batch:]

        # 5. Keep the original outside the coarse region; the colormap only speaks about the region.
        inside = coarse[..., None]
        if paste_back:
            out_images = np.where(inside, out_images, images).astype(np.uint8)
        colormaps = (colormaps * inside).astype(np.uint8)

        # 6. Φ: entity masks inside the coarse region (background dropped).
        masks = self.masks_from_colormaps(colormaps, coarse, delta, keep_background=False)
        return self.format_output(out_images, colormaps, masks, output_type)

