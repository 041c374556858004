"""SPG-Net (seed 004) in UniGS: predict the hole's segmentation, let the user edit it, inpaint guided by it.

1. **Segmentation prediction** (SP-Net): UniGS inpainting (Table 2, row 1) generates the hole's image *and*
   colormap; Φ turns the colormap into masks and Ψ re-paints them with exact palette colours
   (:meth:`UniGSGuidedInpaintPipeline.predict_colormap`) — a clean PNG a person can edit with palette colours.
   The one-step inpainted image of the same call is SPG-Net's baseline ("inpainting without guidance").
2. **Segmentation guidance** (SG-Net): the inpainting task again (m_c = the hole, control = I_0 ⊙ (1 − m_c),
   so the known image is the context exactly as in training), but its colormap half is no longer generated:
   it is held at Υ(guide) every step (the core's known-region replacement, `known_half="colormap"`), the
   guide being the predicted or edited colormap inside the hole and black outside (the inpainting target's
   own form, Table 2). The joint model then paints the image that goes with that colormap. The image half
   outside the hole is held at the noised Υ(I_0) too (`keep_context`; entirely known latent cells only), so
   synthesis is restricted to the hole; `paste_back` restores the exact pixels outside it.

A user's colormap passes through `unigs.codec.snap.canonical_colormap`: near-palette colours are snapped,
other colours refused in one sentence, and the entities re-painted with Ψ's location-aware colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch

from unigs.codec import palette
from unigs.codec.snap import DEFAULT_TOLERANCE, canonical_colormap
from unigs.pipelines import core
from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inpainting import UniGSInpaintPipeline
from unigs.pipelines.inputs import format_images, to_mask_batch, to_names_batch, to_rgb_batch


@dataclass
class UniGSGuidedInpaintOutput(UniGSPipelineOutput):
    """:class:`UniGSPipelineOutput` of the guided result, plus `guides` (the colormaps it followed, exact
    palette colours, black outside the hole) and, when the guide was predicted here, `onestep_images` (the
    unguided inpainting of step 1). Same format as `images`."""

    guides: list[PIL.Image.Image] | np.ndarray | torch.Tensor | None = None
    onestep_images: list[PIL.Image.Image] | np.ndarray | torch.Tensor | None = None


def _with_guides(out: UniGSPipelineOutput, guides: np.ndarray, onestep: np.ndarray | None,
                 output_type: str) -> UniGSGuidedInpaintOutput:
    extra = None if onestep is None else format_images(onestep, output_type)
    return UniGSGuidedInpaintOutput(images=out.images, colormaps=out.colormaps, masks=out.masks,
                                    rles=out.rles, guides=format_images(guides, output_type),
                                    onestep_images=extra)


class UniGSGuidedInpaintPipeline(UniGSPipeline):
    """Image + hole + names (+ optional edited colormap) → image inpainted as the colormap says (module doc).

    >>> pipe = UniGSGuidedInpaintPipeline.from_components(load_unigs("model"))     # doctest: +SKIP
    >>> guide = pipe.predict_colormap(["dog"], image, hole).guides[0]             # edit it, then:
    >>> out = pipe(["dog"], image, hole, colormap=edited, num_inference_steps=50)  # doctest: +SKIP
    """

    task = "inpainting"
    known_half = "colormap"

    def _inpainter(self) -> UniGSInpaintPipeline:
        pipe = UniGSInpaintPipeline(**self.components)
        pipe.meta = dict(self.meta)
        pipe.set_progress_bar_config(**getattr(self, "_progress_bar_config", {}))
        return pipe

    @torch.no_grad()
    def predict_colormap(self, names: Any, image: Any, mask_image: Any, num_inference_steps: int = 200,
                         guidance_scale: float = 7.5, generator: Any = None, latents: Any = None,
                         eta: float = 0.0, prompt: Any = None, delta: float = 10.0,
                         output_type: str = "np") -> UniGSGuidedInpaintOutput:
        """Step 1: the hole's colormap by UniGS inpainting, re-painted with exact Ψ colours.

        Returns `guides` (the clean colormaps, black outside the hole), `onestep_images` and `images` (the
        unguided inpainting), `colormaps` (the raw decoded ones), `masks`/`rles` (Φ of them).
        """
        out = self._inpainter()(names, image, mask_image, num_inference_steps=num_inference_steps,
                                guidance_scale=guidance_scale, generator=generator, latents=latents, eta=eta,
                                prompt=prompt, delta=delta, output_type="np")
        grid = int(self.meta.get("grid", 11))
        h, w = out.images.shape[1:3]
        guides = np.stack([palette.encode(m, grid=grid) if len(m) else np.zeros((h, w, 3), np.uint8)
                           for m in out.masks])
        formatted = self.format_output(out.images, out.colormaps, out.masks, output_type)
        return _with_guides(formatted, guides, out.images, output_type)

    @torch.no_grad()
    def __call__(
        self,
        names: str | list[str] | list[list[str]],
        image: Any,
        mask_image: Any,
        colormap: Any = None,
        num_inference_steps: int = 200,
        guidance_scale: float = 7.5,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        prompt: str | list[str] | None = None,
        keep_context: bool = True,
        resample_jumps: int = 0,
        paste_back: bool = True,
        tolerance: int = DEFAULT_TOLERANCE,
        delta: float = 10.0,
        output_type: str = "pil",
    ) -> UniGSGuidedInpaintOutput:
        """Inpaint the hole `mask_image` of `image` following `colormap` (None = predict it first).

        Args:
            colormap: the guide, same size as `image`: entities in palette colours (near-palette colours are
                snapped, see `unigs.codec.snap`), black = background; only its part inside the hole is read.
                None runs :meth:`predict_colormap` first (SPG-Net's full two-step path).
            keep_context: hold the image latent outside the hole at the noised Υ(I_0) every step.
            resample_jumps: RePaint resampling jumps per step (`core.denoise`; DDIM only).
            tolerance: max per-channel distance of a colormap pixel to its palette colour.
            Other arguments as in :class:`UniGSInpaintPipeline`.

        Returns:
            images: the guided inpainting; colormaps and `guides`: the guides; masks/rles: the guide's
                entities.
        """
        # 1. Convert and check inputs (the colormap before any model runs).
        images = to_rgb_batch(image)
        batch = len(images)
        hole = to_mask_batch(mask_image, batch, images.shape[1:3])
        names = to_names_batch(names, batch)
        self.check_inputs(images, num_inference_steps, guidance_scale, output_type,
                          names=names if prompt is None else None)
        grid = int(self.meta.get("grid", 11))
        onestep = None
        if colormap is not None:
            user = to_rgb_batch(colormap, name="colormap")
            if len(user) == 1 and batch > 1:
                user = np.repeat(user, batch, axis=0)
            if user.shape != images.shape:
                raise ValueError(f"colormap is {user.shape[1]}x{user.shape[2]} (HxW) for {len(user)} "
                                 f"image(s) but the image is {images.shape[1]}x{images.shape[2]} for "
                                 f"{batch}; they must match")
            guides = np.stack([canonical_colormap(c, hole[b], grid, tolerance) for b, c in enumerate(user)])
        else:
            # 2. Step 1 (SP-Net): predict the hole's segmentation.
            first = self.predict_colormap(names, images, hole, num_inference_steps=num_inference_steps,
                                          guidance_scale=guidance_scale, generator=generator, latents=latents,
                                          eta=eta, prompt=prompt, delta=delta, output_type="np")
            guides, onestep = first.guides, first.onestep_images

        # 3. Conditions: inpainting task (control = known image), colormap half held at Υ(guide).
        controls = self.build_controls(hole, images=images)
        prompts = self.build_prompts(prompt, names)
        known = None
        if keep_context:
            device = self._execution_device
            outside = core.known_cells(torch.from_numpy(~hole).to(device), self._latent_size(images))
            known = core.KnownLatent.region("image", self.encode_pixels(images), outside)
        z0 = self.generate_with_colormap(prompts, controls, hole, guides, known=known,
                                         num_inference_steps=num_inference_steps,
                                         guidance_scale=guidance_scale, generator=generator, latents=latents,
                                         eta=eta, resample_jumps=resample_jumps)

        # 4. Decode the image; keep the original outside the hole.
        out_images = self.decode_latents(z0[:, :4])
        if paste_back:
            out_images = np.where(hole[..., None], out_images, images).astype(np.uint8)

        # 5. The entities are the guide's (exact colours: Φ recovers them exactly).
        masks = self.masks_from_colormaps(guides, hole, delta, keep_background=False)
        return _with_guides(self.format_output(out_images, guides, masks, output_type), guides, onestep,
                            output_type)

    def _latent_size(self, images: np.ndarray) -> tuple[int, int]:
        return images.shape[1] // self.vae_scale_factor, images.shape[2] // self.vae_scale_factor

    def generate_with_colormap(self, prompts: list[str], controls: np.ndarray, coarse: np.ndarray,
                               guides: np.ndarray, known: core.KnownLatent | None = None,
                               **kwargs: Any) -> torch.Tensor:
        """`generate` with the colormap half held at Υ(`guides`) `(B, H, W, 3) uint8` (plus `known`)."""
        colormap_known = core.KnownLatent.half("colormap", self.encode_pixels(guides))
        return self.generate(prompts, controls, coarse, fix_known_half=False,
                             known=colormap_known.union(known), **kwargs)
