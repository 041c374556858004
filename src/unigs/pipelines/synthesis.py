"""Image synthesis from an entity colormap (paper §3.4 "Image Synthesis"; Table 2, row 2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unigs.conditions import full_mask
from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inputs import to_names_batch, to_rgb_batch


class UniGSSynthesisPipeline(UniGSPipeline):
    """Entity colormap M_c + entity names → an image whose entities follow the colormap.

    Conditions (Table 2): m_c = J (all ones); control z^c = Υ(M_c); prompt "synthesis: generate {names}.".
    The colormap half is Table 2's ✗ (ẑ_0^s = Υ(M_c)): by default the core keeps it equal to the noised
    control and the returned colormap is the input one (see `unigs.pipelines.core`).
    """

    task = "synthesis"
    known_half = "colormap"

    @torch.no_grad()
    def __call__(
        self,
        names: str | list[str] | list[list[str]],
        colormap: Any,
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
        """Synthesise an image laid out as `colormap`, showing entities called `names`.

        Args:
            names: entity names (at least one), shared by the batch or one list per image.
            colormap: RGB entity colormap(s) (`unigs.codec.palette.encode`; black = background), in any
                image form of `unigs.pipelines.inputs`.
            fix_known_half: keep the colormap half equal to the control (default); False denoises it freely
                and returns the model's own colormap and its masks.
            Other arguments as in :class:`UniGSInpaintPipeline`.

        Returns:
            images: the synthesised images; colormaps: the input colormaps (or the model's, see above);
            masks: Φ of those colormaps (background dropped).
        """
        # 1. Convert and check inputs.
        colormaps = to_rgb_batch(colormap, name="colormap")
        batch, h, w = colormaps.shape[:3]
        names = to_names_batch(names, batch)
        self.check_inputs(colormaps, num_inference_steps, guidance_scale, output_type,
                          names=names if prompt is None else None)

        # 2. Table-2 conditions: m_c = J, control = M_c.
        coarse = np.stack([full_mask(h, w)] * batch)
        controls = self.build_controls(coarse, colormaps=colormaps)
        prompts = self.build_prompts(prompt, names)

        # 3. Denoise (the colormap half pinned to the control unless fix_known_half=False).
        z0 = self.generate(prompts, controls, coarse, num_inference_steps=num_inference_steps,
                           guidance_scale=guidance_scale, generator=generator, latents=latents, eta=eta,
                           fix_known_half=fix_known_half)

        # 4. Decode the image half (and the colormap half only when the model generated it).
        if fix_known_half:
            out_images = self.decode_latents(z0[:, :4])
        else:
            decoded = self.decode_latents(torch.cat([z0[:, :4], z0[:, 4:]]))
            out_images, colormaps = decoded[:batch], decoded[batch:]

        # 5. Φ: the entity masks of the colormap.
        masks = self.masks_from_colormaps(colormaps, None, delta, keep_background=False)
        return self.format_output(out_images, colormaps, masks, output_type)
