"""`unigs train-mask-ae`: the shallow mask autoencoder of the bit-mask codec (LDMSeg, seed 002).

Each step draws entity segmentations from the training data (procedural scenes or a COCO-format dataset
such as coco-mini), writes each as an instance-id map with *random* distinct ids (so every one of the
127 codes is seen, as LDMSeg does), turns it into 7 bit planes and trains `unigs.models.mask_ae.MaskAE`
with bit cross-entropy + mask BCE/Dice (no KL). At the end the latent scale is set to 1/std of held-out
latents and the model is written to `<output>/mask_ae/`, then evaluated on held-out scenes with ids 1..N:
bit accuracy, round-trip mIoU and PQ (`evaluate_mask_ae`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigs import checkpoint as ckpt
from unigs.codec import bitmask
from unigs.config import check_config_numbers, config_from_dict, parse_overrides, read_config_file
from unigs.data.source import EntitySource
from unigs.models.mask_ae import MaskAE, MaskAEConfig, mask_ae_loss, num_parameters, save_mask_ae


@dataclass
class MaskAETrainConfig:
    """Everything that changes the mask-autoencoder experiment. Loaded from one YAML/JSON file."""

    data: str = "scenes"  # "scenes" or a COCO instances JSON (+ images_dir)
    images_dir: str | None = None
    num_scenes: int = 100_000
    image_size: int = 128
    crop_size: int | None = None  # random crops (the autoencoder is convolutional); multiple of downsample
    model: dict[str, Any] = field(default_factory=dict)  # MaskAEConfig keys (channels, latent_channels)
    batch_size: int = 16
    lr: float = 1e-3
    dice_weight: float = 1.0
    steps: int = 2000
    seed: int = 0
    log_every: int = 20
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    eval_scenes: int = 64  # held-out (val split) scenes for the scale and the report
    max_minutes: float | None = None  # stop early (then checkpoint, scale, save, evaluate) after this long

    def __post_init__(self) -> None:
        for name in ("image_size", "batch_size", "steps", "log_every", "ckpt_every", "keep_checkpoints",
                     "eval_scenes", "num_scenes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, is {getattr(self, name)}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0 (or null for no limit), is {self.max_minutes}")
        f = MaskAEConfig(**self.model).downsample
        for name in ("image_size", "crop_size"):
            value = getattr(self, name)
            if value is not None and value % f:
                raise ValueError(f"{name} must be a multiple of the downsampling factor {f}, is {value}")
        if self.crop_size is not None and not 0 < self.crop_size <= self.image_size:
            raise ValueError(f"crop_size must be in [1, image_size={self.image_size}], is {self.crop_size}")
        if self.data != "scenes" and not Path(self.data).is_file():
            raise FileNotFoundError(f"data must be 'scenes' or a COCO annotations JSON; "
                                    f"{self.data!r} is neither")
        check_config_numbers(self)


def mask_batch(config: MaskAETrainConfig, source: EntitySource,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`(bits (B, 7, C, C) float32 in {−1, +1}, ids (B, C, C) int64)`, random ids, random C-px crops."""
    ids = []
    while len(ids) < config.batch_size:
        _, masks, _ = source.get(int(rng.integers(len(source))))
        masks = masks[:bitmask.MAX_INSTANCES]  # a COCO image with more entities: keep the first 127
        ids.append(bitmask.id_map(masks, bitmask.random_ids(len(masks), rng)))
    ids = np.stack(ids)
    c = config.crop_size or config.image_size
    if c < config.image_size:
        ys, xs = rng.integers(0, config.image_size - c + 1, size=(2, len(ids)))
        ids = np.stack([m[y:y + c, x:x + c] for m, y, x in zip(ids, ys, xs, strict=True)])
    return bitmask.ids_to_bits(ids), ids


@torch.no_grad()
def evaluate_mask_ae(model: MaskAE, masks_list: list[np.ndarray], batch: int = 16) -> dict[str, Any]:
    """Round trip masks → bits → latents → masks with ids 1..N: latent std, bit accuracy, mIoU, PQ."""
    from unigs.evaluate.metrics import best_match_scores, pool_match_scores
    from unigs.evaluate.segmentation import panoptic_quality

    model.eval()
    preds, latents, correct, total = [], [], 0, 0
    for i in range(0, len(masks_list), batch):
        bits = np.stack([bitmask.encode(m) for m in masks_list[i:i + batch]])
        z = model.encode(torch.from_numpy(bits))
        latents.append(z)
        logits = model.decode(z).numpy()
        correct += int(((logits > 0) == (bits > 0)).sum())
        total += bits.size
        preds += [bitmask.decode(x) for x in logits]
    gts = [m[m.any((1, 2))] for m in masks_list]
    pooled = pool_match_scores([best_match_scores(p, g) for p, g in zip(preds, gts, strict=True)])
    return {"eval_maps": len(gts), "latent_std": float(torch.cat(latents).std()),
            "bit_accuracy": correct / total, "miou": pooled.miou, "recall": pooled.recall,
            "pq": panoptic_quality(preds, gts).pq}


