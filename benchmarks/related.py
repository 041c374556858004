"""The related systems on held-out scenes with a UniGS model (default: the bundled one): three tables.

    nice -n 19 .venv/bin/python benchmarks/related.py --table tcig|spg|completion|all
                                                     [--limit 8] [--steps 20] [--seed 0] [--model PATH]
                                                     [--fid-weights PATH] [--threads 2]

Data: the first `--limit` scenes of the *test* split (`unigs.data.scenes`, seeds disjoint from training);
examples are drawn as `unigs eval` draws them (`sample_example`, max 3 entities, the same per-(seed, image,
task) RNG), so synthesis/inpainting inputs are those of `unigs eval --split test`. All images of a table go
through each pipeline as one batch; DDIM, `--steps` steps, each pipeline's default guidance.

**TCIG** (`UniGSTwoStagePipeline`): stage 1 = synthesis from the colormap; stage 2 at S ∈ {0, 0.2, 0.4, 0.6}
(S = 0 is stage 1 itself; stage 2 runs int(steps·S) steps with an empty colormap). Columns: mask alignment
(the model's own entity segmentation of the output vs the input colormap's entities, as `unigs eval` does:
mIoU / recall pooled over entities); image quality, offline: MAE to the real scene image (same layout,
lower is closer to the real data), and *sharpness* = mean |∇I| of the outputs / mean |∇I| of the real
images (1 = as much fine detail as the data; diffusion blur reads < 1); FID when `--fid-weights` is given
(a local TorchScript feature network; with ≤ 16 images it is noisy and only comparable within the table).

**SPG-Net** (`UniGSGuidedInpaintPipeline`): hole = the inpainting example's coarse mask. Step 1 predicts
the hole's colormap (its unguided image is the *one-step* row); the *edit* is the correct segmentation of
the hole (Ψ of the example's target entities — what a user fixing the prediction would paint). Rows: one-step
inpainting, guided by the prediction, guided by the edit; each output is segmented by the model (entity
task) inside the hole and matched against the entities of the edited and of the predicted colormap (mIoU /
recall pooled over those entities). Boundary sharpness: mean |∇I| on the edit's entity boundaries inside
the hole, divided by the same on the real image (SPG-Net's claim: guidance sharpens boundaries).

**LDMSeg mask completion** (`UniGSMaskCompletionPipeline`): the ground-truth colormap Ψ(all entities) with
a hidden region in two regimes — one large *block* (random position, aspect in [1/2, 2]) or sparse random
*patches* (16×16 px cells of a 128 px image) — at 25 / 50 / 75 % of the image hidden. PQ / SQ / RQ
(class-agnostic, IoU > 0.5, void = no gt; predictions made non-overlapping by area as in `unigs eval`) of
the completed map, of the partial map alone (its entities on the known pixels only), and of from-scratch
entity segmentation.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from unigs.codec import palette
from unigs.codec.snap import colormap_masks
from unigs.conditions import TASK_IDS
from unigs.data.tasks import sample_example
from unigs.evaluate import generation, segmentation
from unigs.evaluate.metrics import best_match_scores, pool_match_scores
from unigs.evaluate.runner import MAX_ENTITIES, EvalConfig, load_items
from unigs.models.loading import default_model_path, load_unigs
from unigs.pipelines import (
    UniGSEntityPipeline,
    UniGSGuidedInpaintPipeline,
    UniGSMaskCompletionPipeline,
    UniGSTwoStagePipeline,
)

STRENGTHS = (0.0, 0.2, 0.4, 0.6)
HIDDEN = (0.25, 0.5, 0.75)
PATCH = 16  # px per patch of the sparse regime at 128 px


# --- helpers ------------------------------------------------------------------------------------------------

def gradient_magnitude(images: np.ndarray) -> np.ndarray:
    """`(B, H, W, 3) uint8` → `(B, H, W)` |∇ gray| (central differences, intensities in [0, 1])."""
    gray = images.astype(np.float64).mean(-1) / 255.0
    gy, gx = np.gradient(gray, axis=(1, 2))
    return np.hypot(gx, gy)


def boundaries(colormap: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` exact colormap → `(H, W) bool` pixels whose right or lower neighbour has another colour."""
    packed = colormap.astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    edge = np.zeros(packed.shape, bool)
    edge[:, :-1] |= packed[:, :-1] != packed[:, 1:]
    edge[:-1] |= packed[:-1] != packed[1:]
    return edge


