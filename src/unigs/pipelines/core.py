"""The one denoising core shared by the four UniGS pipelines (paper §3.3, Eq. 8 and 11; Table 2).

A task only decides *conditions* (prompt, coarse mask m_c, control latent z^c, task id); the loop here is the
same for all of them:

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
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from diffusers.utils.torch_utils import randn_tensor

LATENT_CHANNELS = 4  # per half: image, colormap, control
HALVES = {"image": slice(0, LATENT_CHANNELS), "colormap": slice(LATENT_CHANNELS, 2 * LATENT_CHANNELS)}

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


def mask_to_latent(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize the pixel coarse mask m_c to the latent grid (Eq. 8).

    Args:
        mask: `(B, H, W)` or `(B, 1, H, W)` bool/float, 1 = region to fill.
        size: latent `(h, w)`.

    Returns:
        `(B, 1, h, w) float32` in {0, 1}. Nearest-neighbour, as diffusers' SD-inpainting pipeline resizes its
        mask — the convention the pretrained SD-1.5-inpainting weights were trained with.
    """
    if mask.ndim == 3:
        mask = mask[:, None]
    return F.interpolate(mask.float(), size=tuple(size), mode="nearest")


def unet_input(z_image: torch.Tensor, z_colormap: torch.Tensor, mask_latent: torch.Tensor,
               control: torch.Tensor) -> torch.Tensor:
    """Eq. 8: CONCAT(z_t^i, z_t^s, m_c, z^c) → `(B, 13, h, w)`; shapes `(B,4,h,w)`, `(B,4,h,w)`, `(B,1,h,w)`,
    `(B,4,h,w)`."""
    return torch.cat([z_image, z_colormap, mask_latent, control], dim=1)


def _step_kwargs(scheduler: object, generator: object, eta: float) -> dict:
    """`eta` (DDIM only) and `generator` for schedulers whose `step` accepts them."""
    params = set(inspect.signature(scheduler.step).parameters)
    kwargs = {}
    if "eta" in params:
        kwargs["eta"] = eta
    if "generator" in params:
        kwargs["generator"] = generator
    return kwargs


def _with_half(x: torch.Tensor, half: slice, value: torch.Tensor) -> torch.Tensor:
    """A copy of `x` with channels `half` replaced (no in-place write: schedulers may keep the sample)."""
    x = x.clone()
    x[:, half] = value.to(x.dtype)
    return x


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
    batch, _, h, w = control.shape
    device, dtype = control.device, unet.dtype

    # 1. Timesteps.
    scheduler.set_timesteps(num_inference_steps, device=device)
    timesteps = scheduler.timesteps

    # 2. Initial noise for both halves; the known half starts as the control noised to the first timestep.
    shape = (batch, 2 * LATENT_CHANNELS, h, w)
    noise = latents if latents is not None else randn_tensor(shape, generator=generator, device=device,
                                                             dtype=dtype)
    if noise.shape != shape:
        raise ValueError(f"latents must have shape {shape}, got {tuple(noise.shape)}")
    noise = noise.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(noise).all()) or not bool(torch.isfinite(control).all()):
        raise ValueError("the initial latents or the control latent hold NaN/inf values (before step 1); "
                         "check the given latents and the VAE weights")
    x = noise * scheduler.init_noise_sigma
    half = HALVES.get(known_half) if known_half else None

    def known_at(index: int) -> torch.Tensor:
        if index >= len(timesteps):
            return control  # after the last step: ẑ_0 of that half is the control itself
        t = timesteps[index : index + 1].repeat(batch)
        return scheduler.add_noise(control, noise[:, half], t)

    if half is not None:
        x = _with_half(x, half, known_at(0))

    # 3. Conditions of both CFG branches: (uncond "", cond prompt); m_c, z^c and the task id in both.
    do_cfg = guidance_scale > 1.0 and negative_prompt_embeds is not None
    embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds
    cond = torch.cat([mask_latent.to(dtype), control.to(dtype)], dim=1)
    cond = torch.cat([cond, cond]) if do_cfg else cond
    class_labels = None
    if getattr(unet.config, "num_class_embeds", None) is not None:
        if task_id is None:
            raise ValueError("this UNet has a task embedding (num_class_embeds) but no task_id was given")
        class_labels = torch.full((len(embeds),), int(task_id), device=device, dtype=torch.long)
    step_kwargs = _step_kwargs(scheduler, generator, eta)

    # 4. Denoising loop.
    bar = progress_bar(total=len(timesteps)) if progress_bar is not None else None
    try:
        for i, t in enumerate(timesteps):
            if interrupt is not None and interrupt():
                break
            model_in = torch.cat([x, x]) if do_cfg else x
            # scale only the noisy halves, then append the conditions (as diffusers' SD-inpainting does)
            model_in = scheduler.scale_model_input(model_in, t)
            eps = unet(torch.cat([model_in, cond], dim=1), t, encoder_hidden_states=embeds,
                       class_labels=class_labels, return_dict=False)[0]
            if do_cfg:
                eps_uncond, eps_text = eps.chunk(2)
                eps = eps_uncond + guidance_scale * (eps_text - eps_uncond)
            x = scheduler.step(eps, t, x, **step_kwargs, return_dict=False)[0]
            if half is not None:
                x = _with_half(x, half, known_at(i + 1))
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