def held_out_masks(n: int, size: int) -> list[np.ndarray]:
    """Entity masks of the first `n` val-split scenes at `size` px (never trained on)."""
    from unigs.data.scenes import SceneDataset

    return [s.masks for s in SceneDataset(split="val", length=n, size=size)]


def train_mask_ae(config: MaskAETrainConfig, output_dir: str | Path,
                  overwrite: bool = False) -> dict[str, Any]:
    """Train, set the latent scale, save `<output_dir>/mask_ae/`, evaluate; returns the evaluation dict.
    A folder holding an earlier run is refused unless `overwrite` (`checkpoint.prepare_run_folder`)."""
    from tqdm.auto import tqdm

    output_dir = Path(output_dir)
    ckpt.prepare_run_folder(output_dir, resume=False, overwrite=overwrite)
    ckpt.atomic_write(output_dir / "config.json",
                      lambda p: p.write_text(json.dumps(asdict(config), indent=2) + "\n"))
    source = EntitySource(config.data, config.image_size, config.images_dir, config.num_scenes)
    torch.manual_seed(config.seed)
    model = MaskAE(MaskAEConfig(**config.model))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    bar = tqdm(total=config.steps, desc="unigs train-mask-ae", dynamic_ncols=True)
    t0, sums, log_rows = time.perf_counter(), {}, []
    for step in range(config.steps):
        model.train()
        bits, ids = mask_batch(config, source, np.random.default_rng([config.seed, step]))
        loss, parts = mask_ae_loss(model(torch.from_numpy(bits)), torch.from_numpy(bits),
                                   torch.from_numpy(ids), config.dice_weight)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for key, value in {"loss": float(loss), **parts}.items():
            sums[key] = sums.get(key, 0.0) + value
        bar.update(1)
        done = step + 1
        out_of_time = config.max_minutes is not None and time.perf_counter() - t0 > 60 * config.max_minutes
        last = done == config.steps or out_of_time
        if done % config.log_every == 0 or last:
            n = done - (log_rows[-1]["step"] if log_rows else 0)
            row = {"step": done, **{k: v / n for k, v in sums.items()},
                   "steps_per_s": done / (time.perf_counter() - t0)}
            log_rows.append(row)
            ckpt.atomic_write(output_dir / "log.json", lambda p: p.write_text(json.dumps(log_rows) + "\n"))
            bar.set_postfix(loss=f"{row['loss']:.4f}", bit_ce=f"{row['bit_ce']:.4f}")
            sums = {}
        if done % config.ckpt_every == 0 or last:
            ckpt.save_checkpoint(output_dir / "checkpoints", done, lambda folder: save_mask_ae(model, folder),
                                 keep=config.keep_checkpoints)
        if out_of_time:
            break
    bar.close()
    masks = held_out_masks(config.eval_scenes, config.image_size)
    std = evaluate_mask_ae(model, masks)["latent_std"]  # at scale 1: the raw std
    model.config.scaling_factor = 1.0 / max(std, 1e-6)
    report = evaluate_mask_ae(model, masks)
    save_mask_ae(model, output_dir / "mask_ae")
    result = {"steps_done": done, "parameters": num_parameters(model), "downsample": model.config.downsample,
              "scaling_factor": model.config.scaling_factor, **report, "config": asdict(config),
              "log": log_rows}
    ckpt.atomic_write(output_dir / "mask_ae_report.json",
                      lambda p: p.write_text(json.dumps(result, indent=2) + "\n"))
    return result


def run(args: argparse.Namespace) -> int:
    """`unigs train-mask-ae` (flags in `unigs.commands.train_mask_ae`)."""
    values = {**read_config_file(args.config), **parse_overrides(args.set)}
    config = config_from_dict(values, MaskAETrainConfig)
    result = train_mask_ae(config, args.output, overwrite=args.overwrite)
    print(" ".join(f"{k}={result[k]:.4g}" for k in ("bit_accuracy", "miou", "pq", "scaling_factor")))
    print(f"mask autoencoder ({result['parameters']:,} parameters) written to "
          f"{Path(args.output) / 'mask_ae'}")
    return 0
