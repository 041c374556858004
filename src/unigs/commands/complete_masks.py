"""`unigs complete-masks`: complete a partial entity segmentation (LDMSeg mask inpainting).

Thin: reads the files at their own size, runs `unigs.pipelines.UniGSMaskCompletionPipeline` (working frame:
`unigs.pipelines.frame`), and writes into `--out`, named after `--image` (as `unigs segment` does, through
`unigs.outputs.OutputSet`):

    <stem>.colormap.png  the completed colormap, exactly the partial one on the known pixels
    <stem>.overlay.png   the entity masks over the image
    <stem>.json          one record per entity (`unigs.records`, SAM's format; class-agnostic category 1)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unigs.checks import arg_float, arg_int, arg_seed
from unigs.commands.model_flags import add_model_flags, load_model

MAX_SIDE = 4096  # --size, as unigs segment


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    add_model_flags(parser)
    parser.add_argument("--image", type=Path, required=True,
                        help="input image file, any size (any format PIL reads)")
    parser.add_argument("--masks", type=Path, required=True, metavar="PARTIAL.png|json",
                        help="the partial segmentation, same size as --image: a colormap PNG (palette "
                             "colours, black = background) or a COCO JSON list of RLE masks (e.g. "
                             "<stem>.json of `unigs segment`)")
    parser.add_argument("--known", type=Path, required=True, metavar="KNOWN.png",
                        help="mask image of the image's size: white (or 1) = the partial segmentation is "
                             "right there and is kept; black = to complete")
    parser.add_argument("--steps", type=arg_int(1, 1000), default=None,
                        help="sampler steps (default: the pipeline's NUM_INFERENCE_STEPS, 50 = LDMSeg's "
                             "DDIM)")
    parser.add_argument("--jumps", type=arg_int(0, 100), default=0,
                        help="RePaint resampling jumps per step (default 0; each adds one UNet call a step)")
    parser.add_argument("--guidance", type=arg_float(0), default=1.0,
                        help="classifier-free guidance scale; <= 1 disables it (default 1)")
    parser.add_argument("--seed", type=arg_seed, default=0,
                        help="random seed of the initial noise, 0..2**63-1 (default 0)")
    parser.add_argument("--size", type=arg_int(8, MAX_SIDE), default=None,
                        help="working resolution: long side of the working frame in px (default: the "
                             "model's training size); outputs are at the input's own size")
    parser.add_argument("--delta", type=arg_float(0, low_open=True), default=10.0,
                        help="dichotomy threshold δ of the mask decoder Φ (default 10)")
    parser.add_argument("--output-mode", choices=["coco_rle", "binary_mask"], default="coco_rle",
                        help="segmentation encoding in <stem>.json: COCO RLE (default) or an H x W 0/1 array")
    parser.add_argument("--image-id", type=int, default=0, help="COCO image_id written into <stem>.json")
    parser.add_argument("--device", default=None,
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, default=Path("unigs-out"),
                        help="output folder (default ./unigs-out); files are named after --image")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from unigs.checks import resolve_device
    from unigs.io import load_image, save_png, write_json
    from unigs.outputs import OutputSet
    from unigs.pipelines import UniGSMaskCompletionPipeline
    from unigs.pipelines.inputs import to_mask_batch
    from unigs.pipelines.mask_completion import load_partial, partial_colormap
    from unigs.records import mask_records
    from unigs.visualize import overlay

    # 1. Inputs at their own size, device and --out (fail fast, before loading weights).
    device = resolve_device(args.device)
    outputs = OutputSet(args.out)
    image = load_image(args.image, "image")
    known = load_image(args.known, "known mask").max(axis=-1)
    partial = load_partial(args.masks)
    to_mask_batch(known, 1, image.shape[:2], name=f"known mask {str(args.known)!r}")
    partial_colormap(partial, image.shape[:2])  # refuses non-palette colours and wrong sizes
    stem = args.image.stem
    names = {"colormap": f"{stem}.colormap.png", "overlay": f"{stem}.overlay.png", "json": f"{stem}.json"}
    inputs = {Path(p).resolve() for p in (args.image, args.known, args.masks)}
    if any((args.out / n).resolve() in inputs for n in names.values()):
        raise ValueError(f"an output in {args.out} would overwrite an input; choose another --out")

    # 2. Model and pipeline.
    components, _ = load_model(args)
    pipe = UniGSMaskCompletionPipeline.from_components(components)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=args.quiet, desc="unigs complete-masks")
    steps = args.steps if args.steps is not None else pipe.default_num_inference_steps

    # 3. Run and write.
    out = pipe(image, partial, known, num_inference_steps=steps, guidance_scale=args.guidance,
               resample_jumps=args.jumps, delta=args.delta, height=args.size, width=args.size,
               output_type="np", generator=torch.Generator(device=device).manual_seed(args.seed))
    colormap, masks = np.asarray(out.colormaps[0]), np.asarray(out.masks[0])
    records = mask_records(masks, out.scores[0], image_id=args.image_id, names=[None] * len(masks),
                           output_mode=args.output_mode)
    with outputs:
        save_png(outputs.path(names["colormap"]), colormap)
        save_png(outputs.path(names["overlay"]), overlay(image, masks))
        write_json(outputs.path(names["json"]), records)
    print(f"unigs complete-masks: {len(masks)} mask(s); wrote {args.out / names['json']} and PNGs")
    return 0
