"""The parts of a training run and how its checkpoints hold them (paper §4.1; STYLE.md §7).

* :func:`build_components` — a fresh (small) or SD-1.5-inpainting-widened 13/8 UNet with the frozen VAE,
  text encoder and noise schedule of a `TrainConfig`;
* :func:`write_checkpoint` / :func:`load_checkpoint_model` — one checkpoint folder: `training_state.pt`
  (raw UNet, EMA, optimizer, LR scheduler, step, RNG) plus the EMA weights for inference, either as one
  self-describing `model.safetensors` with the VAE and text encoder copied in (`checkpoint_frozen: copy`),
  or as `ema_unet.safetensors` that names the frozen parts' local paths (`checkpoint_frozen: reference`:
  ~0.8 GB less per SD-1.5 checkpoint; the frozen parts are never trained, so every checkpoint's copy is the
  same file again);
* :func:`resume_checkpoint` — which checkpoint `--resume [PATH]` continues from.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from unigs import checkpoint as ckpt
from unigs.conditions import TASKS
from unigs.config import config_from_dict
from unigs.data.loader import dataset_entries
from unigs.models.files import read_unigs_header
from unigs.models.loading import UniGSComponents, default_scheduler, load_unigs, save_unigs
from unigs.models.meta import MINILM, SAVED, ModelMeta
from unigs.models.text import load_text_encoder
from unigs.models.unet import SD15_INPAINT_UNET_CONFIG, build_unet, small_unet_config
from unigs.models.vae import latent_factor
from unigs.train_config import TrainConfig

INFERENCE_FILE = "model.safetensors"  # checkpoint_frozen: copy (load_unigs reads it)
EMA_UNET_FILE = "ema_unet.safetensors"  # checkpoint_frozen: reference (load_checkpoint_model reads it)
PATH_KEYS = ("init", "vae", "text_encoder")  # config keys that name frozen parts on disk


def build_components(config: TrainConfig, vocabulary: list[str] | None = None) -> UniGSComponents:
    """UniGSComponents for training: a fresh or widened 13/8 UNet, frozen VAE and text encoder, the scheduler.

    `init: scratch` builds `small_unet_config(**config.unet)` (cross-attention width = the text encoder's,
    sample size = image_size / VAE factor) with seed `config.seed`; a path loads SD-1.5-inpainting (or a
    saved UniGS model) and widens it 9/4 → 13/8 with zero new channels (§4.1). The task embedding (4 tasks)
    is on exactly when `tasks: multi`.
    """
    num_tasks = len(TASKS) if config.multitask else None
    if config.init == "scratch":
        tokenizer, text_encoder = load_text_encoder(config.text_encoder)
        vae = _load_vae(config.vae)
        factor = latent_factor(vae)
        dim = int(text_encoder.config.hidden_size)
        if config.unet.get("cross_attention_dim", dim) != dim:
            raise ValueError(f"unet.cross_attention_dim {config.unet['cross_attention_dim']} must equal the "
                             f"text encoder width {dim}")
        unet_config = small_unet_config(**{**config.unet, "cross_attention_dim": dim,
                                           "sample_size": config.image_size // factor})
        torch.manual_seed(config.seed)
        unet = build_unet(unet_config, num_tasks=num_tasks)
        parts = (unet, vae, text_encoder, tokenizer, default_scheduler(config.noise_schedule))
        colormap_vae = None
        text_kind = MINILM if config.text_encoder in (None, MINILM) else SAVED
    else:
        components = load_unigs(config.init, num_tasks=num_tasks)
        if config.noise_schedule != "sd15":  # SD's weights are ε-models: this one is fine-tuned to v
            components.scheduler = default_scheduler(config.noise_schedule)
        if config.vae is not None:
            components.vae = _load_vae(config.vae)
        # a MiniLM text encoder stays a reference to the package (not 45 MB of weights in every checkpoint)
        text_kind = components.meta.text_encoder
        if config.text_encoder is not None:
            components.tokenizer, components.text_encoder = load_text_encoder(config.text_encoder)
            text_kind = MINILM if config.text_encoder == MINILM else SAVED
        parts = (components.unet, components.vae, components.text_encoder, components.tokenizer,
                 components.scheduler)
        colormap_vae = components.colormap_vae
        factor = latent_factor(components.vae)
    if config.image_size % factor:
        raise ValueError(f"image_size {config.image_size} must be divisible by the VAE factor {factor}")
    meta = ModelMeta(
        image_size=config.image_size, grid=config.grid, latent_factor=factor, multitask=config.multitask,
        tasks=TASKS if config.multitask else (config.tasks,), num_tasks=num_tasks, text_encoder=text_kind,
        source="unigs train", train_config=asdict(config),
        # what the model knows: pipelines warn about names outside it (an unknown name finds nothing)
        vocabulary=tuple(vocabulary or ()), domain=data_domain(config),
    )
    return UniGSComponents(*parts, meta, colormap_vae)


def data_domain(config: TrainConfig) -> str:
    """A one-line description of the training images, kept in the model's meta."""
    scenes = "procedural scenes (unigs.data.scenes): flat shapes on textured bands, no real photos"
    return "; ".join(scenes if e["data"] == "scenes" else f"COCO-format images of {Path(e['data']).name}"
                     for e in dataset_entries(config))


