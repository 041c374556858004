"""`unigs train --dry-run`: check a config on any machine and print what the run would do.

Validates every key (the same `TrainConfig` checks as a real run, path checks aside), lists the paths the
run needs that are missing here, and prints the plan: datasets with their ratios and the share of the
examples each serves, the task ratios, the effective batch, steps and examples seen, the LR schedule and the
estimated size of one checkpoint. Nothing heavy is built: no weight or image is read (the UNet's parameter
count comes from its config on torch's "meta" device).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unigs.config import config_from_dict
from unigs.data.loader import dataset_entries, dataset_shares
from unigs.train_config import TrainConfig
from unigs.train_parts import checkpoint_bytes, part_sizes


def missing_paths(config: TrainConfig) -> list[str]:
    """`"key: path"` for every file or folder the run needs that does not exist on this machine."""
    out = []
    for k, entry in enumerate(dataset_entries(config)):
        where = f"datasets[{k}]" if config.datasets else ""
        for key in ("data", "images_dir"):
            value = entry[key]
            if value and value != "scenes" and not Path(value).exists():
                out.append(f"{where}.{key}".lstrip(".") + f": {value}")
    for key in ("init", "vae", "text_encoder"):
        value = getattr(config, key)
        if value not in (None, "scratch", "minilm") and not Path(value).exists():
            out.append(f"{key}: {value}")
    return out


def plan_lines(config: TrainConfig, processes: int) -> list[str]:
    """The plan of a run of `config` on `processes` processes, as printable lines."""
    lines = ["datasets (share = fraction of all training examples; entity task: complete ones only):"]
    for entry, share in zip(dataset_entries(config), dataset_shares(config), strict=True):
        lines.append(f"  {entry['data']}  ratio {entry['ratio']:g}  complete {entry['complete']}  "
                     f"share {share:.1%}")
    tasks = config.task_ratios if config.multitask else {config.tasks: 1.0}
    lines.append("tasks: " + ", ".join(f"{t} {float(r):g}" for t, r in tasks.items()))
    per_process = config.batch_size * config.grad_accum
    batch = per_process * processes
    lines.append(f"effective batch: {config.batch_size} per process × {config.grad_accum} accumulation × "
                 f"{processes} processes = {batch}  (on 8 processes: {per_process * 8})")
    lines.append(f"steps: {config.steps}  → {config.steps * batch:,} examples at {config.image_size} px; "
                 f"lr {config.lr:g}, {config.lr_warmup_steps} warm-up steps then {config.lr_scheduler}")
    lines.append(f"init: {config.init}  noise schedule: {config.noise_schedule}  "
                 f"min-SNR γ: {config.snr_gamma}  precision: {config.mixed_precision}  "
                 f"gradient checkpointing: {config.gradient_checkpointing}  attention: {config.attention}  "
                 f"loader workers: {config.num_workers}")
    sizes = part_sizes(config)
    size = checkpoint_bytes(config, sizes)
    lines.append("parameters: " + ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in sizes.items()))
    lines.append(f"one checkpoint ≈ {size['total'] / 1e9:.2f} GB (" + ", ".join(
        f"{k} {v / 1e9:.2f} GB" for k, v in size.items() if k != "total")
        + f"; frozen parts: {config.checkpoint_frozen}); kept: {config.keep_checkpoints}, "
        f"every {config.ckpt_every} steps")
    return lines


def dry_run(values: dict[str, Any], output: str | Path) -> int:
    """Validate `values` (a TrainConfig dict) and print the missing paths and the plan; returns 0."""
    config = config_from_dict(values, TrainConfig, check_paths=False)
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    print(f"unigs train --dry-run: the config is valid; output would go to {output}")
    missing = missing_paths(config)
    print("missing on this machine:" if missing else "every path the run needs exists")
    for line in missing:
        print(f"  {line}")
    for line in plan_lines(config, processes):
        print(line)
    return 0
