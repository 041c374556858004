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

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from safetensors.torch import save_file
from torch import nn

from unigs.models import colormap_vae as cmvae
from unigs.models import files
from unigs.models.files import UNIGS_JSON
from unigs.models.meta import MINILM, ModelMeta, meta_of_unet
from unigs.models.text import check_tokenizer_files, load_text_encoder
from unigs.models.unet import SD_INPAINT_IN_CHANNELS, widen_unet

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


def default_model_path() -> Path:
    """The bundled default model shipped inside the package (fp16 single file; may be absent in a checkout
    that has not trained it yet)."""
    return Path(__file__).resolve().parents[1] / "assets" / "default.safetensors"


# The same β schedule rescaled to zero terminal SNR, with v-prediction and trailing timesteps (Lin et al.
# 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed"). With SD's schedule ᾱ_999 = 0.0047:
# a training input at t = 999 still holds 0.07·z_0, and a colormap latent's mean (mostly black: channel
# 3 ≈ 2.4 in the small VAE) is plain to read there, so a model learns to take the colormap's mean colour
# from x_t instead of from the conditions — and sampling from pure noise (mean 0) then gives image-like
# colormaps. At zero terminal SNR x_999 is pure noise in training as in sampling.
ZERO_SNR_SCHEDULER_CONFIG: dict[str, Any] = {
    **SD15_SCHEDULER_CONFIG, "rescale_betas_zero_snr": True, "prediction_type": "v_prediction",
    "timestep_spacing": "trailing",
}
NOISE_SCHEDULES = {"sd15": SD15_SCHEDULER_CONFIG, "zero_snr": ZERO_SNR_SCHEDULER_CONFIG}


def default_scheduler(noise_schedule: str = "sd15") -> DDIMScheduler:
    """DDIM with SD-1.5's scaled-linear β schedule (1000 training steps, ε-prediction, Eq. 2), or with
    ``noise_schedule="zero_snr"`` the same schedule at zero terminal SNR (v-prediction, trailing steps)."""
    if noise_schedule not in NOISE_SCHEDULES:
        raise ValueError(f"noise_schedule must be one of {list(NOISE_SCHEDULES)}, is {noise_schedule!r}")
    return DDIMScheduler(**NOISE_SCHEDULES[noise_schedule])


@dataclass
class UniGSComponents:
    """Everything a UniGS pipeline needs.

    unet: 13 in / 8 out ``UNet2DConditionModel`` (task id as ``class_labels`` when ``meta.multitask``).
    vae: ``AutoencoderKL`` (Υ), text_encoder + tokenizer (τ, 77 tokens), scheduler: any diffusers scheduler.
    meta: the model's facts (`unigs.models.meta.ModelMeta`: image_size, grid, tasks, text encoder kind,
    vocabulary, provenance ...).
    colormap_vae: optional ``AutoencoderKL`` that decodes the colormap half (`unigs.models.colormap_vae`:
    the model VAE's encoder, a decoder fine-tuned on colormaps); None: ``vae`` decodes both halves.
    """

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: nn.Module
    tokenizer: Any
    scheduler: Any
    meta: ModelMeta
    colormap_vae: AutoencoderKL | None = None


# --------------------------------------------------------------------------------------------- helpers

_WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    return path


def _require_model_folder(folder: Path, name: str) -> Path:
    """``folder/name`` must hold a diffusers model: config.json and a weight file."""
    sub = _require(folder / name, f"model subfolder {name!r}:")
    _require(sub / "config.json", f"{name} config")
    if not any(sub.glob("diffusion_pytorch_model*")):
        raise FileNotFoundError(f"{name} weights {str(sub / _WEIGHT_NAMES[0])!r} (or .bin) do not exist")
    return sub


def _from_pretrained(cls: type, folder: Path, name: str) -> Any:
    _require_model_folder(folder, name)
    try:
        return cls.from_pretrained(str(folder), subfolder=name, local_files_only=True).eval()
    except OSError as err:  # diffusers/hub "no file named ..." → one clear sentence
        raise FileNotFoundError(f"cannot load {name} from {str(folder / name)!r}: {err}") from err
    except (ValueError, RuntimeError, TypeError, KeyError) as err:  # damaged config or weights
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"cannot load {name} from {str(folder / name)!r} (damaged?): {first}") from None
    except Exception as err:  # noqa: BLE001 — safetensors' own error for a truncated file
        if type(err).__name__ != "SafetensorError":
            raise
        raise ValueError(f"cannot load {name} from {str(folder / name)!r}: truncated or damaged weights "
                         f"({err})") from None


