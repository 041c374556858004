"""Colormap codec benchmark: Ψ (palette.encode) → latent round trip → Φ (dichotomy.decode), Tables 8–9.

    .venv/bin/python benchmarks/codec.py [--limit N] [--size 512] [--seed 0] [--vae PATH] [--threads 1]
                                         [--repeats 3]

For each coco-mini val image: entity masks resized to size×size (nearest), colormap by ``palette.encode``
(collisions="nearest", so no two entities share a colour), degraded by the latent round-trip model of
``unigs.codec.degrade`` (or a real SD VAE with ``--vae``), then decoded by

* PDM (Φ) at δ ∈ {1, 10, 20, 50} with RGB+LAB features (Table 9a), and at δ = 10 with RGB / LAB (9b),
  all with the defaults otherwise (region clean-up on, work scale 128 px); ablations of the default row
  (indented): each clean-up stage dropped in turn (``stages=``, the stages of ``unigs.codec.cleanup``),
  the work scale at 256 px (f = 2 at 512²) and off (``work_size=None``, full resolution), and no region
  clean-up at all (``regions=False``, the paper's plain Eq. 6–7 leaves);
* scikit-learn KMeans with k = 3 and k = ground truth (#entities + 1 for the background), n_init=1 (one
  Lloyd run, as fair to KMeans' speed as it gets), on the same per-pixel RGB+LAB features; the cluster
  whose mean colour is near-black (every channel < 32) is dropped, as PDM drops the background (Table 8).

The same PDM rows are then scored (untimed) on the real-VAE fixtures of the tests
(``tests/codec/fixtures``: 12 maps through the project's small VAE at 128 px, 23 entities).

Ground truth = the *visible* part of each entity in the clean colormap (a smaller entity painted on top
hides part of a larger one); fully hidden entities are left out. Scores (DESIGN.md "Metrics"): mIoU = mean
over entities of the best IoU with any predicted mask, recall = share with best IoU >= 0.5.

Timing: every decoder runs on the same degraded colormaps, prepared before any clock starts; per colormap
each decoder runs ``--repeats`` times, the decoders interleaved and their order rotated each repeat (so a
load burst on a shared machine hits all of them alike), with ``--threads`` threads for PDM (torch) and
KMeans (OpenMP, via threadpoolctl) alike. A time is wall clock from the uint8 colormap to the (K, H, W)
masks, features and mask construction included; scoring is outside the clock. "ms/map" = median over
colormaps of the per-colormap median over repeats; "speed ×" = median over colormaps of the per-colormap
ratio KMeans(k=GT) time / decoder time (same run, same colormap). Also checked: encode → decode on the
clean colormaps gives IoU = 1 for every visible entity.
"""

from __future__ import annotations

import os

# KMeans' OpenMP threads would otherwise spin after each fit and steal the CPU from the next timed call.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from unigs.codec import palette  # noqa: E402
from unigs.codec.config import STAGES  # noqa: E402
from unigs.codec.degrade import simulate_latent_roundtrip  # noqa: E402
from unigs.codec.dichotomy import decode, pixel_features  # noqa: E402
from unigs.data.coco import CocoEntities  # noqa: E402
from unigs.evaluate.metrics import best_match_scores  # noqa: E402

COCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco-mini"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "codec" / "fixtures"
STAGE_NAMES = {"tiny": "tiny regions", "touching": "close touching", "darker": "darker/ramps",
               "apart": "same colour apart", "midpoint": "midpoint", "holes": "holes"}
PDM_ROWS = [  # (label, decode keyword arguments); the rest are the defaults (work_size=128, regions on)
    ("PDM δ=1  RGB+LAB", {"delta": 1.0}),
    ("PDM δ=10 RGB+LAB", {"delta": 10.0}),
    ("PDM δ=20 RGB+LAB", {"delta": 20.0}),
    ("PDM δ=50 RGB+LAB", {"delta": 50.0}),
    ("PDM δ=10 RGB", {"features": "rgb"}),
    ("PDM δ=10 LAB", {"features": "lab"}),
    *[(f"  − {STAGE_NAMES[s]}", {"stages": tuple(t for t in STAGES if t != s)}) for s in STAGES],
    ("  work 256 px", {"work_size": 256}),  # ablations of the default row (δ=10, RGB+LAB)
    ("  full-res regions", {"work_size": None}),
    ("  no regions", {"regions": False}),
]


