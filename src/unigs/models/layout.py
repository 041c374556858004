"""The UniGS UNet's channel layout (paper §3.3, Eq. 8 and 11), written once.

    UNet input  (Eq. 8)  = CONCAT(z_t^i, z_t^s, m_c, z^c)   channels 0:4 | 4:8 | 8:9 | 9:13  = 13
    UNet output (Eq. 11) = ε image half ‖ ε colormap half    channels 0:4 | 4:8              = 8

The 8-channel latent the sampler carries (and the UNet's ε) is the image half then the colormap half
(:data:`HALVES`); the input appends the coarse mask m_c and the control latent z^c to it. Training
(`unigs.train`, `unigs.batches`), the UNet builders (`unigs.models.unet`) and the sampler
(`unigs.pipelines.core`) all read the layout from here, so it cannot drift between them.

Table 2's ✗ column (`unigs.conditions.COPIES_CONTROL`) names the half a task copies from its control;
:func:`copied_half` turns it into the half name the sampler pins (`known_half`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unigs.conditions import COPIES_CONTROL, check_task

LATENT_CHANNELS = 4  # one VAE latent: each half, and the control z^c
MASK_CHANNELS = 1  # the coarse mask m_c on the latent grid
OUT_CHANNELS = 2 * LATENT_CHANNELS  # Eq. 11: 8
IN_CHANNELS = OUT_CHANNELS + MASK_CHANNELS + LATENT_CHANNELS  # Eq. 8: 13

# The two halves of the 8-channel latent / UNet output (and the first 8 input channels), in this order.
HALVES: dict[str, slice] = {"image": slice(0, LATENT_CHANNELS),
                            "colormap": slice(LATENT_CHANNELS, OUT_CHANNELS)}
MASK_SLICE = slice(OUT_CHANNELS, OUT_CHANNELS + MASK_CHANNELS)  # input channel 8
CONTROL_SLICE = slice(OUT_CHANNELS + MASK_CHANNELS, IN_CHANNELS)  # input channels 9:13


def unet_input(z_image: torch.Tensor, z_colormap: torch.Tensor, mask_latent: torch.Tensor,
               control: torch.Tensor) -> torch.Tensor:
    """Eq. 8: CONCAT(z_t^i, z_t^s, m_c, z^c) → `(B, 13, h, w)`.

    Args:
        z_image, z_colormap: the noisy halves z_t^i, z_t^s, `(B, 4, h, w)` each.
        mask_latent: m_c on the latent grid, `(B, 1, h, w)` in {0, 1} (:func:`mask_to_latent`).
        control: z^c, `(B, 4, h, w)`, scaled like the halves.
    """
    parts = (("z_image", z_image, LATENT_CHANNELS), ("z_colormap", z_colormap, LATENT_CHANNELS),
             ("mask_latent", mask_latent, MASK_CHANNELS), ("control", control, LATENT_CHANNELS))
    for name, tensor, channels in parts:
        if tensor.ndim != 4 or tensor.shape[1] != channels:
            raise ValueError(f"{name} must be (B, {channels}, h, w), got shape {tuple(tensor.shape)}")
    return torch.cat([z_image, z_colormap, mask_latent, control], dim=1)


def split_halves(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(B, 8, h, w)` latent or ε (Eq. 11) → its image half and colormap half, `(B, 4, h, w)` views each."""
    if z.ndim != 4 or z.shape[1] != OUT_CHANNELS:
        raise ValueError(f"split_halves needs a (B, {OUT_CHANNELS}, h, w) tensor, got shape {tuple(z.shape)}")
    return z[:, HALVES["image"]], z[:, HALVES["colormap"]]


def mask_to_latent(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize the pixel coarse mask m_c to the latent grid (Eq. 8's third part).

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


def copied_half(task: str) -> str | None:
    """The half of `task`'s output that Table 2 marks ✗ (it reproduces the control): "image" (referring,
    entity), "colormap" (synthesis) or None (inpainting generates both)."""
    copies = COPIES_CONTROL[check_task(task)]
    names = [name for name, copied in zip(HALVES, copies, strict=True) if copied]
    return names[0] if names else None
