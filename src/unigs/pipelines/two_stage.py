"""TCIG (seed 003) inside UniGS: control first, quality second.

Stage 1 is UniGS synthesis from the entity colormap (control). Stage 2 re-noises the stage-1 image to a
strength S in [0, 1] and denoises it with the image half alone — SDEdit / img2img, the colormap no longer a
condition — so the layout survives only through the image itself (TCIG's point: the refiner needs no
control signal). Two refiners:

* **the same model** (default): the synthesis task with an *empty* colormap (all black, i.e. "no entity
  layout") as its control and its pinned colormap half, started from the stage-1 image latent at S
  (`core.denoise(init_latents=..., strength=S)`); the prompt stays the Table-2 synthesis prompt.
* **a local Stable Diffusion model** (`refiner=load_refiner(path)`): diffusers' img2img pipeline for a
  4-channel UNet, or its inpainting pipeline with an all-ones mask for a 9-channel SD-inpainting UNet; the
  prompt is the plain entity list ("ball and sky"), which is what such a model was trained on.

S = 0 returns the stage-1 image unchanged (no step runs). Stage 2 starts from the *decoded* stage-1 image,
as TCIG feeds its first stage's output image to the refiner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch

from unigs.conditions import join_names
from unigs.io import check_image_size
from unigs.pipelines import frame
from unigs.pipelines.base import UniGSPipelineOutput
from unigs.pipelines.inputs import format_images, to_names_batch, to_rgb_batch
from unigs.pipelines.synthesis import GUIDANCE_SCALE, NUM_INFERENCE_STEPS, UniGSSynthesisPipeline


def check_refine_strength(strength: object) -> float:
    """`strength` as a float if it lies in [0, 1]; otherwise a ValueError naming it."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # also catches NaN
        raise ValueError(f"refine strength must be a number in [0, 1], is {strength!r}")
    return value


def refiner_from_components(components: Any) -> Any:
    """A diffusers SD pipeline over `components` (a `UniGSComponents` from `load_stable_diffusion`):
    img2img for a 4-channel UNet, inpainting (used with an all-ones mask) for a 9-channel one."""
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

    in_channels = components.unet.config.in_channels
    classes = {4: StableDiffusionImg2ImgPipeline, 9: StableDiffusionInpaintPipeline}
    if in_channels not in classes:
        raise ValueError(f"a refiner needs a Stable Diffusion UNet with 4 (img2img) or 9 (inpainting) input "
                         f"channels, this one has {in_channels}")
    return classes[in_channels](vae=components.vae, text_encoder=components.text_encoder,
                                tokenizer=components.tokenizer, unet=components.unet,
                                scheduler=components.scheduler, safety_checker=None, feature_extractor=None,
                                requires_safety_checker=False)


def load_refiner(path: str, config_dir: str | None = None) -> Any:
    """A local SD-1.5 model (diffusers folder or single file, offline) as a stage-2 refiner."""
    from unigs.models.loading import load_stable_diffusion

    return refiner_from_components(load_stable_diffusion(path, config_dir))


@dataclass
class UniGSTwoStageOutput(UniGSPipelineOutput):
    """:class:`UniGSPipelineOutput` of the refined images, plus `stage1_images` (same format) before it."""

    stage1_images: list[PIL.Image.Image] | np.ndarray | torch.Tensor | None = None


