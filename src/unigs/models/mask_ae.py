"""The shallow mask autoencoder of the bit-mask codec (LDMSeg, seed 002), and the codec built on it.

LDMSeg encodes the 7 bit planes of an instance-id map (`unigs.codec.bitmask`) with a small convolutional
autoencoder: a few strided convolutions down to 4 latent channels, the mirror image up to 7 bit logits,
trained with a cross-entropy on the bits and a BCE/Dice loss on the instance masks, and **no KL** (the
latent is a plain code; its scale is fixed after training to 1/std, as for SD's VAE). ~0.5–2 M
parameters, against the VAE's tens of millions. With ``downsample=8`` its latents have the shape SD's VAE
gives (4 × H/8 × W/8); ``downsample=4`` matches the small VAE of the default model (4 × H/4 × W/4).

:class:`BitMaskCodec` is the codec interface, the counterpart of Ψ + VAE + Φ:
``encode(masks) → (4, h, w) latents`` and ``decode(latents) → (K, H, W) masks``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unigs.codec import bitmask

WEIGHTS_NAME = "mask_ae.safetensors"


@dataclass
class MaskAEConfig:
    """Shape of the autoencoder. `downsample` = 2^len(channels[1:]) must divide the map size."""

    channels: tuple[int, ...] = (32, 64, 128, 128)  # first = full resolution; each further one halves it
    latent_channels: int = 4
    scaling_factor: float = 1.0  # latents are multiplied by this (1/std after training)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) < 1 or min(self.channels) < 1:
            raise ValueError(f"channels must be one or more positive widths, got {list(self.channels)}")
        if int(self.latent_channels) < 1:
            raise ValueError(f"latent_channels must be >= 1, is {self.latent_channels}")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.channels) - 1)


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    groups = 8 if c_out % 8 == 0 else 1
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(groups, c_out),
                         nn.SiLU())


class MaskAE(nn.Module):
    """Bits `(B, 7, H, W)` in [−1, 1] → latents `(B, 4, H/f, W/f)` → bit logits `(B, 7, H, W)`."""

    def __init__(self, config: MaskAEConfig | None = None):
        super().__init__()
        self.config = config or MaskAEConfig()
        ch = self.config.channels
        down = [_block(bitmask.NUM_BITS, ch[0])]
        down += [_block(a, b, stride=2) for a, b in zip(ch[:-1], ch[1:], strict=True)]
        self.encoder = nn.Sequential(*down, nn.Conv2d(ch[-1], self.config.latent_channels, 1))
        up: list[nn.Module] = [nn.Conv2d(self.config.latent_channels, ch[-1], 3, padding=1)]
        for a, b in zip(ch[::-1][:-1], ch[::-1][1:], strict=True):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), _block(a, b)]
        self.decoder = nn.Sequential(*up, _block(ch[0], ch[0]), nn.Conv2d(ch[0], bitmask.NUM_BITS, 1))

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        """Scaled latents of bit planes `(B, 7, H, W)`; H, W divisible by the downsampling factor."""
        f = self.config.downsample
        if bits.ndim != 4 or bits.shape[1] != bitmask.NUM_BITS:
            raise ValueError(f"bits must have shape (B, {bitmask.NUM_BITS}, H, W), got {tuple(bits.shape)}")
        if bits.shape[-2] % f or bits.shape[-1] % f:
            raise ValueError(f"the map size {tuple(bits.shape[-2:])} must be divisible by the mask "
                             f"autoencoder's downsampling factor {f}")
        return self.encoder(bits) * self.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Bit logits `(B, 7, H, W)` of scaled latents `(B, 4, h, w)` (> 0 = bit set)."""
        if latents.ndim != 4 or latents.shape[1] != self.config.latent_channels:
            raise ValueError(f"latents must have shape (B, {self.config.latent_channels}, h, w), "
                             f"got {tuple(latents.shape)}")
        return self.decoder(latents / self.config.scaling_factor)

    def forward(self, bits: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(bits))


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def id_log_probs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log P(pixel id = k) under independent bits: `(B, 7, H, W)` logits, `(K,)` ids → `(B, K, H, W)`."""
    codes = ((ids[:, None] >> torch.arange(bitmask.NUM_BITS, device=ids.device)) & 1).float()  # (K, 7)
    on, off = F.logsigmoid(logits), F.logsigmoid(-logits)  # (B, 7, H, W)
    return torch.einsum("kb,nbhw->nkhw", codes, on) + torch.einsum("kb,nbhw->nkhw", 1 - codes, off)


def mask_ae_loss(logits: torch.Tensor, bits: torch.Tensor, ids: torch.Tensor,
                 dice_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """LDMSeg's loss: cross-entropy on the bits + `dice_weight` × (BCE + Dice) on each id's mask.

    logits, bits: `(B, 7, H, W)` (bits in {−1, +1}); ids: `(B, H, W)` int64 target id maps. The mask terms
    use the ids present in each map, P(id = k) being the product of the bit probabilities, so a pixel
    with one wrong bit costs more where the whole instance goes wrong (a small object's bits matter as
    much as a large one's under Dice). Returns `(loss, parts)`.
    """
    bit_ce = F.binary_cross_entropy_with_logits(logits, (bits > 0).float())
    mask_bce, dice = logits.new_zeros(()), logits.new_zeros(())
    for b in range(len(ids)):
        present = torch.unique(ids[b])
        target = (ids[b][None] == present[:, None, None]).float()  # (K, H, W)
        logp = id_log_probs(logits[b:b + 1], present)[0].clamp(max=-1e-6)
        mask_bce = mask_bce - (target * logp + (1 - target) * torch.log1p(-logp.exp())).mean()
        p = logp.exp()
        inter, total = (p * target).sum((1, 2)), (p + target).sum((1, 2))
        dice = dice + (1 - (2 * inter + 1) / (total + 1)).mean()
    mask_bce, dice = mask_bce / len(ids), dice / len(ids)
    loss = bit_ce + dice_weight * (mask_bce + dice)
    parts = {"bit_ce": bit_ce, "mask_bce": mask_bce, "dice": dice}
    return loss, {k: float(v.detach()) for k, v in parts.items()}


def save_mask_ae(model: MaskAE, folder: str | Path) -> Path:
    """Write `<folder>/mask_ae.safetensors` (weights + config in its metadata), atomically."""
    from unigs.checkpoint import save_weights

    Path(folder).mkdir(parents=True, exist_ok=True)
    return save_weights(Path(folder) / WEIGHTS_NAME, model.state_dict(), asdict(model.config))


def load_mask_ae(path: str | Path) -> MaskAE:
    """A :class:`MaskAE` from a folder holding `mask_ae.safetensors` (or that file), in eval mode."""
    from unigs.checkpoint import load_weights

    path = Path(path)
    state, config = load_weights(path / WEIGHTS_NAME if path.is_dir() else path)
    model = MaskAE(MaskAEConfig(**config))
    model.load_state_dict(state)
    return model.eval()


class BitMaskCodec:
    """Masks ↔ latents through the bit planes and a trained :class:`MaskAE` (the colormap codec's peer)."""

    def __init__(self, model: MaskAE):
        self.model = model.eval()

    @classmethod
    def from_pretrained(cls, path: str | Path) -> BitMaskCodec:
        return cls(load_mask_ae(path))

    @torch.no_grad()
    def encode(self, masks, ids=None) -> torch.Tensor:
        """`(N, H, W)` masks → `(4, H/f, W/f)` float32 latents (scaled; ids 1..N unless given)."""
        bits = torch.from_numpy(bitmask.encode(masks, ids))[None]
        param = next(self.model.parameters())
        return self.model.encode(bits.to(param.device, param.dtype))[0].float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, keep_background: bool = False) -> np.ndarray:
        """`(4, h, w)` latents → `(K, H, W) bool` masks, one per id present, ordered by id."""
        if not isinstance(latents, torch.Tensor) or latents.ndim != 3:
            got = getattr(latents, "shape", type(latents))
            raise ValueError(f"latents must be one (C, h, w) tensor, got {got}")
        param = next(self.model.parameters())
        logits = self.model.decode(latents[None].to(param.device, param.dtype))[0]
        return bitmask.decode(logits.float().cpu().numpy(), keep_background=keep_background)
