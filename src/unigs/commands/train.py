"""`unigs train` and `unigs train-vae`: flags here, the work in `unigs.train` / `unigs.train_vae`.

These two commands are the only training entry points. Both run unchanged on several processes:
`accelerate launch --num_processes 2 -m unigs.cli train …` (`train-vae` alike).
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    """Flags of `unigs train` (name "train") or `unigs train-vae` (name "train-vae")."""
    if name not in ("train", "train-vae"):
        raise ValueError(f"unigs.commands.train serves 'train' and 'train-vae', not {name!r}")
    what = "TrainConfig" if name == "train" else "VAETrainConfig"
    parser.add_argument("--config", metavar="YAML",
                        help=f"YAML/JSON file of {what} keys (e.g. configs/"
                             f"{'default' if name == 'train' else 'vae'}.yaml); unknown keys are an error")
    parser.add_argument("--output", "-o", required=True, metavar="DIR",
                        help="run folder: checkpoints/, metrics.csv, config.json"
                             + ("" if name == "train" else ", and the final VAE in vae/"))
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config key (value parsed as YAML), e.g. --set steps=20")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --output (its checkpoints, metrics.csv and "
                             "config.json are deleted first); without it such a folder is refused")
    if name == "train":
        parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                            help="continue from the newest checkpoint in --output, or from the checkpoint "
                                 "folder CHECKPOINT (same config; the LR schedule may change for steps not "
                                 "taken yet, e.g. --set lr_scheduler=wsd --set lr_decay_steps=N); without "
                                 "--config the run's own config.json is used")
        parser.add_argument("--dry-run", action="store_true",
                            help="validate the config, list missing paths and print the plan (datasets, "
                                 "effective batch, steps, checkpoint size); loads no weights or data")


def run(args: argparse.Namespace) -> int:
    """Unpack the flags into the explicit arguments of `unigs.train.run` / `unigs.train_vae.run`."""
    # Deferred: `unigs --help` builds every command's parser, and the trainers load torch, diffusers and
    # accelerate (seconds); the CLI itself imports none of them.
    if args.command == "train-vae":
        from unigs import train_vae

        return train_vae.run(args.config, args.output, args.set, overwrite=args.overwrite)
    from unigs import train

    return train.run(args.config, args.output, args.set, resume=args.resume, overwrite=args.overwrite,
                     dry_run=args.dry_run)
