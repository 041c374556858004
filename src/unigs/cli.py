"""The `unigs` command. Thin: each subcommand lives in `unigs.commands.<module>` with two functions,
`configure(parser)` (flags, all with help text) and `run(args) -> int`. Heavy imports (torch, diffusers)
happen inside `run`, so `unigs --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module under unigs.commands, one-line help). A plain dict: no registry, no import side effects.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the bundled default model on held-out scenes; write a result sheet and metrics"),
    "colormap": ("colormap", "encode masks to colormaps, decode colormaps to masks, palette coverage"),
    "inpaint": ("generate", "inpaint a coarse-mask region: image + its colormap + entity masks"),
    "synthesize": ("generate", "synthesise an image from an entity colormap"),
    "refer": ("generate", "referring segmentation: masks of the named entities inside a coarse mask"),
    "segment": ("generate", "entity segmentation: all entity masks of an image"),
    "train": ("train", "train a UniGS UNet (single task or the multi-task mix)"),
    "train-vae": ("train", "train a small VAE for the from-scratch path"),
    "eval": ("evaluate", "evaluate a model on held-out data; print a table and write JSON"),
    "ui": ("ui", "interactive app in the browser: brush regions, pick a task, see image, colormap, masks"),
}


DESCRIPTION = ("UniGS: one latent-diffusion model that inpaints, synthesises images from entity colormaps, "
               "and segments (referring and entity segmentation). Inputs of any size; results at the "
               "input's own size. `unigs COMMAND --help` describes each command.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unigs", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = importlib.import_module(f"unigs.commands.{module}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        command.configure(p, name)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # Bad input is reported as one sentence, not a traceback (STYLE.md §10).
        print(f"unigs {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
