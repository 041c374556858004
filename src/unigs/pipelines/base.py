"""What the four task pipelines share: the diffusers `DiffusionPipeline` base, input checks, prompt and VAE
encoding, the working frame (`unigs.pipelines.frame`), the call into the one denoising core
(`core.denoise`), Φ-decoding of colormaps, output formatting.

A task subclass converts its own inputs (image, coarse mask, colormap, names) and calls :meth:`run_task`
(the shared flow, `unigs.pipelines.task`); its `task` fixes which half Table 2 marks ✗ (`known_half`,
derived, never written per pipeline), and class attributes say whether Φ keeps the background and whether
outputs are clipped to the coarse region.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from unigs.checks import check_number
from unigs.conditions import TASK_IDS, check_task, control_source, prompt_for
from unigs.io import check_image_size
from unigs.models.layout import copied_half, mask_to_latent
from unigs.models.meta import ModelMeta, meta_of_unet
from unigs.pipelines import core, frame, saving
from unigs.pipelines.inputs import check_output_type, format_images
from unigs.pipelines.task import UNTRAINED_COLORMAP_WARNING, TaskRunner

__all__ = ["UNTRAINED_COLORMAP_WARNING", "UniGSPipeline", "UniGSPipelineOutput"]

@dataclass
class UniGSPipelineOutput(BaseOutput):
    """Output of every UniGS pipeline (batch of B = inputs × `num_images_per_prompt`), at the input's size.

    Attributes:
        images: B generated (or, for the segmentation tasks, input) images — list of PIL images (`"pil"`),
            `(B, H, W, 3) uint8` (`"np"`) or `(B, 3, H, W) float32` in [0, 1] (`"pt"`).
        colormaps: B entity colormaps M̂_c in the same format (black = background).
        masks: B entity masks Φ(M̂_c), each `(K_b, H, W) bool` (numpy; torch for `"pt"`), K_b may be 0.
        rles: B lists of COCO RLE dicts (`unigs.io.masks_to_rle`), one per mask.
        scores: B arrays `(K_b,) float64` in [0, 1]: each mask's colour purity (`unigs.records.color_purity`).
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    colormaps: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    masks: list[np.ndarray] | list[torch.Tensor]
    rles: list[list[dict]]
    scores: list[np.ndarray] | None = None


