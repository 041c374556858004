"""`unigs complete-masks`: complete a partial entity segmentation (LDMSeg mask inpainting).

Thin: reads the files, runs `unigs.pipelines.UniGSMaskCompletionPipeline`, writes `colormap.png` (the
completed colormap, exactly the partial one on the known pixels), `overlay.png` and `results.json` (COCO
results: one RLE per entity, class-agnostic `category_id` 1, score 1) into `--out`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--image", type=Path, required=True, help="input image file (any format PIL reads)")
    parser.add_argument("--masks", type=Path, required=True, metavar="PARTIAL.png|json",
                        help="the partial segmentation: a colormap PNG (palette colours, black = background) "
                             "or a COCO JSON list of RLE masks (e.g. results.json of `unigs segment`)")
    parser.add_argument("--known", type=Path, required=True, metavar="KNOWN.png",
                        help="mask image of the image's size: white (or 1) = the partial segmentation is "
                             "right there and is kept; black = to complete")
    parser.add_argument("--model", type=Path, default=None,
                        help="UniGS model folder or .safetensors file (default: the bundled default model)")
    parser.add_argument("--steps", type=int, default=50, help="sampler steps (default 50, LDMSeg's DDIM)")
    parser.add_argument("--jumps", type=int, default=0,
                        help="RePaint resampling jumps per step (default 0; each adds one UNet call a step)")
    parser.add_argument("--guidance", type=float, default=1.0,
                        help="classifier-free guidance scale; <= 1 disables it (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the initial noise (default 0)")
    parser.add_argument("--size", type=int, default=None,
                        help="resize all inputs to SIZE x SIZE px first (e.g. 128 for the default model)")
    parser.add_argument("--delta", type=float, default=10.0,
                        help="dichotomy threshold δ of the mask decoder Φ (default 10)")
    parser.add_argument("--image-id", type=int, default=0, help="image_id written into results.json")
    parser.add_argument("--device", default=None,
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, default=Path("unigs-out"),
                        help="output folder (default ./unigs-out)")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from unigs.commands.generate import _load, default_model_path
    from unigs.io import save_png, write_json
    from unigs.models.loading import load_unigs
    from unigs.pipelines import UniGSMaskCompletionPipeline
    from unigs.pipelines.mask_completion import load_partial, partial_colormap
    from unigs.visualize import overlay

    # 1. Inputs (fail fast, before loading weights).
    image = _load(args.image, args.size)
    known = _load(args.known, args.size, "mask")
    partial = load_partial(args.masks, args.size)
    if known.shape != image.shape[:2]:
        raise ValueError(f"known mask {str(args.known)!r} is {known.shape[0]}x{known.shape[1]} (HxW) but the "
                         f"image is {image.shape[0]}x{image.shape[1]}; they must be the same size")
    partial_colormap(partial, image.shape[:2])  # refuses non-palette colours and wrong sizes

    # 2. Model and pipeline.
    model = args.model if args.model is not None else default_model_path()
    if not Path(model).exists():
        raise FileNotFoundError(f"model {str(model)!r} does not exist")
    pipe = UniGSMaskCompletionPipeline.from_components(load_unigs(model))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe.to(device)
    pipe.set_progress_bar_config(disable=args.quiet, desc="unigs complete-masks")

    # 3. Run and write.
    out = pipe(image, partial, known, num_inference_steps=args.steps, guidance_scale=args.guidance,
               resample_jumps=args.jumps, delta=args.delta, output_type="np",
               generator=torch.Generator(device=device).manual_seed(args.seed))
    args.out.mkdir(parents=True, exist_ok=True)
    colormap, masks = np.asarray(out.colormaps[0]), np.asarray(out.masks[0])
    save_png(args.out / "colormap.png", colormap)
    save_png(args.out / "overlay.png", overlay(image, masks))
    write_json(args.out / "results.json", [{"image_id": args.image_id, "category_id": 1, "segmentation": rle,
                                            "score": 1.0} for rle in out.rles[0]])
    print(f"unigs complete-masks: {len(masks)} mask(s); wrote {args.out}")
    return 0
