"""`unigs train-vae`: batches of images and palette colormaps, PSNR, and a tiny end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unigs.codec.palette import PALETTE
from unigs.config import config_from_dict
from unigs.train_vae import (
    VAELoss,
    VAETrainConfig,
    entity_source,
    psnr,
    random_colormap,
    train_vae,
    vae_batch,
)

TINY_VAE = {"block_out_channels": [8, 16, 16], "norm_num_groups": 8}


def _is_palette_or_black(colormap: np.ndarray) -> bool:
    colors = {tuple(c) for c in colormap.reshape(-1, 3)}
    return colors <= {tuple(c) for c in PALETTE} | {(0, 0, 0)}


def test_psnr_known_values():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 1) == pytest.approx(20 * np.log10(255.0))  # MSE 1 → 48.13 dB
    assert psnr(a, a + 255) == pytest.approx(0.0)


def test_random_colormap_is_all_or_a_subset_of_entities():
    masks = np.zeros((3, 22, 22), bool)
    masks[0, :2, :2] = masks[1, 10:12, 10:12] = masks[2, 20:, 20:] = True
    coloured = set()
    for seed in range(20):
        cm = random_colormap(masks, np.random.default_rng(seed), grid=11, max_entities=2)
        assert cm.shape == (22, 22, 3) and cm.dtype == np.uint8 and _is_palette_or_black(cm)
        painted = sum(bool(cm[m].any()) for m in masks)
        assert painted in (1, 2, 3)
        coloured.add(painted)
        assert not cm[~masks.any(0)].any()  # background stays black
    assert coloured == {1, 2, 3}  # all entities (p = 0.5) or 1..max_entities of them


def test_vae_batch_is_half_images_half_colormaps():
    config = VAETrainConfig(image_size=32, num_scenes=8, batch_size=4)
    batch = vae_batch(config, entity_source(config), np.random.default_rng(0))
    assert batch.shape == (4, 32, 32, 3) and batch.dtype == np.uint8
    assert not _is_palette_or_black(batch[0]) and not _is_palette_or_black(batch[1])  # textured scenes
    assert _is_palette_or_black(batch[2]) and _is_palette_or_black(batch[3])


def test_vae_batch_of_colormaps_alone():
    config = VAETrainConfig(image_size=32, num_scenes=8, batch_size=3, colormap_fraction=1.0)
    batch = vae_batch(config, entity_source(config), np.random.default_rng(0))
    assert batch.shape == (3, 32, 32, 3) and all(_is_palette_or_black(b) for b in batch)
    with pytest.raises(ValueError, match="colormap_fraction"):
        VAETrainConfig(colormap_fraction=1.5)


def test_vae_batch_random_crops():
    config = VAETrainConfig(image_size=32, crop_size=16, num_scenes=8, batch_size=4)
    batch = vae_batch(config, entity_source(config), np.random.default_rng(0))
    assert batch.shape == (4, 16, 16, 3)
    with pytest.raises(ValueError, match="crop_size"):
        VAETrainConfig(image_size=32, crop_size=64)


def test_config_errors():
    with pytest.raises(ValueError, match="kl_beta"):
        config_from_dict({"kl_beta": 1.0}, VAETrainConfig)
    with pytest.raises(ValueError, match="even"):
        VAETrainConfig(batch_size=3)


def test_vae_loss_is_l1_plus_weighted_kl():
    from diffusers import AutoencoderKL

    from unigs.models.vae import small_vae_config

    torch.manual_seed(0)
    model = VAELoss(AutoencoderKL(**small_vae_config(**TINY_VAE, sample_size=16)))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    loss0, l1 = model(x, 0.0, torch.Generator().manual_seed(0))
    loss1, _ = model(x, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(loss0, l1) and loss1 > loss0  # KL of an untrained posterior is positive
    loss1.backward()
    assert model.vae.encoder.conv_in.weight.grad is not None


def test_tiny_end_to_end_sets_scaling_factor_and_saves(tmp_path):
    from diffusers import AutoencoderKL

    config = VAETrainConfig(image_size=32, num_scenes=8, batch_size=2, steps=2, log_every=1, ckpt_every=1,
                            eval_scenes=2, vae=TINY_VAE)
    result = train_vae(config, tmp_path)
    vae = AutoencoderKL.from_pretrained(tmp_path / "vae")
    assert vae.config.scaling_factor == pytest.approx(1.0 / result["latent_std"])
    assert {"psnr_image", "psnr_colormap", "dichotomy_miou"} <= set(result)
    assert np.isfinite(result["psnr_image"]) and np.isfinite(result["psnr_colormap"])
    report = json.loads((tmp_path / "vae_report.json").read_text())
    assert report["scaling_factor"] == result["scaling_factor"]
    saved = [p.name for p in sorted((tmp_path / "checkpoints").iterdir())]
    assert saved == ["step-00000001", "step-00000002"]


# pool mode: colormaps alone, encoded once, 16 px crops (4 latent cells of the ×4 VAE)
POOL = {"pool_size": 4, "crop_size": 16, "colormap_fraction": 1.0, "latent_noise": 0.1}


@pytest.mark.parametrize("pool", [{}, POOL], ids=["fresh draws", "latent pool"])
def test_decoder_only_keeps_the_encoder_and_the_scale(tmp_path, pool):
    from diffusers import AutoencoderKL

    base = VAETrainConfig(image_size=32, num_scenes=8, batch_size=2, steps=1, eval_scenes=2, vae=TINY_VAE)
    train_vae(base, tmp_path / "a")
    first = AutoencoderKL.from_pretrained(tmp_path / "a" / "vae")
    tuned = VAETrainConfig(**{**base.__dict__, "init": str(tmp_path / "a" / "vae"), "decoder_only": True,
                              "steps": 2, "lr": 1e-2, **pool})
    train_vae(tuned, tmp_path / "b")
    second = AutoencoderKL.from_pretrained(tmp_path / "b" / "vae")
    assert second.config.scaling_factor == first.config.scaling_factor
    for name in ("encoder", "quant_conv"):
        for p, q in zip(getattr(first, name).parameters(), getattr(second, name).parameters(), strict=True):
            assert torch.equal(p, q)
    assert not torch.equal(first.decoder.conv_out.weight, second.decoder.conv_out.weight)


def test_decoder_only_needs_an_init(tmp_path):
    with pytest.raises(ValueError, match="decoder_only needs init"):
        VAETrainConfig(decoder_only=True)
    with pytest.raises(FileNotFoundError, match="VAE folder"):
        VAETrainConfig(init=str(tmp_path))


def test_latent_pool_crops_pixels_and_latents_alike(tmp_path):
    from diffusers import AutoencoderKL

    from unigs.models.vae import small_vae_config, to_model_images
    from unigs.train_vae import LatentPool

    with pytest.raises(ValueError, match="pool_size needs decoder_only"):
        VAETrainConfig(pool_size=4)
    torch.manual_seed(0)
    vae = AutoencoderKL(**small_vae_config(**TINY_VAE)).eval()
    vae.save_pretrained(tmp_path / "v")
    config = VAETrainConfig(image_size=32, num_scenes=8, batch_size=3, init=str(tmp_path / "v"),
                            decoder_only=True, pool_size=4, crop_size=16, colormap_fraction=1.0)
    pool = LatentPool(vae, config, entity_source(config))
    assert pool.pixels.shape == (4, 32, 32, 3) and pool.latents.shape == (4, 4, 8, 8)
    assert all(_is_palette_or_black(p) for p in pool.pixels)
    with torch.no_grad():
        assert torch.allclose(pool.latents, vae.encode(to_model_images(pool.pixels)).latent_dist.mode())
    x, z = pool.batch(np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 16, 16) and z.shape == (3, 4, 4, 4)
    offsets = [(i, y, c) for i in range(4) for y in range(5) for c in range(5)]  # member, latent row, col
    for xb, zb in zip(x, z, strict=True):
        # a pool member and latent offset whose pixel crop is xb has zb as its latent crop
        found = [(i, y, c) for i, y, c in offsets if torch.equal(
            to_model_images(pool.pixels[i:i + 1, y * 4:y * 4 + 16, c * 4:c * 4 + 16])[0], xb)]
        assert found and any(torch.equal(pool.latents[i, :, y:y + 4, c:c + 4], zb) for i, y, c in found)
