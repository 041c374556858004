"""One task call, from the user's inputs in their own frame to outputs in that frame (`run_task`), and the
helpers a `prepare` hook uses to build held latents in the working frame (`work_latents`,
`work_known_cells`).

:class:`TaskRunner` is a mixin of :class:`unigs.pipelines.base.UniGSPipeline`: the steps here call the
pipeline's components (`check_inputs`, `build_prompts`, `build_controls`, `generate`, `encode_pixels`,
`decode_latents`, `decode_colormap_latents`, `masks_from_colormaps`, `format_output`, `working_frame`,
`colormap_untrained`) and its Table-2 class attributes (`task`, `known_half`, `keep_background`,
`clip_to_region`). They live apart from the class so that each file holds one idea: `base.py` the
components, this file the order they run in.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from unigs.codec.config import DichotomyConfig
from unigs.conditions import full_mask
from unigs.models.layout import split_halves
from unigs.pipelines import core, frame

if TYPE_CHECKING:
    from unigs.pipelines.base import UniGSPipelineOutput

UNTRAINED_COLORMAP_WARNING = (
    "this model's colormap output channels are all zero (an SD-inpainting UNet widened to 13/8 and never "
    "fine-tuned): its colormaps and the masks decoded from them say nothing about the input; fine-tune it "
    "with `unigs train` first")

CODEC_DELTA = DichotomyConfig.delta  # Φ's δ for exact or VAE round-trip colormaps (the codec's default)


class TaskRunner:
    """The shared flow of every task pipeline (module doc); mixed into `UniGSPipeline`."""

    def run_task(self, source: np.ndarray, coarse: np.ndarray | None, names: list[list[str]], *,
                 num_inference_steps: int, guidance_scale: float, num_images_per_prompt: int = 1,
                 height: int | None = None, width: int | None = None, prompt: Any = None,
                 fix_known_half: bool = True, paste_back: bool = False, delta: float | None = None,
                 output_type: str = "pil", return_dict: bool = True, callback_on_step_end: Any = None,
                 callback_on_step_end_tensor_inputs: list[str] | None = None,
                 names_required: bool = True, prepare: Any = None, given_colormaps: np.ndarray | None = None,
                 **generate_kwargs: Any) -> UniGSPipelineOutput | tuple:
        """The steps every task shares (numbered as in diffusers' pipelines).

        Args:
            source: `(B, H, W, 3) uint8` — the image (inpainting, referring, entity) or the colormap
                (synthesis), at the user's size.
            coarse: `(B, H, W) bool` m_c, or None for 𝒥 (all ones, also over the padding).
            names: entity names per image (one empty list per image for the entity task).
            prepare: optional `(frame, num_images_per_prompt) -> dict` called once the working frame is
                planned; its dict adds `core.denoise` keywords built in that frame (`known`, `init_latents`,
                `strength`, `resample_jumps`; see :meth:`work_latents`). The related systems' pipelines
                (`two_stage`, `guided_inpainting`, `mask_completion`) hold latents this way.
            given_colormaps: `(B, H, W, 3) uint8` at the input's size: the colormaps to return (and Φ),
                instead of decoding the model's colormap half (a `prepare` hook holds that half at them);
                synthesis's pinned colormap is the same case with the source itself.
            delta: Φ's δ; None: the pipeline's `readout` δ for the model's colormaps, the codec's (10) for
                given ones. Φ's other settings: `readout` for the model's colormaps, the codec's for given.
            Other arguments: see the task pipelines' `__call__`.
        """
        if hasattr(callback_on_step_end, "tensor_inputs"):  # diffusers' PipelineCallback objects
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        # 1. Check and repeat each input num_images_per_prompt times.
        self.check_inputs(source, num_inference_steps, guidance_scale, output_type,
                          names=names if (prompt is None and names_required and
                                          generate_kwargs.get("prompt_embeds") is None) else None,
                          height=height, width=width, num_images_per_prompt=num_images_per_prompt,
                          callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)
        n = num_images_per_prompt
        # with prompt_embeds the prompts are not encoded: placeholders keep the batch size
        prompts = [""] * len(names) if generate_kwargs.get("prompt_embeds") is not None else \
            self.build_prompts(prompt, names)
        for key in ("prompt_embeds", "negative_prompt_embeds"):
            if generate_kwargs.get(key) is not None:
                generate_kwargs[key] = generate_kwargs[key].repeat_interleave(n, dim=0)
        if generate_kwargs.get("negative_prompt") is not None and \
                not isinstance(generate_kwargs["negative_prompt"], str):
            negative = generate_kwargs["negative_prompt"]
            generate_kwargs["negative_prompt"] = [p for p in negative for _ in range(n)]
        source = np.repeat(source, n, axis=0)
        coarse = None if coarse is None else np.repeat(coarse, n, axis=0)
        names, prompts = [x for x in names for _ in range(n)], [p for p in prompts for _ in range(n)]
        batch, h, w = source.shape[:3]

        # 2. Working frame: fit inside height × width (default: the model's size), pad to the multiple.
        fr = self.working_frame(h, w, height, width)
        kind = "colormap" if self.known_half == "colormap" else "image"
        work = frame.to_work(source, fr, kind)
        work_coarse = np.stack([full_mask(*fr.padded)] * batch) if coarse is None else \
            frame.to_work(coarse, fr, "mask")
        pinned_colormap = given_colormaps is not None or (fix_known_half and self.known_half == "colormap")
        reads_model_colormap = not pinned_colormap
        if prepare is not None:
            generate_kwargs.update(prepare(fr, n))
        if reads_model_colormap and self.colormap_untrained:
            warnings.warn(UNTRAINED_COLORMAP_WARNING, UserWarning, stacklevel=3)

        # 3. Table-2 controls and prompts; 4. denoise (the ✗ half pinned unless fix_known_half=False).
        controls = self.build_controls(work_coarse, **({"colormaps": work} if kind == "colormap"
                                                        else {"images": work}))
        z0 = self.generate(prompts, controls, work_coarse, num_inference_steps=num_inference_steps,
                           guidance_scale=guidance_scale, fix_known_half=fix_known_half,
                           callback_on_step_end=callback_on_step_end,
                           callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
                           **generate_kwargs)

        # 5. Decode the generated halves (image: the VAE; colormap: the colormap decoder when there is one);
        # the pinned half's answer is the input itself.
        want_image = not (fix_known_half and self.known_half == "image")
        z_image, z_colormap = split_halves(z0)
        images = frame.to_original(self.decode_latents(z_image), fr, "image") if want_image else source
        region = np.ones((batch, h, w), bool) if coarse is None else coarse
        if want_image and paste_back:  # the VAE round trip alters pixels outside m_c: keep the original
            images = np.where(region[..., None], images, source).astype(np.uint8)

        # 6. Φ: in the working frame on the model's colormap, then back to the input's frame.
        if reads_model_colormap:
            work_cmaps = self.decode_colormap_latents(z_colormap)
            if self.clip_to_region:
                work_cmaps = (work_cmaps * work_coarse[..., None]).astype(np.uint8)
            phi = {"delta": CODEC_DELTA, **self.readout, **({} if delta is None else {"delta": delta})}
            work_masks = self.masks_from_colormaps(work_cmaps, work_coarse if self.clip_to_region else None,
                                                   keep_background=self.keep_background, **phi)
            colormaps = frame.to_original(work_cmaps, fr, "colormap")
            masks = [frame.masks_to_original(m, fr) for m in work_masks]
        else:
            colormaps = source if given_colormaps is None else np.repeat(given_colormaps, n, axis=0)
            masks = self.masks_from_colormaps(colormaps, None, CODEC_DELTA if delta is None else delta,
                                              self.keep_background)
        if self.clip_to_region:
            colormaps = (colormaps * region[..., None]).astype(np.uint8)
            masks = [m & r[None] for m, r in zip(masks, region, strict=True)]
        masks = [m[m.any(axis=(1, 2))] for m in masks]
        out = self.format_output(images, colormaps, masks, output_type)
        self.maybe_free_model_hooks()
        return out if return_dict else out.to_tuple()

    def work_latents(self, pixels: np.ndarray, fr: frame.WorkFrame, kind: str,
                     repeat: int = 1) -> torch.Tensor:
        """Υ of `pixels` `(B, H, W, 3) uint8` (input's size, each repeated `repeat` times) in the working
        frame `fr` (`kind` "image" or "colormap", `frame.to_work`) → `(B·repeat, 4, h, w)` scaled latents."""
        return self.encode_pixels(frame.to_work(np.repeat(pixels, repeat, axis=0), fr, kind))

    def work_known_cells(self, known: np.ndarray, fr: frame.WorkFrame, repeat: int = 1) -> torch.Tensor:
        """Known pixels `(B, H, W) bool` (input's size) → the latent cells of `fr` known entirely,
        `(B·repeat, 1, h, w)` float in {0, 1} (`frame.known_to_work`, then `core.known_cells`)."""
        work = frame.known_to_work(np.repeat(known, repeat, axis=0), fr)
        size = (fr.padded[0] // self.vae_scale_factor, fr.padded[1] // self.vae_scale_factor)
        return core.known_cells(torch.from_numpy(work).to(self._execution_device), size)
