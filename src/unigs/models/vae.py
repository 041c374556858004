"""The VAE Υ: pixels ↔ latents for images, colormaps and controls alike (paper §3.3, Eq. 8 and 10).

UniGS encodes the image, the entity colormap and the control with the same frozen VAE. The real model uses
SD-1.5's AutoencoderKL (×8 downsampling); the shipped default model uses the small config below
(×4 downsampling, 128 px → 4×32×32 latents), trained by the project on CPU.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL

# Three encoder blocks = two downsamplings = ×4 (the last block does not downsample). No attention in the
# mid block: at 32×32 it would be the most expensive layer of this small model for little gain.
_SMALL_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [32, 64, 64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 128,
    "scaling_factor": 1.0,
    "mid_block_add_attention": False,
}


def small_vae_config(**overrides: Any) -> dict[str, Any]:
    """Config dict of the small AutoencoderKL of the default model (×4 downsampling, 4 latent channels).

    ``scaling_factor`` is 1.0 here; set it after training to 1/std of the latents (as SD did with 0.18215).
    Keyword overrides replace keys; an unknown key raises ValueError naming it.
    """
    known = set(inspect.signature(AutoencoderKL.__init__).parameters) - {"self"}
    unknown = sorted(k for k in overrides if k not in known)
    if unknown:
        raise ValueError(f"unknown AutoencoderKL config key(s) {unknown}")
    config = copy.deepcopy(_SMALL_VAE_CONFIG)
    config.update(overrides)
    return config


def latent_factor(vae: AutoencoderKL) -> int:
    """Spatial downsampling of ``vae``: 2 ** (number of encoder blocks - 1), e.g. 8 for SD, 4 for small."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def to_model_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images as float (B, 3, H, W) in [-1, 1].

    Accepts uint8 (B, H, W, 3) in [0, 255] (numpy or torch), or float (B, 3, H, W) already in [-1, 1].
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a numpy array or torch tensor, is {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(
            f"images must be 4-d (B, H, W, 3) uint8 or (B, 3, H, W) float, have shape {tuple(images.shape)}"
        )
    if images.dtype == torch.uint8:
        if images.shape[-1] != 3:
            raise ValueError(f"uint8 images must be (B, H, W, 3), have shape {tuple(images.shape)}")
        return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or float, are {images.dtype}")
    if images.shape[1] != 3:
        raise ValueError(f"float images must be (B, 3, H, W), have shape {tuple(images.shape)}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.0 - 1e-4 or hi > 1.0 + 1e-4:
        raise ValueError(f"float images must lie in [-1, 1], range is [{lo:.3g}, {hi:.3g}]")
    return images


@torch.no_grad()
def encode_images(
    vae: AutoencoderKL,
    images: np.ndarray | torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Υ(images): latents (B, 4, H/f, W/f) float on the VAE's device, scaled by ``scaling_factor``.

    images: uint8 (B, H, W, 3) in [0, 255] or float (B, 3, H, W) in [-1, 1]; H and W divisible by the
    VAE factor f. Returns the posterior mean, or a sample from it when ``generator`` is given.
    """
    x = to_model_images(images)
    f = latent_factor(vae)
    if x.shape[-2] % f or x.shape[-1] % f:
        raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by the VAE factor {f}")
    param = next(vae.parameters())
    x = x.to(device=param.device, dtype=param.dtype)
    dist = vae.encode(x).latent_dist
    z = dist.mean if generator is None else dist.sample(generator=generator)
    shift = vae.config.shift_factor or 0.0
    return (z - shift) * vae.config.scaling_factor


@torch.no_grad()
def decode_latents(vae: AutoencoderKL, latents: torch.Tensor) -> np.ndarray:
    """Υ^-1(latents): (B, H, W, 3) uint8 images in [0, 255] from scaled latents (B, 4, h, w)."""
    if not isinstance(latents, torch.Tensor) or latents.ndim != 4:
        got = getattr(latents, "shape", type(latents))
        raise ValueError(f"latents must be a (B, C, h, w) tensor, got {got}")
    if latents.shape[1] != vae.config.latent_channels:
        want = vae.config.latent_channels
        raise ValueError(f"latents have {latents.shape[1]} channels, the VAE expects {want}")
    param = next(vae.parameters())
    shift = vae.config.shift_factor or 0.0
    z = latents.to(device=param.device, dtype=param.dtype) / vae.config.scaling_factor + shift
    x = vae.decode(z).sample.float()
    if not bool(torch.isfinite(x).all()):  # NaN would silently become black pixels below
        raise ValueError("the VAE decoder produced NaN/inf pixels (non-finite latents or VAE weights)")
    x = x.clamp(-1.0, 1.0)
    return ((x + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
