"""Export a training checkpoint as a shippable single-file UniGS model (fp16 by default).

    python scripts/export_model.py runs/default/checkpoints/step-2000/model.safetensors \
        src/unigs/assets/default.safetensors

The weights are the EMA weights that `unigs train` writes as `model.safetensors`; fp16 storage halves the
size (loading copies them back into fp32 parameters, see `unigs.models.loading.save_unigs`).
"""

from __future__ import annotations

import argparse

import torch

from unigs.models.loading import load_unigs, save_unigs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="model.safetensors of a training checkpoint (or any UniGS model)")
    parser.add_argument("out", help="output .safetensors path")
    parser.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: store fp16)")
    args = parser.parse_args()
    components = load_unigs(args.checkpoint)
    path = save_unigs(components, args.out, single_file=True, dtype=None if args.fp32 else torch.float16)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB), meta: {components.meta}")


if __name__ == "__main__":
    main()
