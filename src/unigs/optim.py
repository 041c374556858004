"""Optimizer, learning-rate schedule, min-SNR loss weights and the UNet's memory/speed switches.

The pieces of diffusers' `examples/text_to_image/train_text_to_image.py` that `unigs.train` takes as
`TrainConfig` keys, as pure builders (STYLE.md §2): each default reproduces the trainer before the key
existed (AdamW with torch's betas/ε, linear warm-up then constant, uniform Eq. 2, SDPA attention).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from diffusers.models.attention_processor import AttnProcessor

INSTALL_BNB = "pip install bitsandbytes"


def build_optimizer(params, config: Any) -> torch.optim.Optimizer:
    """AdamW (`lr`, `weight_decay`, `adam_beta1/2`, `adam_epsilon`); bitsandbytes' AdamW8bit when
    `use_8bit_adam` (its moments are 8-bit blocks: ~¼ of AdamW's optimizer memory)."""
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay,
              "betas": (config.adam_beta1, config.adam_beta2), "eps": config.adam_epsilon}
    if not config.use_8bit_adam:
        return torch.optim.AdamW(params, **kwargs)
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise ImportError(f"use_8bit_adam: true needs the bitsandbytes package, which is not installed "
                          f"({INSTALL_BNB}, or set use_8bit_adam: false)") from None
    return bnb.optim.AdamW8bit(params, **kwargs)


def lr_factor(step: int, warmup_steps: int, total_steps: int, kind: str = "constant",
              decay_steps: int = 0) -> float:
    """The LR multiplier of optimizer step `step` (0-based): linear warm-up `(step + 1) / warmup_steps`,
    then 1 (constant), or a cosine / linear decay that reaches 0 after `total_steps`, or "wsd"
    (warm-up, stable, decay): 1 until the last `decay_steps` steps, then linear to 0 after `total_steps`.

    wsd lets a constant run be annealed late: a resume that switches constant → wsd with a decay starting
    after the steps already taken changes no past learning rate (:func:`first_schedule_change`).
    """
    warmup = max(1, warmup_steps)
    if step + 1 < warmup or kind == "constant":
        return min(1.0, (step + 1) / warmup)
    if kind == "wsd":
        decay_start = max(warmup, total_steps - decay_steps)
        return min(1.0, max(0.0, (total_steps - step - 1) / max(1, total_steps - decay_start)))
    progress = min(1.0, (step + 1 - warmup) / max(1, total_steps - warmup))
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if kind == "linear":
        return 1.0 - progress
    raise ValueError(f"lr_scheduler must be constant, cosine, linear or wsd, is {kind!r}")


def schedule_of(config: Any):
    """step → LR multiplier of a config (a TrainConfig or its saved dict)."""
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    args = (get("lr_warmup_steps", 100), get("steps"), get("lr_scheduler", "constant"),
            get("lr_decay_steps", 0))
    return lambda s: lr_factor(s, *args)


def first_schedule_change(old: Any, new: Any, steps_done: int) -> int | None:
    """The first of the `steps_done` steps already taken where `new`'s learning rate differs from `old`'s,
    or None: a resume may change the schedule (`steps`, `lr_scheduler`, `lr_decay_steps`) only for steps
    not taken yet, so the run stays one well-defined LR curve."""
    before, after = schedule_of(old), schedule_of(new)
    return next((s for s in range(steps_done) if not math.isclose(before(s), after(s))), None)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, config: Any) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR of :func:`lr_factor` (its state is the step count only, so it resumes exactly)."""
    factor = schedule_of(config)
    factor(0)  # fail on a bad kind now
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def set_step_lr(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
                step: int) -> None:
    """Give `optimizer` the learning rate of `step` under `scheduler`'s schedule (a resumed optimizer holds
    the LR its old schedule gave that step)."""
    lrs = [base * factor(step) for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)]
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    scheduler._last_lr = lrs  # what get_last_lr() reports until the next step


def snr(alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """`(B,)` signal-to-noise ratio ᾱ_t / (1 − ᾱ_t) of timesteps `t` (0 at a zero-terminal-SNR t = T)."""
    a = alphas_cumprod.to(t.device)[t].double()
    return (a / (1.0 - a)).float()


def min_snr_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float,
                    prediction_type: str) -> torch.Tensor:
    """`(B,)` min-SNR-γ loss weights (Hang et al. 2023, as in diffusers' training examples).

    The ε-loss equals the x_0-loss scaled by SNR and the v-loss the x_0-loss scaled by SNR + 1; min-SNR
    caps the effective x_0 weight at γ, so the weight is min(SNR, γ) / SNR for ε-prediction and
    min(SNR, γ) / (SNR + 1) for v-prediction. With v-prediction the weight falls to 0 as SNR → 0: at a
    zero-terminal-SNR t = T (noise_schedule zero_snr) that step then carries no loss — leave snr_gamma
    off where the t = T readout matters. An ε-weight at SNR = 0 (0/0) is taken as 1.
    """
    s = snr(alphas_cumprod, t)
    capped = torch.minimum(s, torch.full_like(s, float(gamma)))
    if prediction_type == "v_prediction":
        return capped / (s + 1.0)
    if prediction_type == "epsilon":
        return torch.where(s > 0, capped / s.clamp_min(1e-20), torch.ones_like(s))
    raise ValueError(f"min-SNR weighting supports epsilon and v_prediction, not {prediction_type!r}")


def apply_speed_switches(unet: torch.nn.Module, config: Any) -> None:
    """`gradient_checkpointing`, `attention` and `allow_tf32` on a diffusers UNet (in place)."""
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    if config.attention == "eager":
        unet.set_attn_processor(AttnProcessor())
    elif config.attention == "xformers":
        try:
            import xformers  # noqa: F401
        except ImportError:
            raise ImportError("attention: xformers needs the xformers package, which is not installed "
                              "(use attention: sdpa, torch's fused attention)") from None
        unet.enable_xformers_memory_efficient_attention()
    if config.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