def _load_scheduler(folder: Path) -> Any:
    cfg_path = _require(folder / "scheduler_config.json", "scheduler config")
    cfg = json.loads(cfg_path.read_text())
    cls = getattr(diffusers, cfg.get("_class_name", "DDIMScheduler"), None)
    if cls is None:
        raise ValueError(f"unknown scheduler class {cfg.get('_class_name')!r} in {str(cfg_path)!r}")
    return cls.from_config(cfg)


# ------------------------------------------------------------------------------------ Stable Diffusion


def load_stable_diffusion(
    path: str | os.PathLike, config_dir: str | os.PathLike | None = None
) -> UniGSComponents:
    """SD-1.5(-inpainting) parts, unchanged (the UNet keeps its 9/4 or 4/4 channels), from local files.

    path: a diffusers folder (``unet/ vae/ text_encoder/ tokenizer/ scheduler/``) or one original-format
    ``.safetensors``/``.ckpt`` file; the single file needs ``config_dir``, a local diffusers-layout folder
    holding the JSON and tokenizer files (diffusers would otherwise fetch them from the hub).
    The scheduler is the checkpoint's noise schedule; DDIM as in the paper.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Stable Diffusion checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        unet = _from_pretrained(UNet2DConditionModel, path, "unet")
        vae = _from_pretrained(AutoencoderKL, path, "vae")
        tokenizer, text_encoder = load_text_encoder(path)
        scheduler = DDIMScheduler.from_config(_load_scheduler(path / "scheduler").config)
    else:
        unet, vae, text_encoder, tokenizer, scheduler = _load_sd_single_file(path, config_dir)
    meta = meta_of_unet(unet, vae, str(path))
    return UniGSComponents(unet, vae, text_encoder.eval(), tokenizer, scheduler, meta)


def _load_sd_single_file(path: Path, config_dir: str | os.PathLike | None) -> tuple:
    if path.suffix not in (".safetensors", ".ckpt"):
        raise ValueError(f"a single-file checkpoint must end in .safetensors or .ckpt, is {path.name!r}")
    if config_dir is None:
        raise FileNotFoundError(
            f"loading the single file {str(path)!r} needs config_dir (on the command line --config-dir): a "
            "local diffusers-layout folder with model_index.json, unet/vae/text_encoder configs and "
            "tokenizer files"
        )
    config_dir = Path(config_dir)
    index = json.loads(_require(config_dir / "model_index.json", "pipeline config").read_text())
    for name in ("unet", "vae", "text_encoder"):
        _require(config_dir / name / "config.json", f"{name} config")
    check_tokenizer_files(_require(config_dir / "tokenizer", "tokenizer folder"))
    _require(config_dir / "scheduler" / "scheduler_config.json", "scheduler config")
    pipeline_cls = getattr(diffusers, index.get("_class_name", "StableDiffusionPipeline"), None)
    if pipeline_cls is None or not hasattr(pipeline_cls, "from_single_file"):
        raise ValueError(
            f"model_index.json in {str(config_dir)!r} names an unknown pipeline {index.get('_class_name')!r}"
        )
    try:
        pipe = pipeline_cls.from_single_file(
            str(path),
            config=str(config_dir),
            local_files_only=True,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    except OSError as err:
        raise FileNotFoundError(f"cannot load the single-file checkpoint {str(path)!r}: {err}") from err
    except (RuntimeError, NotImplementedError, KeyError) as err:
        # weights missing from the file leave parameters on the meta device ("Cannot copy out of meta
        # tensor"): not an SD-1.5 checkpoint in the original layout, or one that does not match config_dir
        raise ValueError(f"the single-file checkpoint {str(path)!r} does not match the SD-1.5 layout of "
                         f"{str(config_dir)!r} (missing or misshapen weights: {str(err)[:200]})") from err
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    return pipe.unet.eval(), pipe.vae.eval(), pipe.text_encoder, pipe.tokenizer, scheduler


# ---------------------------------------------------------------------------------------------- UniGS


def load_unigs(
    path: str | os.PathLike,
    config_dir: str | os.PathLike | None = None,
    num_tasks: int | None = 4,
) -> UniGSComponents:
    """Load a UniGS model from local files.

    path: a folder saved by :func:`save_unigs` (has ``unigs.json``); a single ``.safetensors`` saved by
    ``save_unigs(..., single_file=True)`` (config in its metadata); or an SD-1.5-inpainting source (diffusers
    folder, or original single file + ``config_dir``), whose UNet is widened 9/4 → 13/8 with a zero task
    embedding of ``num_tasks`` entries (``None``: single-task, no embedding).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"UniGS model {str(path)!r} does not exist")
    if path.is_dir() and (path / UNIGS_JSON).exists():
        return _load_unigs_folder(path)
    if path.is_file() and path.suffix == ".safetensors" and files.read_unigs_header(path) is not None:
        return _load_unigs_file(path)
    if path.is_dir() and not (path / "unet").is_dir():
        raise FileNotFoundError(f"{str(path)!r} holds neither {UNIGS_JSON} nor an SD unet/ subfolder")
    sd = load_stable_diffusion(path, config_dir)
    if sd.unet.config.in_channels != SD_INPAINT_IN_CHANNELS:
        raise ValueError(
            f"UniGS starts from an SD-inpainting UNet with 9 input channels; {str(path)!r} has "
            f"{sd.unet.config.in_channels}"
        )
    sd.unet = widen_unet(sd.unet, num_tasks=num_tasks)
    sd.meta = meta_of_unet(sd.unet, sd.vae, str(path))
    return sd


