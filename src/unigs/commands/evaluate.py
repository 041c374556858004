"""`unigs eval`: evaluate a model on held-out data, print a task × metric table, write results.json.

Outputs in `--out`: `results.json` (config, data label, per-task example counts and metrics, metric notes)
and, for the entity task, `entity_predictions.json` (COCO results: one RLE per non-overlapping predicted
mask, class-agnostic category 1, area-fraction score; `image_id` = the scene seed or the COCO image id).
Metric definitions: `unigs.evaluate.runner`.

The work modules are imported inside `run`: the CLI imports every command module to build its parser, and
`unigs --help` loads no numpy or torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unigs.checks import arg_float, arg_int, arg_seed
from unigs.commands.model_flags import add_model_flags, load_model


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    add_model_flags(parser)
    parser.add_argument("--data", default="scenes",
                        help='"scenes" (procedural scenes; default) or a COCO-format JSON of held-out images')
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of the COCO JSON's images (needed with a JSON --data)")
    parser.add_argument("--split", choices=["val", "test", "train"], default="val",
                        help="scene split (seeds disjoint from training); train needs --allow-train-split")
    parser.add_argument("--allow-train-split", action="store_true",
                        help="allow evaluating on training data (the results are labelled as such)")
    parser.add_argument("--limit", type=arg_int(1), default=100, help="number of images (default 100)")
    parser.add_argument("--tasks", default="inpainting,synthesis,referring,entity",
                        help="comma-separated tasks to evaluate (default: all four)")
    parser.add_argument("--steps", type=arg_int(1, 1000), default=None,
                        help="sampler steps per example (default: each pipeline's NUM_INFERENCE_STEPS, "
                             "chosen by benchmarks/sampling.py: referring and entity 1, the others 20)")
    parser.add_argument("--guidance", type=arg_float(0), default=None,
                        help="classifier-free guidance scale (default: each pipeline's GUIDANCE_SCALE, 1)")
    parser.add_argument("--seed", type=arg_seed, default=0,
                        help="seed of the example sampling and of the initial noise (default 0)")
    parser.add_argument("--fid-weights", type=Path, default=None,
                        help="local TorchScript feature network for FID (e.g. inception-2015-12-05.pt); "
                             "without it FID prints n/a")
    parser.add_argument("--clip-model", type=Path, default=None,
                        help="local CLIPModel folder (config, weights, tokenizer, preprocessor) for the CLIP "
                             "score; without it the CLIP score prints n/a")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--out", type=Path, default=Path("eval_out"),
                        help="output folder for results.json (default ./eval_out)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run(args: argparse.Namespace) -> int:
    from unigs.checks import resolve_device
    from unigs.evaluate.runner import EvalConfig, evaluate, format_table, to_json
    from unigs.io import write_json
    from unigs.outputs import OutputSet

    config = EvalConfig(
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        data=str(args.data), images_dir=str(args.images) if args.images else None, split=args.split,
        limit=args.limit, steps=args.steps, seed=args.seed, guidance_scale=args.guidance,
        allow_train_split=args.allow_train_split,
        fid_weights=str(args.fid_weights) if args.fid_weights else None,
        clip_model=str(args.clip_model) if args.clip_model else None,
    )
    device = resolve_device(args.device)
    outputs = OutputSet(args.out)  # checked before the compute, so the metrics are never lost at the end
    components, model = load_model(args)
    result = evaluate(components, config, progress=not args.no_progress, device=str(device))
    print(format_table(result))
    with outputs:
        write_json(outputs.path("results.json"), to_json(result, config, str(model)))
        if "entity" in config.tasks:
            write_json(outputs.path("entity_predictions.json"), result.predictions)
    print(f"wrote {args.out / 'results.json'}")
    return 0