def hidden_region(regime: str, fraction: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """`(size, size) bool`, True = hidden: one block of `fraction` of the area, or that share of patches."""
    hidden = np.zeros((size, size), bool)
    if regime == "block":
        aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        h = int(round(min(size, np.sqrt(fraction * size * size * aspect))))
        w = int(round(min(size, fraction * size * size / h)))
        y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        hidden[y:y + h, x:x + w] = True
        return hidden
    cells = size // PATCH
    chosen = rng.choice(cells * cells, size=int(round(fraction * cells * cells)), replace=False)
    for c in chosen:
        r, q = divmod(int(c), cells)
        hidden[r * PATCH:(r + 1) * PATCH, q * PATCH:(q + 1) * PATCH] = True
    return hidden


def _examples(task: str, items: list, vocabulary: list[str], seed: int, grid: int) -> list:
    """`unigs eval`'s examples of `task` (the same RNG per image), one per item."""
    return [sample_example(task, it.image, it.masks, it.names,
                           np.random.default_rng([seed, i, TASK_IDS[task]]), vocabulary,
                           max_entities=MAX_ENTITIES, negative_prob=0.0, grid=grid)
            for i, it in enumerate(items)]


def _kwargs(steps: int, seed: int) -> dict:
    return {"num_inference_steps": steps, "output_type": "np",
            "generator": torch.Generator().manual_seed(seed)}


def _segment(components, images: np.ndarray, steps: int, seed: int) -> list[np.ndarray]:
    """The model's own entity segmentation (entity task, background kept), one `(K, H, W) bool` per image."""
    pipe = UniGSEntityPipeline.from_components(components)
    pipe.set_progress_bar_config(disable=True)
    return [np.asarray(m) for m in pipe(images, **_kwargs(steps, seed)).masks]


def _fmt(x: float) -> str:
    return "n/a" if x is None else f"{x:.3f}"


# --- TCIG ---------------------------------------------------------------------------------------------------

def table_tcig(components, items, vocabulary, args) -> str:
    grid = components.meta.grid
    exs = _examples("synthesis", items, vocabulary, args.seed, grid)
    pipe = UniGSTwoStagePipeline.from_components(components)
    pipe.set_progress_bar_config(disable=True)
    colormaps = np.stack([ex.control for ex in exs])
    names = [list(ex.names) for ex in exs]
    real = np.stack([it.image for it in items])
    fid_net = generation.load_feature_network(args.fid_weights) if args.fid_weights else None
    first = pipe(names, colormaps, refine_strength=0.0, prompt=[ex.prompt for ex in exs],
                 **_kwargs(args.steps, args.seed))
    real_grad = gradient_magnitude(real).mean()
    rows = ["| S | stage-2 steps | mask mIoU | mask recall | MAE to real | sharpness | FID |",
            "|---|---|---|---|---|---|---|"]
    for s in STRENGTHS:
        images = pipe.refine(names, first.stage1_images, s, num_inference_steps=args.steps,
                             generator=torch.Generator().manual_seed(args.seed + 1),
                             prompt=[ex.prompt for ex in exs])
        segs = _segment(components, images, args.steps, args.seed)
        align = pool_match_scores([generation.mask_alignment(m, c)
                                   for m, c in zip(segs, colormaps, strict=True)])
        mae = float(np.abs(images.astype(np.float64) - real).mean() / 255.0)
        sharp = float(gradient_magnitude(images).mean() / real_grad)
        fid = generation.fid_from_features(fid_net(real), fid_net(images)) if fid_net else None
        rows.append(f"| {s:.1f} | {int(args.steps * s)} | {align.miou:.3f} | {align.recall:.3f} | "
                    f"{mae:.3f} | {sharp:.3f} | {_fmt(fid)} |")
    return "\n".join(rows)


# --- SPG-Net ------------------------------------------------------------------------------------------------

def table_spg(components, items, vocabulary, args) -> str:
    grid = components.meta.grid
    exs = _examples("inpainting", items, vocabulary, args.seed, grid)
    pipe = UniGSGuidedInpaintPipeline.from_components(components)
    pipe.set_progress_bar_config(disable=True)
    images = np.stack([it.image for it in items])
    holes = np.stack([ex.coarse_mask for ex in exs])
    names, prompts = [list(ex.names) for ex in exs], [ex.prompt for ex in exs]
    edits = np.stack([ex.colormap_target for ex in exs])  # Ψ(target entities ∩ hole): the corrected map
    pred = pipe.predict_colormap(names, images, holes, prompt=prompts, **_kwargs(args.steps, args.seed))
    guides = np.asarray(pred.guides)
    outputs = {"one-step inpainting (no guide)": np.asarray(pred.onestep_images)}
    for label, guide in (("guided by the prediction", guides), ("guided by the edit", edits)):
        outputs[label] = np.asarray(pipe(names, images, holes, colormap=guide, prompt=prompts,
                                         **_kwargs(args.steps, args.seed)).images)
    edge = np.stack([boundaries(e) for e in edits]) & holes
    real_edge = gradient_magnitude(images)[edge].mean()
    rows = ["| output | mIoU vs edit | recall vs edit | mIoU vs prediction | recall vs prediction | "
            "boundary sharpness |", "|---|---|---|---|---|---|"]
    for label, out in {**outputs, "real image (reference)": images}.items():
        segs = [m & h[None]
                for m, h in zip(_segment(components, out, args.steps, args.seed), holes, strict=True)]
        vs_edit = pool_match_scores([best_match_scores(s[s.any((1, 2))], colormap_masks(e))
                                     for s, e in zip(segs, edits, strict=True) if e.any()])
        vs_pred = pool_match_scores([best_match_scores(s[s.any((1, 2))], colormap_masks(g))
                                     for s, g in zip(segs, guides, strict=True) if g.any()])
        sharp = gradient_magnitude(out)[edge].mean() / real_edge
        rows.append(f"| {label} | {vs_edit.miou:.3f} | {vs_edit.recall:.3f} | {vs_pred.miou:.3f} | "
                    f"{vs_pred.recall:.3f} | {sharp:.3f} |")
    changed = float(np.mean([(g != e).any(-1)[h].mean()
                             for g, e, h in zip(guides, edits, holes, strict=True)]))
    return "\n".join(rows) + f"\n\nshare of hole pixels whose colour the edit changed: {changed:.3f}"


# --- LDMSeg mask completion ---------------------------------------------------------------------------------

def _pq(preds: list[np.ndarray], gts: list[np.ndarray]) -> segmentation.PQStats:
    disjoint = [segmentation.non_overlapping(p) if len(p) else p for p in preds]
    return segmentation.panoptic_quality(disjoint, gts, [~g.any(0) for g in gts])


def table_completion(components, items, vocabulary, args) -> str:
    grid = components.meta.grid
    size = items[0].image.shape[0]
    images = np.stack([it.image for it in items])
    fulls = [palette.encode(it.masks, grid=grid) for it in items]
    gts = [colormap_masks(f) for f in fulls]  # the visible part of every entity, as painted
    pipe = UniGSMaskCompletionPipeline.from_components(components)
    pipe.set_progress_bar_config(disable=True)
    scratch = _pq(_segment(components, images, args.steps, args.seed), gts)
    rows = ["| regime | hidden | PQ completed | SQ | RQ | PQ partial alone | PQ from scratch |",
            "|---|---|---|---|---|---|---|"]
    for regime in ("block", "patches"):
        for fraction in HIDDEN:
            rng = np.random.default_rng([args.seed, int(fraction * 100), regime == "block"])
            known = np.stack([~hidden_region(regime, fraction, size, rng) for _ in items])
            partials = [np.where(k[..., None], f, 0).astype(np.uint8)
                        for k, f in zip(known, fulls, strict=True)]
            out = pipe(images, partials, known, **_kwargs(args.steps, args.seed))
            done = _pq([np.asarray(m) for m in out.masks], gts)
            alone = _pq([colormap_masks(p) & k[None] for p, k in zip(partials, known, strict=True)], gts)
            rows.append(f"| {regime} | {fraction:.0%} | {done.pq:.3f} | {done.sq:.3f} | {done.rq:.3f} | "
                        f"{alone.pq:.3f} | {scratch.pq:.3f} |")
    return "\n".join(rows)


TABLES = {"tcig": table_tcig, "spg": table_spg, "completion": table_completion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", choices=[*TABLES, "all"], default="all", help="which table (default all)")
    parser.add_argument("--limit", type=int, default=8, help="test-split scenes (default 8)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps per pipeline call (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of examples, holes and noise (default 0)")
    parser.add_argument("--model", default=None, help="UniGS model (default: the bundled one)")
    parser.add_argument("--fid-weights", default=None,
                        help="local TorchScript feature network for FID (TCIG)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    components = load_unigs(args.model or default_model_path())
    size = components.meta.image_size
    held = load_items(EvalConfig(data="scenes", split="test", limit=args.limit), size)
    items, vocabulary, label = held.items, held.vocabulary, held.label
    for name in TABLES if args.table == "all" else [args.table]:
        start = time.time()
        table = TABLES[name](components, items, vocabulary, args)
        print(f"\n## {name}: {len(items)} {label} scenes, {args.steps} DDIM steps, seed {args.seed} "
              f"({time.time() - start:.0f} s)\n\n{table}", flush=True)


if __name__ == "__main__":
    main()