def _load_unigs_folder(path: Path) -> UniGSComponents:
    meta, _ = files.read_unigs_json(path / UNIGS_JSON)
    unet = _from_pretrained(UNet2DConditionModel, path, "unet")
    vae = _from_pretrained(AutoencoderKL, path, "vae")
    files.check_finite_weights(unet, "unet", path)
    files.check_finite_weights(vae, "vae", path)
    colormap_vae = None
    if meta.colormap_decoder:
        colormap_vae = cmvae.attach(vae, _from_pretrained(AutoencoderKL, path, "colormap_vae"),
                                    str(path / "colormap_vae"))
    if meta.text_encoder == MINILM:
        tokenizer, text_encoder = load_text_encoder(None)
    else:
        _require(path / "text_encoder", "text encoder subfolder")
        tokenizer, text_encoder = load_text_encoder(path)
    scheduler = _load_scheduler(_require(path / "scheduler", "scheduler subfolder"))
    return UniGSComponents(unet, vae, text_encoder, tokenizer, scheduler, meta, colormap_vae)


def save_unigs(components: UniGSComponents, path: str | os.PathLike, single_file: bool = False,
               dtype: torch.dtype | None = None) -> Path:
    """Save ``components`` for :func:`load_unigs`; returns the written path.

    Folder (default): ``unigs.json`` (format, version, meta), ``unet/`` ``vae/`` (safetensors),
    ``scheduler/``, and ``text_encoder/`` + ``tokenizer/`` unless ``meta.text_encoder == "minilm"``
    (then only the reference is stored: the weights come from the installed package).
    ``single_file=True``: one ``.safetensors`` (path must end in it) with tensors prefixed ``unet.``,
    ``vae.``, ``text_encoder.`` and every config (and the tokenizer files) in its metadata.
    A ``colormap_vae`` is saved too (folder: ``colormap_vae/``; single file: its decoder under the prefix
    ``colormap_decoder.``), flagged by ``meta.colormap_decoder = True``.
    Both write the same description (`unigs.models.files.describe`: format, version, meta).
    ``dtype`` (single file only, e.g. ``torch.float16`` to halve the size of a shipped model): floating-point
    tensors are stored in it; loading copies them back into the model's own fp32 parameters.
    """
    path = Path(path)
    if single_file:
        return _save_unigs_file(components, path, dtype)
    if dtype is not None:
        raise ValueError("dtype applies to single-file saves only (single_file=True)")
    path.mkdir(parents=True, exist_ok=True)
    components.unet.save_pretrained(path / "unet", safe_serialization=True)
    components.vae.save_pretrained(path / "vae", safe_serialization=True)
    components.scheduler.save_pretrained(path / "scheduler")
    if components.colormap_vae is not None:
        components.colormap_vae.save_pretrained(path / "colormap_vae", safe_serialization=True)
    if components.meta.text_encoder != MINILM:
        components.text_encoder.save_pretrained(path / "text_encoder", safe_serialization=True)
        components.tokenizer.save_pretrained(path / "tokenizer")
    files.write_unigs_json(path, cmvae.flagged_meta(components.meta, components.colormap_vae))
    return path


