"""What any UNet can reach through a model's VAE and Φ: exact colormap targets → VAE round trip → Φ → metrics.

The held-out examples are sampled exactly as `unigs eval` samples them (`unigs.evaluate.runner`: the same
per-(seed, image, task) RNG, 3 entities, no negatives), but instead of the UNet's prediction the *exact*
colormap target goes through Υ (encode, decode) and then through the pipelines' own read-out (referring:
cut to m_c, background dropped; entity: background kept, non-overlapping, area-fraction scores). A perfect
UNet would score this; the gap to 1 is the VAE's and Φ's. Colormap latents are decoded as the pipelines
decode them (`unigs.models.colormap_vae.decode_colormaps`): rows for the model's VAE decoder, the model's
own colormap decoder when its file carries one, and a colormap decoder from a VAE folder (`--colormap-vae`,
fine-tuned on colormaps with the same encoder, attached as `scripts/export_model.py --colormap-vae` would).

    .venv/bin/python benchmarks/ceiling.py --limit 32
    .venv/bin/python benchmarks/ceiling.py --limit 32 --colormap-vae runs/vae-colormap/vae

Two sweeps a model does not need retraining for: Φ's δ (`--deltas`; the codec's 10 and the pipelines'
read-outs, `READOUT` in pipelines/referring.py and entity.py) and Ψ's colour per grid cell (`--palette
spread`: the same cells, each painted with a colour far from its neighbours' instead of the paper's
cell-i-gets-colour-i order, whose neighbours differ by one level in one channel; `--grid` sets b). A palette
row answers "would retraining with that palette raise the ceiling?" before anyone retrains.

    .venv/bin/python benchmarks/ceiling.py --limit 32 --palette spread --grid 7
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from unigs.codec import palette
from unigs.codec.config import DichotomyConfig
from unigs.conditions import TASK_IDS
from unigs.data.tasks import sample_example
from unigs.evaluate.runner import MAX_ENTITIES, EvalConfig, entity_readout, load_items, mask_metrics
from unigs.models.colormap_vae import attach, decode_colormaps
from unigs.models.loading import default_model_path, load_unigs
from unigs.models.vae import encode_images
from unigs.pipelines.base import UniGSPipeline
from unigs.pipelines.entity import UniGSEntityPipeline
from unigs.pipelines.referring import UniGSReferringPipeline

NEIGHBOUR_RADIUS = 2  # spread palette: cells within this Chebyshev distance get far-apart colours


def ceiling(vae_encode, vae_decode, limit: int, seed: int, size: int, grid: int,
            deltas: tuple[float, ...] = (10.0,), colors: np.ndarray | None = None) -> dict[float, dict]:
    """δ → task → referring and entity metrics of exact targets through (vae_encode → vae_decode) and Φ.

    colors: `(124, 3) uint8`, the colour of each palette index (None: `palette.PALETTE`, the paper's)."""
    held = load_items(EvalConfig(split="test", limit=limit, seed=seed), size)
    rows: dict[float, dict] = {d: {} for d in deltas}
    for task in ("referring", "entity"):
        examples, outputs = [], {d: [] for d in deltas}
        for index, item in enumerate(held.items):
            rng = np.random.default_rng([seed, index, TASK_IDS[task]])
            ex = sample_example(task, item.image, item.masks, item.names, rng, held.vocabulary,
                                max_entities=MAX_ENTITIES, negative_prob=0.0, grid=grid)
            target = ex.colormap_target if colors is None else recolor(ex.colormap_target, colors)
            cmap = vae_decode(vae_encode(target[None]))
            keep_bg = task == "entity"
            region = None if keep_bg else ex.coarse_mask[None]
            for d in deltas:
                masks = UniGSPipeline.masks_from_colormaps(cmap, region, d, keep_background=keep_bg)[0]
                outputs[d].append(entity_readout(masks)[0] if task == "entity" else masks)
            examples.append(ex)
        for d in deltas:
            rows[d][task] = mask_metrics(task, outputs[d], examples, held.stuff)
    return rows


def recolor(colormap: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """A Ψ colormap `(H, W, 3) uint8` (exact palette colours) with palette index i painted `colors[i]`."""
    index = palette.nearest_palette_index(colormap)
    if not np.array_equal(np.where(index[..., None] >= 0, palette.PALETTE[index], 0), colormap):
        raise ValueError("recolor needs an exact Ψ colormap (palette colours and black only)")
    return np.where(index[..., None] >= 0, colors[index], 0).astype(np.uint8)


def spread_palette(grid: int, radius: int = NEIGHBOUR_RADIUS) -> np.ndarray:
    """The palette's 124 colours reordered for a b×b grid: cell by cell (row-major), the unused colour
    farthest (RGB) from the colours of the cells already given within Chebyshev `radius`, ties broken by
    the distance to every colour used so far, then by index. Indices ≥ b² keep the leftover colours."""
    table = palette.PALETTE.astype(np.float64)
    dist = np.linalg.norm(table[:, None] - table[None], axis=2)
    chosen = np.full(grid * grid, -1)
    used = np.zeros(len(table), bool)
    for cell in range(grid * grid):
        r, c = divmod(cell, grid)
        near = [chosen[rr * grid + cc] for rr in range(max(r - radius, 0), r + 1)
                for cc in range(max(c - radius, 0), min(c + radius, grid - 1) + 1) if rr * grid + cc < cell]
        d_near = dist[:, near].min(axis=1) if near else np.full(len(table), np.inf)
        d_used = dist[:, used].min(axis=1) if used.any() else np.full(len(table), np.inf)
        score = np.lexsort((-np.minimum(d_used, 1e9), -np.minimum(d_near, 1e9)))  # best first
        chosen[cell] = next(k for k in score if not used[k])
        used[chosen[cell]] = True
    return palette.PALETTE[np.concatenate([chosen, np.flatnonzero(~used)])]


def neighbour_distance(colors: np.ndarray, grid: int) -> tuple[float, float]:
    """(min, mean) RGB distance between the colours of 8-neighbouring cells of a b×b grid."""
    d = [np.linalg.norm(colors[r * grid + c].astype(float) - colors[rr * grid + cc])
         for r in range(grid) for c in range(grid)
         for rr, cc in ((r, c + 1), (r + 1, c), (r + 1, c + 1), (r + 1, c - 1))
         if 0 <= rr < grid and 0 <= cc < grid]
    return float(min(d)), float(np.mean(d))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="UniGS model (default: the bundled one)")
    parser.add_argument("--colormap-vae", default=None, help="a VAE folder whose decoder is scored too")
    parser.add_argument("--limit", type=int, default=32, help="held-out test scenes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deltas", default=None,
                        help="comma-separated Φ δ values (default: the codec's and the pipelines' read-outs)")
    parser.add_argument("--palette", default="paper", choices=("paper", "spread"),
                        help="Ψ's colour per cell: the paper's order, or far from the neighbours' (spread)")
    parser.add_argument("--grid", type=int, default=None, help="palette grid b (default: the model's)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load_unigs(args.model or default_model_path())
    size, grid = model.meta.image_size, args.grid or model.meta.grid
    deltas = (tuple(float(d) for d in args.deltas.split(",")) if args.deltas else
              tuple(sorted({DichotomyConfig().delta, UniGSReferringPipeline.readout["delta"],
                            UniGSEntityPipeline.readout["delta"]})))
    colors = None if args.palette == "paper" else spread_palette(grid)
    decoders = {"model VAE": None}
    if model.colormap_vae is not None:
        decoders["model's cmap dec"] = model.colormap_vae
    if args.colormap_vae:
        from diffusers import AutoencoderKL

        folder = AutoencoderKL.from_pretrained(args.colormap_vae, local_files_only=True)
        decoders["--colormap-vae"] = attach(model.vae, folder, f"--colormap-vae {args.colormap_vae}")
    near_min, near_mean = neighbour_distance(palette.PALETTE if colors is None else colors, grid)
    print(f"exact targets through VAE + Φ, {args.limit} test scenes at {size} px, seed {args.seed} | palette "
          f"{args.palette}, grid {grid}: neighbouring cells' colours {near_min:.0f} apart at least, "
          f"{near_mean:.0f} on average")
    header = (f"{'decoder':<17} {'δ':>4} {'task':<10} {'mIoU':>6} {'recall':>6} {'things':>6} {'stuff':>6} "
              f"{'AP^e':>6} {'PQ':>6} {'s':>5}")
    print(header)
    for name, decoder in decoders.items():
        start = time.perf_counter()
        by_delta = ceiling(lambda x: encode_images(model.vae, x), lambda z, d=decoder: decode_colormaps(
            model.vae, z, d), args.limit, args.seed, size, grid, deltas, colors)
        took = time.perf_counter() - start
        for delta, rows in by_delta.items():
            for task, r in rows.items():
                ap, pq = (f"{r['AP']:6.3f}", f"{r['PQ']:6.3f}") if "AP" in r else (f"{'':>6}", f"{'':>6}")
                print(f"{name:<17} {delta:4.0f} {task:<10} {r['mIoU']:6.3f} {r['recall']:6.3f} "
                      f"{r['mIoU_things']:6.3f} {r['mIoU_stuff']:6.3f} {ap} {pq} {took:5.1f}")


if __name__ == "__main__":
    main()