def _load_vae(folder: str | None) -> AutoencoderKL:
    if folder is None or not (Path(folder) / "config.json").is_file():
        raise FileNotFoundError(f"VAE folder {folder!r} has no config.json "
                                "(train one with `unigs train-vae`)")
    return AutoencoderKL.from_pretrained(folder, local_files_only=True)


# ------------------------------------------------------------------------------------------ checkpoints
def write_checkpoint(folder: Path, config: TrainConfig, components: UniGSComponents,
                     ema_unet: torch.nn.Module, state: dict) -> None:
    """Fill the (temporary) checkpoint `folder`: the EMA weights for inference and `state` for resuming."""
    meta = replace(components.meta, step=state["step"])
    if config.checkpoint_frozen == "copy":  # self-describing single file (VAE and text encoder inside)
        inference = type(components)(ema_unet, components.vae, components.text_encoder, components.tokenizer,
                                     components.scheduler, meta)
        save_unigs(inference, folder / INFERENCE_FILE, single_file=True)
    else:
        train_config = asdict(config)
        for key in PATH_KEYS:  # absolute, so the checkpoint loads from any working directory
            value = train_config[key]
            if value not in (None, "scratch", "minilm") and Path(value).exists():
                train_config[key] = str(Path(value).resolve())
        ckpt.save_weights(folder / EMA_UNET_FILE, ema_unet.state_dict(),
                          {"meta": replace(meta, train_config=train_config).to_dict()})
    ckpt.save_training_state(folder, state)


def load_checkpoint_model(folder: str | Path) -> UniGSComponents:
    """UniGSComponents of a checkpoint folder (EMA weights), whichever way it holds the frozen parts."""
    folder = Path(folder)
    if (folder / INFERENCE_FILE).is_file():
        return load_unigs(folder / INFERENCE_FILE)
    tensors, info = ckpt.load_weights(folder / EMA_UNET_FILE)
    meta = ModelMeta.from_dict(info.get("meta"), str(folder / EMA_UNET_FILE))
    if meta.train_config is None:
        raise ValueError(f"{folder / EMA_UNET_FILE}: meta.train_config is missing; it names the frozen parts")
    with torch.random.fork_rng():  # building the UNet before loading its weights must not move the RNG
        components = build_components(config_from_dict(meta.train_config, TrainConfig))
    components.unet.load_state_dict(tensors, strict=True)
    components.unet.eval()
    components.meta = meta
    return components


