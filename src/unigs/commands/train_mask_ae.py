"""`unigs train-mask-ae`: flags here, the work in `unigs.train_mask_ae`."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser, name: str = "train-mask-ae") -> None:
    """Flags of `unigs train-mask-ae`."""
    parser.add_argument("--config", metavar="YAML",
                        help="YAML/JSON file of MaskAETrainConfig keys (e.g. configs/mask_ae.yaml); unknown "
                             "keys are an error")
    parser.add_argument("--output", "-o", required=True, metavar="DIR",
                        help="run folder: checkpoints/, log.json, config.json, the final autoencoder in "
                             "mask_ae/ and mask_ae_report.json")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config key (value parsed as YAML), e.g. --set steps=20")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --output; without it such a folder is refused")


def run(args: argparse.Namespace) -> int:
    from unigs.train_mask_ae import run as run_mask_ae

    return run_mask_ae(args)