# -------------------------------------------------------------------------------- single-file format


def _save_unigs_file(components: UniGSComponents, path: Path, dtype: torch.dtype | None = None) -> Path:
    if path.suffix != ".safetensors":
        raise ValueError(f"a single-file UniGS model must end in .safetensors, is {path.name!r}")
    parts: dict[str, nn.Module] = {"unet": components.unet, "vae": components.vae}
    configs: dict[str, Any] = {
        "unet_config": json.loads(components.unet.to_json_string()),
        "vae_config": json.loads(components.vae.to_json_string()),
        "scheduler_config": json.loads(components.scheduler.to_json_string()),
    }
    if components.meta.text_encoder != MINILM:
        te = components.text_encoder
        parts["text_encoder"] = te
        configs["text_encoder"] = {"class": type(te).__name__, "config": te.config.to_dict()}
        with tempfile.TemporaryDirectory() as tmp:
            components.tokenizer.save_pretrained(tmp)
            configs["tokenizer_files"] = {p.name: p.read_text(encoding="utf-8") for p in Path(tmp).iterdir()}
    def stored(value: torch.Tensor) -> torch.Tensor:
        value = value.detach().cpu()
        return (value.to(dtype) if dtype is not None and value.is_floating_point() else value).contiguous()

    tensors = {
        f"{name}.{key}": stored(value)
        for name, module in parts.items()
        for key, value in module.state_dict().items()
    }
    if components.colormap_vae is not None:
        tensors.update({f"{cmvae.PREFIX}.{k}": stored(v)
                        for k, v in cmvae.decoder_state(components.colormap_vae).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(path.name + ".tmp")
    header = files.single_file_header(cmvae.flagged_meta(components.meta, components.colormap_vae), **configs)
    save_file(tensors, str(tmp_path), metadata=header)
    os.replace(tmp_path, path)  # atomic: never a half-written checkpoint under the final name
    return path


def _split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _load_unigs_file(path: Path) -> UniGSComponents:
    meta, info = files.read_unigs_header(path)
    tensors = files.load_tensors(path)
    with torch.random.fork_rng():  # random init before load_state_dict must not move the caller's RNG
        unet = UNet2DConditionModel.from_config(info["unet_config"])
        vae = AutoencoderKL.from_config(info["vae_config"])
    files.load_weights_into(unet, _split(tensors, "unet"), "unet", path)
    files.load_weights_into(vae, _split(tensors, "vae"), "vae", path)
    decoder = _split(tensors, cmvae.PREFIX)
    if meta.colormap_decoder != bool(decoder):
        raise ValueError(f"model file {path}: meta.colormap_decoder is {meta.colormap_decoder} but "
                         f"it holds {len(decoder)} '{cmvae.PREFIX}.' tensors; re-save the model")
    colormap_vae = cmvae.from_decoder_state(vae, decoder, str(path)) if decoder else None
    if meta.text_encoder == MINILM:
        tokenizer, text_encoder = load_text_encoder(None)
    else:
        import transformers

        spec = info["text_encoder"]
        cfg = dict(spec["config"])
        config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
        with torch.random.fork_rng():
            text_encoder = getattr(transformers, spec["class"])(config)
        files.load_weights_into(text_encoder, _split(tensors, "text_encoder"), "text encoder", path)
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in info["tokenizer_files"].items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            tokenizer = transformers.AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    sched_cfg = info["scheduler_config"]
    scheduler = getattr(diffusers, sched_cfg["_class_name"]).from_config(sched_cfg)
    return UniGSComponents(unet.eval(), vae.eval(), text_encoder.eval(), tokenizer, scheduler, meta,
                           colormap_vae)
