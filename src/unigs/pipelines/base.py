"""What the four task pipelines share: the diffusers `DiffusionPipeline` base, input checks, prompt and VAE
encoding, the call into the one denoising core (`core.denoise`), Φ-decoding of colormaps, output formatting.

A task subclass only builds its Table-2 conditions (via `unigs.conditions`) and reads its outputs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from unigs.checks import check_number
from unigs.conditions import TASK_IDS, check_task, control_source, prompt_for
from unigs.io import check_image_size
from unigs.pipelines import core
from unigs.pipelines.inputs import check_output_type, format_images


@dataclass
class UniGSPipelineOutput(BaseOutput):
    """Output of every UniGS pipeline (batch of B).

    Attributes:
        images: B generated (or, for the segmentation tasks, input) images — list of PIL images (`"pil"`),
            `(B, H, W, 3) uint8` (`"np"`) or `(B, 3, H, W) float32` in [0, 1] (`"pt"`).
        colormaps: B entity colormaps M̂_c in the same format (black = background).
        masks: B entity masks Φ(M̂_c), each `(K_b, H, W) bool` (numpy; torch for `"pt"`), K_b may be 0.
        rles: B lists of COCO RLE dicts (`unigs.io.masks_to_rle`), one per mask.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    colormaps: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    masks: list[np.ndarray] | list[torch.Tensor]
    rles: list[list[dict]]


