"""`unigs inpaint | synthesize | refer | segment`: run one UniGS pipeline on one image and write its outputs.

One module serves the four subcommands (the dispatcher passes the subcommand `name` to `configure`).
Outputs in `--out`: `image.png` (inpaint/synthesize: the generated image), `colormap.png` (the entity
colormap), `overlay.png` (the entity masks over the image), `results.json` (COCO results: one RLE per mask,
class-agnostic `category_id` 1, score 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

# subcommand -> (task of unigs.conditions, which inputs it needs)
SUBCOMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "inpaint": ("inpainting", ("image", "mask", "names")),
    "synthesize": ("synthesis", ("colormap", "names")),
    "refer": ("referring", ("image", "mask", "names")),
    "segment": ("entity", ("image",)),
}


def default_model_path() -> Path:
    """The bundled default model (`unigs.models.loading.default_model_path`); imported lazily so that
    `unigs --help` does not load torch."""
    from unigs.models import loading

    return loading.default_model_path()


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    if name not in SUBCOMMANDS:
        raise ValueError(f"unigs.commands.generate serves {list(SUBCOMMANDS)}, not {name!r}")
    _, needs = SUBCOMMANDS[name]
    parser.set_defaults(_generate=name)
    parser.add_argument("--model", type=Path, default=None,
                        help="UniGS model folder or .safetensors file saved by save_unigs, or an "
                             "SD-1.5-inpainting source (default: the bundled default model)")
    if "image" in needs:
        parser.add_argument("--image", type=Path, required=True,
                            help="input image file (any format PIL reads)")
    if "mask" in needs:
        parser.add_argument("--mask", type=Path, required=True,
                            help="coarse mask image, same size as --image; white (or 1) = region to "
                                 + ("fill" if name == "inpaint" else "search"))
    if "colormap" in needs:
        parser.add_argument("--colormap", type=Path, required=True,
                            help="entity colormap PNG (e.g. from `unigs colormap`); black = background")
    if "names" in needs:
        parser.add_argument("--names", required=True, help='comma-separated entity names, e.g. "dog,grass"')
    parser.add_argument("--steps", type=int, default=200,
                        help="sampler steps (default 200, the paper's DDIM)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance scale; <= 1 disables it (default: 7.5, segment: 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the initial noise (default 0)")
    parser.add_argument("--scheduler", choices=["ddim", "dpm++"], default="ddim",
                        help="sampler: ddim (paper) or dpm++ (DPM-Solver++, fewer steps)")
    parser.add_argument("--size", type=int, default=None,
                        help="resize the inputs to SIZE x SIZE px first (e.g. 128 for the default model)")
    parser.add_argument("--delta", type=float, default=10.0,
                        help="dichotomy threshold δ of the mask decoder Φ (default 10)")
    if name == "synthesize":
        parser.add_argument("--refine", type=float, default=None, metavar="S",
                            help="TCIG two-stage mode: re-noise the synthesised image to strength S in "
                                 "[0, 1] and denoise it again without the colormap (a quality pass that "
                                 "keeps the layout); also writes image_stage1.png")
        parser.add_argument("--refiner", type=Path, default=None, metavar="PATH",
                            help="with --refine: a local Stable Diffusion model (diffusers folder or single "
                                 "file) for the quality pass instead of the same model")
    if name == "inpaint":
        parser.add_argument("--guided", action="store_true",
                            help="SPG-Net mode: predict the hole's colormap (written as "
                                 "predicted_colormap.png, editable with palette colours), then inpaint the "
                                 "hole guided by it")
        parser.add_argument("--colormap", type=Path, default=None, metavar="EDITED.png",
                            help="with --guided: inpaint following this colormap (e.g. an edited "
                                 "predicted_colormap.png) instead of predicting one; only the hole is read")
        parser.add_argument("--predict-only", action="store_true",
                            help="with --guided: stop after writing predicted_colormap.png (and the unguided "
                                 "image_onestep.png), so that the colormap can be edited first")
        parser.add_argument("--no-paste-back", action="store_true",
                            help="do not copy the original pixels outside the mask into the output image")
    parser.add_argument("--image-id", type=int, default=0, help="image_id written into results.json")
    parser.add_argument("--device", default=None,
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, default=Path("unigs-out"),
                        help="output folder (default ./unigs-out)")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--names must list at least one entity name, got {text!r}")
    return names


def _load(path: Path, size: int | None, kind: str = "image"):
    """Read an image or colormap (RGB uint8) or a mask ((H, W) uint8: max over channels), optionally
    resized to `size` x `size`."""
    import numpy as np
    import PIL.Image

    from unigs.io import load_image

    arr = load_image(path)
    if size is not None:
        if size < 1:
            raise ValueError(f"--size must be positive, is {size}")
        # nearest keeps masks binary and colormap colours exact; bicubic for photographs
        resample = PIL.Image.BICUBIC if kind == "image" else PIL.Image.NEAREST
        arr = np.asarray(PIL.Image.fromarray(arr).resize((size, size), resample))
    return arr.max(axis=-1) if kind == "mask" else arr


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from unigs.io import save_png, write_json
    from unigs.models.loading import load_unigs
    from unigs.pipelines import pipeline_for_task
    from unigs.pipelines.core import make_scheduler
    from unigs.visualize import overlay

    name = args._generate
    task, needs = SUBCOMMANDS[name]
    # 1. Inputs (fail fast, before loading weights).
    names = _names(args.names) if "names" in needs else None
    image = _load(args.image, args.size) if "image" in needs else None
    mask = _load(args.mask, args.size, "mask") if "mask" in needs else None
    colormap = _load(args.colormap, args.size, "colormap") if "colormap" in needs else None
    refine = getattr(args, "refine", None)
    if refine is not None:
        from unigs.pipelines.two_stage import check_refine_strength

        check_refine_strength(refine)
    elif getattr(args, "refiner", None) is not None:
        raise ValueError("--refiner needs --refine S (the strength of the quality pass)")
    guided = getattr(args, "guided", False)
    if name == "inpaint" and not guided and (args.colormap is not None or args.predict_only):
        raise ValueError("--colormap and --predict-only need --guided")
    if guided and args.colormap is not None:
        if args.predict_only:
            raise ValueError("--predict-only predicts the colormap; it cannot be used with --colormap")
        from unigs.codec.snap import snap_to_palette

        colormap = _load(args.colormap, args.size, "colormap")
        snap_to_palette(colormap, name=f"colormap {str(args.colormap)!r}")  # fail before loading weights

    # 2. Model and pipeline.
    model = args.model if args.model is not None else default_model_path()
    if not Path(model).exists():
        if args.model is None:
            raise FileNotFoundError(f"no --model given and the bundled default model {str(model)!r} is "
                                    "not there (it is not trained yet); pass --model PATH")
        raise FileNotFoundError(f"model {str(model)!r} does not exist")
    components = load_unigs(model)
    components.scheduler = make_scheduler(args.scheduler, components.scheduler.config)
    if guided:
        from unigs.pipelines import UniGSGuidedInpaintPipeline

        pipe = UniGSGuidedInpaintPipeline.from_components(components)
    elif refine is not None:
        from unigs.pipelines.two_stage import UniGSTwoStagePipeline, load_refiner

        pipe = UniGSTwoStagePipeline.from_components(components)
        pipe.refiner = load_refiner(args.refiner) if args.refiner is not None else None
    else:
        pipe = pipeline_for_task(task, components)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe.to(device)
    if getattr(pipe, "refiner", None) is not None:
        pipe.refiner.to(device)
    pipe.set_progress_bar_config(disable=args.quiet, desc=f"unigs {name}")

    # 3. Run.
    kwargs = {"num_inference_steps": args.steps, "delta": args.delta, "output_type": "np",
              "generator": torch.Generator(device=device).manual_seed(args.seed)}
    if args.guidance is not None:
        kwargs["guidance_scale"] = args.guidance
    if guided and args.predict_only:
        out = pipe.predict_colormap(names, image, mask, **kwargs)
    elif guided:
        out = pipe(names, image, mask, colormap=colormap, paste_back=not args.no_paste_back, **kwargs)
    elif task == "inpainting":
        out = pipe(names, image, mask, paste_back=not args.no_paste_back, **kwargs)
    elif task == "synthesis" and refine is not None:
        out = pipe(names, colormap, refine_strength=refine, **kwargs)
    elif task == "synthesis":
        out = pipe(names, colormap, **kwargs)
    elif task == "referring":
        out = pipe(names, image, mask, **kwargs)
    else:
        out = pipe(image, **kwargs)

    # 4. Write PNGs and the COCO results JSON.
    args.out.mkdir(parents=True, exist_ok=True)
    picture, masks = np.asarray(out.images[0]), np.asarray(out.masks[0])
    if task in ("inpainting", "synthesis"):
        save_png(args.out / "image.png", picture)
    if getattr(out, "stage1_images", None) is not None:
        save_png(args.out / "image_stage1.png", np.asarray(out.stage1_images[0]))
    if getattr(out, "onestep_images", None) is not None:  # the guide was predicted here: write it to edit
        save_png(args.out / "predicted_colormap.png", np.asarray(out.guides[0]))
        save_png(args.out / "image_onestep.png", np.asarray(out.onestep_images[0]))
    save_png(args.out / "colormap.png", np.asarray(out.colormaps[0]))
    save_png(args.out / "overlay.png", overlay(picture, masks))
    results = [{"image_id": args.image_id, "category_id": 1, "segmentation": rle, "score": 1.0}
               for rle in out.rles[0]]
    write_json(args.out / "results.json", results)
    print(f"unigs {name}: {len(results)} mask(s); wrote {args.out}")
    return 0
