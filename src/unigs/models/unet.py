"""The UniGS denoising UNet: 13 input channels, 8 output channels (paper §3.3, Eq. 8 and 11).

UniGS keeps the SD-1.5-inpainting UNet and only widens its first and last convolutions:

* input (Eq. 8)   ``CONCAT(z_t^i, z_t^s, m_c, z^c)`` = 4 + 4 + 1 + 4 = 13 channels, in this order;
* output (Eq. 11) ``[eps image (4), eps colormap (4)]`` = 8 channels.

SD-1.5-inpainting's own input order is ``[noisy latent (4), mask (1), masked-image latent (4)]``; its
pretrained weights go to the matching UniGS channels and the new colormap channels start at zero (§4.1),
so a widened model fed a zero colormap latent reproduces SD-inpainting exactly on its image half. The
channel layout itself (counts, slices, ``unet_input``) lives in :mod:`unigs.models.layout`.
The multi-task model adds a learned task embedding (4 tasks, ids from ``unigs.conditions.TASK_IDS``)
to the time embedding: diffusers' ``num_class_embeds``; the task id goes in as ``class_labels``.

Parameter counts (paper Table 10): SD-inpainting 859.54 M, UniGS 859.56 M — the 9/4 → 13/8 widening adds
23,044 weights (4 × 320 × 9 in ``conv_in`` + 4 × 320 × 9 + 4 in ``conv_out``).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from unigs.models.layout import CONTROL_SLICE, HALVES, IN_CHANNELS, MASK_SLICE, OUT_CHANNELS

SD_INPAINT_IN_CHANNELS = 9
SD_INPAINT_OUT_CHANNELS = 4
# Where each SD-inpainting input channel [noisy latent 0:4, mask 4, masked-image latent 5:9] goes in the
# UniGS input (Eq. 8, `unigs.models.layout`): noisy -> z_t^i 0:4, mask -> m_c 8, masked latent -> z^c 9:13.
SD_TO_UNIGS_IN = [*range(IN_CHANNELS)[HALVES["image"]], *range(IN_CHANNELS)[MASK_SLICE],
                  *range(IN_CHANNELS)[CONTROL_SLICE]]

# The UNet config of runwayml/stable-diffusion-inpainting (unet/config.json), written out so that the real
# architecture can be built with no download. Parameter count: 859,535,364.
SD15_INPAINT_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 9,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-05,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}

# The CPU-trainable UNet of the shipped default model: 128 px images, small VAE ×4 → 32×32 latents.
# Self-attention at 32×32 costs 2.5–3.3× (ENVIRONMENT.md), so the first (32×32) block has none; cross- and
# self-attention run at 16×16 and 8×8. cross_attention_dim 384 = MiniLM hidden size.
_SMALL_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": IN_CHANNELS,
    "out_channels": OUT_CHANNELS,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [64, 128, 128],
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "cross_attention_dim": 384,
    "attention_head_dim": 8,
}


def small_unet_config(**overrides: Any) -> dict[str, Any]:
    """Config of the small default UniGS UNet: latent 4×32×32, 13 in / 8 out, 10.80 M parameters.

    Keyword overrides replace keys; an unknown key raises ValueError naming it (every accepted key is a
    ``UNet2DConditionModel`` argument).
    """
    config = copy.deepcopy(_SMALL_UNET_CONFIG)
    _check_keys(overrides)
    config.update(overrides)
    return config


def _check_keys(config: dict[str, Any]) -> None:
    known = set(inspect.signature(UNet2DConditionModel.__init__).parameters) - {"self"}
    unknown = sorted(k for k in config if k not in known and not k.startswith("_"))
    if unknown:
        raise ValueError(f"unknown UNet2DConditionModel config key(s) {unknown}")


def build_unet(config: dict[str, Any], num_tasks: int | None = None) -> UNet2DConditionModel:
    """A randomly initialised UniGS UNet (13 in / 8 out) with the architecture of ``config``.

    ``config`` is a ``UNet2DConditionModel`` config (e.g. :data:`SD15_INPAINT_UNET_CONFIG` or
    :func:`small_unet_config`); its ``in_channels``/``out_channels`` are replaced by 13/8.
    ``num_tasks`` (e.g. 4) adds a task embedding added to the time embedding (``num_class_embeds``);
    ``None`` keeps whatever ``config`` says (default: none).
    """
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    _check_keys(config)
    config.update(in_channels=IN_CHANNELS, out_channels=OUT_CHANNELS)
    if num_tasks is not None:
        _check_num_tasks(num_tasks)
        config["num_class_embeds"] = num_tasks
    return UNet2DConditionModel(**config)


def _check_num_tasks(num_tasks: int) -> None:
    if not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive int or None, is {num_tasks!r}")


@torch.no_grad()
def widen_unet(sd_inpaint_unet: UNet2DConditionModel, num_tasks: int | None = None) -> UNet2DConditionModel:
    """Turn an SD-inpainting UNet (9 in / 4 out) into a UniGS UNet (13 in / 8 out), in place (§3.3, §4.1).

    ``conv_in``: SD channels [noisy 0:4, mask 4, masked latent 5:9] are copied to UniGS channels
    [z_t^i 0:4, m_c 8, z^c 9:13]; the new colormap channels 4:8 are zero. ``conv_out``: the image half
    (channels 0:4, weights and bias) is copied, the colormap half 4:8 is zero. ``num_tasks`` adds a
    zero-initialised task embedding (``num_class_embeds``), so that the widened model's image output
    equals the SD-inpainting output for every task id until training moves it.

    The module is modified in place and returned (no second copy of 860 M weights); deep-copy it first if
    the 9/4 model is still needed. The config records the new channel counts (``register_to_config``), so
    ``save_pretrained``/``from_pretrained`` round-trip the widened model.
    """
    cfg = sd_inpaint_unet.config
    if cfg.in_channels != SD_INPAINT_IN_CHANNELS or cfg.out_channels != SD_INPAINT_OUT_CHANNELS:
        raise ValueError(
            f"widen_unet needs an SD-inpainting UNet with 9 in / 4 out channels, "
            f"got {cfg.in_channels} in / {cfg.out_channels} out"
        )
    if num_tasks is not None:
        _check_num_tasks(num_tasks)
        if sd_inpaint_unet.class_embedding is not None:
            raise ValueError("widen_unet: this UNet already has a class embedding; pass num_tasks=None")

    old_in, old_out = sd_inpaint_unet.conv_in, sd_inpaint_unet.conv_out
    new_in = _like_conv(old_in, in_channels=IN_CHANNELS, out_channels=old_in.out_channels)
    new_in.weight.zero_()
    new_in.weight[:, SD_TO_UNIGS_IN] = old_in.weight
    new_in.bias.copy_(old_in.bias)

    new_out = _like_conv(old_out, in_channels=old_out.in_channels, out_channels=OUT_CHANNELS)
    new_out.weight.zero_()
    new_out.bias.zero_()
    new_out.weight[HALVES["image"]] = old_out.weight
    new_out.bias[HALVES["image"]] = old_out.bias

    sd_inpaint_unet.conv_in, sd_inpaint_unet.conv_out = new_in, new_out
    updates: dict[str, Any] = {"in_channels": IN_CHANNELS, "out_channels": OUT_CHANNELS}
    if num_tasks is not None:
        time_embed_dim = sd_inpaint_unet.time_embedding.linear_2.out_features
        emb = nn.Embedding(num_tasks, time_embed_dim).to(old_in.weight)
        emb.weight.zero_()
        sd_inpaint_unet.class_embedding = emb
        updates["num_class_embeds"] = num_tasks
    sd_inpaint_unet.register_to_config(**updates)
    return sd_inpaint_unet


def _like_conv(conv: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Conv2d:
    """A Conv2d with the geometry, dtype and device of ``conv`` but new channel counts."""
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module`` (trainable or not), e.g. 859,558,408 for the real UniGS UNet."""
    return sum(p.numel() for p in module.parameters())


def colormap_head_is_untrained(unet: UNet2DConditionModel) -> bool:
    """True when the colormap half of ``conv_out`` (channels 4:8) is all zero, as :func:`widen_unet` leaves
    it: such a UNet (SD-inpainting widened, never fine-tuned) predicts ε = 0 for the colormap latent, so its
    colormaps — and every mask decoded from them — carry no information about the input."""
    conv = unet.conv_out
    if conv.out_channels != OUT_CHANNELS:
        return False
    bias_zero = conv.bias is None or not bool(conv.bias[HALVES["colormap"]].any())
    return bias_zero and not bool(conv.weight[HALVES["colormap"]].any())
