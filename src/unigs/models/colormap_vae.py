"""The optional colormap decoder: a second VAE decoder, fine-tuned on colormaps, behind the model's encoder.

UniGS decodes both output halves with one VAE Υ (§3.3). A small VAE trained half on images and half on
colormaps caps what Φ can read from a decoded colormap (issue 16: exact targets through the shipped VAE
give entity AP^e 0.578 at most). A decoder fine-tuned on colormaps alone, with the encoder frozen
(`unigs train-vae` with ``decoder_only``, ``colormap_fraction: 1.0``), reads the *same* latents — so the
UNet trained on them stays valid — and draws cleaner palette colours. The model then decodes its image
half with `vae` and its colormap half with `colormap_vae`.

`colormap_vae` is an ``AutoencoderKL`` whose ``encoder`` and ``quant_conv`` are the model VAE's own modules
(shared, not copied) and whose ``post_quant_conv`` and ``decoder`` are the fine-tuned ones; a model file
stores only those under the key prefix :data:`PREFIX` with ``meta.colormap_decoder = True``.

:func:`decode_colormaps` is the one place where a colormap latent becomes pixels (pipelines, eval through
the pipelines, `benchmarks/ceiling.py`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from diffusers import AutoencoderKL

from unigs.models.meta import ModelMeta

PREFIX = "colormap_decoder"  # key prefix of the decoder's tensors inside a single-file UniGS model
DECODER_PARTS = ("post_quant_conv.", "decoder.")  # what the fine-tune changes; the rest is the model VAE's
ENCODER_PARTS = ("encoder.", "quant_conv.")


def decode_colormaps(vae: AutoencoderKL, latents: torch.Tensor,
                     colormap_vae: AutoencoderKL | None = None) -> np.ndarray:
    """Colormap latents `(B, 4, h, w)` (scaled, as the UNet predicts them) → colormaps `(B, H, W, 3) uint8`
    in [0, 255], through `colormap_vae` when the model has one, else through the model's `vae`."""
    from unigs.models.vae import decode_latents

    decoder = colormap_vae if colormap_vae is not None else vae
    return decode_latents(decoder, latents.to(decoder.dtype))


def flagged_meta(meta: ModelMeta, colormap_vae: AutoencoderKL | None) -> ModelMeta:
    """`meta` to save beside a model: ``colormap_decoder`` is True exactly when `colormap_vae` is saved
    with it (a stale flag never promises a decoder the file does not hold)."""
    return dataclasses.replace(meta, colormap_decoder=colormap_vae is not None)


def same_encoder(vae: AutoencoderKL, other: AutoencoderKL) -> bool:
    """Whether `other` maps pixels to the same latents as `vae`: equal encoder and quant_conv weights (up
    to fp16 rounding, the precision of a shipped model file), latent channels and scaling factor."""
    if other.config.latent_channels != vae.config.latent_channels or \
            float(other.config.scaling_factor) != float(vae.config.scaling_factor):
        return False
    mine, theirs = vae.state_dict(), other.state_dict()
    keys = [k for k in mine if k.startswith(ENCODER_PARTS)]
    return all(k in theirs and theirs[k].shape == mine[k].shape and
               torch.equal(theirs[k].half(), mine[k].half()) for k in keys)


def attach(vae: AutoencoderKL, decoder_vae: AutoencoderKL, source: str = "the colormap VAE") -> AutoencoderKL:
    """The colormap VAE of a model whose VAE is `vae`: `decoder_vae`'s decoder behind `vae`'s encoder.

    `decoder_vae` must have been fine-tuned with `vae`'s encoder frozen (:func:`same_encoder`), else the
    UNet's latents mean something else to it: a ValueError naming `source`.
    """
    if not same_encoder(vae, decoder_vae):
        raise ValueError(f"{source}: its encoder or scaling factor differs from the model VAE's; a colormap "
                         "decoder must be fine-tuned with the model's encoder frozen (train-vae "
                         "decoder_only with init = the model's VAE)")
    state = {k: v for k, v in decoder_vae.state_dict().items() if k.startswith(DECODER_PARTS)}
    return from_decoder_state(vae, state, source)


def decoder_state(colormap_vae: AutoencoderKL) -> dict[str, torch.Tensor]:
    """The tensors a model file stores for `colormap_vae`: its post_quant_conv and decoder only."""
    return {k: v for k, v in colormap_vae.state_dict().items() if k.startswith(DECODER_PARTS)}


def from_decoder_state(vae: AutoencoderKL, state: dict[str, torch.Tensor], source: str) -> AutoencoderKL:
    """A colormap VAE sharing `vae`'s encoder modules, with the decoder weights `state` (keys as in
    :func:`decoder_state`); a missing, extra or misshapen weight is a ValueError naming `source`."""
    from unigs.models import files

    with torch.random.fork_rng():  # the random init below must not move the caller's RNG
        colormap_vae = AutoencoderKL.from_config(vae.config)
    colormap_vae.encoder, colormap_vae.quant_conv = vae.encoder, vae.quant_conv
    full = {**{k: v for k, v in vae.state_dict().items() if k.startswith(ENCODER_PARTS)}, **state}
    wanted = set(decoder_state(colormap_vae))
    if set(state) != wanted:
        odd = sorted(set(state) ^ wanted)[:3]
        raise ValueError(f"{source}: the colormap decoder weights do not fit the model VAE's config "
                         f"(missing or unexpected: {odd})")
    files.load_weights_into(colormap_vae, full, "colormap decoder", source)
    param = next(vae.parameters())
    colormap_vae.to(param.device)
    if colormap_vae.dtype != param.dtype:  # (diffusers warns about any dtype cast, even a no-op one)
        colormap_vae.to(param.dtype)
    return colormap_vae.eval()
