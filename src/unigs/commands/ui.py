"""`unigs ui`: serve the interactive app (`unigs.ui`) on this machine.

Local only by default (127.0.0.1), no telemetry, nothing fetched at start-up: the model loads from
`--model` or the bundled default, and the page uses system fonts.

gradio (the `demo` extra) and the app are imported inside `run`: gradio is optional, and the CLI imports
every command module to build its parser (`unigs --help` loads no torch).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from unigs.commands.model_flags import add_model_flags, load_model


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    add_model_flags(parser)
    parser.add_argument("--port", type=int, default=7860,
                        help="port to serve on (default 7860; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 exposes "
                             "the app to the network)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the files of each run (default: a new temporary folder)")
    parser.add_argument("--device", default=None,
                        help="torch device (default: cuda when available, else cpu)")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], is {args.port}")
    try:
        import gradio  # noqa: F401
    except ImportError as err:
        raise ValueError("unigs ui needs gradio: pip install 'unigs[demo]'") from err
    import torch

    from unigs.ui import launch

    components, model = load_model(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    for part in (components.unet, components.vae, components.text_encoder, components.colormap_vae):
        if part is not None:  # colormap_vae is optional
            part.to(device)
    print(f"unigs ui: model {model} on {device}; serving http://{args.host}:{args.port or '<free port>'}")
    launch(components, host=args.host, port=args.port or None, out_dir=args.out)
    return 0
