"""`unigs demo`: the README's main job, on the bundled default.

Two parts, both on data never used for training:

1. **Codec** (paper §3.2): held-out procedural scenes (and coco-mini val when it sits beside the repo) →
   palette Ψ → a simulated latent round trip (`unigs.codec.degrade`) → dichotomy Φ → mIoU / recall.
2. **Model** (when the bundled model is present): all four tasks on held-out scenes (test split) with
   `unigs.evaluate.runner`; writes a result sheet PNG (input, coarse mask, control, generated image,
   generated colormap, decoded masks — one row per example) and the metric table (printed + JSON).

The work modules are imported inside the functions: the CLI imports every command module to build its
parser, and `unigs --help` loads no numpy, numba or torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unigs.checks import arg_int, arg_seed, check_output_dir
from unigs.commands.model_flags import add_model_flags, load_model

DEFAULT_OUT = "outputs/demo"


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    add_model_flags(parser)
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--limit", type=arg_int(1), default=8,
                        help="held-out scenes per task for the model part (default 8)")
    parser.add_argument("--steps", type=arg_int(1, 1000), default=None,
                        help="DDIM steps per example (default: each pipeline's NUM_INFERENCE_STEPS: one "
                             "step for referring and entity segmentation, 20 for inpainting and synthesis)")
    parser.add_argument("--seed", type=arg_seed, default=0, help="seed of examples and noise (default 0)")
    parser.add_argument("--codec-only", action="store_true", help="run only the codec part")
    parser.add_argument("--coco", default=None,
                        help="coco-mini folder for the codec part "
                             "(default: ../shared/data/coco-mini if present)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _codec_rows(images, masks_list, seed: int):
    """Ψ → simulated round trip → Φ on each (image, masks); returns (pooled scores, sheet rows)."""
    import numpy as np

    from unigs.codec import dichotomy, palette
    from unigs.codec.degrade import simulate_latent_roundtrip
    from unigs.evaluate.metrics import best_match_scores, pool_match_scores
    from unigs.visualize import overlay

    scores, rows = [], []
    for i, (image, masks) in enumerate(zip(images, masks_list, strict=True)):
        colormap = palette.encode(masks)
        degraded = simulate_latent_roundtrip(colormap, np.random.default_rng([seed, i]))
        decoded = dichotomy.decode(degraded, keep_background=False)
        scores.append(best_match_scores(decoded, masks))
        if len(rows) < 4:
            rows.append([("image", image), ("colormap (palette)", colormap), ("after round trip", degraded),
                         (f"decoded: {len(decoded)} masks / {len(masks)} gt", overlay(image, decoded))])
    return pool_match_scores(scores), rows


def _coco_path(explicit: str | None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not (path / "annotations" / "instances_val2017.json").is_file():
            raise FileNotFoundError(f"--coco {explicit!r} has no annotations/instances_val2017.json")
        return path
    guess = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "coco-mini"
    return guess if (guess / "annotations" / "instances_val2017.json").is_file() else None


def codec_demo(out: Path, seed: int, coco: str | None) -> list[str]:
    """Part 1. Returns the printed lines."""
    import numpy as np

    from unigs.data.scenes import SceneDataset
    from unigs.io import save_png
    from unigs.visualize import sheet

    lines = ["Codec (Ψ → simulated latent round trip → Φ, δ=10), held-out data:",
             f"  {'data':<28} {'images':>6} {'entities':>8} {'mIoU':>6} {'recall':>6}"]
    scenes = SceneDataset(split="test", length=24, size=256)
    items = list(scenes)
    things = [s.masks[np.asarray(s.is_thing)] for s in items]
    keep = [i for i, m in enumerate(things) if len(m)]
    pooled, rows = _codec_rows([items[i].image for i in keep], [things[i] for i in keep], seed)
    lines.append(f"  {'scenes test (things) 256px':<28} {len(keep):>6} {len(pooled.best_iou):>8} "
                 f"{pooled.miou:>6.3f} {pooled.recall:>6.3f}")
    coco_path = _coco_path(coco)
    if coco_path is not None:
        from unigs.data.coco import CocoEntities
        from unigs.data.source import square_resize

        dataset = CocoEntities(coco_path / "annotations" / "instances_val2017.json", coco_path / "val2017")
        images, masks_list = [], []
        for sample in dataset:
            image, masks, _ = square_resize(sample.image, sample.masks, list(sample.names), 512)
            if len(masks):
                images.append(image)
                masks_list.append(masks)
            if len(images) == 12:
                break
        pooled, coco_rows = _codec_rows(images, masks_list, seed)
        rows += coco_rows[:2]
        lines.append(f"  {'coco-mini val 512px':<28} {len(images):>6} {len(pooled.best_iou):>8} "
                     f"{pooled.miou:>6.3f} {pooled.recall:>6.3f}")
    path = save_png(out / "codec_sheet.png", sheet(rows))
    lines.append(f"  sheet: {path}")
    return lines


def model_demo(out: Path, args: argparse.Namespace) -> list[str]:
    """Part 2. Returns the printed lines."""
    import numpy as np

    from unigs.evaluate import runner
    from unigs.io import save_png, write_json
    from unigs.visualize import overlay, sheet

    components, path = load_model(args)
    config = runner.EvalConfig(split="test", limit=args.limit, steps=args.steps, seed=args.seed)
    rows: list[list[tuple[str, np.ndarray]]] = []
    per_task: dict[str, int] = {}

    def keep_row(task, item, example, output):
        # Two rows per task on the sheet: the conditions the model saw and what it produced.
        if per_task.get(task, 0) >= 2:
            return
        per_task[task] = per_task.get(task, 0) + 1
        masks = output.masks[0]
        rows.append([
            (example.prompt[:48], item.image),
            ("coarse mask m_c", (example.coarse_mask * 255).astype(np.uint8)),
            ("control", example.control),
            ("image out", output.images[0]),
            ("colormap out", output.colormaps[0]),
            (f"masks ({len(masks)})", overlay(output.images[0] if task in ("inpainting", "synthesis")
                                              else item.image, masks)),
        ])

    result = runner.evaluate(components, config, progress=not args.no_progress, on_example=keep_row)
    save_png(out / "result_sheet.png", sheet(rows))
    write_json(out / "metrics.json", runner.to_json(result, config, str(path)))
    steps = f"{args.steps} DDIM steps" if args.steps else "each pipeline's default DDIM steps"
    return [f"Model ({path}), {result.split_label}, {steps}:",
            runner.format_table(result), f"  sheet: {out / 'result_sheet.png'}",
            f"  metrics: {out / 'metrics.json'}"]


def run(args: argparse.Namespace) -> int:
    if args.limit < 1 or (args.steps is not None and args.steps < 1):
        raise ValueError(f"--limit and --steps must be >= 1, are {args.limit} and {args.steps}")
    out = check_output_dir(args.out)
    for line in codec_demo(out, args.seed, args.coco):
        print(line, flush=True)
    if args.codec_only:
        return 0
    for line in model_demo(out, args):
        print(line, flush=True)
    return 0
