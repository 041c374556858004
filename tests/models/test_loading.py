"""Tests for unigs.models.loading: offline save/load round trips, SD-inpainting sources, clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from tiny_models import tiny_sd_inpaint_components, write_original_sd_checkpoint, write_sd_folder

from unigs.models.loading import (
    UNIGS_JSON,
    UniGSComponents,
    load_stable_diffusion,
    load_unigs,
    save_unigs,
)
from unigs.models.text import encode_prompt


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _assert_same_components(a: UniGSComponents, b: UniGSComponents) -> None:
    for name in ("unet", "vae", "text_encoder"):
        _assert_same_weights(getattr(a, name), getattr(b, name))
    assert a.meta == b.meta
    assert type(a.scheduler) is type(b.scheduler)
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(a.scheduler.config) == public(b.scheduler.config)
    assert a.tokenizer("referring: find dog.").input_ids == b.tokenizer("referring: find dog.").input_ids


@pytest.mark.parametrize("single_file", [False, True])
def test_save_load_round_trip_is_exact_and_offline(tiny, tmp_path, no_network, single_file):
    path = tmp_path / ("model.safetensors" if single_file else "model")
    assert save_unigs(tiny, path, single_file=single_file) == path
    loaded = load_unigs(path)
    _assert_same_components(tiny, loaded)
    x = torch.randn(1, 13, 8, 8, generator=torch.Generator().manual_seed(0))
    text = encode_prompt(loaded.tokenizer, loaded.text_encoder, ["synthesis: generate dog."])
    with torch.no_grad():
        a = tiny.unet(x, 5, encoder_hidden_states=text, class_labels=torch.tensor([1])).sample
        b = loaded.unet(x, 5, encoder_hidden_states=text, class_labels=torch.tensor([1])).sample
    # Weights are bit-equal (above); the forward may differ by ~1e-6 because oneDNN picks kernels by the
    # memory alignment of the (memory-mapped) weights — a deep copy of the loaded model gives a == b.
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_fp16_single_file_is_half_the_size_and_loads_as_fp32(tiny, tmp_path):
    full = save_unigs(tiny, tmp_path / "full.safetensors", single_file=True)
    half = save_unigs(tiny, tmp_path / "half.safetensors", single_file=True, dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_unigs(half)
    for name in ("unet", "vae"):
        original, back = getattr(tiny, name).state_dict(), getattr(loaded, name).state_dict()
        for key, value in original.items():
            assert back[key].dtype == value.dtype, key  # fp32 parameters again
            torch.testing.assert_close(back[key], value.to(torch.float16).to(value.dtype), atol=0, rtol=0)
    with pytest.raises(ValueError, match="single-file"):
        save_unigs(tiny, tmp_path / "folder", dtype=torch.float16)


def test_folder_layout_is_diffusers_style(tiny, tmp_path):
    save_unigs(tiny, tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {UNIGS_JSON, "unet", "vae", "scheduler", "text_encoder", "tokenizer"} <= names
    assert (tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    info = json.loads((tmp_path / "m" / UNIGS_JSON).read_text())
    assert info["format"] == "unigs" and info["meta"]["image_size"] == 32


def test_minilm_text_encoder_is_stored_as_a_reference(tiny, tmp_path, no_network):
    from unigs.models.text import load_text_encoder

    tiny.tokenizer, tiny.text_encoder = load_text_encoder(None)
    tiny.meta = dataclasses.replace(tiny.meta, text_encoder="minilm")
    save_unigs(tiny, tmp_path / "m")
    save_unigs(tiny, tmp_path / "m.safetensors", single_file=True)
    assert not (tmp_path / "m" / "text_encoder").exists()
    for path in (tmp_path / "m", tmp_path / "m.safetensors"):
        loaded = load_unigs(path)
        assert loaded.text_encoder.config.hidden_size == 384
        _assert_same_weights(loaded.text_encoder, tiny.text_encoder)


def test_sd_folder_loads_unchanged(sd_folder, tiny_sd, no_network):
    sd = load_stable_diffusion(sd_folder)
    assert sd.unet.config.in_channels == 9 and sd.unet.config.out_channels == 4
    _assert_same_weights(sd.unet, tiny_sd.unet)
    _assert_same_weights(sd.vae, tiny_sd.vae)
    _assert_same_weights(sd.text_encoder, tiny_sd.text_encoder)
    assert type(sd.scheduler).__name__ == "DDIMScheduler"
    assert sd.meta.latent_factor == 4 and sd.meta.image_size == 32


def test_sd_inpaint_folder_is_widened_by_load_unigs(sd_folder, tiny_sd, no_network):
    unigs = load_unigs(sd_folder, num_tasks=4)
    assert (unigs.unet.config.in_channels, unigs.unet.config.out_channels) == (13, 8)
    assert unigs.meta.multitask and unigs.meta.num_tasks == 4
    assert not unigs.unet.class_embedding.weight.any()
    assert torch.equal(unigs.unet.conv_in.weight[:, 8], tiny_sd.unet.conv_in.weight[:, 4])
    single = load_unigs(sd_folder, num_tasks=None)
    assert single.unet.class_embedding is None and not single.meta.multitask


def test_missing_paths_name_what_is_missing(tmp_path, sd_folder):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_unigs(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_stable_diffusion(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="unigs.json"):
        load_unigs(empty)
    with pytest.raises(FileNotFoundError, match="'unet'"):
        load_stable_diffusion(empty)
    (sd_folder / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="vae weights"):
        load_stable_diffusion(sd_folder)


def test_missing_subfolder_of_a_unigs_folder(tiny, tmp_path):
    save_unigs(tiny, tmp_path / "m")
    (tmp_path / "m" / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="scheduler_config.json"):
        load_unigs(tmp_path / "m")


def test_original_single_file_sd_checkpoint_loads_and_widens(tmp_path, no_network):
    tiny_sd = tiny_sd_inpaint_components(seed=2, clip=True)
    config_dir = write_sd_folder(tiny_sd, tmp_path / "config")
    ckpt = write_original_sd_checkpoint(tiny_sd, tmp_path / "sd-inpainting.safetensors")
    sd = load_stable_diffusion(ckpt, config_dir=config_dir)
    for name in ("unet", "vae", "text_encoder"):
        _assert_same_weights(getattr(sd, name), getattr(tiny_sd, name))
    unigs = load_unigs(ckpt, config_dir=config_dir)
    assert (unigs.unet.config.in_channels, unigs.unet.config.out_channels) == (13, 8)
    assert torch.equal(unigs.unet.conv_in.weight[:, 9:13], tiny_sd.unet.conv_in.weight[:, 5:9])
    # the real layout: the VAE's mid-block attention as LDM's 1x1-convolution mid.attn_1
    from safetensors.torch import load_file

    stored = load_file(str(ckpt))
    for part in ("norm", "q", "k", "v", "proj_out"):
        assert f"first_stage_model.decoder.mid.attn_1.{part}.weight" in stored
    assert stored["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4


def test_single_file_missing_weights_and_tokenizer_files_are_named(tmp_path):
    from safetensors.torch import load_file, save_file

    tiny_sd = tiny_sd_inpaint_components(seed=2, clip=True)
    config_dir = write_sd_folder(tiny_sd, tmp_path / "config")
    ckpt = write_original_sd_checkpoint(tiny_sd, tmp_path / "full.safetensors")
    partial = {k: v for k, v in load_file(str(ckpt)).items() if ".mid.attn_1." not in k}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(ValueError, match="partial.safetensors' does not match the SD-1.5 layout"):
        load_stable_diffusion(tmp_path / "partial.safetensors", config_dir=config_dir)
    for name in ("tokenizer.json", "vocab.txt"):
        (config_dir / "tokenizer" / name).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match=r"tokenizer file '.*tokenizer/vocab.txt' does not exist"):
        load_stable_diffusion(ckpt, config_dir=config_dir)
    with pytest.raises(FileNotFoundError, match=r"tokenizer/vocab.txt"):
        load_unigs(config_dir)  # the same folder as a diffusers SD model


def test_single_file_sd_checkpoint_errors(tmp_path, sd_folder):
    ckpt = tmp_path / "sd.safetensors"
    from safetensors.torch import save_file

    save_file({"model.diffusion_model.conv_in.weight": torch.zeros(1)}, str(ckpt))
    with pytest.raises(FileNotFoundError, match="config_dir"):
        load_stable_diffusion(ckpt)
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        load_stable_diffusion(ckpt, config_dir=tmp_path / "no-config")
    bad = tmp_path / "sd.pt"
    bad.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.safetensors or \.ckpt"):
        load_stable_diffusion(bad, config_dir=sd_folder)


def test_single_file_save_needs_safetensors_suffix(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"\.safetensors"):
        save_unigs(tiny, tmp_path / "model.bin", single_file=True)


def test_plain_sd_unet_is_not_widened(tiny_sd, tmp_path):
    from diffusers import UNet2DConditionModel
    from tiny_models import TINY_UNET_CONFIG

    tiny_sd.unet = UNet2DConditionModel(**dict(TINY_UNET_CONFIG, in_channels=4, out_channels=4))
    folder = write_sd_folder(tiny_sd, tmp_path / "sd")
    with pytest.raises(ValueError, match="9 input channels"):
        load_unigs(folder)
