"""Pipelines with a colormap decoder: the colormap half goes through it, the image half through the VAE."""

from __future__ import annotations

import numpy as np
import torch
from tiny_models import constant_decoder_vae

from unigs.models import colormap_vae as cmvae
from unigs.models.loading import UniGSComponents
from unigs.pipelines import UniGSEntityPipeline, UniGSInpaintPipeline
from unigs.pipelines.base import UniGSPipeline


def _with_white_decoder(components) -> UniGSComponents:
    """The same components plus a colormap decoder that paints every pixel white (255)."""
    white = cmvae.attach(components.vae, constant_decoder_vae(components.vae))
    return UniGSComponents(components.unet, components.vae, components.text_encoder, components.tokenizer,
                           components.scheduler, components.meta, white)


def _run(pipe: UniGSPipeline, image, coarse):
    pipe.set_progress_bar_config(disable=True)
    return pipe(["dog"], image, coarse, num_inference_steps=2, output_type="np",
                generator=torch.Generator().manual_seed(0))


def test_inpainting_decodes_the_colormap_half_with_the_colormap_decoder(components, scene):
    image, coarse, _ = scene
    plain = _run(UniGSInpaintPipeline.from_components(components), image, coarse)
    pipe = UniGSInpaintPipeline.from_components(_with_white_decoder(components))
    assert pipe.colormap_vae is not None and "colormap_vae" in pipe.components
    out = _run(pipe, image, coarse)
    # image half: the VAE, exactly as without a colormap decoder (a swap would paint the image white)
    assert np.array_equal(out.images, plain.images) and not (out.images == 255).all()
    # colormap half (cut to the coarse region): the colormap decoder's white
    assert (out.colormaps[0][coarse] == 255).all() and not (plain.colormaps[0][coarse] == 255).all()


def test_without_one_the_pipeline_behaves_as_before(components):
    pipe = UniGSEntityPipeline.from_components(components)
    assert pipe.colormap_vae is None
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(pipe.decode_colormap_latents(z), pipe.decode_latents(z))


def test_save_pretrained_keeps_the_colormap_decoder(components, tmp_path):
    pipe = UniGSEntityPipeline.from_components(_with_white_decoder(components))
    pipe.save_pretrained(tmp_path / "saved")
    loaded = UniGSEntityPipeline.from_pretrained(tmp_path / "saved")
    assert loaded.colormap_vae is not None and loaded.colormap_vae.encoder is loaded.vae.encoder
    assert (loaded.decode_colormap_latents(torch.zeros(1, 4, 8, 8)) == 255).all()
    UniGSEntityPipeline.from_components(components).save_pretrained(tmp_path / "plain")
    assert UniGSEntityPipeline.from_pretrained(tmp_path / "plain").colormap_vae is None
