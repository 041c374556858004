"""`--model` and `--config-dir`: the two flags of every command that loads a model, and the one loader
behind them (`unigs.models.loading.load_unigs`), so that every command reads the same sources."""

from __future__ import annotations

import argparse
from pathlib import Path


def default_model_path() -> Path:
    """The bundled default model (`unigs.models.loading.default_model_path`); imported lazily so that
    `unigs --help` does not load torch."""
    from unigs.models import loading

    return loading.default_model_path()


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None,
                        help="UniGS model folder or .safetensors file (save_unigs / save_pretrained), or a "
                             "local SD-1.5-inpainting diffusers folder or single .safetensors/.ckpt file, "
                             "widened to 13/8 channels (default: the bundled default model)")
    parser.add_argument("--config-dir", type=Path, default=None,
                        help="with a single-file SD checkpoint as --model: a local diffusers-layout folder "
                             "holding model_index.json, the unet/vae/text_encoder configs and the tokenizer "
                             "files (nothing is downloaded)")


def load_model(args: argparse.Namespace):
    """`(UniGSComponents, path)` for `args.model` / `args.config_dir`; a missing model is one sentence."""
    from unigs.models.loading import load_unigs  # deferred, as in default_model_path

    model = Path(args.model) if args.model is not None else default_model_path()
    if not model.exists():
        if args.model is None:
            raise FileNotFoundError(f"no --model given and the bundled default model {str(model)!r} is "
                                    "not there (it is not trained yet); pass --model PATH")
        raise FileNotFoundError(f"model {str(model)!r} does not exist")
    return load_unigs(model, config_dir=getattr(args, "config_dir", None)), model
