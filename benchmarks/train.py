"""One training step and the data loader: would the accelerator starve? (issue 11)

For a config (tiny: 32 px test model; small: the shipped 128 px model; sd15: SD-1.5-inpainting widened, 512
px, random weights, batch 1 — behind --sd15, minutes on a CPU) and a device, it times:

* one optimizer step of `unigs.train` (VAE encoding of the micro-batch, UNet forward + backward, AdamW) with
  and without gradient checkpointing: steps/s, examples/s, peak memory (CUDA: max allocated; CPU: the
  peak resident size of a fresh process per row, so rows do not inherit each other's peak);
* the DataLoader of `unigs.data.loader` with 0 and 2 workers: examples/s of Table-2 sampling (scene
  rendering or JPEG/RLE decoding, crop/flip, Ω, Ψ), the work the step no longer does.

The loader keeps up when its examples/s is at least the step's; the bar asks 2× for the tiny config with 2
workers. Everything is built through the trainer's own functions (build_components, build_optimizer,
apply_speed_switches, diffusion_loss, StepBatches), so the numbers are the trainer's.

    python benchmarks/train.py --configs tiny,small --steps 5
    python benchmarks/train.py --configs sd15 --sd15 --device cuda       # on a GPU: the real recipe
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tiny_models: the 32 px test components (not in the package)
TINY_UNET = {"down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "block_out_channels": [32, 32],
             "layers_per_block": 1, "attention_head_dim": 4}


def config_values(name: str, root: Path) -> dict:
    """TrainConfig keys of a benchmark config; tiny writes its seeded parts under `root`."""
    if name == "tiny":
        from tiny_models import tiny_components

        parts = tiny_components()
        parts.vae.save_pretrained(root / "vae")
        parts.text_encoder.save_pretrained(root / "text")
        parts.tokenizer.save_pretrained(root / "text")
        return {"image_size": 32, "num_scenes": 64, "unet": TINY_UNET, "batch_size": 4,
                "vae": str(root / "vae"), "text_encoder": str(root / "text")}
    if name == "small":
        model = REPO / "src" / "unigs" / "assets" / "default.safetensors"
        return {"image_size": 128, "num_scenes": 64, "init": str(model), "noise_schedule": "zero_snr",
                "batch_size": 8}
    if name == "sd15":  # SD-1.5-inpainting architecture with random weights, written as a diffusers folder
        return {"image_size": 512, "num_scenes": 16, "init": str(sd15_folder(root)), "batch_size": 1,
                "noise_schedule": "zero_snr", "mixed_precision": "bf16"}
    raise ValueError(f"config must be tiny, small or sd15, is {name!r}")


def sd15_folder(root: Path) -> Path:
    """A diffusers SD-1.5-inpainting folder of random weights (UNet, VAE, CLIP text) built from configs."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from tiny_models import tiny_clip_text_encoder
    from transformers import CLIPTextConfig, CLIPTextModel

    from unigs.models.loading import SD15_SCHEDULER_CONFIG
    from unigs.models.unet import SD15_INPAINT_UNET_CONFIG

    folder = root / "sd15"
    UNet2DConditionModel(**SD15_INPAINT_UNET_CONFIG).save_pretrained(folder / "unet")
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=512,
                  block_out_channels=[128, 256, 512, 512],
                  down_block_types=["DownEncoderBlock2D"] * 4,
                  up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2).save_pretrained(folder / "vae")
    CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                 num_attention_heads=12, max_position_embeddings=77)
                  ).save_pretrained(folder / "text_encoder")
    tiny_clip_text_encoder()[0].save_pretrained(folder / "tokenizer")  # CLIP tokenizer files (vocab only)
    DDIMScheduler(**SD15_SCHEDULER_CONFIG).save_pretrained(folder / "scheduler")
    return folder


def step_row(name: str, checkpointing: bool, device: str, steps: int) -> dict:
    """Time `steps` optimizer steps (after one warm-up step) of config `name`."""
    from accelerate import Accelerator
    from diffusers import DDPMScheduler

    from unigs.batches import PromptCache, encode_examples
    from unigs.config import config_from_dict
    from unigs.data.loader import DatasetMixture, StepBatches
    from unigs.optim import apply_speed_switches, build_optimizer
    from unigs.train import diffusion_loss
    from unigs.train_config import TrainConfig
    from unigs.train_parts import build_components

    with tempfile.TemporaryDirectory() as tmp:
        values = {**config_values(name, Path(tmp)), "gradient_checkpointing": checkpointing}
        config = config_from_dict(values, TrainConfig)
        components = build_components(config)
    on_cpu = device == "cpu"
    accelerator = Accelerator(cpu=on_cpu, mixed_precision="no" if on_cpu else config.mixed_precision)
    for part in (components.vae, components.text_encoder):
        part.requires_grad_(False).eval().to(accelerator.device)
    unet = components.unet.to(accelerator.device).train()
    apply_speed_switches(unet, config)
    optimizer = build_optimizer(unet.parameters(), config)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    scheduler = DDPMScheduler.from_config(components.scheduler.config)
    prompts = PromptCache(components.tokenizer, components.text_encoder, accelerator.device)
    data = StepBatches(config, DatasetMixture(config), 0)
    items = [data[(s, 0)] for s in range(steps + 1)]  # the loader's work, done before timing
    if not on_cpu:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for item in items:
        t0 = time.perf_counter()
        batch = encode_examples(components, item.examples, prompts, config.multitask, config.weighting)
        with accelerator.autocast():
            loss = diffusion_loss(unet, scheduler, batch, torch.Generator().manual_seed(item.noise_seed))[0]
            accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if not on_cpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    per_step = sum(times[1:]) / len(times[1:])
    peak = (torch.cuda.max_memory_allocated() if not on_cpu
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"config": name, "what": "step" + (" +ckpt" if checkpointing else ""), "batch": config.batch_size,
            "steps_per_s": 1 / per_step, "examples_per_s": config.batch_size / per_step,
            "peak_gb": peak / 1e9}


