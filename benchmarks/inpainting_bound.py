"""How well could any model place an unseen thing in an inpainting hole? A bound on inpainting's mask mIoU.

Inpainting's masks are scored against the entities that were in the hole (`unigs eval`), but the model never
sees them: Ω (`unigs.codec.coarse`, the paper's Algorithm 1) hides each entity in a blob around its box
extended by up to 40 % of the free space on every side, so where a thing stood inside the hole is
ambiguous. This benchmark gives a hypothetical model the thing's *exact shape* and places it at the centre
of the box of the hole's part that holds it: its IoU with the truth measures Ω's position ambiguity alone.
The same examples as `unigs eval --split S --limit N --seed K` (same RNG per scene and task).

    .venv/bin/python benchmarks/inpainting_bound.py --limit 32
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from unigs.conditions import TASK_IDS
from unigs.data.tasks import sample_example
from unigs.evaluate.runner import MAX_ENTITIES, EvalConfig, load_items

MATCHED_IOU = 0.5  # recall counts an entity found at IoU >= this (unigs.evaluate.metrics, DESIGN.md)


def centred_shape_iou(mask: np.ndarray, hole: np.ndarray) -> float:
    """IoU of `mask` `(H, W) bool` with itself moved so that its box centre lies at the box centre of the
    connected part of `hole` that holds most of it."""
    parts, _ = ndimage.label(hole)
    inside = parts[mask]
    if not (inside > 0).any():
        raise ValueError("the entity does not lie in the hole")
    part = parts == np.bincount(inside[inside > 0]).argmax()

    def centre(m: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(m)
        return np.array([ys.min() + ys.max(), xs.min() + xs.max()]) / 2

    moved = ndimage.shift(mask.astype(np.float32), centre(part) - centre(mask), order=0) > 0.5
    return float((moved & mask).sum() / (moved | mask).sum())


def bound(split: str, limit: int, seed: int, size: int = 128) -> np.ndarray:
    """The centred-shape IoU of every target thing of the split's inpainting examples. Stuff is left out:
    a stuff region runs on past the hole, and the model sees where (its mIoU is far above this bound)."""
    held = load_items(EvalConfig(split=split, limit=limit, seed=seed), size)
    ious = []
    for index, item in enumerate(held.items):
        rng = np.random.default_rng([seed, index, TASK_IDS["inpainting"]])
        try:
            ex = sample_example("inpainting", item.image, item.masks, item.names, rng, held.vocabulary,
                                max_entities=MAX_ENTITIES, negative_prob=0.0)
        except ValueError:  # no entity to sample (`unigs eval` skips it too)
            continue
        for mask, name in zip(ex.entity_masks, ex.entity_names, strict=True):
            if mask.any() and name not in held.stuff:
                ious.append(centred_shape_iou(mask, ex.coarse_mask))
    return np.asarray(ious)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from model import machine_info  # benchmarks/model.py

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=32, help="scenes per split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--splits", default="val,test")
    args = parser.parse_args()
    print(machine_info())
    print(f"inpainting examples of `unigs eval --limit {args.limit} --seed {args.seed}`; each target "
          "thing's exact shape placed at the centre of its part of the hole")
    print(f"{'split':<6} {'things':>6} {'mIoU':>6} {'recall':>6}")
    for split in args.splits.split(","):
        ious = bound(split, args.limit, args.seed)
        miou, recall = (ious.mean(), (ious >= MATCHED_IOU).mean()) if len(ious) else (np.nan, np.nan)
        print(f"{split:<6} {len(ious):>6} {miou:6.3f} {recall:6.3f}")


if __name__ == "__main__":
    main()
