"""UniGS and Stable-Diffusion parts from LOCAL files only: no hub, no network, ever (DESIGN.md "Weights").

* :class:`UniGSComponents` — the five parts a pipeline or the trainer needs, plus ``meta``;
* :func:`load_stable_diffusion` — SD-1.5(-inpainting) from a diffusers folder or one original-format file;
* :func:`load_unigs` — a UniGS folder / single file saved by :func:`save_unigs`, or an SD-inpainting
  source that is widened to 13/8 (§3.3);
* :func:`save_unigs` — diffusers layout (``unigs.json`` + ``unet/`` ``vae/`` … subfolders) or one
  self-describing ``.safetensors`` file with every config inside its metadata (STYLE.md §7).

Every failure to find a file is a ``FileNotFoundError`` whose message names the missing file or folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# SD-1.5's noise schedule (scheduler/scheduler_config.json of runwayml/stable-diffusion-inpainting) with
# DDIM, the paper's sampler (Table 10).
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}


def default_scheduler() -> DDIMScheduler:
    """DDIM with SD-1.5's scaled-linear β schedule (1000 training steps, ε-prediction, Eq. 2)."""
    return DDIMScheduler(**SD15_SCHEDULER_CONFIG)


@dataclass
class UniGSComponents:
    """Everything a UniGS pipeline needs.

    unet: 13 in / 8 out ``UNet2DConditionModel`` (task id as ``class_labels`` when ``meta["multitask"]``).
    vae: ``AutoencoderKL`` (Υ), text_encoder + tokenizer (τ, 77 tokens), scheduler: any diffusers scheduler.
    meta: ``image_size`` (px), ``grid`` (palette grid b), ``latent_factor`` (VAE downsampling),
    ``multitask`` (bool), ``tasks`` (task names, index = task id), ``num_tasks``, ``text_encoder``
    (``{"kind": "minilm" | "saved" | "path", ...}``), and free-form provenance (``source``...).
    """

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: nn.Module
    tokenizer: Any
    scheduler: Any
    meta: dict[str, Any] = field(default_factory=dict)
