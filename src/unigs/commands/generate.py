"""`unigs inpaint | synthesize | refer | segment`: run one UniGS pipeline on one image and write its outputs.

One module serves the four subcommands (the dispatcher passes the subcommand `name` to `configure`).
Inputs of any size: the pipeline works in its working frame (`unigs.pipelines.frame`: long side resized to
the model's size or `--size`, padded to the size multiple) and every output is at the input's own size.
Outputs in `--out`, named after the input (`--image`, or `--colormap` for synthesize), so that several
inputs can share one folder:

    <stem>.png           the generated image (inpaint, synthesize)
    <stem>.colormap.png  the entity colormap
    <stem>.overlay.png   the entity masks over the image
    <stem>.json          one record per mask, SAM's automatic-mask-generator format (`unigs.records`):
                         segmentation (COCO RLE, or a 0/1 array with --output-mode binary_mask), area,
                         bbox XYWH, score = colour purity, name where known; plus image_id and
                         category_id 1, so `COCO.loadRes` reads the file as it is

The related systems' modes (issue 12) add files next to those:

    synthesize --refine S          <stem>.stage1.png: the image before the quality pass (TCIG)
    inpaint --guided [--predict-only]
                                   <stem>.predicted_colormap.png: the hole's predicted colormap, exact
                                   palette colours, to edit and pass back with --colormap; and
                                   <stem>.onestep.png: the unguided inpainting (SPG-Net)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unigs.checks import arg_float, arg_int, arg_seed
from unigs.commands.model_flags import add_model_flags, load_model

MAX_SIDE = 4096  # --size; 4096² is the image pixel limit of unigs.io

# subcommand -> (task of unigs.conditions, which inputs it needs)
SUBCOMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "inpaint": ("inpainting", ("image", "mask", "names")),
    "synthesize": ("synthesis", ("colormap", "names")),
    "refer": ("referring", ("image", "mask", "names")),
    "segment": ("entity", ("image",)),
}
# The CLI's sampler (the paper's DDIM); one name to change.
DEFAULT_SCHEDULER = "ddim"


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    if name not in SUBCOMMANDS:
        raise ValueError(f"unigs.commands.generate serves {list(SUBCOMMANDS)}, not {name!r}")
    _, needs = SUBCOMMANDS[name]
    parser.set_defaults(_generate=name)
    add_model_flags(parser)
    if "image" in needs:
        parser.add_argument("--image", type=Path, required=True,
                            help="input image file, any size (any format PIL reads)")
    if "mask" in needs:
        parser.add_argument("--mask", type=Path, required=True,
                            help="coarse mask image, same size as --image; white (or 1) = region to "
                                 + ("fill" if name == "inpaint" else "search"))
    if "colormap" in needs:
        parser.add_argument("--colormap", type=Path, required=True,
                            help="entity colormap PNG, any size (e.g. from `unigs colormap encode`); "
                                 "black = background")
    if "names" in needs:
        parser.add_argument("--names", required=True, help='comma-separated entity names, e.g. "dog,grass"')
    parser.add_argument("--steps", type=arg_int(1, 1000), default=None,
                        help="sampler steps: more is slower and closer to the paper (default: the "
                             "pipeline's NUM_INFERENCE_STEPS, 200 = the paper's DDIM)")
    parser.add_argument("--guidance", type=arg_float(0), default=None,
                        help="classifier-free guidance scale; <= 1 disables it (default: the pipeline's "
                             "GUIDANCE_SCALE: 7.5 for synthesize, 1 otherwise)")
    parser.add_argument("--seed", type=arg_seed, default=0,
                        help="random seed of the initial noise, 0..2**63-1 (default 0)")
    parser.add_argument("--scheduler", choices=["ddim", "dpm++"], default=DEFAULT_SCHEDULER,
                        help=f"sampler: ddim (paper) or dpm++ (DPM-Solver++, fewer steps); "
                             f"default {DEFAULT_SCHEDULER}")
    parser.add_argument("--size", type=arg_int(8, MAX_SIDE), default=None,
                        help="working resolution: the input is resized (aspect kept) so that its long side "
                             f"is SIZE px (8..{MAX_SIDE}) and padded to the model's size multiple; outputs "
                             "are always written at the input's own size (default: the model's training "
                             "size, 128 for the bundled model). Input images may have at most 4096 x 4096 "
                             "= 16.8 megapixels (UNIGS_MAX_PIXELS raises the limit)")
    parser.add_argument("--delta", type=arg_float(0, low_open=True), default=None,
                        help="dichotomy threshold δ of the mask decoder Φ (default: the pipeline's read-out "
                             "for the model's colormaps, unigs.pipelines' READOUT; 10 for given ones)")
    if name == "synthesize":
        parser.add_argument("--refine", type=float, default=None, metavar="S",
                            help="TCIG two-stage mode: re-noise the synthesised image to strength S in "
                                 "[0, 1] and denoise it again without the colormap (a quality pass that "
                                 "keeps the layout); also writes <stem>.stage1.png")
        parser.add_argument("--refiner", type=Path, default=None, metavar="PATH",
                            help="with --refine: a local Stable Diffusion model (diffusers folder or single "
                                 "file; --config-dir as for --model) for the quality pass instead of the "
                                 "same model")
    if name == "inpaint":
        parser.add_argument("--guided", action="store_true",
                            help="SPG-Net mode: predict the hole's colormap (written as "
                                 "<stem>.predicted_colormap.png, editable with palette colours), then "
                                 "inpaint the hole guided by it")
        parser.add_argument("--colormap", type=Path, default=None, metavar="EDITED.png",
                            help="with --guided: inpaint following this colormap (e.g. an edited "
                                 "<stem>.predicted_colormap.png), same size as --image, instead of "
                                 "predicting one; only the hole is read")
        parser.add_argument("--predict-only", action="store_true",
                            help="with --guided: stop after writing <stem>.predicted_colormap.png (and the "
                                 "unguided <stem>.onestep.png), so that the colormap can be edited first")
        parser.add_argument("--no-paste-back", action="store_true",
                            help="do not copy the original pixels outside the mask into the output image")
    parser.add_argument("--output-mode", choices=["coco_rle", "binary_mask"], default="coco_rle",
                        help="segmentation encoding in <stem>.json: COCO RLE (default) or an H x W 0/1 array")
    parser.add_argument("--image-id", type=int, default=0, help="COCO image_id written into <stem>.json")
    parser.add_argument("--device", default=None,
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, default=Path("unigs-out"),
                        help="output folder (default ./unigs-out); files are named after the input")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--names must list at least one entity name, got {text!r}")
    return names


def output_paths(out: Path, stem: str) -> dict[str, Path]:
    """The files one input writes into `out` (module docstring); the last three only in the related
    systems' modes."""
    return {"image": out / f"{stem}.png", "colormap": out / f"{stem}.colormap.png",
            "overlay": out / f"{stem}.overlay.png", "json": out / f"{stem}.json",
            "stage1": out / f"{stem}.stage1.png", "predicted": out / f"{stem}.predicted_colormap.png",
            "onestep": out / f"{stem}.onestep.png"}


