"""Tests for unigs.models.colormap_vae and its place in the model file: attach, save/load, old files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import constant_decoder_vae as fine_tuned_copy
from tiny_models import tiny_components

from unigs.models import colormap_vae as cmvae
from unigs.models.loading import load_unigs, save_unigs


def with_colormap_vae(seed: int = 0):
    components = tiny_components(seed=seed)
    components.colormap_vae = cmvae.attach(components.vae, fine_tuned_copy(components.vae))
    return components


def test_attach_shares_the_encoder_and_decodes_with_the_new_decoder():
    components = with_colormap_vae()
    vae, cm = components.vae, components.colormap_vae
    assert cm.encoder is vae.encoder and cm.quant_conv is vae.quant_conv
    assert cm.decoder is not vae.decoder
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert (cmvae.decode_colormaps(vae, z, cm) == 255).all()
    plain = cmvae.decode_colormaps(vae, z)  # no colormap decoder: the VAE's own
    assert not (plain == 255).all()
    from unigs.models.vae import decode_latents

    assert np.array_equal(plain, decode_latents(vae, z))


def test_attach_refuses_a_decoder_trained_behind_another_encoder():
    vae = tiny_components(seed=0).vae
    other = fine_tuned_copy(tiny_components(seed=1).vae)
    assert not cmvae.same_encoder(vae, other)
    with pytest.raises(ValueError, match="runs/x/vae: its encoder or scaling factor differs"):
        cmvae.attach(vae, other, "runs/x/vae")
    rescaled = fine_tuned_copy(vae)
    rescaled.register_to_config(scaling_factor=0.5)
    assert not cmvae.same_encoder(vae, rescaled)


@pytest.mark.parametrize("single_file", [False, True])
def test_save_load_round_trip_keeps_the_colormap_decoder(tmp_path, single_file):
    components = with_colormap_vae()
    path = save_unigs(components, tmp_path / ("m.safetensors" if single_file else "m"),
                      single_file=single_file)
    loaded = load_unigs(path)
    assert loaded.meta.colormap_decoder is True
    assert loaded.colormap_vae is not None and loaded.colormap_vae.encoder is loaded.vae.encoder
    want = cmvae.decoder_state(components.colormap_vae)
    got = cmvae.decoder_state(loaded.colormap_vae)
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    vae_state, loaded_vae = components.vae.state_dict(), loaded.vae.state_dict()
    assert all(torch.equal(vae_state[k], loaded_vae[k]) for k in vae_state)  # the image decoder unchanged
    if single_file:
        keys = load_file(str(path)).keys()
        assert any(k.startswith("colormap_decoder.decoder.") for k in keys)
        assert not any(k.startswith("colormap_decoder.encoder.") for k in keys)  # stored once, as vae.


def test_fp16_single_file_keeps_it(tmp_path):
    path = save_unigs(with_colormap_vae(), tmp_path / "m.safetensors", single_file=True, dtype=torch.float16)
    loaded = load_unigs(path)
    assert loaded.colormap_vae is not None and loaded.colormap_vae.dtype == torch.float32
    assert (cmvae.decode_colormaps(loaded.vae, torch.zeros(1, 4, 8, 8), loaded.colormap_vae) == 255).all()


@pytest.mark.parametrize("single_file", [False, True])
def test_models_without_one_load_as_before(tmp_path, single_file):
    components = tiny_components(seed=0)
    components.meta = dataclasses.replace(components.meta, colormap_decoder=True)  # stale: not written
    path = save_unigs(components, tmp_path / ("m.safetensors" if single_file else "m"),
                      single_file=single_file)
    loaded = load_unigs(path)
    assert loaded.colormap_vae is None and loaded.meta.colormap_decoder is False


def test_a_flag_without_weights_is_refused(tmp_path):
    path = save_unigs(with_colormap_vae(), tmp_path / "m.safetensors", single_file=True)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    tensors = {k: v for k, v in load_file(str(path)).items() if not k.startswith("colormap_decoder.")}
    save_file(tensors, str(path), metadata=header)
    assert json.loads(header["unigs"])["meta"]["colormap_decoder"] is True
    with pytest.raises(ValueError, match="meta.colormap_decoder is True but it holds 0"):
        load_unigs(path)