def resume_checkpoint(resume: bool | str | Path, ckpt_root: Path, move_newer: bool = True) -> Path:
    """The checkpoint `--resume` continues from: the newest under `ckpt_root` (resume=True) or the folder
    given. Resuming from an older checkpoint of this run moves its newer ones aside into
    `ckpt_root/abandoned-<time>/` (kept, but no longer "the newest", and never pruned by keep_checkpoints)."""
    if resume is True:
        latest = ckpt.latest_checkpoint(ckpt_root)
        if latest is None:
            raise FileNotFoundError(f"--resume: no checkpoint under {ckpt_root}")
        return latest
    chosen = Path(resume)
    if not (chosen / ckpt.TRAINING_STATE).is_file():
        raise FileNotFoundError(f"--resume {str(chosen)!r} is not a checkpoint folder "
                                f"(no {ckpt.TRAINING_STATE}; pick one of <run>/checkpoints/step-*)")
    newer = [p for p in ckpt.list_checkpoints(ckpt_root)
             if ckpt_root.resolve() == chosen.resolve().parent and p.name > chosen.name]
    if newer and move_newer:
        aside = ckpt_root / f"abandoned-{time.strftime('%Y%m%d-%H%M%S')}"
        aside.mkdir()
        for p in newer:
            p.rename(aside / p.name)
        print(f"--resume {chosen.name}: moved the newer {[p.name for p in newer]} to {aside}")
    return chosen


# ---------------------------------------------------------------------------------------------- sizes
def part_sizes(config: TrainConfig) -> dict[str, int]:
    """Parameter counts of the UNet (as trained: widened, task embedding) and of the frozen VAE and text
    encoder, without loading any weight: configs read from `init` when it is on disk, else SD-1.5's."""
    num_tasks = len(TASKS) if config.multitask else None
    init = Path(config.init)
    # a UniGS single file holds its configs
    header = read_unigs_header(init) if init.is_file() and init.suffix == ".safetensors" else None
    saved = header[1] if header is not None else None
    unet_json, vae_json = init / "unet" / "config.json", Path(config.vae or init / "vae") / "config.json"
    if config.init == "scratch":
        unet_config = small_unet_config(**config.unet)
    elif saved is not None:
        unet_config = saved["unet_config"]
    else:
        unet_config = json.loads(unet_json.read_text()) if unet_json.is_file() else SD15_INPAINT_UNET_CONFIG
    vae_config = (json.loads(vae_json.read_text()) if vae_json.is_file()
                  else saved["vae_config"] if saved is not None and config.vae is None else None)
    with torch.device("meta"):  # shapes only: no memory, no weights read
        unet = build_unet(unet_config, num_tasks)
        vae = AutoencoderKL.from_config(vae_config) if vae_config is not None else None
    sizes = {"unet": sum(p.numel() for p in unet.parameters())}
    if vae is not None:
        sizes["vae"] = sum(p.numel() for p in vae.parameters())
    elif config.init != "scratch":
        sizes["vae"] = SD15_VAE_PARAMETERS
    if config.init != "scratch" and saved is None and config.text_encoder is None:
        sizes["text_encoder"] = SD15_TEXT_ENCODER_PARAMETERS
    return sizes


SD15_VAE_PARAMETERS = 83_653_863  # AutoencoderKL of SD-1.5
SD15_TEXT_ENCODER_PARAMETERS = 123_060_480  # CLIP ViT-L/14 text model of SD-1.5


def checkpoint_bytes(config: TrainConfig, sizes: dict[str, int]) -> dict[str, int]:
    """Estimated bytes of one checkpoint folder: fp32 raw UNet + EMA in training_state.pt, AdamW's two fp32
    moments (8-bit Adam: ~2 bytes per parameter), the EMA for inference, and the frozen parts if copied."""
    unet = sizes["unet"]
    optimizer = unet * (2 if config.use_8bit_adam else 8)
    out = {"training_state": unet * 4 * 2 + optimizer, "inference_unet": unet * 4}
    if config.checkpoint_frozen == "copy":
        out["frozen_copies"] = 4 * (sizes.get("vae", 0) + sizes.get("text_encoder", 0))
    out["total"] = sum(out.values())
    return out