class UniGSTwoStagePipeline(UniGSSynthesisPipeline):
    """TCIG: entity colormap + names → synthesised image (stage 1) → refined image (stage 2, module doc).

    `refiner`: None = the same model; or a diffusers SD pipeline from :func:`load_refiner`.

    >>> pipe = UniGSTwoStagePipeline.from_components(load_unigs("model"))            # doctest: +SKIP
    >>> out = pipe(["ball", "sky"], colormap, refine_strength=0.4, num_inference_steps=50)  # doctest: +SKIP
    >>> out.stage1_images[0], out.images[0]                                          # doctest: +SKIP
    """

    refiner: Any = None

    @torch.no_grad()
    def __call__(
        self,
        names: str | list[str] | list[list[str]],
        colormap: Any,
        refine_strength: float = 0.4,
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
        delta: float = 10.0,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> UniGSTwoStageOutput | tuple:
        """Synthesise from `colormap`, then refine at `refine_strength` (S in [0, 1]; 0 = stage 1 only).

        Stage 2 runs `int(num_inference_steps · S)` steps of the same schedule, in the same working frame
        (`height`, `width`); outputs are at the colormap's size. `callback_on_step_end` is called in both
        stages. Other arguments as in :class:`UniGSSynthesisPipeline`; `latents` seeds stage 1 only.
        """
        # 1. Check S first: a bad value must not cost a stage-1 run.
        strength = check_refine_strength(refine_strength)

        # 2. Stage 1: UniGS synthesis (control).
        common = {"guidance_scale": guidance_scale, "negative_prompt": negative_prompt, "height": height,
                  "width": width, "generator": generator, "eta": eta, "prompt": prompt,
                  "callback_on_step_end": callback_on_step_end,
                  "callback_on_step_end_tensor_inputs": callback_on_step_end_tensor_inputs}
        first = super().__call__(names, colormap, num_inference_steps=num_inference_steps,
                                 num_images_per_prompt=num_images_per_prompt, latents=latents, delta=delta,
                                 output_type="np", **common)

        # 3. Stage 2: re-noise to S and denoise without the layout (quality).
        batch = len(first.images)
        names = [n for n in to_names_batch(names, batch // num_images_per_prompt)
                 for _ in range(num_images_per_prompt)]
        if isinstance(common["negative_prompt"], list | tuple):
            common["negative_prompt"] = [p for p in negative_prompt for _ in range(num_images_per_prompt)]
        refined = self.refine(names, first.images, strength, num_inference_steps=num_inference_steps,
                              **common)
        out = self.format_output(refined, first.colormaps, first.masks, output_type)
        out = UniGSTwoStageOutput(images=out.images, colormaps=out.colormaps, masks=out.masks, rles=out.rles,
                                  scores=out.scores, stage1_images=format_images(first.images, output_type))
        return out if return_dict else out.to_tuple()

    def refine(self, names: list[list[str]], image: Any, strength: float, *, num_inference_steps: int,
               guidance_scale: float = GUIDANCE_SCALE, generator: Any = None, eta: float = 0.0,
               prompt: str | list[str] | None = None, height: int | None = None, width: int | None = None,
               **run_kwargs: Any) -> np.ndarray:
        """Stage 2 alone on any images, any size: `(B, H, W, 3) uint8` in → refined `(B, H, W, 3) uint8`.

        Runs in the working frame of `height` × `width` (default the model's size, `unigs.pipelines.frame`)
        through :meth:`run_task`; `run_kwargs` (negative prompt, callbacks) go there too.
        """
        strength = check_refine_strength(strength)
        images = to_rgb_batch(image)
        if strength == 0.0:
            return images
        if self.refiner is not None:
            return self._refine_with_sd(names, images, strength, num_inference_steps, guidance_scale,
                                        generator, height, width)
        # The empty layout: an all-black colormap as control and as the pinned colormap half; the start
        # latent is (Υ(image) ‖ Υ(empty)) in the working frame, noised to S.
        empty = np.zeros_like(images)

        def start(fr: frame.WorkFrame, n: int) -> dict:
            init = torch.cat([self.work_latents(images, fr, "image", n),
                              self.work_latents(empty, fr, "colormap", n)], dim=1)
            return {"init_latents": init, "strength": strength}

        out = self.run_task(empty, None, names, num_inference_steps=num_inference_steps,
                            guidance_scale=guidance_scale, generator=generator, latents=None, eta=eta,
                            prompt=prompt, height=height, width=width, fix_known_half=True,
                            output_type="np", prepare=start, **run_kwargs)
        return np.asarray(out.images)

    def _refine_with_sd(self, names: list[list[str]], images: np.ndarray, strength: float, steps: int,
                        guidance_scale: float, generator: Any, height: int | None,
                        width: int | None) -> np.ndarray:
        """Stage 2 by a diffusers SD pipeline (img2img, or inpainting with the whole image as the hole), in
        the working frame (SD needs sides that are multiples of its own size multiple)."""
        from diffusers import StableDiffusionInpaintPipeline

        from unigs.models.text import encode_prompt

        check_image_size(int(images.shape[1]), int(images.shape[2]), "the input image")
        fr = self.working_frame(*images.shape[1:3], height, width)
        work = frame.to_work(images, fr, "image")
        pil = [PIL.Image.fromarray(x) for x in work]
        h, w = fr.padded
        # Text states by the project's encoder helper (77 tokens for CLIP and MiniLM tokenizers alike).
        refiner, device = self.refiner, self.refiner._execution_device
        texts = [join_names(n) for n in names]
        kwargs = {"prompt_embeds": encode_prompt(refiner.tokenizer, refiner.text_encoder, texts, device),
                  "negative_prompt_embeds": encode_prompt(refiner.tokenizer, refiner.text_encoder,
                                                          [""] * len(texts), device),
                  "image": pil, "strength": strength, "num_inference_steps": steps,
                  "guidance_scale": guidance_scale, "generator": generator, "output_type": "np"}
        if isinstance(self.refiner, StableDiffusionInpaintPipeline):
            kwargs.update(mask_image=[PIL.Image.new("L", (w, h), 255)] * len(pil), height=h, width=w)
        refiner.set_progress_bar_config(disable=True)
        out = refiner(**kwargs).images
        out = (np.clip(np.asarray(out), 0.0, 1.0) * 255.0).round().astype(np.uint8)
        return frame.to_original(out, fr, "image")
