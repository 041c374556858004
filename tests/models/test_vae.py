"""Tests for unigs.models.vae: the small ×4 config, pixel conversions, encode/decode contracts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from tiny_models import tiny_vae_config

from unigs.models.vae import decode_latents, encode_images, latent_factor, small_vae_config, to_model_images


@pytest.fixture
def vae():
    torch.manual_seed(0)
    return AutoencoderKL(**tiny_vae_config(scaling_factor=0.5)).eval()


def test_small_config_downsamples_by_4_to_4_channels():
    config = small_vae_config()
    assert config["latent_channels"] == 4 and config["sample_size"] == 128
    vae = AutoencoderKL(**config)
    assert latent_factor(vae) == 4
    assert sum(p.numel() for p in vae.parameters()) < 2e6
    with pytest.raises(ValueError, match="latent_channel"):
        small_vae_config(latent_channel=8)


def test_to_model_images_maps_uint8_to_minus_one_one():
    img = np.array([[[[0, 255, 128]]]], dtype=np.uint8)  # (1, 1, 1, 3)
    x = to_model_images(img)
    assert x.shape == (1, 3, 1, 1)
    torch.testing.assert_close(x.flatten(), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1.0]))
    floats = torch.zeros(1, 3, 4, 4)
    assert to_model_images(floats) is floats


def test_encode_uint8_and_float_agree_and_are_scaled(vae):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    z = encode_images(vae, images)
    assert z.shape == (2, 4, 8, 8) and z.dtype == torch.float32
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(encode_images(vae, x), z)
    with torch.no_grad():
        mean = vae.encode(x).latent_dist.mean
    torch.testing.assert_close(z, mean * 0.5)  # scaling_factor = 0.5


def test_encode_with_generator_samples_reproducibly(vae):
    images = np.full((1, 32, 32, 3), 100, dtype=np.uint8)
    a = encode_images(vae, images, generator=torch.Generator().manual_seed(1))
    b = encode_images(vae, images, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.allclose(a, encode_images(vae, images))


def test_decode_returns_uint8_images_consistent_with_the_decoder(vae):
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    images = decode_latents(vae, z)
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    with torch.no_grad():
        x = vae.decode(z / 0.5).sample.clamp(-1, 1)
    expected = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(images, expected)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((32, 32, 3), np.uint8), "4-d"),
        (np.zeros((1, 32, 32, 4), np.uint8), r"\(B, H, W, 3\)"),
        (torch.full((1, 3, 32, 32), 2.0), r"\[-1, 1\]"),
        (torch.zeros(1, 32, 32, 3), r"\(B, 3, H, W\)"),
        (np.zeros((1, 30, 32, 3), np.uint8), "divisible"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.int32), "uint8 or float"),
        ([[0]], "numpy array or torch tensor"),
    ],
)
def test_encode_rejects_bad_images(vae, images, match):
    with pytest.raises(ValueError, match=match):
        encode_images(vae, images)


def test_decode_rejects_bad_latents(vae):
    with pytest.raises(ValueError, match="channels"):
        decode_latents(vae, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, h, w\)"):
        decode_latents(vae, torch.zeros(4, 8, 8))
