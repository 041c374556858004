"""Export a training checkpoint as a shippable single-file UniGS model (fp16 by default).

    python scripts/export_model.py runs/default/checkpoints/step-2000/model.safetensors \
        src/unigs/assets/default.safetensors

The weights are the EMA weights that `unigs train` writes as `model.safetensors`; fp16 storage halves the
size (loading copies them back into fp32 parameters, see `unigs.models.loading.save_unigs`).

Attach a colormap decoder (`unigs train-vae --config configs/vae-colormap.yaml`, `unigs.models.colormap_vae`)
to a model file; the pipelines then decode the colormap half with it:

    python scripts/export_model.py src/unigs/assets/default.safetensors runs/with-decoder.safetensors \
        --colormap-vae runs/vae-colormap/vae
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from types import SimpleNamespace

import torch

from unigs.models.colormap_vae import attach, same_encoder
from unigs.models.loading import load_unigs, save_unigs
from unigs.models.meta import MINILM


def _is_minilm(text_encoder) -> bool:
    """Whether the text encoder is the installed MiniLM package's, weight for weight."""
    from unigs.models.text import load_text_encoder

    _, minilm = load_text_encoder(None)
    mine, ref = text_encoder.state_dict(), minilm.state_dict()
    return mine.keys() == ref.keys() and all(torch.equal(mine[k].float(), ref[k].float()) for k in ref)


def _vae_folder(folder: str):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(folder, local_files_only=True).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="model.safetensors of a training checkpoint (or any UniGS model)")
    parser.add_argument("out", help="output .safetensors path")
    parser.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: store fp16)")
    parser.add_argument("--vae", help="replace the VAE by this folder (e.g. a decoder_only fine-tune of it: "
                                      "same encoder and scaling factor, else refused)")
    parser.add_argument("--colormap-vae", metavar="FOLDER",
                        help="attach this VAE folder's decoder as the model's colormap decoder (a "
                             "decoder_only fine-tune on colormaps: same encoder and scaling factor, else "
                             "refused)")
    parser.add_argument("--no-colormap-vae", action="store_true",
                        help="drop the model's colormap decoder (its colormaps are then decoded by the VAE)")
    args = parser.parse_args()
    if args.colormap_vae and args.no_colormap_vae:
        parser.error("--colormap-vae and --no-colormap-vae exclude each other")
    components = load_unigs(args.checkpoint)
    if args.vae:
        vae = _vae_folder(args.vae)
        if not same_encoder(components.vae, vae):
            raise SystemExit(f"--vae {args.vae}: its encoder or scaling factor differs from the model's; the "
                             "UNet was trained on the model's latents")
        components.vae = vae
        if components.colormap_vae is not None:  # keep it behind the (identical) encoder of the new VAE
            components.colormap_vae = attach(vae, components.colormap_vae)
    if args.no_colormap_vae:
        components.colormap_vae = None
    if args.colormap_vae:
        try:
            components.colormap_vae = attach(components.vae, _vae_folder(args.colormap_vae),
                                             f"--colormap-vae {args.colormap_vae}")
        except ValueError as err:
            raise SystemExit(str(err)) from None
    train_config = components.meta.train_config or {}
    if not components.meta.vocabulary and train_config.get("data") == "scenes":
        # models trained before the meta held it: the scene names are the whole vocabulary
        from unigs.data.scenes import CATEGORIES, STUFF
        from unigs.train_parts import data_domain

        scenes = SimpleNamespace(datasets=[], data="scenes", images_dir=None)  # the dataset keys it reads
        components.meta = replace(components.meta, vocabulary=(*CATEGORIES, *STUFF),
                                  domain=data_domain(scenes))
    if components.meta.text_encoder != MINILM and _is_minilm(components.text_encoder):
        components.meta = replace(components.meta, text_encoder=MINILM)  # a reference, not 45 MB
    path = save_unigs(components, args.out, single_file=True, dtype=None if args.fp32 else torch.float16)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB), meta: {components.meta}")


if __name__ == "__main__":
    main()
