"""The `unigs` command. Thin: each subcommand lives in `unigs.commands.<module>` with two functions,
`configure(parser)` (flags, all with help text) and `run(args) -> int`. Heavy imports (torch, diffusers)
happen inside `run`, so `unigs --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

# name -> (module under unigs.commands, one-line help). A plain dict: no registry, no import side effects.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the bundled default model on held-out scenes; write a result sheet and metrics"),
    "colormap": ("colormap", "encode masks to colormaps, decode colormaps to masks, palette coverage"),
    "inpaint": ("generate", "inpaint a coarse-mask region: image + its colormap + entity masks"),
    "synthesize": ("generate", "synthesise an image from an entity colormap"),
    "refer": ("generate", "referring segmentation: masks of the named entities inside a coarse mask"),
    "segment": ("generate", "entity segmentation: all entity masks of an image"),
    "complete-masks": ("complete_masks", "complete a partial entity segmentation (LDMSeg mask inpainting)"),
    "train": ("train", "train a UniGS UNet (single task or the multi-task mix)"),
    "train-vae": ("train", "train a small VAE for the from-scratch path"),
    "train-mask-ae": ("train_mask_ae", "train the mask autoencoder of the bit-mask codec (LDMSeg)"),
    "eval": ("evaluate", "evaluate a model on held-out data; print a table and write JSON"),
    "ui": ("ui", "interactive app in the browser: brush regions, pick a task, see image, colormap, masks"),
}


DESCRIPTION = ("UniGS: one latent-diffusion model that inpaints, synthesises images from entity colormaps, "
               "and segments (referring and entity segmentation). Inputs of any size; results at the "
               "input's own size. `unigs COMMAND --help` describes each command.")


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors (a bad flag value, a missing flag) as one line naming the command, like
    every other input error: `unigs colormap: error: argument --grid: must be <= 11, is 12`; exit 2."""

    def error(self, message: str):
        command = " ".join(self.prog.split()[:2])
        self.exit(2, f"{command}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="unigs", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = importlib.import_module(f"unigs.commands.{module}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        command.configure(p, name)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or a flag error already printed as one line (2)
        return int(done.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning(args.command)
        return run_command(args.command, lambda: args._run(args))


def run_command(command: str, run) -> int:
    """`run()` with every expected failure as one line on stderr and exit code 2 (STYLE.md §10).

    Expected: bad input (`ValueError`, `FileNotFoundError`, from the boundary checks in `unigs.checks`,
    `unigs.io`, `unigs.config`, the COCO reader and the model loader) and the environment refusing a file
    operation (`OSError`: permissions, disk full). Memory exhaustion and Ctrl-C end without a traceback too.
    """
    try:
        return int(run() or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"unigs {command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        print(f"unigs {command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"unigs {command}: error: out of memory (try a smaller --size, --limit or batch)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"unigs {command}: interrupted", file=sys.stderr)
        return 130


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _one_line_warning(command: str):
    """A `warnings.showwarning` that prints `unigs CMD: warning: message` (no source line)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"unigs {command}: warning: {_one_line(message)}", file=file or sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())
