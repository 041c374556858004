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
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from unigs.conditions import TASK_IDS
from unigs.data.tasks import sample_example
from unigs.evaluate.runner import MAX_ENTITIES, EvalConfig, entity_readout, load_items, mask_metrics
from unigs.models.colormap_vae import attach, decode_colormaps
from unigs.models.loading import default_model_path, load_unigs
from unigs.models.vae import encode_images
from unigs.pipelines.base import UniGSPipeline


def ceiling(vae_encode, vae_decode, limit: int, seed: int, size: int, grid: int) -> dict[str, dict]:
    """Referring and entity metrics of exact targets through (vae_encode → vae_decode) and Φ."""
    held = load_items(EvalConfig(split="test", limit=limit, seed=seed), size)
    rows = {}
    for task in ("referring", "entity"):
        examples, outputs = [], []
        for index, item in enumerate(held.items):
            rng = np.random.default_rng([seed, index, TASK_IDS[task]])
            ex = sample_example(task, item.image, item.masks, item.names, rng, held.vocabulary,
                                max_entities=MAX_ENTITIES, negative_prob=0.0, grid=grid)
            cmap = vae_decode(vae_encode(ex.colormap_target[None]))
            keep_bg = task == "entity"
            region = None if keep_bg else ex.coarse_mask[None]
            masks = UniGSPipeline.masks_from_colormaps(cmap, region, 10.0, keep_background=keep_bg)[0]
            outputs.append(entity_readout(masks)[0] if task == "entity" else masks)
            examples.append(ex)
        rows[task] = mask_metrics(task, outputs, examples, held.stuff)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="UniGS model (default: the bundled one)")
    parser.add_argument("--colormap-vae", default=None, help="a VAE folder whose decoder is scored too")
    parser.add_argument("--limit", type=int, default=32, help="held-out test scenes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load_unigs(args.model or default_model_path())
    size, grid = model.meta.image_size, model.meta.grid
    decoders = {"model VAE": None}
    if model.colormap_vae is not None:
        decoders["model's cmap dec"] = model.colormap_vae
    if args.colormap_vae:
        from diffusers import AutoencoderKL

        folder = AutoencoderKL.from_pretrained(args.colormap_vae, local_files_only=True)
        decoders["--colormap-vae"] = attach(model.vae, folder, f"--colormap-vae {args.colormap_vae}")
    print(f"exact targets through VAE + Φ, {args.limit} test scenes at {size} px, seed {args.seed}")
    header = (f"{'decoder':<17} {'task':<10} {'mIoU':>6} {'recall':>6} {'things':>6} {'stuff':>6} "
              f"{'AP^e':>6} {'PQ':>6} {'s':>5}")
    print(header)
    for name, decoder in decoders.items():
        start = time.perf_counter()
        rows = ceiling(lambda x: encode_images(model.vae, x), lambda z, d=decoder: decode_colormaps(
            model.vae, z, d), args.limit, args.seed, size, grid)
        took = time.perf_counter() - start
        for task, r in rows.items():
            ap, pq = (f"{r['AP']:6.3f}", f"{r['PQ']:6.3f}") if "AP" in r else (f"{'':>6}", f"{'':>6}")
            print(f"{name:<17} {task:<10} {r['mIoU']:6.3f} {r['recall']:6.3f} {r['mIoU_things']:6.3f} "
                  f"{r['mIoU_stuff']:6.3f} {ap} {pq} {took:5.1f}")


if __name__ == "__main__":
    main()