class UniGSPipeline(TaskRunner, DiffusionPipeline):
    """Base of the four UniGS pipelines.

    Build one with `Pipeline.from_pretrained(path)` (a UniGS folder or file, or a local SD-1.5-inpainting
    folder/file that is widened 9/4 → 13/8) or `Pipeline.from_components(load_unigs(path))`.
    Components: `unet` (13-in / 8-out `UNet2DConditionModel`), `vae` (`AutoencoderKL`), `text_encoder` and
    `tokenizer` (CLIP or MiniLM), `scheduler` (any diffusers scheduler; DDIM by default); optional
    `colormap_vae` (`AutoencoderKL` whose decoder was fine-tuned on colormaps, `unigs.models.colormap_vae`:
    it decodes the colormap half, `vae` the image half; None: `vae` decodes both); `meta` (the model's
    facts: `unigs.models.meta.ModelMeta`, or its saved dict form; None: what follows from `unet` and `vae`).
    """

    task: ClassVar[str] = ""
    # the ✗ half of Table 2 that the core keeps equal to the noised control, or None: set from `task` by
    # __init_subclass__ (`layout.copied_half`), so Table 2's copy column is written once (conditions.py)
    known_half: ClassVar[str | None] = None
    keep_background: ClassVar[bool] = False  # Φ keeps the black cluster as an entity (entity task)
    clip_to_region: ClassVar[bool] = False  # colormap and masks only speak about the coarse region
    # Φ's settings (fields of unigs.codec.config.DichotomyConfig) for the colormaps this pipeline's model
    # predicts; a `delta` argument overrides readout's δ; given or pinned colormaps keep the codec's.
    readout: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    default_num_inference_steps: ClassVar[int] = 200
    model_cpu_offload_seq = "text_encoder->unet->vae->colormap_vae"
    _optional_components: ClassVar[list[str]] = ["colormap_vae"]
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents"]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "known_half" in vars(cls):
            raise TypeError(f"{cls.__name__} sets known_half, which follows from task={cls.task!r} through "
                            "Table 2 (unigs.conditions.COPIES_CONTROL); hold other latents in a prepare hook")
        if "keep_background" in cls.readout:
            raise TypeError(f"{cls.__name__}.readout sets keep_background ({dict(cls.readout)}): it follows "
                            "from the task (the class attribute keep_background)")
        # an unknown task is refused when the pipeline is built (__init__'s check_task), not at class time
        cls.known_half = copied_half(cls.task) if cls.task in TASK_IDS else None

    def __init__(self, unet: Any, vae: Any, text_encoder: Any, tokenizer: Any, scheduler: Any,
                 meta: ModelMeta | dict | None = None, colormap_vae: Any = None):
        super().__init__()
        check_task(self.task)
        self.register_modules(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                              scheduler=scheduler, colormap_vae=colormap_vae)
        self.meta = meta
        # VAE latent factor: each extra encoder block halves the resolution.
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self._interrupt = False
        self._guidance_scale = 1.0
        self._num_timesteps = 0

    @property
    def meta(self) -> ModelMeta:
        """The model's facts (`unigs.models.meta.ModelMeta`); set it to a ModelMeta (or its dict form)."""
        return self._meta

    @meta.setter
    def meta(self, value: ModelMeta | dict | None) -> None:
        if value is None:
            value = meta_of_unet(self.unet, self.vae)
        elif not isinstance(value, ModelMeta):  # the dict diffusers reads back from model_index.json
            value = ModelMeta.from_dict(value, f"the meta of {type(self).__name__}")
        self._meta = value
        # the dict form travels in model_index.json, so save_pretrained/from_pretrained keep it
        self.register_to_config(meta=value.to_dict())

    @classmethod
    def from_components(cls, components: Any) -> UniGSPipeline:
        """Build from a `unigs.models.loading.UniGSComponents` (or anything with the same attributes)."""
        return cls(unet=components.unet, vae=components.vae, text_encoder=components.text_encoder,
                   tokenizer=components.tokenizer, scheduler=components.scheduler,
                   meta=getattr(components, "meta", None),
                   colormap_vae=getattr(components, "colormap_vae", None))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> UniGSPipeline:
        """Load from LOCAL files (`unigs.pipelines.saving.load_pipeline`): a folder written by
        `save_pretrained` or `save_unigs`, a UniGS `.safetensors` file, or an SD-1.5-inpainting folder/file
        (widened 9/4 → 13/8; a single file needs `config_dir=`). Keywords: `config_dir`, `num_tasks`,
        `torch_dtype`; diffusers' download options are accepted and ignored."""
        return saving.load_pipeline(cls, pretrained_model_name_or_path, **kwargs)

    def save_pretrained(self, save_directory: Any, **kwargs: Any) -> None:
        """diffusers' folder (`model_index.json` + one subfolder per component) that `from_pretrained`,
        `unigs.models.loading.load_unigs` and `DiffusionPipeline.from_pretrained(...,
        trust_remote_code=True)` all read back, meta included (`unigs.pipelines.saving`)."""
        super().save_pretrained(save_directory, **kwargs)
        saving.finish_saved_folder(self, save_directory)

    # -- diffusers-style properties -----------------------------------------------------------------

    @property
    def size_multiple(self) -> int:
        """Working sides are multiples of this: VAE factor × UNet downsampling."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.down_block_types) - 1)

    @property
    def default_size(self) -> int:
        """The model's working resolution (px): `meta.image_size`."""
        return self.meta.image_size

    def working_frame(self, height: int, width: int, box_height: int | None = None,
                      box_width: int | None = None) -> frame.WorkFrame:
        """The working frame of a `height` × `width` input (`unigs.pipelines.frame`) for the working box
        `box_height` × `box_width` (None: the model's `default_size`)."""
        box = (box_height or self.default_size, box_width or self.default_size)
        return frame.plan_frame(height, width, box, self.size_multiple)

    @property
    def colormap_untrained(self) -> bool:
        """True for a widened SD-inpainting UNet whose colormap channels were never trained."""
        from unigs.models.unet import colormap_head_is_untrained

        return colormap_head_is_untrained(self.unet)

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` (e.g. from `callback_on_step_end`) to skip the remaining steps."""
        return self._interrupt

    # -- checks -------------------------------------------------------------------------------------

    def check_inputs(self, images: np.ndarray, num_inference_steps: int, guidance_scale: float,
                     output_type: str, names: list[list[str]] | None = None, height: int | None = None,
                     width: int | None = None, num_images_per_prompt: int = 1,
                     callback_on_step_end_tensor_inputs: list[str] | None = None) -> None:
        """Shared checks on already-converted inputs (`images` `(B, H, W, 3) uint8`, any H × W)."""
        check_task(self.task)
        check_output_type(output_type)
        for name, value in (("height", height), ("width", width)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, is {value!r}")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, is {num_inference_steps!r}")
        if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be a positive integer, "
                             f"is {num_images_per_prompt!r}")
        check_number("guidance_scale", guidance_scale, low=0)  # NaN / inf refused, not read as "no guidance"
        check_image_size(int(images.shape[1]), int(images.shape[2]), "the input image")
        for key in callback_on_step_end_tensor_inputs or []:
            if key not in self._callback_tensor_inputs:
                raise ValueError(f"callback_on_step_end_tensor_inputs must be in "
                                 f"{self._callback_tensor_inputs}, got {key!r}")
        if names is not None:
            for i, ns in enumerate(names):
                if not ns:
                    raise ValueError(f"the {self.task} task needs at least one entity name "
                                     f"(image {i} has none)")
            self.warn_unknown_names(names)

    def warn_unknown_names(self, names: list[list[str]]) -> list[str]:
        """Warn (and return them) about names outside the vocabulary in the model's meta: the model never
        saw them, so it will most likely find or draw nothing for them. Silent for models without one."""
        vocabulary = self.meta.vocabulary
        known = {v.strip().lower() for v in vocabulary}
        unknown = sorted({n for ns in names for n in ns if n.strip().lower() not in known}) if known else []
        if unknown:
            domain = self.meta.domain or "its training data"
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

    def encode_prompts(self, prompts: list[str], guidance_scale: float,
                       negative_prompt: str | list[str] | None = None,
                       prompt_embeds: torch.Tensor | None = None,
                       negative_prompt_embeds: torch.Tensor | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text states `(B, L, D)` of `prompts` (or `prompt_embeds`), and of the negative prompt (default "")
        when classifier-free guidance is on."""
        from unigs.models.text import encode_prompt

        device, batch = self._execution_device, len(prompts)
        cond = prompt_embeds if prompt_embeds is not None else \
            encode_prompt(self.tokenizer, self.text_encoder, prompts, device)
        uncond = None
        if guidance_scale > 1.0:
            if negative_prompt_embeds is not None:
                uncond = negative_prompt_embeds
            else:
                negative = [negative_prompt or ""] * batch if negative_prompt is None or \
                    isinstance(negative_prompt, str) else list(negative_prompt)
                if len(negative) != batch:
                    raise ValueError(f"negative_prompt gives {len(negative)} prompts for {batch} images")
                uncond = encode_prompt(self.tokenizer, self.text_encoder, negative, device)
        for name, t in (("prompt_embeds", cond), ("negative_prompt_embeds", uncond)):
            if t is not None and (t.ndim != 3 or len(t) != batch):
                raise ValueError(f"{name} must be (B={batch}, L, D), got shape {tuple(t.shape)}")
        dtype = self.unet.dtype
        return cond.to(device, dtype), (uncond.to(device, dtype) if uncond is not None else None)

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

    def decode_colormap_latents(self, latents: torch.Tensor) -> np.ndarray:
        """Colormap latents `(B, 4, h, w)` → `(B, H, W, 3) uint8` numpy, through `colormap_vae` when the
        pipeline has one, else `vae` (`unigs.models.colormap_vae.decode_colormaps`)."""
        from unigs.models.colormap_vae import decode_colormaps

        return np.asarray(decode_colormaps(self.vae, latents, getattr(self, "colormap_vae", None)))

    # -- the shared generation step -----------------------------------------------------------------

    def generate(self, prompts: list[str], controls: np.ndarray, coarse_masks: np.ndarray, *,
                 num_inference_steps: int, guidance_scale: float, generator: Any, latents: Any,
                 eta: float, fix_known_half: bool, negative_prompt: Any = None, prompt_embeds: Any = None,
                 negative_prompt_embeds: Any = None, callback_on_step_end: Any = None,
                 callback_on_step_end_tensor_inputs: list[str] | None = None,
                 **core_kwargs: Any) -> torch.Tensor:
        """Conditions in pixels (working frame) → ẑ_0 `(B, 8, h, w)` via the shared core (Eq. 8, 11).

        `controls` `(B, H, W, 3) uint8` are the Table-2 control images, `coarse_masks` `(B, H, W) bool` m_c.
        `core_kwargs` go to `core.denoise` unchanged (`known`, `resample_jumps`, `init_latents`, `strength`).
        """
        device = self._execution_device
        self._guidance_scale, self._interrupt = guidance_scale, False
        control = self.encode_pixels(controls)
        mask_latent = mask_to_latent(torch.from_numpy(coarse_masks).to(device), control.shape[-2:])
        cond, uncond = self.encode_prompts(prompts, guidance_scale, negative_prompt, prompt_embeds,
                                           negative_prompt_embeds)
        tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]

        def on_step(i: int, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
            if callback_on_step_end is None:
                return None
            returned = callback_on_step_end(self, i, t, {k: x for k in tensor_inputs}) or {}
            return returned.get("latents")

        self._num_timesteps = num_inference_steps
        return core.denoise(
            self.unet, self.scheduler, control=control, mask_latent=mask_latent, prompt_embeds=cond,
            negative_prompt_embeds=uncond, guidance_scale=guidance_scale,
            task_id=TASK_IDS[self.task], num_inference_steps=num_inference_steps, generator=generator,
            known_half=self.known_half if fix_known_half else None, latents=latents, eta=eta,
            progress_bar=self.progress_bar, callback=on_step, interrupt=lambda: self.interrupt,
            **core_kwargs)

    # -- outputs ------------------------------------------------------------------------------------

    @staticmethod
    def masks_from_colormaps(colormaps: np.ndarray, region: np.ndarray | None, delta: float = 10.0,
                             keep_background: bool = False, **phi: Any) -> list[np.ndarray]:
        """Φ on each colormap `(B, H, W, 3) uint8` → B arrays `(K, H, W) bool`.

        With a `region` `(B, H, W) bool` (the coarse mask), pixels outside it are blacked out before Φ and
        the masks are clipped to it; masks left empty are dropped. `phi`: any other field of
        `unigs.codec.config.DichotomyConfig` (the codec's defaults otherwise).
        """
        from unigs.codec.dichotomy import decode

        out = []
        for b, cmap in enumerate(colormaps):
            if region is not None:
                cmap = cmap * region[b][..., None].astype(np.uint8)
            masks = np.asarray(decode(cmap, delta=delta, keep_background=keep_background, **phi), dtype=bool)
            masks = masks.reshape(-1, *cmap.shape[:2])
            if region is not None:
                masks = masks & region[b][None]
                masks = masks[masks.any(axis=(1, 2))]
            out.append(masks)
        return out

    @staticmethod
    def format_output(images: np.ndarray, colormaps: np.ndarray, masks: list[np.ndarray],
                      output_type: str) -> UniGSPipelineOutput:
        """Pack uint8 images/colormaps and bool masks into a :class:`UniGSPipelineOutput` of `output_type`;
        the scores are the masks' colour purity in their colormap."""
        from unigs.io import masks_to_rle
        from unigs.records import color_purity

        rles = [masks_to_rle(m) for m in masks]
        scores = [color_purity(c, m) for c, m in zip(colormaps, masks, strict=True)]
        if output_type == "pt":
            masks = [torch.from_numpy(np.ascontiguousarray(m)) for m in masks]
        return UniGSPipelineOutput(images=format_images(images, output_type),
                                   colormaps=format_images(colormaps, output_type), masks=masks, rles=rles,
                                   scores=scores)
