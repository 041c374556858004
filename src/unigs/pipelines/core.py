"""The one denoising core shared by the four UniGS pipelines (paper §3.3, Eq. 8 and 11; Table 2).

A task only decides *conditions* (prompt, coarse mask m_c, control latent z^c, task id); the loop here is the
same for all of them (channel layout in `unigs.models.layout`):

    UNet input  = CONCAT(z_t^i (4), z_t^s (4), m_c (1), z^c (4))          Eq. 8, 13 channels
    UNet output = ε for the image half (4) ‖ ε for the colormap half (4)  Eq. 11, 8 channels

Classifier-free guidance uses the empty prompt "" as the unconditional branch and is applied to both halves;
the coarse mask, the control latent and the task id stay in both branches (as in SD-inpainting, where only
the text is dropped). Any diffusers scheduler works (`scheduler.step`, `scale_model_input`, `add_noise`).

The ✗ halves of Table 2 (synthesis: colormap = control; referring/entity: image = control). We *replace*
that half, after every step, with the known control latent noised to the next timestep with one fixed noise
draw — LDMSeg's "keep the known latent fixed", diffusers' 4-channel inpainting blend with a full mask. Why:
during training that half's input was exactly a noised copy of the control, so the model sees inputs from
its training distribution and spends no capacity on reproducing the condition; it costs one `add_noise`
per step, and the pipelines then skip decoding that half (its answer is the control itself).
`known_half=None` instead lets the model denoise both halves freely (a diagnostic of how well it copies).

The same replacement, generalised, is the hook the related systems use (:class:`KnownLatent`): any set of
latent channels and cells can be held at known values — a whole half (the ✗ above), the known part of a
colormap (LDMSeg mask completion), the known pixels around a hole (SPG-Net guided inpainting). Optional
RePaint resampling jumps (Lugmayr et al. 2022) harmonise the known and sampled parts. `init_latents` with
`strength < 1` starts the loop part-way from a noised copy of given latents (SDEdit / diffusers img2img;
TCIG's second stage).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from diffusers.utils.torch_utils import randn_tensor

from unigs.models.layout import HALVES, OUT_CHANNELS, split_halves, unet_input

# Scheduler names for the CLI -> builder from another scheduler's config. A plain dict, no registry.
SCHEDULERS: dict[str, Callable[[dict], object]] = {
    "ddim": lambda config: DDIMScheduler.from_config(config),
    "dpm++": lambda config: DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++"),
}


def make_scheduler(name: str, config: dict) -> object:
    """A scheduler by name ("ddim" = the paper's default, "dpm++" = DPM-Solver++) with the noise schedule of
    `config` (e.g. `components.scheduler.config`)."""
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {list(SCHEDULERS)}, is {name!r}")
    return SCHEDULERS[name](config)


def known_cells(known: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pixel "known" mask → latent cells that are known *entirely* (for :class:`KnownLatent`).

    Args:
        known: `(B, H, W)` or `(B, 1, H, W)` bool/float, 1 = known pixel.
        size: latent `(h, w)`.

    Returns:
        `(B, 1, h, w) float32` in {0, 1}: 1 where every pixel of the cell is known. Why not nearest (as
        `layout.mask_to_latent`): a cell that straddles the border also encodes unknown pixels, and holding it
        fixed would paste the unknown part of the known latent (e.g. a hole's black fill) into the result.
    """
    if known.ndim == 3:
        known = known[:, None]
    return 1.0 - F.adaptive_max_pool2d(1.0 - known.float(), tuple(size))


def _step_kwargs(scheduler: object, generator: object, eta: float) -> dict:
    """`eta` (DDIM only) and `generator` for schedulers whose `step` accepts them."""
    params = set(inspect.signature(scheduler.step).parameters)
    kwargs = {}
    if "eta" in params:
        kwargs["eta"] = eta
    if "generator" in params:
        kwargs["generator"] = generator
    return kwargs


@dataclass
class KnownLatent:
    """Latent values held fixed during sampling (RePaint-style replacement).

    Attributes:
        values: `(B, 8, h, w)` clean latents (image ‖ colormap, scaled like the UNet's halves); only the
            entries under `mask` are read.
        mask: `(B, 8, h, w)` or `(B, 1, h, w)` float in [0, 1], 1 = known. After every step the sample
            becomes `mask · noised(values) + (1 − mask) · sample`, the values noised to the next timestep
            with the loop's one fixed noise draw; after the last step the known entries equal `values`.
    """

    values: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def half(cls, half: str, control: torch.Tensor) -> KnownLatent:
        """The whole `half` ("image" or "colormap") known and equal to `control` `(B, 4, h, w)`."""
        if half not in HALVES:
            raise ValueError(f"known_half must be None or one of {list(HALVES)}, is {half!r}")
        b, _, h, w = control.shape
        values = control.new_zeros(b, OUT_CHANNELS, h, w)
        mask = torch.zeros_like(values)
        values[:, HALVES[half]] = control
        mask[:, HALVES[half]] = 1.0
        return cls(values, mask)

    @classmethod
    def region(cls, half: str, values: torch.Tensor, mask: torch.Tensor) -> KnownLatent:
        """`half` known where `mask` `(B, 1, h, w)` is 1, with `values` `(B, 4, h, w)` there."""
        known = cls.half(half, values)
        known.mask[:, HALVES[half]] *= mask.to(known.mask.dtype)
        return known

    def union(self, other: KnownLatent | None) -> KnownLatent:
        """Both known sets; where both know an entry, `other`'s value wins."""
        if other is None:
            return self
        mine, theirs = self.mask.expand_as(self.values), other.mask.to(self.values).expand_as(self.values)
        values = mine * (1 - theirs) * self.values + theirs * other.values.to(self.values)
        return KnownLatent(values, torch.maximum(mine, theirs))

    def apply(self, x: torch.Tensor, noised: torch.Tensor) -> torch.Tensor:
        """`mask · noised + (1 − mask) · x` (a new tensor: schedulers may keep the old sample)."""
        mask = self.mask.to(device=x.device, dtype=x.dtype)
        return mask * noised.to(x.dtype) + (1 - mask) * x


def _strength_timesteps(scheduler: object, num_inference_steps: int, strength: float) -> torch.Tensor:
    """The tail of the schedule that an img2img start at `strength` runs (diffusers' `get_timesteps`)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], is {strength}")
    skip = num_inference_steps - min(int(num_inference_steps * strength), num_inference_steps)
    order = getattr(scheduler, "order", 1)
    if skip and hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(skip * order)
    return scheduler.timesteps[skip * order:]


def _renoise(scheduler: object, x: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor,
             generator: object) -> torch.Tensor:
    """q(x_{t_to} | x_{t_from}) for t_to > t_from: one forward-diffusion jump (RePaint's resampling)."""
    alphas = scheduler.alphas_cumprod.to(x.device)
    ratio = (alphas[int(t_to)] / alphas[int(t_from)].clamp(min=1e-12)).clamp(0.0, 1.0).to(x.dtype)
    eps = randn_tensor(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return ratio.sqrt() * x + (1 - ratio).sqrt() * eps


def check_finite_latents(x: torch.Tensor, index: int, total: int, t: torch.Tensor | int,
                         guidance_scale: float) -> None:
    """Stop the sampler with a sentence naming the step when the latents hold NaN or inf.

    Non-finite latents never recover: left running they decode to a black image and a colormap Φ reads as
    one whole-image mask, returned as if it were a result. Causes: NaN/inf in the weights (a damaged file),
    an fp16 overflow, an extreme guidance scale.
    """
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"sampling produced NaN/inf latents at step {index + 1} of {total} (timestep "
                         f"{int(t)}, guidance_scale {guidance_scale}); the model weights hold non-finite "
                         "values, or the dtype overflowed (try float32 or a smaller guidance scale)")


def denoise(
    unet: torch.nn.Module,
    scheduler: object,
    *,
    control: torch.Tensor,
    mask_latent: torch.Tensor,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    task_id: int | None = None,
    num_inference_steps: int = 200,
    generator: torch.Generator | list[torch.Generator] | None = None,
    known_half: str | None = None,
    latents: torch.Tensor | None = None,
    eta: float = 0.0,
    progress_bar: Callable[..., object] | None = None,
    known: KnownLatent | None = None,
    resample_jumps: int = 0,
    init_latents: torch.Tensor | None = None,
    strength: float = 1.0,
    callback: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor | None] | None = None,
    interrupt: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """Run the sampler from noise to ẑ_0 for both halves.

    Args:
        unet: 13-in / 8-out `UNet2DConditionModel`.
        scheduler: any diffusers scheduler (its state is reset by `set_timesteps`).
        control: z^c, `(B, 4, h, w)`, already scaled by the VAE scaling factor.
        mask_latent: m_c on the latent grid, `(B, 1, h, w)` in {0, 1}.
        prompt_embeds: `(B, L, D)` text states of the task prompts.
        negative_prompt_embeds: `(B, L, D)` states of "" (used when `guidance_scale > 1`).
        task_id: `conditions.TASK_IDS[task]`, passed as `class_labels` when the UNet has `num_class_embeds`.
        generator: seeds the initial noise (and DDIM's η-noise).
        known_half: None, "image" or "colormap" — the ✗ half kept equal to the noised control (module doc).
        latents: optional initial noise `(B, 8, h, w)` (before `init_noise_sigma` scaling).
        progress_bar: `total -> tqdm-like context manager` (the pipeline's `progress_bar`); None = silent.
        known: latent entries held at their noised known values (:class:`KnownLatent`), on top of
            `known_half` (where both speak, `known` wins).
        resample_jumps: RePaint resampling: after each step (but the last) re-noise the sample one step back
            and redo the step this many times (the UNet runs 1 + jumps times per step). DDIM only.
        init_latents: `(B, 8, h, w)` clean latents to start from (img2img); with `strength` < 1 the loop
            starts at the matching timestep from `init_latents` noised with the loop's noise draw.
        strength: in [0, 1]; 1 = from pure noise (the default), 0 = no step at all (returns `init_latents`
            with the known entries applied).
        callback: `(i, t, latents) -> latents | None`, called after every step with the `(B, 8, h, w)`
            latents (known half already pinned); a returned tensor replaces them (diffusers'
            `callback_on_step_end`).
        interrupt: `() -> bool`, read before every step; once True the remaining steps are skipped and the
            latents of the last finished step are returned (diffusers' `interrupt` property).

    Returns:
        ẑ_0, `(B, 8, h, w)`: image latent (channels 0–3) ‖ colormap latent (4–7), still scaled.
    """
    if known_half is not None and known_half not in HALVES:
        raise ValueError(f"known_half must be None or one of {list(HALVES)}, is {known_half!r}")
    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be >= 1, is {num_inference_steps}")
    if resample_jumps < 0:
        raise ValueError(f"resample_jumps must be >= 0, is {resample_jumps}")
    if resample_jumps and not isinstance(scheduler, DDIMScheduler):
        raise ValueError("resample_jumps needs the DDIM scheduler (a multistep solver keeps a history that "
                         f"a repeated step would corrupt), got {type(scheduler).__name__}")
    if strength != 1.0 and init_latents is None:
        raise ValueError(f"strength {strength} needs init_latents to start from")
    batch, _, h, w = control.shape
    device, dtype = control.device, unet.dtype

    # 1. Timesteps (the tail of the schedule for an img2img start).
    scheduler.set_timesteps(num_inference_steps, device=device)
    timesteps = _strength_timesteps(scheduler, num_inference_steps, strength)

    # 2. Initial noise for both halves; known entries start as their values noised to the first timestep.
    shape = (batch, OUT_CHANNELS, h, w)
    noise = latents if latents is not None else randn_tensor(shape, generator=generator, device=device,
                                                             dtype=dtype)
    if noise.shape != shape:
        raise ValueError(f"latents must have shape {shape}, got {tuple(noise.shape)}")
    noise = noise.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(noise).all()) or not bool(torch.isfinite(control).all()):
        raise ValueError("the initial latents or the control latent hold NaN/inf values (before step 1); "
                         "check the given latents and the VAE weights")
    if init_latents is not None and tuple(init_latents.shape) != shape:
        raise ValueError(f"init_latents must have shape {shape}, got {tuple(init_latents.shape)}")
    if init_latents is not None and strength < 1.0:
        init_latents = init_latents.to(device=device, dtype=dtype)
        x = init_latents if len(timesteps) == 0 else \
            scheduler.add_noise(init_latents, noise, timesteps[:1].repeat(batch))
    else:
        x = noise * scheduler.init_noise_sigma
    if known_half is not None:
        known = KnownLatent.half(known_half, control).union(known)
    if known is not None:
        known = KnownLatent(known.values.to(device=device, dtype=dtype), known.mask.to(device=device))

    def known_at(index: int, sample: torch.Tensor) -> torch.Tensor:
        if known is None:
            return sample
        if index >= len(timesteps):
            return known.apply(sample, known.values)  # after the last step: ẑ_0 there is the known value
        t = timesteps[index : index + 1].repeat(batch)
        return known.apply(sample, scheduler.add_noise(known.values, noise, t))

    x = known_at(0, x)

    # 3. Conditions of both CFG branches: (uncond "", cond prompt); m_c, z^c and the task id in both.
    do_cfg = guidance_scale > 1.0 and negative_prompt_embeds is not None
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds
    mask_in, control_in = mask_latent.to(dtype), control.to(dtype)
    if do_cfg:
        mask_in, control_in = torch.cat([mask_in, mask_in]), torch.cat([control_in, control_in])
    class_labels = None
    if getattr(unet.config, "num_class_embeds", None) is not None:
        if task_id is None:
            raise ValueError("this UNet has a task embedding (num_class_embeds) but no task_id was given")
        class_labels = torch.full((len(embeds),), int(task_id), device=device, dtype=torch.long)
    step_kwargs = _step_kwargs(scheduler, generator, eta)

    def step(i: int, t: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        model_in = torch.cat([sample, sample]) if do_cfg else sample
        # scale only the noisy halves, then append the conditions (as diffusers' SD-inpainting does)
        model_in = scheduler.scale_model_input(model_in, t)
        x_in = unet_input(*split_halves(model_in), mask_in, control_in)  # Eq. 8
        eps = unet(x_in, t, encoder_hidden_states=embeds, class_labels=class_labels, return_dict=False)[0]
        if do_cfg:
            eps_uncond, eps_text = eps.chunk(2)
            eps = eps_uncond + guidance_scale * (eps_text - eps_uncond)
        return known_at(i + 1, scheduler.step(eps, t, sample, **step_kwargs, return_dict=False)[0])

    # 4. Denoising loop (with RePaint jumps: back one step by forward diffusion, then the step again).
    bar = progress_bar(total=len(timesteps)) if progress_bar is not None else None
    try:
        for i, t in enumerate(timesteps):
            if interrupt is not None and interrupt():
                break
            x = step(i, t, x)
            for _ in range(resample_jumps if i + 1 < len(timesteps) else 0):
                x = step(i, t, known_at(i, _renoise(scheduler, x, timesteps[i + 1], t, generator)))
            check_finite_latents(x, i, len(timesteps), t, guidance_scale)
            if callback is not None:
                replaced = callback(i, t, x)
                x = x if replaced is None else replaced
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return x
