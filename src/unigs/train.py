"""`unigs train`: train the UniGS UNet on one task or the four-task mix (paper §3.1 Eq. 1–2, §3.3, §4.1).

Read top to bottom: config → data → components → one training step → the loop (STYLE.md §12).

Per optimizer step, on every process, for `grad_accum` micro-batches of `batch_size` examples:

1. draw a task per example (`TaskMixture`, supp. "One-to-Many Joint Model": 0.3/0.3/0.2/0.2) and sample a
   `TrainingExample` (Table 2: prompt, coarse mask m_c, control, image and colormap targets);
2. drop the prompt to "" with probability `prompt_drop_prob` (classifier-free guidance, the unconditional
   branch the pipelines use);
3. Υ-encode image target, colormap target and control with the frozen VAE (posterior mean); encode the
   prompt with the frozen text encoder (cached by string); resize m_c to the latent grid;
4. one timestep t per example shared by both halves, independent Gaussian noise on all 8 channels,
   z_t = add_noise([z^i ‖ z^s], ε, t) (Eq. 1, the DDPM schedule of the scheduler config);
5. ε̂ = UNet(CONCAT(z_t^i, z_t^s, m_c, z^c), t, text, task) (Eq. 8, 11) and loss = MSE(ε̂, ε) over both
   halves (Eq. 2; the ½ is a constant and dropped).

Determinism: the examples, timesteps and noise of global step s, micro-batch k, process p come from RNGs
seeded by (seed, s, k, p), so the data position is the step itself; resuming from a checkpoint (weights,
optimizer, EMA, LR scheduler, step, RNG states) continues exactly. Runs unchanged under
`accelerate launch --num_processes N`; only the main process writes checkpoints, logs and the bar.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import json
import sys
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigs import checkpoint as ckpt
from unigs.batches import ExamplePool, LossWeighting, PromptCache, encode_examples
from unigs.conditions import DEFAULT_TASK_RATIOS, TASK_IDS, TASKS
from unigs.config import check_config_numbers, config_from_dict, parse_overrides, read_config_file
from unigs.data.source import EntitySource

MIXED_PRECISION = ("no", "fp16", "bf16")
METRICS_FIELDS = ["step", "loss", "loss_image", "loss_colormap", "lr", "steps_per_s"]
METRICS_FIELDS += [f"n_{t}" for t in TASKS]  # examples per task in the interval


# ----------------------------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Everything that changes the experiment (and nothing else). Loaded from one YAML/JSON file."""

    # data: "scenes" (procedural, `unigs.data.scenes`) or a COCO instances JSON with `images_dir`
    data: str = "scenes"
    images_dir: str | None = None
    num_scenes: int = 100_000  # scenes: size of the training split (scene seeds 0 … num_scenes-1)
    image_size: int = 128
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
    lr_warmup_steps: int = 100  # linear warm-up, then constant
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    ema_decay: float = 0.999
    prompt_drop_prob: float = 0.1
    # "sd15": SD-1.5's schedule and ε-prediction; "zero_snr": zero terminal SNR + v-prediction (see
    # unigs.models.loading.ZERO_SNR_SCHEDULER_CONFIG: why colormaps need it)
    noise_schedule: str = "sd15"
    # where the loss is spent (unigs.batches.LossWeighting; 1.0 everywhere = plain Eq. 2)
    pinned_weight: float = 1.0  # the Table-2 ✗ half, which inference replaces by the noised control
    referring_outside_weight: float = 1.0  # referring's colormap outside the dilated coarse mask
    entity_balance: float = 1.0  # max pixel weight of small target entities (1 = off)
    timestep_power: float = 0.0  # training t drawn with density ∝ (t / T)^p (0 = uniform, Eq. 2)
    pool_size: int = 0  # > 0: pre-encode this many examples once and draw batches from them
    pool_draws: int = 4  # pool examples drawn from each scene (they share the encoding of I_0)
    mixed_precision: str = "bf16"  # used on GPU only; CPU always trains in fp32 (bf16 is ~9× slower there)
    steps: int = 1000
    seed: int = 0
    # bookkeeping
    log_every: int = 10
    ckpt_every: int = 500
    keep_checkpoints: int = 3

    def __post_init__(self) -> None:
        from unigs.models.loading import NOISE_SCHEDULES

        if self.noise_schedule not in NOISE_SCHEDULES:
            raise ValueError(f"noise_schedule must be one of {list(NOISE_SCHEDULES)}, "
                             f"is {self.noise_schedule!r}")
        if self.tasks != "multi" and self.tasks not in TASK_IDS:
            raise ValueError(f"tasks must be 'multi' or one of {list(TASKS)}, is {self.tasks!r}")
        bad = sorted(set(self.task_ratios) - set(TASKS))
        if bad or not self.task_ratios or any(not float(v) >= 0 or v == float("inf")
                                              for v in self.task_ratios.values()):
            raise ValueError(f"task_ratios must map tasks in {list(TASKS)} to ratios >= 0, "
                             f"is {self.task_ratios}")
        if self.data != "scenes" and not Path(self.data).is_file():
            raise FileNotFoundError(f"data must be 'scenes' or a COCO annotations JSON; "
                                    f"{self.data!r} is neither")
        if self.data != "scenes" and not self.images_dir:
            raise ValueError("a COCO `data` JSON needs `images_dir`")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, is {self.mixed_precision!r}")
        if self.init == "scratch" and self.vae is None:
            raise ValueError("init 'scratch' needs `vae`: a folder written by `unigs train-vae`")
        for name in ("pool_draws", "batch_size", "grad_accum", "steps", "log_every", "ckpt_every",
                     "keep_checkpoints", "image_size", "num_scenes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, is {getattr(self, name)}")
        for name in ("pinned_weight", "referring_outside_weight", "timestep_power", "pool_size"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, is {getattr(self, name)}")
        if not float(self.entity_balance) >= 1:
            raise ValueError(f"entity_balance must be >= 1, is {self.entity_balance}")
        for name in ("prompt_drop_prob", "negative_prob", "ema_decay"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], is {getattr(self, name)}")
        check_config_numbers(self)

    @property
    def multitask(self) -> bool:
        return self.tasks == "multi"

    @property
    def weighting(self) -> LossWeighting:
        return LossWeighting(float(self.pinned_weight), float(self.referring_outside_weight),
                             float(self.entity_balance))


# ------------------------------------------------------------------------------------------------- data
def step_rng(config: TrainConfig, step: int, micro: int, process: int) -> np.random.Generator:
    """The RNG of (seed, step, micro-batch, process): the data position is the step (exact resume)."""
    return np.random.default_rng([config.seed, step, micro, process])


def sample_one(config: TrainConfig, source: EntitySource, rng: np.random.Generator, mixture,
               index: int | None = None) -> Any:
    """One TrainingExample: image `index` (default: drawn; the next one while it has no entity), a task
    drawn by `mixture` (None = the single task)."""
    from unigs.data.tasks import sample_example

    index = int(rng.integers(len(source))) if index is None else index
    while True:
        image, masks, names = source.get(index)
        if len(masks):
            break
        index = int(rng.integers(len(source)))
    task = mixture.draw(rng) if mixture is not None else config.tasks
    return sample_example(task, image, masks, names, rng, source.vocabulary, max_entities=config.max_entities,
                          negative_prob=config.negative_prob, grid=config.grid)


def sample_batch(config: TrainConfig, source: EntitySource, rng: np.random.Generator) -> list:
    """`batch_size` TrainingExamples; tasks drawn per example; prompts dropped to "" for CFG."""
    from unigs.data.tasks import TaskMixture

    mixture = TaskMixture(config.task_ratios) if config.multitask else None
    examples = []
    for _ in range(config.batch_size):
        ex = sample_one(config, source, rng, mixture)
        if rng.random() < config.prompt_drop_prob:
            ex = dataclasses.replace(ex, prompt="")
        examples.append(ex)
    return examples


POOL_KEYS = ("data", "images_dir", "num_scenes", "image_size", "tasks", "task_ratios", "max_entities",
             "negative_prob", "grid", "init", "vae", "text_encoder", "seed", "pinned_weight",
             "referring_outside_weight", "entity_balance", "pool_size", "pool_draws")  # a pool depends on


def example_pool(config: TrainConfig, source: EntitySource, components, path: Path, main: bool,
                 accelerator) -> ExamplePool:
    """The pre-encoded pool of `config.pool_size` examples: loaded from `path` when it matches the config,
    else built by the main process and saved there. Example i is draw i % pool_draws of pool scene
    i // pool_draws: the scene from the RNG of (seed, POOL_TAG, scene), the draw from (…, scene, draw)."""
    from unigs.data.tasks import TaskMixture

    key = {k: getattr(config, k) for k in POOL_KEYS}
    pool = ExamplePool.load(path, key) if path.is_file() else None
    if pool is None and main:
        mixture = TaskMixture(config.task_ratios) if config.multitask else None

        draws = config.pool_draws

        def make(start: int, stop: int) -> list:
            examples = []
            for i in range(start, stop):
                scene = int(np.random.default_rng([config.seed, POOL_TAG, i // draws]).integers(len(source)))
                rng = np.random.default_rng([config.seed, POOL_TAG, i // draws, i % draws])
                examples.append(sample_one(config, source, rng, mixture, index=scene))
            return examples

        pool = ExamplePool.build(make, config.pool_size, components, config.multitask, config.weighting, key,
                                 chunk=16 * draws)
        pool.save(path)
    accelerator.wait_for_everyone()
    return pool if pool is not None else ExamplePool.load(path, key)


POOL_TAG = 0x9001  # separates the pool's RNG streams from the steps' (seed, step, micro, process)


# ------------------------------------------------------------------------------------------- components
def build_components(config: TrainConfig, vocabulary: list[str] | None = None):
    """UniGSComponents for training: a fresh or widened 13/8 UNet, frozen VAE and text encoder, the scheduler.

    `init: scratch` builds `small_unet_config(**config.unet)` (cross-attention width = the text encoder's,
    sample size = image_size / VAE factor) with seed `config.seed`; a path loads SD-1.5-inpainting (or a
    saved UniGS model) and widens it 9/4 → 13/8 with zero new channels (§4.1). The task embedding (4 tasks)
    is on exactly when `tasks: multi`.
    """
    from diffusers import AutoencoderKL

    from unigs.models.loading import UniGSComponents, default_scheduler, load_unigs
    from unigs.models.text import MINILM, load_text_encoder
    from unigs.models.unet import build_unet, small_unet_config
    from unigs.models.vae import latent_factor

    num_tasks = len(TASKS) if config.multitask else None
    if config.init == "scratch":
        tokenizer, text_encoder = load_text_encoder(config.text_encoder)
        vae = _load_vae(AutoencoderKL, config.vae)
        factor = latent_factor(vae)
        dim = int(text_encoder.config.hidden_size)
        if config.unet.get("cross_attention_dim", dim) != dim:
            raise ValueError(f"unet.cross_attention_dim {config.unet['cross_attention_dim']} must equal the "
                             f"text encoder width {dim}")
        unet_config = small_unet_config(**{**config.unet, "cross_attention_dim": dim,
                                           "sample_size": config.image_size // factor})
        torch.manual_seed(config.seed)
        unet = build_unet(unet_config, num_tasks=num_tasks)
        components = UniGSComponents(unet, vae, text_encoder, tokenizer,
                                     default_scheduler(config.noise_schedule), {})
        text_meta = {"kind": MINILM} if config.text_encoder in (None, MINILM) else {"kind": "saved"}
    else:
        components = load_unigs(config.init, num_tasks=num_tasks)
        if config.noise_schedule != "sd15":  # SD's weights are ε-models: this one is fine-tuned to v
            components.scheduler = default_scheduler(config.noise_schedule)
        if config.vae is not None:
            components.vae = _load_vae(AutoencoderKL, config.vae)
        # a MiniLM text encoder stays a reference to the package (not 45 MB of weights in every checkpoint)
        kept = (components.meta or {}).get("text_encoder", {"kind": "saved"})
        if config.text_encoder is not None:
            components.tokenizer, components.text_encoder = load_text_encoder(config.text_encoder)
            kept = {"kind": MINILM} if config.text_encoder == MINILM else {"kind": "saved"}
        text_meta = kept
        factor = latent_factor(components.vae)
    if config.image_size % factor:
        raise ValueError(f"image_size {config.image_size} must be divisible by the VAE factor {factor}")
    components.meta = {
        "image_size": config.image_size, "grid": config.grid, "latent_factor": factor,
        "multitask": config.multitask, "tasks": list(TASKS) if config.multitask else [config.tasks],
        "num_tasks": num_tasks, "text_encoder": text_meta, "source": "unigs train",
        "train_config": asdict(config),
        # what the model knows: pipelines warn about names outside it (an unknown name finds nothing)
        "vocabulary": list(vocabulary or []), "domain": data_domain(config.data),
    }
    return components


def data_domain(data: str) -> str:
    """A one-line description of the training images, kept in the model's meta."""
    if data == "scenes":
        return "procedural scenes (unigs.data.scenes): flat shapes on textured bands, no real photos"
    return f"COCO-format images of {Path(data).name}"


def _load_vae(cls: type, folder: str | None):
    if folder is None or not (Path(folder) / "config.json").is_file():
        raise FileNotFoundError(f"VAE folder {folder!r} has no config.json "
                                "(train one with `unigs train-vae`)")
    return cls.from_pretrained(folder, local_files_only=True)


def draw_timesteps(num_train_timesteps: int, batch: int, power: float, generator: torch.Generator):
    """`(B,) long` training timesteps with density ∝ (t / T)^power: uniform at 0 (Eq. 2), tilted toward
    t = T — where sampling starts and the one-step readout happens — for power > 0 (t = T·u^(1/(1+p)))."""
    if power == 0:
        return torch.randint(0, num_train_timesteps, (batch,), generator=generator)
    u = torch.rand((batch,), generator=generator)
    t = (num_train_timesteps * u ** (1.0 / (1.0 + power))).long()
    return t.clamp_(0, num_train_timesteps - 1)


def diffusion_loss(unet, noise_scheduler, batch: dict[str, Any], generator: torch.Generator,
                   timestep_power: float = 0.0):
    """Eq. 2 on both halves, weighted by `batch["weights"]` (unigs.batches.loss_weights; uniform = Eq. 2):
    `(loss, loss_image, loss_colormap)`, each a scalar tensor, weighted means of the squared error against
    ε (or against v for a v-prediction schedule)."""
    from unigs.pipelines.core import unet_input

    z0 = torch.cat([batch["z_image"], batch["z_colormap"]], dim=1)  # (B, 8, h, w)
    noise = torch.randn(z0.shape, generator=generator).to(z0.device)
    t = draw_timesteps(noise_scheduler.config.num_train_timesteps, z0.shape[0], timestep_power, generator)
    t = t.to(z0.device)
    zt = noise_scheduler.add_noise(z0, noise, t)  # Eq. 1, one t shared by both halves of an example
    x = unet_input(zt[:, :4], zt[:, 4:], batch["mask"], batch["z_control"])
    pred = unet(x, t, encoder_hidden_states=batch["text"], class_labels=batch["task_ids"]).sample.float()
    if noise_scheduler.config.prediction_type == "v_prediction":  # v = √ᾱ ε − √(1−ᾱ) z_0
        target = noise_scheduler.get_velocity(z0, noise, t)
    else:
        target = noise
    err = (pred - target) ** 2
    weights = batch.get("weights")
    if weights is None:
        loss_image, loss_colormap = err[:, :4].mean(), err[:, 4:].mean()
        return (loss_image + loss_colormap) / 2, loss_image.detach(), loss_colormap.detach()
    w = weights.repeat_interleave(4, dim=1)  # (B, 2, h, w) → one map per channel of each half
    halves = [(err[:, k:k + 4] * w[:, k:k + 4]).sum() for k in (0, 4)]
    mass = [w[:, k:k + 4].sum().clamp_min(1e-8) for k in (0, 4)]
    loss = (halves[0] + halves[1]) / (mass[0] + mass[1])
    return loss, (halves[0] / mass[0]).detach(), (halves[1] / mass[1]).detach()


@torch.no_grad()
def ema_update(ema_model: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """θ_ema ← decay·θ_ema + (1 − decay)·θ."""
    for e, p in zip(ema_model.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach().to(e.dtype), 1.0 - decay)


# ------------------------------------------------------------------------------------------------- loop
RESUMABLE_CHANGES = {"steps", "log_every", "ckpt_every", "keep_checkpoints"}  # may differ on --resume


def train(config: TrainConfig, output_dir: str | Path, resume: bool = False,
          stop_after: int | None = None, overwrite: bool = False) -> Path:
    """Train; write `<output_dir>/checkpoints/step-*/` (`model.safetensors` = EMA weights for `load_unigs`,
    `training_state.pt`), `metrics.csv` and `config.json`. Returns the last checkpoint folder.

    resume: continue from the newest intact checkpoint in `output_dir` (same config; only `steps` and the
    bookkeeping keys may change); a damaged newest one is set aside with a message
    (`checkpoint.load_latest_intact`). Without `resume`, a folder that holds a run is refused unless
    `overwrite` (`checkpoint.prepare_run_folder`). stop_after: stop once this many steps are done (tests
    use it to stand in for a kill right after a checkpoint).
    """
    from accelerate import Accelerator
    from diffusers import DDPMScheduler
    from tqdm.auto import tqdm

    from unigs.models.loading import save_unigs

    output_dir = Path(output_dir)
    # cpu=True on a machine without CUDA: under `accelerate launch --multi_gpu --num_processes N` (torchrun
    # env) this makes accelerate pick MULTI_CPU with gloo. On CPU we always train in fp32.
    on_cpu = not torch.cuda.is_available()
    accelerator = Accelerator(cpu=on_cpu, mixed_precision="no" if on_cpu else config.mixed_precision)
    main = accelerator.is_main_process
    if main:
        ckpt.prepare_run_folder(output_dir, resume, overwrite)
    accelerator.wait_for_everyone()

    source = EntitySource(config)
    components = build_components(config, source.vocabulary)
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
    frozen_dtype = dtypes.get(accelerator.mixed_precision, torch.float32)
    for part in (components.vae, components.text_encoder):
        part.requires_grad_(False).eval().to(accelerator.device)
        if frozen_dtype != torch.float32:
            part.to(dtype=frozen_dtype)
    unet = components.unet.to(accelerator.device).train()
    ema_unet = copy.deepcopy(unet).requires_grad_(False).eval()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.lr_warmup_steps)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    unet, optimizer = accelerator.prepare(unet, optimizer)  # the LR scheduler steps once per optimizer step
    noise_scheduler = DDPMScheduler.from_config(components.scheduler.config)
    prompts = PromptCache(components.tokenizer, components.text_encoder, accelerator.device)
    ckpt_root = output_dir / "checkpoints"
    output_dir.mkdir(parents=True, exist_ok=True)
    pool = (example_pool(config, source, components, output_dir / "pool.pt", main, accelerator)
            if config.pool_size else None)

    start = 0
    if resume:
        found = ckpt.load_latest_intact(ckpt_root, accelerator.print) if main else None
        accelerator.wait_for_everyone()  # the main process may have set a damaged checkpoint aside
        found = found or ckpt.load_latest_intact(ckpt_root, lambda _: None)
        if found is None:
            raise FileNotFoundError(f"--resume: no checkpoint under {ckpt_root}")
        latest, state = found
        defaults = {f.name: getattr(TrainConfig, f.name, None) for f in dataclasses.fields(TrainConfig)}
        changed = sorted(k for k, v in asdict(config).items()  # keys newer than the run: their default
                         if k not in RESUMABLE_CHANGES and state["config"].get(k, defaults[k]) != v)
        if changed:
            raise ValueError(f"--resume with a different experiment: {changed} differ from {latest}")
        accelerator.unwrap_model(unet).load_state_dict(state["unet"])
        ema_unet.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        ckpt.set_rng_states(state["rng"])
        start = int(state["step"])
        if start >= config.steps:
            accelerator.print(f"nothing to train: {latest} is at step {start}, and steps is {config.steps} "
                              f"(raise steps above {start} to continue)")
            accelerator.end_training()
            return latest
        accelerator.print(f"resumed from {latest} at step {start}")

    def save(done: int) -> None:
        if main:
            state = {"step": done, "config": asdict(config), "rng": ckpt.rng_states(),
                     "unet": accelerator.unwrap_model(unet).state_dict(), "ema": ema_unet.state_dict(),
                     "optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict()}
            # inference weights = the EMA UNet, in the self-describing single-file format of save_unigs
            inference = dataclasses.replace(components, unet=ema_unet, meta={**components.meta, "step": done})

            def write(folder: Path) -> None:
                save_unigs(inference, folder / "model.safetensors", single_file=True)
                ckpt.save_training_state(folder, state)

            ckpt.save_checkpoint(ckpt_root, done, write, keep=config.keep_checkpoints)
        accelerator.wait_for_everyone()

    if main:
        ckpt.atomic_write(output_dir / "config.json",
                          lambda tmp: tmp.write_text(json.dumps(asdict(config), indent=2) + "\n"))
    log = MetricsLog(output_dir / "metrics.csv", start) if main else None
    bar = tqdm(total=config.steps, initial=start, disable=not main, desc="unigs train", dynamic_ncols=True)
    sums, tasks, t_log, s_log = torch.zeros(3), Counter(), time.perf_counter(), start
    for step in range(start, config.steps):
        for micro in range(config.grad_accum):
            rng = step_rng(config, step, micro, accelerator.process_index)
            generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
            torch.manual_seed(int(rng.integers(2**63)))  # anything inside the models that draws from torch
            if pool is not None:
                index = rng.integers(len(pool), size=config.batch_size)
                drop = rng.random(config.batch_size) < config.prompt_drop_prob
                batch = pool.batch(index, drop, config.multitask, accelerator.device)
            else:
                examples = sample_batch(config, source, rng)
                batch = encode_examples(components, examples, prompts, config.multitask, config.weighting)
            sync = nullcontext() if micro == config.grad_accum - 1 else accelerator.no_sync(unet)
            with sync, accelerator.autocast():
                loss, loss_image, loss_colormap = diffusion_loss(unet, noise_scheduler, batch, generator,
                                                                 config.timestep_power)
                accelerator.backward(loss / config.grad_accum)
            sums += torch.stack([loss.detach(), loss_image, loss_colormap]).cpu() / config.grad_accum
            tasks.update(batch["tasks"])
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(unet.parameters(), config.max_grad_norm)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        # EMA decay warm-up (1+s)/(10+s): short runs are not dominated by the random initialisation.
        ema_update(ema_unet, accelerator.unwrap_model(unet), min(config.ema_decay, (1 + step) / (10 + step)))
        done = step + 1
        bar.update(1)
        if done % config.log_every == 0 or done == config.steps:
            counts = torch.tensor([tasks[t] for t in TASKS], dtype=torch.float32)
            stats = accelerator.reduce(torch.cat([sums, counts]).to(accelerator.device), "sum").cpu()
            n = done - s_log
            rate = n / max(time.perf_counter() - t_log, 1e-9)
            loss_avg = (stats[:3] / (n * accelerator.num_processes)).tolist()
            row = {"step": done, "loss": loss_avg[0], "loss_image": loss_avg[1], "loss_colormap": loss_avg[2],
                   "lr": lr_scheduler.get_last_lr()[0], "steps_per_s": rate,
                   **{f"n_{t}": int(c) for t, c in zip(TASKS, stats[3:].tolist(), strict=True)}}
            bar.set_postfix(loss=f"{loss_avg[0]:.4f}", steps_s=f"{rate:.2f}")
            if log is not None:
                log.write(row)
            sums, tasks, t_log, s_log = torch.zeros(3), Counter(), time.perf_counter(), done
        if done % config.ckpt_every == 0 or done == config.steps:
            save(done)
        if stop_after is not None and done >= stop_after:
            break
    bar.close()
    accelerator.end_training()
    return ckpt.latest_checkpoint(ckpt_root)


class MetricsLog:
    """`metrics.csv`: one row per log interval. On resume, rows past the resumed step are dropped first."""

    def __init__(self, path: Path, start: int):
        self.path = path
        rows = []
        if start > 0 and path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=METRICS_FIELDS).writerow(
                {k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})


# ------------------------------------------------------------------------------------------------ entry
def run(args: argparse.Namespace) -> int:
    """`unigs train` (see `unigs.commands.train` for the flags)."""
    values = read_config_file(args.config)
    if args.resume and args.config is None:  # resume with the run's own config
        values = read_config_file(Path(args.output) / "config.json")
    config = config_from_dict({**values, **parse_overrides(args.set)})
    last = train(config, args.output, resume=args.resume, overwrite=args.overwrite)
    print(f"last checkpoint: {last}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m unigs.train …` (the form `accelerate launch -m unigs.train …` uses)."""
    from unigs.cli import run_command
    from unigs.commands.train import configure

    parser = argparse.ArgumentParser(prog="unigs.train", description="train a UniGS UNet")
    configure(parser, "train")
    args = parser.parse_args(argv)
    return run_command("train", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
