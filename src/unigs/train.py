"""`unigs train`: train the UniGS UNet on one task or the four-task mix (paper §3.1 Eq. 1–2, §3.3, §4.1).

Read top to bottom: data → one training step → the loop (STYLE.md §12). The config keys live in
`unigs.train_config`, the parts and checkpoint files in `unigs.train_parts`, optimizer / LR schedule /
min-SNR / speed switches in `unigs.optim`, the DataLoader in `unigs.data.loader`, sheets in
`unigs.validation`.

Per optimizer step, on every process, for `grad_accum` micro-batches of `batch_size` examples:

1. in a DataLoader worker: draw a task per example (`TaskMixture`, supp. "One-to-Many Joint Model":
   0.3/0.3/0.2/0.2), a dataset that may serve it, and sample a `TrainingExample` (Table 2: prompt, coarse
   mask m_c, control, image and colormap targets);
2. drop the prompt to "" with probability `prompt_drop_prob` (classifier-free guidance, the unconditional
   branch the pipelines use);
3. Υ-encode image target, colormap target and control with the frozen VAE (posterior mean); encode the
   prompt with the frozen text encoder (cached by string); resize m_c to the latent grid;
4. one timestep t per example shared by both halves, independent Gaussian noise on all 8 channels,
   z_t = add_noise([z^i ‖ z^s], ε, t) (Eq. 1, the DDPM schedule of the scheduler config);
5. ε̂ = UNet(CONCAT(z_t^i, z_t^s, m_c, z^c), t, text, task) (Eq. 8, 11) and loss = MSE(ε̂, ε) over both
   halves (Eq. 2; the ½ is a constant and dropped), optionally min-SNR-weighted per example (`snr_gamma`).

Determinism: the examples, timesteps and noise of global step s, micro-batch k, process p come from RNGs
seeded by (seed, s, k, p) — not by the loader worker — so the data position is the step itself; resuming
from a checkpoint (weights, optimizer, EMA, LR scheduler, step, RNG states) continues exactly. Runs
unchanged under `accelerate launch --num_processes N`; only the main process writes files and the bar.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler
from tqdm.auto import tqdm

from unigs import checkpoint as ckpt
from unigs import plan
from unigs.batches import ExamplePool, PromptCache, encode_examples
from unigs.conditions import TASKS
from unigs.config import config_from_dict, parse_overrides, read_config_file
from unigs.data.loader import DatasetMixture, StepBatches, pool_examples, step_loader
from unigs.models.layout import LATENT_CHANNELS, split_halves, unet_input
from unigs.optim import (
    apply_speed_switches,
    build_lr_scheduler,
    build_optimizer,
    first_schedule_change,
    min_snr_weights,
    set_step_lr,
)
from unigs.train_config import TrainConfig, config_defaults
from unigs.train_parts import build_components, resume_checkpoint, write_checkpoint
from unigs.validation import validation_examples, validation_sheet

__all__ = ["TrainConfig", "train", "diffusion_loss", "run"]
METRICS_FIELDS = ["step", "loss", "loss_image", "loss_colormap", "lr", "steps_per_s"]
METRICS_FIELDS += [f"n_{t}" for t in TASKS]  # examples per task in the interval


# ------------------------------------------------------------------------------------------------- data
POOL_KEYS = ("data", "images_dir", "num_scenes", "image_size", "tasks", "task_ratios", "max_entities",
             "negative_prob", "grid", "init", "vae", "text_encoder", "seed", "pinned_weight",
             "referring_outside_weight", "entity_balance", "pool_size", "pool_draws")  # a pool depends on
POOL_KEYS_NEW = ("datasets", "crop_min_scale", "random_flip")  # ... and on these where not at their default


def example_pool(config: TrainConfig, mixture: DatasetMixture, components, path: Path, main: bool,
                 accelerator) -> ExamplePool:
    """The pre-encoded pool of `config.pool_size` examples (unigs.data.loader.pool_examples): loaded from
    `path` when it matches the config, else built by the main process and saved there."""
    defaults = config_defaults()
    key = {k: getattr(config, k) for k in POOL_KEYS}
    key.update({k: getattr(config, k) for k in POOL_KEYS_NEW if getattr(config, k) != defaults[k]})
    pool = ExamplePool.load(path, key) if path.is_file() else None
    if pool is None and main:
        pool = ExamplePool.build(lambda a, b: pool_examples(config, mixture, a, b), config.pool_size,
                                 components, config.multitask, config.weighting, key,
                                 chunk=16 * config.pool_draws)
        pool.save(path)
    accelerator.wait_for_everyone()
    return pool if pool is not None else ExamplePool.load(path, key)


# ------------------------------------------------------------------------------------------------- step
def draw_timesteps(num_train_timesteps: int, batch: int, power: float | torch.Tensor,
                   generator: torch.Generator):
    """`(B,) long` training timesteps with density ∝ (t / T)^power: uniform at 0 (Eq. 2), tilted toward
    t = T — where sampling starts and the one-step readout happens — for power > 0 (t = T·u^(1/(1+p))).
    `power` is one number, or a `(B,)` tensor of one per example (`timestep_powers`)."""
    if not torch.is_tensor(power) and power == 0:
        return torch.randint(0, num_train_timesteps, (batch,), generator=generator)
    u = torch.rand((batch,), generator=generator)
    t = (num_train_timesteps * u ** (1.0 / (1.0 + power))).long()
    return t.clamp_(0, num_train_timesteps - 1)


def timestep_powers(power: float | Mapping[str, float], tasks: Sequence[str]) -> float | torch.Tensor:
    """`TrainConfig.timestep_power` for a batch of examples of `tasks`: the number itself, or from a
    {task: p} mapping a `(B,)` tensor (a task it leaves out draws uniformly, p = 0)."""
    if not isinstance(power, Mapping):
        return float(power)
    return torch.tensor([float(power.get(task, 0.0)) for task in tasks])


def diffusion_loss(unet, noise_scheduler, batch: dict[str, Any], generator: torch.Generator,
                   timestep_power: float | Mapping[str, float] = 0.0, snr_gamma: float | None = None):
    """Eq. 2 on both halves, weighted by `batch["weights"]` (unigs.batches.loss_weights; uniform = Eq. 2):
    `(loss, loss_image, loss_colormap)`, each a scalar tensor, weighted means of the squared error against
    ε (or against v for a v-prediction schedule). `snr_gamma`: each example's squared error is also
    scaled by its min-SNR-γ weight (unigs.optim.min_snr_weights; None = off)."""
    z0 = torch.cat([batch["z_image"], batch["z_colormap"]], dim=1)  # (B, 8, h, w)
    noise = torch.randn(z0.shape, generator=generator).to(z0.device)
    power = timestep_powers(timestep_power, batch["tasks"] if isinstance(timestep_power, Mapping) else ())
    t = draw_timesteps(noise_scheduler.config.num_train_timesteps, z0.shape[0], power, generator)
    t = t.to(z0.device)
    zt = noise_scheduler.add_noise(z0, noise, t)  # Eq. 1, one t shared by both halves of an example
    x = unet_input(*split_halves(zt), batch["mask"], batch["z_control"])
    pred = unet(x, t, encoder_hidden_states=batch["text"], class_labels=batch["task_ids"]).sample.float()
    if noise_scheduler.config.prediction_type == "v_prediction":  # v = √ᾱ ε − √(1−ᾱ) z_0
        target = noise_scheduler.get_velocity(z0, noise, t)
    else:
        target = noise
    err = (pred - target) ** 2
    if snr_gamma is not None:
        kind = noise_scheduler.config.prediction_type
        err = err * min_snr_weights(noise_scheduler.alphas_cumprod, t, snr_gamma, kind).view(-1, 1, 1, 1)
    weights = batch.get("weights")
    if weights is None:
        loss_image, loss_colormap = (half.mean() for half in split_halves(err))
        return (loss_image + loss_colormap) / 2, loss_image.detach(), loss_colormap.detach()
    w = weights.repeat_interleave(LATENT_CHANNELS, dim=1)  # (B, 2, h, w) → one map per channel of each half
    halves = [(e * wk).sum() for e, wk in zip(split_halves(err), split_halves(w), strict=True)]
    mass = [wk.sum().clamp_min(1e-8) for wk in split_halves(w)]
    loss = (halves[0] + halves[1]) / (mass[0] + mass[1])
    return loss, (halves[0] / mass[0]).detach(), (halves[1] / mass[1]).detach()


@torch.no_grad()
def ema_update(ema_model: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """θ_ema ← decay·θ_ema + (1 − decay)·θ."""
    for e, p in zip(ema_model.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach().to(e.dtype), 1.0 - decay)


# ------------------------------------------------------------------------------------------------- loop
# may differ on --resume: bookkeeping, and the switches that change speed and memory, not the experiment;
# the schedule's keys only where the steps already taken keep their learning rate (first_schedule_change)
SCHEDULE_KEYS = {"steps", "lr_scheduler", "lr_decay_steps", "lr_warmup_steps"}
RESUMABLE_CHANGES = SCHEDULE_KEYS | {
    "log_every", "ckpt_every", "keep_checkpoints", "report_to", "num_workers", "gradient_checkpointing",
    "attention", "allow_tf32", "checkpoint_frozen", "validate_every", "validation_images", "validation_steps",
    "validation_data", "validation_images_dir"}


def train(config: TrainConfig, output_dir: str | Path, resume: bool | str | Path = False,
          stop_after: int | None = None, overwrite: bool = False) -> Path:
    """Train; write `<output_dir>/checkpoints/step-*/` (EMA weights for inference and `training_state.pt`,
    unigs.train_parts), `metrics.csv` and `config.json`. Returns the last checkpoint folder.

    resume: True continues from the newest intact checkpoint in `output_dir` (a damaged newest one is set
    aside with a message, `checkpoint.load_latest_intact`), a path from that checkpoint folder (same
    config; only bookkeeping and speed keys may change, and the LR schedule for steps not taken yet,
    RESUMABLE_CHANGES). Without `resume`, a
    folder that holds a run is refused unless `overwrite` (`checkpoint.prepare_run_folder`).
    stop_after: stop once this many steps are done (tests use it to stand in for a kill right after a
    checkpoint).
    """
    output_dir = Path(output_dir)
    # cpu=True on a machine without CUDA: under `accelerate launch --multi_gpu --num_processes N` (torchrun
    # env) this makes accelerate pick MULTI_CPU with gloo. On CPU we always train in fp32.
    on_cpu = not torch.cuda.is_available()
    accelerator = Accelerator(cpu=on_cpu, mixed_precision="no" if on_cpu else config.mixed_precision,
                              log_with=None if config.report_to == "none" else config.report_to,
                              project_dir=str(output_dir))
    main = accelerator.is_main_process
    if main:
        ckpt.prepare_run_folder(output_dir, resume, overwrite)
    accelerator.wait_for_everyone()

    mixture = DatasetMixture(config)
    components = build_components(config, mixture.vocabulary)
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
    frozen_dtype = dtypes.get(accelerator.mixed_precision, torch.float32)
    for part in (components.vae, components.text_encoder):
        part.requires_grad_(False).eval().to(accelerator.device)
        if frozen_dtype != torch.float32:
            part.to(dtype=frozen_dtype)
    unet = components.unet.to(accelerator.device).train()
    ema_unet = copy.deepcopy(unet).requires_grad_(False).eval()
    apply_speed_switches(unet, config)
    optimizer = build_optimizer(unet.parameters(), config)
    lr_scheduler = build_lr_scheduler(optimizer, config)
    unet, optimizer = accelerator.prepare(unet, optimizer)  # the LR scheduler steps once per optimizer step
    noise_scheduler = DDPMScheduler.from_config(components.scheduler.config)
    prompts = PromptCache(components.tokenizer, components.text_encoder, accelerator.device)
    ckpt_root = output_dir / "checkpoints"
    output_dir.mkdir(parents=True, exist_ok=True)
    pool = (example_pool(config, mixture, components, output_dir / "pool.pt", main, accelerator)
            if config.pool_size else None)

    start = 0
    if resume:
        if resume is True:
            found = ckpt.load_latest_intact(ckpt_root, accelerator.print) if main else None
            accelerator.wait_for_everyone()  # the main process may have set a damaged checkpoint aside
            found = found or ckpt.load_latest_intact(ckpt_root, lambda _: None)
            if found is None:
                raise FileNotFoundError(f"--resume: no checkpoint under {ckpt_root}")
            latest, state = found
        else:
            latest = resume_checkpoint(resume, ckpt_root, move_newer=main)
            accelerator.wait_for_everyone()
            state = ckpt.load_training_state(latest)
            if not isinstance(state.get("step"), int):
                raise ValueError(f"{latest / ckpt.TRAINING_STATE} has no integer 'step'")
        defaults = config_defaults()
        changed = sorted(k for k, v in asdict(config).items()  # keys newer than the run: their default
                         if k not in RESUMABLE_CHANGES and state["config"].get(k, defaults[k]) != v)
        if changed:
            raise ValueError(f"--resume with a different experiment: {changed} differ from {latest}")
        moved = first_schedule_change({**defaults, **state["config"]}, config, int(state["step"]))
        if moved is not None:
            raise ValueError(f"--resume: the new schedule ({', '.join(sorted(SCHEDULE_KEYS))}) changes the "
                             f"learning rate of step {moved}, already taken in {latest}")
        accelerator.unwrap_model(unet).load_state_dict(state["unet"])
        ema_unet.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        set_step_lr(optimizer, lr_scheduler, int(state["step"]))  # the new schedule's tail, if it has one
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
            ckpt.save_checkpoint(ckpt_root, done, keep=config.keep_checkpoints,
                                 write=lambda tmp: write_checkpoint(tmp, config, components, ema_unet, state))
        accelerator.wait_for_everyone()

    if main:
        ckpt.atomic_write(output_dir / "config.json",
                          lambda tmp: tmp.write_text(json.dumps(asdict(config), indent=2) + "\n"))
    if config.report_to != "none":  # trackers take flat scalars
        accelerator.init_trackers("unigs", config={k: v if isinstance(v, int | float | str | bool) else str(v)
                                                   for k, v in asdict(config).items()})
    log = MetricsLog(output_dir / "metrics.csv", start) if main else None
    held_out = validation_examples(config) if main and config.validate_every else None
    bar = tqdm(total=config.steps, initial=start, disable=not main, desc="unigs train", dynamic_ncols=True)
    sums, tasks, t_log, s_log = torch.zeros(3), Counter(), time.perf_counter(), start
    data = StepBatches(config, mixture, accelerator.process_index, config.pool_size)
    batches = iter(step_loader(data, start))
    for step in range(start, config.steps):
        for micro in range(config.grad_accum):
            item = next(batches)  # built by a loader worker from the RNG of (seed, step, micro, process)
            generator = torch.Generator().manual_seed(item.noise_seed)
            torch.manual_seed(item.torch_seed)  # anything inside the models that draws from torch
            if pool is not None:
                batch = pool.batch(item.index, item.drop, config.multitask, accelerator.device)
            else:
                batch = encode_examples(components, item.examples, prompts, config.multitask,
                                        config.weighting)
            sync = nullcontext() if micro == config.grad_accum - 1 else accelerator.no_sync(unet)
            with sync, accelerator.autocast():
                loss, loss_image, loss_colormap = diffusion_loss(unet, noise_scheduler, batch, generator,
                                                                 config.timestep_power, config.snr_gamma)
                accelerator.backward(loss / config.grad_accum)
            sums += torch.stack([loss.detach(), loss_image, loss_colormap]).cpu() / config.grad_accum
            tasks.update(batch["tasks"])
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(unet.parameters(), config.max_grad_norm)
        step_lr = lr_scheduler.get_last_lr()[0]  # the rate this step is taken with
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
                   "lr": step_lr, "steps_per_s": rate,
                   **{f"n_{t}": int(c) for t, c in zip(TASKS, stats[3:].tolist(), strict=True)}}
            bar.set_postfix(loss=f"{loss_avg[0]:.4f}", steps_s=f"{rate:.2f}")
            if log is not None:
                log.write(row)
            if config.report_to != "none":
                accelerator.log({k: v for k, v in row.items() if k != "step"}, step=done)
            sums, tasks, t_log, s_log = torch.zeros(3), Counter(), time.perf_counter(), done
        if main and config.validate_every and done % config.validate_every == 0:
            validation_sheet(dataclasses.replace(components, unet=ema_unet), held_out,
                             output_dir / "validation" / f"step-{done:08d}.png", config.validation_steps,
                             accelerator.device, config.seed)
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
def run(config_file: str | Path | None, output_dir: str | Path, overrides: list[str] | None = None,
        resume: bool | str | Path = False, overwrite: bool = False, dry_run: bool = False) -> int:
    """`unigs train` (flags in `unigs.commands.train`): the config file (resuming without one: the run's
    own `config.json`, or that of the run the checkpoint `resume` belongs to), `--set KEY=VALUE` overrides
    on top; then print the plan (`dry_run`) or train."""
    values = read_config_file(config_file)
    if resume and config_file is None:
        own = Path(output_dir) / "config.json"
        values = read_config_file(own if own.is_file() or resume is True
                                  else Path(resume).resolve().parents[1] / "config.json")
    values = {**values, **parse_overrides(overrides)}
    if dry_run:
        return plan.dry_run(values, output_dir)
    last = train(config_from_dict(values, TrainConfig), output_dir, resume=resume, overwrite=overwrite)
    print(f"last checkpoint: {last}")
    return 0