def machine(threads: int) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"machine: {cpu}, {os.cpu_count()} cores, load avg {load} (other processes share the CPU when "
            f"it is > 0); {threads} thread(s) for PDM and KMeans; torch {torch.__version__}, numpy "
            f"{np.__version__}, scikit-learn {sklearn.__version__}, python {platform.python_version()}")


def load_vae_roundtrip(path: str):
    """Real SD-VAE round trip (colormap uint8 → latent mode → decoded uint8), local diffusers folder."""
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"--vae {path}: not a diffusers AutoencoderKL folder (no config.json)")
    from diffusers import AutoencoderKL

    try:
        vae = AutoencoderKL.from_pretrained(str(folder), local_files_only=True).eval()
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"--vae {path}: could not load AutoencoderKL weights ({err})") from err

    @torch.no_grad()
    def roundtrip(colormap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = torch.from_numpy(colormap).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        z = vae.encode(x).latent_dist.mode()  # the scaling factor cancels in a round trip
        y = vae.decode(z).sample[0].permute(1, 2, 0)
        return ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()

    return roundtrip


def entity_masks(sample, size: int) -> np.ndarray:
    m = torch.from_numpy(sample.masks)[None].float()
    m = F.interpolate(m, size=(size, size), mode="nearest")[0].bool().numpy()
    return m[m.reshape(len(m), -1).any(1)]


def visible(masks: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    colors = palette.assign(masks).colors
    vis = np.stack([m & (colormap == c).all(-1) for m, c in zip(masks, colors, strict=True)])
    return vis[vis.reshape(len(vis), -1).any(1)]


def kmeans_masks(colormap: np.ndarray, k: int, seed: int) -> np.ndarray:
    """KMeans baseline (Table 8): clusters of per-pixel features → masks, near-black clusters dropped."""
    h, w, _ = colormap.shape
    feats = pixel_features(colormap).reshape(-1, 6)
    labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(feats).labels_
    count = np.bincount(labels, minlength=k)
    mean = np.stack([np.bincount(labels, weights=colormap[..., c].ravel(), minlength=k) for c in range(3)], 1)
    mean /= np.maximum(count, 1)[:, None]
    keep = np.flatnonzero((count > 0) & (mean.max(1) >= 32))  # mean colour not near-black
    if len(keep) == 0:
        return np.zeros((1, h, w), bool)
    return labels.reshape(h, w)[None] == keep[:, None, None]


def prepare(data, limit: int, size: int, roundtrip, rng) -> tuple[list, list, list, int]:
    """Untimed: (degraded colormaps, visible gt masks, clean-round-trip best IoUs, hidden entity count)."""
    degraded, gts, clean_ious, hidden = [], [], [], 0
    for sample in list(data)[:limit]:
        masks = entity_masks(sample, size)
        if len(masks) == 0:
            continue
        colormap = palette.encode(masks)
        gt = visible(masks, colormap)
        hidden += len(masks) - len(gt)
        clean_ious.append(best_match_scores(decode(colormap), gt).best_iou)
        degraded.append(roundtrip(colormap, rng))
        gts.append(gt)
    return degraded, gts, clean_ious, hidden


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=40, help="number of coco-mini val images (default 40)")
    parser.add_argument("--size", type=int, default=512, help="colormap side in pixels (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradation and KMeans")
    parser.add_argument("--vae", default=None, help="local diffusers AutoencoderKL folder (real VAE trip)")
    parser.add_argument("--threads", type=int, default=1, help="threads for PDM (torch) and KMeans (OpenMP)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per decoder and colormap")
    parser.add_argument("--coco", default=str(COCO), help="coco-mini folder")
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1:
        print(f"error: --threads and --repeats must be >= 1, got {args.threads} and {args.repeats}")
        return 2
    torch.set_num_threads(args.threads)
    try:
        roundtrip = load_vae_roundtrip(args.vae) if args.vae else simulate_latent_roundtrip
    except FileNotFoundError as err:
        print(f"error: {err}")
        return 2
    print(machine(args.threads))
    print(f"degradation: {'SD VAE ' + args.vae if args.vae else 'unigs.codec.degrade (defaults)'}; "
          f"{args.size}×{args.size}; seed {args.seed}; {args.repeats} timed repeats per decoder and map")

    data = CocoEntities(Path(args.coco) / "annotations" / "instances_val2017.json")
    degraded, gts, clean_ious, hidden = prepare(data, args.limit, args.size, roundtrip,
                                                np.random.default_rng(args.seed))
    if not degraded:
        print("error: no image with entities")
        return 2
    pdm = dict(PDM_ROWS)
    rows = list(pdm) + ["KMeans k=3", "KMeans k=GT"]

    def run(label: str, colormap: np.ndarray, n_gt: int) -> np.ndarray:
        if label in pdm:
            return decode(colormap, **pdm[label])
        return kmeans_masks(colormap, 3 if label == "KMeans k=3" else n_gt + 1, args.seed)

    ious: dict[str, list] = {r: [] for r in rows}
    times = {r: np.zeros((len(degraded), args.repeats)) for r in rows}
    with threadpool_limits(limits=args.threads):
        for label in rows[:-1]:  # warm-up: first-call overheads (e.g. PDM's cached bin-feature tables)
            run(label, degraded[0], len(gts[0]))
        for i, (colormap, gt) in enumerate(zip(degraded, gts, strict=True)):
            for rep in range(args.repeats):
                shift = rep % len(rows)
                for label in rows[shift:] + rows[:shift]:
                    t = time.perf_counter()
                    pred = run(label, colormap, len(gt))
                    times[label][i, rep] = time.perf_counter() - t
                    if rep == 0:  # deterministic decoders: score the first run, off the clock
                        ious[label].append(best_match_scores(pred, gt).best_iou)
                    del pred

    n_ent = sum(len(b) for b in clean_ious)
    print(f"{len(degraded)} images, {n_ent} visible entities ({hidden} fully hidden ones left out)\n")
    per_map = {r: np.median(times[r], axis=1) for r in rows}  # (maps,) median over repeats
    print(f"{'decoder':22s} {'mIoU':>6s} {'recall':>7s} {'ms/map':>8s} {'speed ×':>8s}")
    for r in rows:
        best = np.concatenate(ious[r])
        speed = np.median(per_map["KMeans k=GT"] / per_map[r])
        print(f"{r:22s} {best.mean():6.3f} {(best >= 0.5).mean():7.3f} {np.median(per_map[r]) * 1e3:8.1f} "
              f"{speed:8.1f}")
    clean = np.concatenate(clean_ious)
    print(f"\nclean round trip (encode → decode, no degradation): {int((clean == 1).sum())}/{len(clean)} "
          f"entities with IoU = 1, min IoU {clean.min():.4f}")
    fixtures()
    return 0


def fixtures() -> None:
    """The PDM rows on the real-VAE fixtures of the tests (untimed): pooled mIoU and recall."""
    from PIL import Image

    packed = np.load(FIXTURES / "vae_roundtrip_masks.npz")
    maps = [np.array(Image.open(FIXTURES / f"vae_roundtrip_{i:02d}.png")) for i in range(12)]
    gts = [np.unpackbits(packed[f"m{i:02d}"], axis=-1, count=m.shape[1]).astype(bool)
           for i, m in enumerate(maps)]
    n_ent = sum(len(g) for g in gts)
    print(f"\nreal-VAE fixtures ({len(maps)} maps, {maps[0].shape[0]} px, {n_ent} entities)")
    print(f"{'decoder':22s} {'mIoU':>6s} {'recall':>7s}")
    for label, kwargs in PDM_ROWS:
        best = np.concatenate([best_match_scores(decode(m, **kwargs), g).best_iou
                               for m, g in zip(maps, gts, strict=True)])
        print(f"{label:22s} {best.mean():6.3f} {(best >= 0.5).mean():7.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
