"""Parameters and per-step UNet time: UniGS (13 in / 8 out) vs SD-1.5-inpainting (9 in / 4 out), Table 10.

Both UNets are built from the same config with random weights (no download); the UniGS one is the SD one
widened by ``unigs.models.unet.widen_unet``, so they differ only in ``conv_in``/``conv_out`` (and the
optional task embedding). Forwards are timed fp32, ``torch.no_grad``, interleaved A B B A ... so that
background load hits both alike; the table reports medians, minima and the ratio (the paper: ≈ 1.00).

    .venv/bin/python benchmarks/model.py --sizes 32 --reps 3            # SD-1.5 config, 32×32 latent
    .venv/bin/python benchmarks/model.py --config small --sizes 32,64   # the shipped small UNet
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

import torch
from diffusers import UNet2DConditionModel

from unigs.models.unet import SD15_INPAINT_UNET_CONFIG, count_parameters, small_unet_config, widen_unet


def machine_info() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import diffusers

    return (
        f"CPU: {cpu} | cores: {os.cpu_count()} | torch threads: {torch.get_num_threads()} | "
        f"torch {torch.__version__} | diffusers {diffusers.__version__} | python {platform.python_version()}"
    )


def build_pair(config_name: str, num_tasks: int | None) -> tuple[UNet2DConditionModel, UNet2DConditionModel]:
    """(SD-inpainting 9/4 UNet, UniGS 13/8 UNet) with identical random weights except the widened convs."""
    if config_name == "sd15":
        config = dict(SD15_INPAINT_UNET_CONFIG)
    elif config_name == "small":
        config = small_unet_config(in_channels=9, out_channels=4)
    else:
        raise ValueError(f"--config must be 'small' or 'sd15', is {config_name!r}")
    torch.manual_seed(0)
    sd = UNet2DConditionModel(**config).eval()
    unigs = widen_unet(copy.deepcopy(sd), num_tasks=num_tasks).eval()
    return sd, unigs


def forward_fn(unet: UNet2DConditionModel, batch: int, size: int):
    """A closure running one denoising step of ``unet`` at latent ``size``×``size``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, unet.config.in_channels, size, size, generator=g)
    text = torch.randn(batch, 77, unet.config.cross_attention_dim, generator=g)
    t = torch.full((batch,), 500)
    labels = torch.zeros(batch, dtype=torch.long) if unet.class_embedding is not None else None

    def step() -> None:
        unet(x, t, encoder_hidden_states=text, class_labels=labels)

    return step


@torch.no_grad()
def time_pair(sd, unigs, batch: int, size: int, reps: int) -> tuple[list[float], list[float]]:
    """Seconds per step, ``reps`` times each, after one warm-up each.

    Order A B, B A, A B, ... (ABBA): each rep is an adjacent pair, so background load and drift hit both
    models alike; the pair ratios are then robust where the raw times are not.
    """
    steps = [forward_fn(sd, batch, size), forward_fn(unigs, batch, size)]
    for step in steps:
        step()  # warm-up: allocator, oneDNN kernel selection
    times: list[list[float]] = [[], []]
    for rep in range(reps):
        for i in (0, 1) if rep % 2 == 0 else (1, 0):
            start = time.perf_counter()
            steps[i]()
            times[i].append(time.perf_counter() - start)
    return times[0], times[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sd15", choices=["sd15", "small"], help="UNet architecture")
    parser.add_argument("--sizes", default="32,64", help="comma-separated latent sizes (32 = 256 px for SD)")
    parser.add_argument("--reps", type=int, default=3, help="timed forwards per model and size")
    parser.add_argument("--batch", type=int, default=1, help="batch size")
    parser.add_argument("--tasks", type=int, default=0, help="task embedding entries for UniGS (0: none)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or any(s <= 0 or s % 8 for s in sizes):
        raise ValueError(f"--sizes must be positive multiples of 8, is {args.sizes!r}")
    if args.reps < 1 or args.batch < 1:
        raise ValueError(f"--reps and --batch must be >= 1, are {args.reps}, {args.batch}")

    print(machine_info())
    t0 = time.perf_counter()
    sd, unigs = build_pair(args.config, args.tasks or None)
    print(
        f"built both UNets ({args.config}) in {time.perf_counter() - t0:.1f} s; "
        f"fp32, no_grad, batch {args.batch}, ABBA interleaved, {args.reps} reps after 1 warm-up"
    )
    n_sd, n_unigs = count_parameters(sd), count_parameters(unigs)
    print(
        f"parameters: SD-inpainting (9/4) {n_sd:,} = {n_sd / 1e6:.2f} M; "
        f"UniGS (13/8) {n_unigs:,} = {n_unigs / 1e6:.2f} M (+{n_unigs - n_sd:,})"
    )
    print()
    print("UniGS/SD: median of the per-rep (adjacent) ratios; 'of mins': min UniGS / min SD")
    print()
    columns = ["latent", "model", "in/out", "params (M)", "s/step median", "s/step min", "all reps (s)"]
    columns += ["UniGS/SD", "of mins"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for size in sizes:
        t_sd, t_unigs = time_pair(sd, unigs, args.batch, size, args.reps)
        ratio = statistics.median(u / s for u, s in zip(t_unigs, t_sd, strict=True))
        ratio_min = min(t_unigs) / min(t_sd)
        rows = (("SD-inpaint", sd, n_sd, t_sd), ("UniGS", unigs, n_unigs, t_unigs))
        for name, unet, n, ts in rows:
            io = f"{unet.config.in_channels}/{unet.config.out_channels}"
            r = f"{ratio:.3f} | {ratio_min:.3f}" if name == "UniGS" else " | "
            reps = " ".join(f"{t:.3f}" for t in ts)
            cells = [f"{size}×{size}", name, io, f"{n / 1e6:.2f}", f"{statistics.median(ts):.3f}"]
            cells += [f"{min(ts):.3f}", reps, r]
            print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