class UniGSPipeline(DiffusionPipeline):
    """Base of the four UniGS pipelines; build one with `Pipeline.from_components(load_unigs(path))`.

    Components: `unet` (13-in / 8-out `UNet2DConditionModel`), `vae` (`AutoencoderKL`), `text_encoder` and
    `tokenizer` (CLIP or MiniLM), `scheduler` (any diffusers scheduler; DDIM by default).
    """

    task: ClassVar[str] = ""
    # the ✗ half of Table 2 that the core keeps equal to the noised control, or None
    known_half: ClassVar[str | None] = None
    model_cpu_offload_seq = "text_encoder->unet->vae"

    def __init__(self, unet: Any, vae: Any, text_encoder: Any, tokenizer: Any, scheduler: Any):
        super().__init__()
        check_task(self.task)
        self.register_modules(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                              scheduler=scheduler)
        # VAE latent factor: each extra encoder block halves the resolution.
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.meta: dict = {}

    @classmethod
    def from_components(cls, components: Any) -> UniGSPipeline:
        """Build from a `unigs.models.loading.UniGSComponents` (or anything with the same attributes)."""
        pipe = cls(unet=components.unet, vae=components.vae, text_encoder=components.text_encoder,
                   tokenizer=components.tokenizer, scheduler=components.scheduler)
        pipe.meta = dict(getattr(components, "meta", None) or {})
        return pipe

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: VAE factor × UNet downsampling."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.down_block_types) - 1)

    # -- checks -------------------------------------------------------------------------------------

    def check_inputs(self, images: np.ndarray, num_inference_steps: int, guidance_scale: float,
                     output_type: str, names: list[list[str]] | None = None) -> None:
        """Shared checks on already-converted inputs (`images` `(B, H, W, 3) uint8`)."""
        check_task(self.task)
        check_output_type(output_type)
        h, w = images.shape[1:3]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"image size {h}x{w} (HxW) must be divisible by {m} (VAE factor "
                             f"{self.vae_scale_factor} x UNet downsampling {m // self.vae_scale_factor})")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, is {num_inference_steps!r}")
        check_number("guidance_scale", guidance_scale, low=0)  # NaN / inf refused, not read as "no guidance"
        check_image_size(h, w, "the input image")
        if names is not None:
            for i, ns in enumerate(names):
                if not ns:
                    raise ValueError(f"the {self.task} task needs at least one entity name "
                                     f"(image {i} has none)")
            self.warn_unknown_names(names)

    def warn_unknown_names(self, names: list[list[str]]) -> list[str]:
        """Warn (and return them) about names outside the vocabulary in the model's meta: the model never
        saw them, so it will most likely find or draw nothing for them. Silent for models without one."""
        vocabulary = list(self.meta.get("vocabulary") or [])
        known = {v.strip().lower() for v in vocabulary}
        unknown = sorted({n for ns in names for n in ns if n.strip().lower() not in known}) if known else []
        if unknown:
            domain = self.meta.get("domain", "its training data")
            warnings.warn(f"the model does not know {', '.join(map(repr, unknown))}; it was trained on "
                          f"{domain} and knows: {', '.join(vocabulary)}", UserWarning, stacklevel=3)
        return unknown

    def build_prompts(self, prompt: str | list[str] | None, names: list[list[str]]) -> list[str]:
        """Table-2 prompts `conditions.prompt_for(task, names)`, or the user's override `prompt` (one string
        for the whole batch or one per image)."""
        if prompt is None:
            return [prompt_for(self.task, n) for n in names]
        prompts = [prompt] * len(names) if isinstance(prompt, str) else list(prompt)
        if len(prompts) != len(names):
            raise ValueError(f"prompt gives {len(prompts)} prompts for {len(names)} images")
        return prompts

    def build_controls(self, coarse: np.ndarray, images: np.ndarray | None = None,
                       colormaps: np.ndarray | None = None) -> np.ndarray:
        """Table-2 control images `(B, H, W, 3) uint8`, built by `conditions.control_source`."""
        return np.stack([control_source(self.task, None if images is None else images[b],
                                        None if colormaps is None else colormaps[b], coarse[b])
                         for b in range(len(coarse))])

    # -- encoding -----------------------------------------------------------------------------------

    def encode_prompts(self, prompts: list[str],
                       guidance_scale: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text states `(B, L, D)` of `prompts`, and of "" when classifier-free guidance is on."""
        from unigs.models.text import encode_prompt

        device = self._execution_device
        cond = encode_prompt(self.tokenizer, self.text_encoder, prompts, device)
        uncond = encode_prompt(self.tokenizer, self.text_encoder, [""] * len(prompts), device) \
            if guidance_scale > 1.0 else None
        dtype = self.unet.dtype
        return cond.to(dtype), (uncond.to(dtype) if uncond is not None else None)

    def encode_pixels(self, pixels: np.ndarray) -> torch.Tensor:
        """Υ: `(B, H, W, 3) uint8` → scaled latents `(B, 4, H/f, W/f)` on the execution device."""
        from unigs.models.vae import encode_images

        pixels = torch.from_numpy(np.ascontiguousarray(pixels)).to(self._execution_device)
        return encode_images(self.vae, pixels).to(self.unet.dtype)

    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        """Υ⁻¹: scaled latents `(B, 4, h, w)` → `(B, H, W, 3) uint8` numpy."""
        from unigs.models.vae import decode_latents

        out = decode_latents(self.vae, latents.to(self.vae.dtype))
        return out.cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)

    # -- the shared generation step -----------------------------------------------------------------

    def generate(self, prompts: list[str], controls: np.ndarray, coarse_masks: np.ndarray, *,
                 num_inference_steps: int, guidance_scale: float, generator: Any, latents: Any,
                 eta: float, fix_known_half: bool) -> torch.Tensor:
        """Conditions in pixels → ẑ_0 `(B, 8, h, w)` via the shared core (Eq. 8, 11).

        `controls` `(B, H, W, 3) uint8` are the Table-2 control images, `coarse_masks` `(B, H, W) bool` m_c.
        """
        device = self._execution_device
        control = self.encode_pixels(controls)
        mask_latent = core.mask_to_latent(torch.from_numpy(coarse_masks).to(device), control.shape[-2:])
        prompt_embeds, negative_embeds = self.encode_prompts(prompts, guidance_scale)
        return core.denoise(
            self.unet, self.scheduler, control=control, mask_latent=mask_latent, prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds, guidance_scale=guidance_scale,
            task_id=TASK_IDS[self.task], num_inference_steps=num_inference_steps, generator=generator,
            known_half=self.known_half if fix_known_half else None, latents=latents, eta=eta,
            progress_bar=self.progress_bar)

    # -- outputs ------------------------------------------------------------------------------------

    @staticmethod
    def masks_from_colormaps(colormaps: np.ndarray, region: np.ndarray | None, delta: float,
                             keep_background: bool) -> list[np.ndarray]:
        """Φ on each colormap `(B, H, W, 3) uint8` → B arrays `(K, H, W) bool`.

        With a `region` `(B, H, W) bool` (the coarse mask), pixels outside it are blacked out before Φ and
        the masks are clipped to it; masks left empty are dropped.
        """
        from unigs.codec.dichotomy import decode

        out = []
        for b, cmap in enumerate(colormaps):
            if region is not None:
                cmap = cmap * region[b][..., None].astype(np.uint8)
            masks = np.asarray(decode(cmap, delta=delta, keep_background=keep_background), dtype=bool)
            masks = masks.reshape(-1, *cmap.shape[:2])
            if region is not None:
                masks = masks & region[b][None]
                masks = masks[masks.any(axis=(1, 2))]
            out.append(masks)
        return out

    @staticmethod
    def format_output(images: np.ndarray, colormaps: np.ndarray, masks: list[np.ndarray],
                      output_type: str) -> UniGSPipelineOutput:
        """Pack uint8 images/colormaps and bool masks into a :class:`UniGSPipelineOutput` of `output_type`."""
        from unigs.io import masks_to_rle

        rles = [masks_to_rle(m) for m in masks]
        if output_type == "pt":
            masks = [torch.from_numpy(np.ascontiguousarray(m)) for m in masks]
        return UniGSPipelineOutput(images=format_images(images, output_type),
                                   colormaps=format_images(colormaps, output_type), masks=masks, rles=rles)
