"""Bit-mask codec (LDMSeg) vs colormap codec: masks → latents → masks, round-trip PQ / mIoU, size, speed.

Both codecs turn an entity segmentation into 4-channel latents and back, as a UNet's mask half would
see them:

* **bit-mask AE**: `bitmask.encode` (ids 1..N as 7 bit planes) → `MaskAE` encode/decode (`--mask-ae`, a
  `unigs train-mask-ae` output) → `bitmask.decode` (one mask per id present);
* **colormap + VAE + Φ**: `palette.encode` (Ψ, grid from the model) → the model's VAE encode/decode →
  `dichotomy.decode` (Φ, δ = 10, background kept) → `non_overlapping`, the entity task's read-out.

Plus the exact rows (no latent round trip: bits → ids, colormap → Φ), the codecs' own ceilings. Data:
held-out *test* scenes at the model's size (`--limit`), and coco-mini val resized to that size
(`--coco N`, 0 = skip). Ground truth = the visible masks (smaller entities on top, as both codecs paint);
void = pixels no entity covers. PQ is class-agnostic (`unigs.evaluate.segmentation`, IoU > 0.5), mIoU =
mean best IoU per ground-truth entity. ms/map = median wall clock per map, encode + decode, on this CPU.

    .venv/bin/python benchmarks/bitmask.py --mask-ae runs/mask-ae/mask_ae --limit 32 [--coco 32]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from unigs.codec import bitmask, palette
from unigs.codec.dichotomy import decode as phi
from unigs.evaluate import segmentation
from unigs.evaluate.metrics import best_match_scores, pool_match_scores
from unigs.models.loading import default_model_path, load_unigs
from unigs.models.mask_ae import BitMaskCodec, num_parameters
from unigs.models.vae import decode_latents, encode_images

COCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco-mini"


def visible(masks: np.ndarray) -> np.ndarray:
    """The visible part of each entity (smaller on top), empty ones dropped: `(K, H, W) bool`."""
    return bitmask.masks_from_ids(bitmask.id_map(masks[:bitmask.MAX_INSTANCES]))


def scenes(limit: int, size: int) -> list[np.ndarray]:
    from unigs.data.scenes import SceneDataset

    return [visible(s.masks) for s in SceneDataset(split="test", length=limit, size=size)]


def coco_val(limit: int, size: int) -> list[np.ndarray]:
    from unigs.data.source import EntitySource

    source = EntitySource(str(COCO / "annotations" / "instances_val2017.json"), size, str(COCO / "val2017"))
    out = [visible(source.get(i)[1]) for i in range(min(limit, len(source)))]
    return [m for m in out if len(m)]


def score(name: str, round_trip, gts: list[np.ndarray]) -> dict:
    """Round-trip every map, time it, and pool PQ / mIoU / recall over the maps."""
    preds, times = [], []
    for gt in gts:
        start = time.perf_counter()
        preds.append(np.asarray(round_trip(gt), bool).reshape(-1, *gt.shape[1:]))
        times.append(time.perf_counter() - start)
    pooled = pool_match_scores([best_match_scores(p, g) for p, g in zip(preds, gts, strict=True)])
    pq = segmentation.panoptic_quality(preds, gts, [~g.any(0) for g in gts])
    return {"codec": name, "PQ": pq.pq, "SQ": pq.sq, "RQ": pq.rq, "mIoU": pooled.miou,
            "recall": pooled.recall, "ms": 1000 * float(np.median(times))}


def codecs(mask_ae: BitMaskCodec, vae, grid: int) -> dict[str, tuple]:
    """name → (round trip masks → masks, parameters, latent shape of a 128 px map)."""
    def bit_ae(gt):
        return mask_ae.decode(mask_ae.encode(gt))

    def colormap_vae(gt):
        cmap = decode_latents(vae, encode_images(vae, palette.encode(gt, grid=grid)[None]))[0]
        masks = np.asarray(phi(cmap, delta=10.0, keep_background=True), bool).reshape(-1, *gt.shape[1:])
        return segmentation.non_overlapping(masks, segmentation.area_scores(masks))

    f_ae = mask_ae.model.config.downsample
    f_vae = 2 ** (len(vae.config.block_out_channels) - 1)
    return {
        "bits exact (no AE)": (lambda gt: bitmask.decode(bitmask.encode(gt)), 0, "7×128×128"),
        "Ψ → Φ exact (no VAE)": (lambda gt: phi(palette.encode(gt, grid=grid), delta=10.0), 0, "3×128×128"),
        "bit-mask AE": (bit_ae, num_parameters(mask_ae.model), f"4×{128 // f_ae}×{128 // f_ae}"),
        "colormap + VAE + Φ": (colormap_vae, num_parameters(vae), f"4×{128 // f_vae}×{128 // f_vae}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mask-ae", required=True, help="a trained mask autoencoder (unigs train-mask-ae)")
    parser.add_argument("--model", default=None, help="UniGS model whose VAE is scored (default: bundled)")
    parser.add_argument("--limit", type=int, default=32, help="held-out test scenes")
    parser.add_argument("--coco", type=int, default=0, help="coco-mini val images too (0 = skip)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    model = load_unigs(args.model or default_model_path())
    size, grid = model.meta.image_size, model.meta.grid
    data = {"scenes (test)": scenes(args.limit, size)}
    if args.coco:
        data["coco-mini val"] = coco_val(args.coco, size)
    rows = codecs(BitMaskCodec.from_pretrained(args.mask_ae), model.vae, grid)
    print(f"round trip masks → latents → masks at {size} px, 1 thread; {args.mask_ae}")
    print("| data | codec | params | latent | PQ | SQ | RQ | mIoU | recall | ms/map |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for data_name, gts in data.items():
        for name, (round_trip, params, latent) in rows.items():
            r = score(name, round_trip, gts)
            print(f"| {data_name} ({len(gts)}) | {name} | {params / 1e6:.2f} M | {latent} | {r['PQ']:.3f} | "
                  f"{r['SQ']:.3f} | {r['RQ']:.3f} | {r['mIoU']:.3f} | {r['recall']:.3f} | {r['ms']:.1f} |")


if __name__ == "__main__":
    main()
