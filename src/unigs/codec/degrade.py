"""A written-down model of what a VAE latent round trip does to an entity colormap (paper §3.2, Fig. 3).

UniGS decodes the generated colormap latent with the SD VAE (Eq. 5: M̂_c = Υ⁻¹(ẑ_0^s)) before Φ sees it.
Without VAE weights on the machine, benchmarks and tests use this stand-in, in five steps:

1. **Area downsample ×f** (f = 8, the SD VAE's factor): each latent cell holds the mean colour of its
   f×f pixels, so an entity smaller than a cell becomes a blend and thin parts vanish.
2. **Latent noise**: i.i.d. Gaussian per latent cell and channel (σ = ``latent_noise_std`` grey levels),
   the low-frequency, blotchy colour error of a decoded latent.
3. **Bilinear upsample ×f**: soft boundaries — a straight edge becomes a ramp ≈ 2f px wide whose middle
   holds interpolated colours (Fig. 3 "boundary"), black holes and gradients come from 1–2.
4. **Per-channel gain and offset**: one global colour shift per image, gain ~ N(1, ``gain_std``), offset
   ~ N(0, ``offset_std``) grey levels per channel (the VAE's colour cast).
5. **Pixel noise** ~ N(0, ``noise_std``) per pixel and channel, then clip to [0, 255] and round to uint8.

Defaults (f = 8, latent σ = 2, gain σ = 0.03, offset σ = 3, pixel σ = 2) are our estimate of an SD-VAE
round trip of a flat-colour map, not a measurement; ``benchmarks/codec.py --vae PATH`` runs the real VAE.
All randomness comes from the ``numpy.random.Generator`` passed in, so a seed reproduces the output.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _check_nonneg(**values: float) -> None:
    for name, value in values.items():
        if not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def simulate_latent_roundtrip(colormap, rng: np.random.Generator, *, factor: int = 8,
                              latent_noise_std: float = 2.0, gain_std: float = 0.03,
                              offset_std: float = 3.0, noise_std: float = 2.0) -> np.ndarray:
    """Degrade a colormap as a VAE latent round trip would (module docstring, steps 1–5).

    Args:
        colormap: ``(H, W, 3) uint8`` in [0, 255] (e.g. ``palette.encode(masks)``).
        rng: ``numpy.random.Generator``, the only source of randomness.
        factor: latent downsampling factor f ≥ 1 (H and W need not be multiples of it).
        latent_noise_std, gain_std, offset_std, noise_std: ≥ 0, see the module docstring.

    Returns:
        ``(H, W, 3) uint8``.
    """
    colormap = np.asarray(colormap)
    if colormap.ndim != 3 or colormap.shape[-1] != 3:
        raise ValueError(f"colormap must have shape (H, W, 3), got shape {colormap.shape}")
    if colormap.dtype != np.uint8:
        raise ValueError(f"colormap must be uint8 in [0, 255], got dtype {colormap.dtype}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
    _check_nonneg(latent_noise_std=latent_noise_std, gain_std=gain_std, offset_std=offset_std,
                  noise_std=noise_std)
    h, w, _ = colormap.shape
    x = torch.from_numpy(colormap).permute(2, 0, 1)[None].double()  # (1, 3, H, W)
    lh, lw = max(1, -(-h // factor)), max(1, -(-w // factor))
    z = F.adaptive_avg_pool2d(x, (lh, lw))  # 1. area downsample
    z = z + torch.from_numpy(rng.normal(0.0, latent_noise_std, z.shape))  # 2. latent noise
    y = F.interpolate(z, size=(h, w), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)  # 3.
    gain = torch.from_numpy(rng.normal(1.0, gain_std, 3))
    offset = torch.from_numpy(rng.normal(0.0, offset_std, 3))
    y = y * gain + offset  # 4. colour cast
    y = y + torch.from_numpy(rng.normal(0.0, noise_std, (h, w, 3)))  # 5. pixel noise
    return np.ascontiguousarray(y.clamp(0, 255).round().to(torch.uint8).numpy())
