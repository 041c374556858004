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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch

from unigs.checks import check_number
from unigs.codec import palette
from unigs.codec.snap import DEFAULT_TOLERANCE, canonical_colormap
from unigs.pipelines import core, frame
from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inpainting import GUIDANCE_SCALE, NUM_INFERENCE_STEPS, UniGSInpaintPipeline
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
                                    rles=out.rles, scores=out.scores,
                                    guides=format_images(guides, output_type),
                                    onestep_images=extra)


class UniGSGuidedInpaintPipeline(UniGSPipeline):
    """Image + hole + names (+ optional edited colormap) → image inpainted as the colormap says (module doc).

    The inpainting task's conditions, so Table 2 pins no whole half (`known_half` is None): the colormap
    half and the context are held by the `prepare` hook of :meth:`run_task`, in the working frame, so any
    input size works and outputs come back at the input's size.

    >>> pipe = UniGSGuidedInpaintPipeline.from_components(load_unigs("model"))     # doctest: +SKIP
    >>> guide = pipe.predict_colormap(["dog"], image, hole).guides[0]             # edit it, then:
    >>> out = pipe(["dog"], image, hole, colormap=edited, num_inference_steps=50)  # doctest: +SKIP
    """

    task = "inpainting"
    clip_to_region = True
    default_num_inference_steps = NUM_INFERENCE_STEPS

    def _inpainter(self) -> UniGSInpaintPipeline:
        pipe = UniGSInpaintPipeline(**self.components)
        pipe.meta = self.meta
        pipe.set_progress_bar_config(**getattr(self, "_progress_bar_config", {}))
        return pipe

    @torch.no_grad()
    def predict_colormap(self, names: Any, image: Any, mask_image: Any,
                         num_inference_steps: int = NUM_INFERENCE_STEPS,
                         guidance_scale: float = GUIDANCE_SCALE, output_type: str = "np",
                         **kwargs: Any) -> UniGSGuidedInpaintOutput:
        """Step 1: the hole's colormap by UniGS inpainting (any size), re-painted with exact Ψ colours.

        `kwargs` go to :class:`UniGSInpaintPipeline` (generator, height, width, callbacks, ...).
        Returns `guides` (the clean colormaps, black outside the hole, at the image's size),
        `onestep_images` and `images` (the unguided inpainting), `colormaps` (the raw decoded ones),
        `masks`/`rles` (Φ of them).
        """
        kwargs["output_type"] = "np"
        out = self._inpainter()(names, image, mask_image, num_inference_steps=num_inference_steps,
                                guidance_scale=guidance_scale, **kwargs)
        grid = self.meta.grid
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
        keep_context: bool = True,
        resample_jumps: int = 0,
        paste_back: bool = True,
        tolerance: int = DEFAULT_TOLERANCE,
        delta: float = 10.0,
        output_type: str = "pil",
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> UniGSGuidedInpaintOutput:
        """Inpaint the hole `mask_image` of `image` following `colormap` (None = predict it first).

        Args:
            colormap: the guide, same size as `image`: entities in palette colours (near-palette colours are
                snapped, see `unigs.codec.snap`), black = background; only its part inside the hole is read.
                None runs :meth:`predict_colormap` first (SPG-Net's full two-step path).
            keep_context: hold the image latent outside the hole at the noised Υ(I_0) every step.
            resample_jumps: RePaint resampling jumps per step (`core.denoise`; DDIM only).
            tolerance: max per-channel distance of a colormap pixel to its palette colour.
            Other arguments as in :class:`UniGSInpaintPipeline` (any input size; outputs at that size).

        Returns:
            images: the guided inpainting; colormaps and `guides`: the guides; masks/rles: the guide's
                entities.
        """
        # 1. Convert and check inputs (the colormap before any model runs).
        images = to_rgb_batch(image)
        batch = len(images)
        hole = to_mask_batch(mask_image, batch, images.shape[1:3])
        names = to_names_batch(names, batch)
        check_number("resample_jumps", resample_jumps, low=0, integer=True)
        grid = self.meta.grid
        onestep, n = None, num_images_per_prompt
        common = {"negative_prompt": negative_prompt, "height": height, "width": width,
                  "generator": generator, "eta": eta, "prompt": prompt,
                  "callback_on_step_end": callback_on_step_end,
                  "callback_on_step_end_tensor_inputs": callback_on_step_end_tensor_inputs}
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
            # 2. Step 1 (SP-Net): predict the hole's segmentation, num_images_per_prompt guides per image;
            # step 2 then paints one image per guide.
            first = self.predict_colormap(names, images, hole, num_inference_steps=num_inference_steps,
                                          guidance_scale=guidance_scale, num_images_per_prompt=n,
                                          latents=latents, delta=delta, **common)
            guides, onestep = first.guides, first.onestep_images
            images, hole = np.repeat(images, n, axis=0), np.repeat(hole, n, axis=0)
            names = [x for x in names for _ in range(n)]
            if isinstance(negative_prompt, list | tuple):
                common["negative_prompt"] = [p for p in negative_prompt for _ in range(n)]
            n, latents = 1, None

        # 3. The inpainting task (control = known image) in the working frame; the hook holds the
        # colormap half at Υ(guide) and, with keep_context, the image outside the hole at Υ(I_0).
        def hold(fr: frame.WorkFrame, repeat: int) -> dict:
            known = core.KnownLatent.half("colormap", self.work_latents(guides, fr, "colormap", repeat))
            if keep_context:
                outside = self.work_known_cells(~hole, fr, repeat)
                known = known.union(core.KnownLatent.region(
                    "image", self.work_latents(images, fr, "image", repeat), outside))
            return {"known": known, "resample_jumps": int(resample_jumps)}

        out = self.run_task(images, hole, names, num_inference_steps=num_inference_steps,
                            guidance_scale=guidance_scale, num_images_per_prompt=n, latents=latents,
                            fix_known_half=True, paste_back=paste_back, delta=delta, output_type=output_type,
                            prepare=hold, given_colormaps=guides, **common)
        # 4. The entities are the guide's (exact colours: Φ recovers them exactly).
        return _with_guides(out, np.repeat(guides, n, axis=0), onestep, output_type)