def _mode_flags(args: argparse.Namespace) -> tuple[float | None, bool]:
    """(refine strength or None, guided) after checking that the related systems' flags go together."""
    from unigs.pipelines.two_stage import check_refine_strength

    refine = getattr(args, "refine", None)
    if refine is not None:
        refine = check_refine_strength(refine)
    elif getattr(args, "refiner", None) is not None:
        raise ValueError("--refiner needs --refine S (the strength of the quality pass)")
    guided = getattr(args, "guided", False)
    if args._generate == "inpaint" and not guided and (args.colormap is not None or args.predict_only):
        raise ValueError("--colormap and --predict-only need --guided")
    if guided and args.colormap is not None and args.predict_only:
        raise ValueError("--predict-only predicts the colormap; it cannot be used with --colormap")
    return refine, guided


def run(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np
    import torch

    from unigs.checks import resolve_device
    from unigs.codec.snap import snap_to_palette
    from unigs.io import load_image, save_png, write_json
    from unigs.outputs import OutputSet
    from unigs.pipelines import PIPELINES, UniGSGuidedInpaintPipeline
    from unigs.pipelines.base import UNTRAINED_COLORMAP_WARNING
    from unigs.pipelines.core import make_scheduler
    from unigs.pipelines.two_stage import UniGSTwoStagePipeline, load_refiner
    from unigs.records import mask_records
    from unigs.visualize import overlay

    name = args._generate
    task, needs = SUBCOMMANDS[name]
    # 1. Inputs at their own size, device and --out (fail fast, before loading weights).
    refine, guided = _mode_flags(args)
    device = resolve_device(args.device)
    outputs = OutputSet(args.out)
    names = _names(args.names) if "names" in needs else None
    image = load_image(args.image, "image") if "image" in needs else None
    mask = load_image(args.mask, "mask").max(axis=-1) if "mask" in needs else None
    colormap = load_image(args.colormap, "colormap") if "colormap" in needs else None
    edited = None
    if guided and args.colormap is not None:  # the guide's colours are checked before loading weights
        edited = load_image(args.colormap, "colormap")
        snap_to_palette(edited, name=f"colormap {str(args.colormap)!r}")
    source_path = args.image if "image" in needs else args.colormap
    paths = output_paths(args.out, source_path.stem)
    inputs = {Path(p).resolve() for p in (getattr(args, k, None) for k in ("image", "mask", "colormap")) if p}
    clash = [p for p in paths.values() if p.resolve() in inputs]
    if clash:
        raise ValueError(f"output {clash[0]} would overwrite an input; choose another --out")

    # 2. Model and pipeline.
    components, _ = load_model(args)
    cls = UniGSGuidedInpaintPipeline if guided else UniGSTwoStagePipeline if refine is not None else \
        PIPELINES[task]
    components.scheduler = make_scheduler(args.scheduler, components.scheduler.config)
    pipe = cls.from_components(components)
    pipe.to(device)
    if getattr(args, "refiner", None) is not None:
        pipe.refiner = load_refiner(args.refiner, args.config_dir)
        pipe.refiner.to(device)
    pipe.set_progress_bar_config(disable=args.quiet, desc=f"unigs {name}")
    steps = args.steps if args.steps is not None else cls.default_num_inference_steps
    h, w = (image if image is not None else colormap).shape[:2]
    fr = pipe.working_frame(h, w, args.size, args.size)
    print(f"unigs {name}: {fr.describe()} px (working frame), {steps} {args.scheduler} steps", flush=True)
    untrained = task != "synthesis" and pipe.colormap_untrained
    if untrained:
        print(f"unigs {name}: warning: {UNTRAINED_COLORMAP_WARNING}", flush=True)

    # 3. Run.
    kwargs = {"num_inference_steps": steps, "delta": args.delta, "output_type": "np",
              "height": args.size, "width": args.size,
              "generator": torch.Generator(device=device).manual_seed(args.seed)}
    if args.guidance is not None:
        kwargs["guidance_scale"] = args.guidance
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="this model's colormap output channels")  # said above
        if guided and args.predict_only:
            out = pipe.predict_colormap(names, image, mask, **kwargs)
        elif guided:
            out = pipe(names, image, mask, colormap=edited, paste_back=not args.no_paste_back, **kwargs)
        elif task == "inpainting":
            out = pipe(names, image, mask, paste_back=not args.no_paste_back, **kwargs)
        elif task == "synthesis":
            out = pipe(names, colormap, **kwargs) if refine is None else \
                pipe(names, colormap, refine_strength=refine, **kwargs)
        elif task == "referring":
            out = pipe(names, image, mask, **kwargs)
        else:
            out = pipe(image, **kwargs)

    # 4. Write PNGs and the mask records, all at the input's size, as one set (unigs.outputs).
    picture, masks = np.asarray(out.images[0]), np.asarray(out.masks[0])
    # a mask answers a name only when one name was asked (the palette codes position, not name)
    known = names[0] if names is not None and len(names) == 1 and task != "synthesis" else None
    records = mask_records(masks, out.scores[0], image_id=args.image_id, names=[known] * len(masks),
                           output_mode=args.output_mode)
    with outputs:
        if task in ("inpainting", "synthesis"):
            save_png(outputs.path(paths["image"].name), picture)
        save_png(outputs.path(paths["colormap"].name), np.asarray(out.colormaps[0]))
        save_png(outputs.path(paths["overlay"].name), overlay(picture, masks))
        write_json(outputs.path(paths["json"].name), records)
        # the related systems' extra images; the guide only when it was predicted here (to be edited)
        onestep = getattr(out, "onestep_images", None)
        extras = {"stage1": getattr(out, "stage1_images", None), "onestep": onestep,
                  "predicted": out.guides if onestep is not None else None}
        for key, extra in extras.items():
            if extra is not None:
                save_png(outputs.path(paths[key].name), np.asarray(extra[0]))
    note = " from an untrained colormap head: meaningless" if untrained else ""
    print(f"unigs {name}: {len(records)} mask(s){note}; wrote {paths['json']} and PNGs in {args.out}")
    return 0