def loader_row(name: str, workers: int, items: int) -> dict:
    """Examples/s of the DataLoader of config `name` with `workers` workers (the first item, start-up,
    is not timed)."""
    from unigs.config import config_from_dict
    from unigs.data.loader import DatasetMixture, StepBatches, step_loader
    from unigs.train_config import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        values = {**config_values(name, Path(tmp)), "num_workers": workers, "steps": items + 1}
        config = config_from_dict(values, TrainConfig)
    loader = iter(step_loader(StepBatches(config, DatasetMixture(config), 0), 0))
    next(loader)
    t0 = time.perf_counter()
    for _ in range(items):
        next(loader)
    rate = items * config.batch_size / (time.perf_counter() - t0)
    return {"config": name, "what": f"loader {workers} workers", "batch": config.batch_size,
            "steps_per_s": rate / config.batch_size, "examples_per_s": rate, "peak_gb": float("nan")}


def in_subprocess(kind: str, name: str, arg: int, device: str, steps: int) -> dict:
    """One row measured by a fresh interpreter (its own peak memory)."""
    cmd = [sys.executable, __file__, "--row", kind, name, str(arg), "--device", device, "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="tiny,small", help="comma-separated: tiny, small, sd15")
    parser.add_argument("--sd15", action="store_true",
                        help="allow the sd15 config (minutes and ~20 GB on a CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per row (and loader items × 4)")
    parser.add_argument("--row", nargs=3, metavar=("KIND", "CONFIG", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row:
        kind, name, arg = args.row
        row = (step_row(name, bool(int(arg)), args.device, args.steps) if kind == "step"
               else loader_row(name, int(arg), 4 * args.steps))
        print(json.dumps(row))
        return 0
    names = args.configs.split(",")
    if "sd15" in names and not args.sd15:
        parser.error("the sd15 config takes minutes and ~20 GB of memory on a CPU; add --sd15")
    print(f"device: {args.device} | torch {torch.__version__} | threads {torch.get_num_threads()} | "
          f"cores {os.cpu_count()}")
    print("| config | what | batch | steps/s | examples/s | peak memory (GB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for name in names:
        jobs = [("step", 0), ("step", 1)] + ([("loader", 0), ("loader", 2)] if name != "sd15" else [])
        for kind, arg in jobs:
            row = in_subprocess(kind, name, arg, args.device, args.steps)
            rows.append(row)
            print(f"| {row['config']} | {row['what']} | {row['batch']} | {row['steps_per_s']:.3g} | "
                  f"{row['examples_per_s']:.3g} | {row['peak_gb']:.2f} |", flush=True)
    from unigs.config import config_from_dict
    from unigs.train_config import TrainConfig
    from unigs.train_parts import checkpoint_bytes, part_sizes

    for frozen in ("copy", "reference"):  # SD-1.5 sizes from its config on the meta device: no weights
        sd15 = config_from_dict({"init": "sd15", "image_size": 512, "checkpoint_frozen": frozen}, TrainConfig,
                                check_paths=False)
        size = checkpoint_bytes(sd15, part_sizes(sd15))
        print(f"one SD-1.5 checkpoint (checkpoint_frozen: {frozen}): {size['total'] / 1e9:.2f} GB = "
              + " + ".join(f"{k} {v / 1e9:.2f}" for k, v in size.items() if k != "total"))
    for name in names:
        step = next((r for r in rows if r["config"] == name and r["what"] == "step"), None)
        loader = next((r for r in rows if r["config"] == name and r["what"] == "loader 2 workers"), None)
        if step and loader:
            ratio = loader["examples_per_s"] / step["examples_per_s"]
            print(f"{name}: loader (2 workers) / step consumption = {ratio:.1f}× "
                  f"({'keeps up' if ratio >= 1 else 'the step would wait for data'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
