"""`unigs inpaint | synthesize | refer | segment`: run one UniGS pipeline on one image and write its outputs.

One module serves the four subcommands (the dispatcher passes the subcommand `name` to `configure`).
Outputs in `--out`: `image.png` (inpaint/synthesize: the generated image), `colormap.png` (the entity
colormap), `overlay.png` (the entity masks over the image), `results.json` (COCO results: one RLE per mask,
class-agnostic `category_id` 1, score 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unigs.checks import arg_float, arg_int, arg_seed

MAX_SIDE = 4096  # --size; 4096² is the image pixel limit of unigs.io

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
    parser.add_argument("--steps", type=arg_int(1, 1000), default=200,
                        help="sampler steps (default 200, the paper's DDIM)")
    parser.add_argument("--guidance", type=arg_float(0), default=None,
                        help="classifier-free guidance scale; <= 1 disables it (default: 7.5, segment: 1)")
    parser.add_argument("--seed", type=arg_seed, default=0,
                        help="random seed of the initial noise, 0..2**63-1 (default 0)")
    parser.add_argument("--scheduler", choices=["ddim", "dpm++"], default="ddim",
                        help="sampler: ddim (paper) or dpm++ (DPM-Solver++, fewer steps)")
    parser.add_argument("--size", type=arg_int(8, MAX_SIDE), default=None,
                        help="resize the inputs to SIZE x SIZE px first (e.g. 128 for the default model; "
                             f"8..{MAX_SIDE}); input images may have at most 4096 x 4096 = 16.8 megapixels "
                             "(UNIGS_MAX_PIXELS raises the limit)")
    parser.add_argument("--delta", type=arg_float(0, low_open=True), default=10.0,
                        help="dichotomy threshold δ of the mask decoder Φ (default 10)")
    if name == "inpaint":
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

    arr = load_image(path, kind)
    if size is not None:
        # nearest keeps masks binary and colormap colours exact; bicubic for photographs
        resample = PIL.Image.BICUBIC if kind == "image" else PIL.Image.NEAREST
        arr = np.asarray(PIL.Image.fromarray(arr).resize((size, size), resample))
    return arr.max(axis=-1) if kind == "mask" else arr


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from unigs.checks import resolve_device
    from unigs.io import save_png, write_json
    from unigs.models.loading import load_unigs
    from unigs.outputs import OutputSet
    from unigs.pipelines import pipeline_for_task
    from unigs.pipelines.core import make_scheduler
    from unigs.visualize import overlay

    name = args._generate
    task, needs = SUBCOMMANDS[name]
    # 1. Inputs, device and --out (fail fast, before loading weights).
    device = resolve_device(args.device)
    outputs = OutputSet(args.out)
    names = _names(args.names) if "names" in needs else None
    image = _load(args.image, args.size) if "image" in needs else None
    mask = _load(args.mask, args.size, "mask") if "mask" in needs else None
    colormap = _load(args.colormap, args.size, "colormap") if "colormap" in needs else None

    # 2. Model and pipeline.
    model = args.model if args.model is not None else default_model_path()
    if not Path(model).exists():
        if args.model is None:
            raise FileNotFoundError(f"no --model given and the bundled default model {str(model)!r} is "
                                    "not there (it is not trained yet); pass --model PATH")
        raise FileNotFoundError(f"model {str(model)!r} does not exist")
    components = load_unigs(model)
    components.scheduler = make_scheduler(args.scheduler, components.scheduler.config)
    pipe = pipeline_for_task(task, components)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=args.quiet, desc=f"unigs {name}")

    # 3. Run.
    kwargs = {"num_inference_steps": args.steps, "delta": args.delta, "output_type": "np",
              "generator": torch.Generator(device=device).manual_seed(args.seed)}
    if args.guidance is not None:
        kwargs["guidance_scale"] = args.guidance
    if task == "inpainting":
        out = pipe(names, image, mask, paste_back=not args.no_paste_back, **kwargs)
    elif task == "synthesis":
        out = pipe(names, colormap, **kwargs)
    elif task == "referring":
        out = pipe(names, image, mask, **kwargs)
    else:
        out = pipe(image, **kwargs)

    # 4. Write PNGs and the COCO results JSON, as one set (unigs.outputs).
    picture, masks = np.asarray(out.images[0]), np.asarray(out.masks[0])
    results = [{"image_id": args.image_id, "category_id": 1, "segmentation": rle, "score": 1.0}
               for rle in out.rles[0]]
    with outputs:
        if task in ("inpainting", "synthesis"):
            save_png(outputs.path("image.png"), picture)
        save_png(outputs.path("colormap.png"), np.asarray(out.colormaps[0]))
        save_png(outputs.path("overlay.png"), overlay(picture, masks))
        write_json(outputs.path("results.json"), results)
    print(f"unigs {name}: {len(results)} mask(s); wrote {args.out}")
    return 0
