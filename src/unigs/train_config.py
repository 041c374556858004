"""`TrainConfig`: every key of `unigs train` (STYLE.md §6), loaded from one YAML/JSON file.

Keys added after a run started keep that run's behaviour at their default, so an older checkpoint resumes
bit-exactly (`unigs.train` compares a resumed config key by key, missing keys read as their default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from unigs.batches import LossWeighting
from unigs.conditions import DEFAULT_TASK_RATIOS, TASK_IDS, TASKS
from unigs.config import check_config_numbers
from unigs.models.loading import NOISE_SCHEDULES

MIXED_PRECISION = ("no", "fp16", "bf16")
ATTENTION = ("sdpa", "eager", "xformers")
LR_SCHEDULERS = ("constant", "cosine", "linear", "wsd")
REPORT_TO = ("none", "tensorboard", "wandb")
CHECKPOINT_FROZEN = ("copy", "reference")


@dataclass
class TrainConfig:
    """Everything that changes the experiment (and nothing else). Loaded from one YAML/JSON file."""

    # data: "scenes" (procedural, `unigs.data.scenes`) or a COCO instances JSON with `images_dir`
    data: str = "scenes"
    images_dir: str | None = None
    # several datasets mixed by ratio (non-empty replaces data/images_dir): a list of
    # {data, images_dir, ratio, complete}; the entity task draws only from `complete: true` ones (§4.1:
    # EntitySeg), the other tasks from all (unigs.data.loader.DatasetMixture)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    num_scenes: int = 100_000  # scenes: size of the training split (scene seeds 0 … num_scenes-1)
    image_size: int = 128
    crop_min_scale: float = 1.0  # random square crop of side ∈ [this, 1] × image_size, resized back (1 = off)
    random_flip: bool = False  # horizontal flip with probability ½ (masks flipped alike; Ψ after it)
    # tasks: one task name (single-task model, no task embedding) or "multi" (task embedding on)
    tasks: str = "multi"
    task_ratios: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TASK_RATIOS))
    max_entities: int = 4
    negative_prob: float = 0.2
    grid: int = 11
    # model: "scratch" (small_unet_config + `unet` overrides) or a local SD-1.5-inpainting path (widened)
    init: str = "scratch"
    unet: dict[str, Any] = field(default_factory=dict)
    vae: str | None = None  # folder of a trained small VAE; None = the SD VAE of `init`
    text_encoder: str | None = None  # None = MiniLM (offline); else a local folder (CLIP for SD)
    # optimisation
    batch_size: int = 8  # per process and micro-batch
    grad_accum: int = 1
    lr: float = 1e-4
    lr_scheduler: str = "constant"  # after the linear warm-up: constant, cosine or linear decay to 0, wsd
    lr_decay_steps: int = 0  # wsd only: the last this-many steps decay linearly to 0 (a late anneal)
    lr_warmup_steps: int = 100  # linear warm-up over this many optimizer steps
    weight_decay: float = 1e-2
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    use_8bit_adam: bool = False  # bitsandbytes' AdamW8bit (GPU; ~¼ of AdamW's optimizer memory)
    max_grad_norm: float = 1.0
    ema_decay: float = 0.999
    prompt_drop_prob: float = 0.1
    # "sd15": SD-1.5's schedule and ε-prediction; "zero_snr": zero terminal SNR + v-prediction (see
    # unigs.models.loading.ZERO_SNR_SCHEDULER_CONFIG: why colormaps need it)
    noise_schedule: str = "sd15"
    snr_gamma: float | None = None  # min-SNR-γ loss weighting (Hang et al. 2023; unigs.optim); None = off
    # where the loss is spent (unigs.batches.LossWeighting; 1.0 everywhere = plain Eq. 2)
    pinned_weight: float = 1.0  # the Table-2 ✗ half, which inference replaces by the noised control
    referring_outside_weight: float = 1.0  # referring's colormap outside the dilated coarse mask
    entity_balance: float = 1.0  # max pixel weight of small target entities (1 = off)
    # training t drawn with density ∝ (t / T)^p (0 = uniform, Eq. 2); one p for all tasks, or {task: p}
    # (tasks left out: 0) — the one-step read-out tasks only ever run at t = T (unigs.train.draw_timesteps)
    timestep_power: float | dict[str, float] = 0.0
    pool_size: int = 0  # > 0: pre-encode this many examples once and draw batches from them
    pool_draws: int = 4  # pool examples drawn from each scene (they share the encoding of I_0)
    mixed_precision: str = "bf16"  # used on GPU only; CPU always trains in fp32 (bf16 is ~9× slower there)
    # memory and speed (they change how fast a step runs, not what it computes)
    gradient_checkpointing: bool = False  # recompute UNet activations in the backward pass
    attention: str = "sdpa"  # torch scaled_dot_product_attention; "eager" (plain matmuls) or "xformers"
    allow_tf32: bool = False  # TF32 matmuls and convolutions on Ampere+ GPUs
    num_workers: int = 0  # DataLoader processes sampling examples (0 = in the training process)
    steps: int = 1000
    seed: int = 0
    # bookkeeping
    log_every: int = 10
    report_to: str = "none"  # also log through accelerate's trackers: tensorboard or wandb
    ckpt_every: int = 500
    keep_checkpoints: int = 3
    # validation sheets (unigs.validation): every N steps (0 = off), k held-out examples per task
    validate_every: int = 0
    validation_images: int = 2
    validation_steps: int = 25  # DDIM steps per sample
    validation_data: str | None = None  # COCO JSON of held-out images (default: scenes' val split / data)
    validation_images_dir: str | None = None
    # "copy": model.safetensors holds VAE + text encoder too (load_unigs); "reference": only the EMA UNet,
    # naming the frozen parts' paths (unigs.train_parts.load_checkpoint_model; ~0.8 GB less for SD-1.5)
    checkpoint_frozen: str = "copy"
    # not a key: False lets `--dry-run` validate a config whose data or weights are absent on this machine
    check_paths: InitVar[bool] = True

    def __post_init__(self, check_paths: bool = True) -> None:
        choices = {"noise_schedule": tuple(NOISE_SCHEDULES), "mixed_precision": MIXED_PRECISION,
                   "attention": ATTENTION, "lr_scheduler": LR_SCHEDULERS, "report_to": REPORT_TO,
                   "checkpoint_frozen": CHECKPOINT_FROZEN}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, is {getattr(self, name)!r}")
        if self.tasks != "multi" and self.tasks not in TASK_IDS:
            raise ValueError(f"tasks must be 'multi' or one of {list(TASKS)}, is {self.tasks!r}")
        bad = sorted(set(self.task_ratios) - set(TASKS))
        if bad or not self.task_ratios or any(not float(v) >= 0 or v == float("inf")
                                              for v in self.task_ratios.values()):
            raise ValueError(f"task_ratios must map tasks in {list(TASKS)} to ratios >= 0, "
                             f"is {self.task_ratios}")
        for entry in self.datasets or [{"data": self.data, "images_dir": self.images_dir}]:
            check_dataset(entry, check_paths)
        if self.validation_data is not None:
            held_out = {"data": self.validation_data, "images_dir": self.validation_images_dir}
            check_dataset(held_out, check_paths)
        for name in ("validation_images", "validation_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, is {getattr(self, name)}")
        if self.init == "scratch" and self.vae is None:
            raise ValueError("init 'scratch' needs `vae`: a folder written by `unigs train-vae`")
        for name in ("pool_draws", "batch_size", "grad_accum", "steps", "log_every", "ckpt_every",
                     "keep_checkpoints", "image_size", "num_scenes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, is {getattr(self, name)}")
        for name in ("pinned_weight", "referring_outside_weight", "pool_size",
                     "num_workers", "adam_epsilon", "lr_warmup_steps", "validate_every", "lr_decay_steps"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, is {getattr(self, name)}")
        check_timestep_power(self.timestep_power)
        if not float(self.entity_balance) >= 1:
            raise ValueError(f"entity_balance must be >= 1, is {self.entity_balance}")
        if self.snr_gamma is not None and not float(self.snr_gamma) > 0:
            raise ValueError(f"snr_gamma must be > 0 or null (off), is {self.snr_gamma}")
        for name in ("prompt_drop_prob", "negative_prob", "ema_decay", "adam_beta1", "adam_beta2"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], is {getattr(self, name)}")
        if not 0.0 < float(self.crop_min_scale) <= 1.0:
            raise ValueError(f"crop_min_scale must be in (0, 1], is {self.crop_min_scale}")
        check_config_numbers(self)  # seed range, finite floats, image_size within the pixel limit

    @property
    def multitask(self) -> bool:
        return self.tasks == "multi"

    @property
    def weighting(self) -> LossWeighting:
        return LossWeighting(float(self.pinned_weight), float(self.referring_outside_weight),
                             float(self.entity_balance))


def check_timestep_power(power: Any) -> None:
    """`timestep_power` is a finite number >= 0 or a mapping of tasks to such numbers; else one error."""
    values = power.values() if isinstance(power, dict) else [power]
    ok = (not isinstance(power, dict) or (power and set(power) <= set(TASKS))) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < float("inf") for v in values)
    if not ok:
        raise ValueError(f"timestep_power must be a number >= 0 or a mapping of tasks in {list(TASKS)} to "
                         f"numbers >= 0, is {power!r}")


DATASET_KEYS = {"data", "images_dir", "ratio", "complete"}


def check_dataset(entry: dict[str, Any], check_paths: bool = True) -> None:
    """A dataset entry (`datasets` item) must be "scenes" or a COCO JSON (existing, when `check_paths`)
    with `images_dir`, and a ratio >= 0; else one error naming the value."""
    unknown = sorted(set(entry) - DATASET_KEYS)
    if unknown:
        raise ValueError(f"unknown dataset key(s) {unknown} in {entry}; known: {sorted(DATASET_KEYS)}")
    if not float(entry.get("ratio", 1.0)) >= 0:
        raise ValueError(f"dataset ratio must be >= 0, is {entry.get('ratio')} in {entry}")
    data = entry.get("data", "scenes")
    if check_paths and data != "scenes" and not Path(data).is_file():
        raise FileNotFoundError(f"data must be 'scenes' or a COCO annotations JSON; {data!r} is neither")
    if data != "scenes" and not entry.get("images_dir"):
        raise ValueError(f"the COCO `data` JSON {data!r} needs `images_dir`")


def config_defaults() -> dict[str, Any]:
    """Key → default value (default factories called): what a checkpoint written before a key existed ran."""
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(TrainConfig)}
