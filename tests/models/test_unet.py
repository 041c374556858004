"""Tests for unigs.models.unet: channel layout, widening exactness (§3.3), parameter counts (Table 10)."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers import UNet2DConditionModel

from unigs.models.unet import (
    SD15_INPAINT_UNET_CONFIG,
    build_unet,
    count_parameters,
    small_unet_config,
    widen_unet,
)


def _meta_unet(**config) -> UNet2DConditionModel:
    """The real-size architecture without allocating 3.4 GB (parameters on the meta device)."""
    with torch.device("meta"):
        return UNet2DConditionModel(**config)


def test_sd15_parameter_counts_match_paper_table10():
    sd = _meta_unet(**SD15_INPAINT_UNET_CONFIG)
    assert count_parameters(sd) == 859_535_364
    assert f"{count_parameters(sd) / 1e6:.2f}" == "859.54"
    with torch.device("meta"):
        unigs = build_unet(SD15_INPAINT_UNET_CONFIG)
    assert count_parameters(unigs) == 859_558_408
    assert f"{count_parameters(unigs) / 1e6:.2f}" == "859.56"
    # Widening adds exactly the same weights as building at 13/8.
    assert count_parameters(widen_unet(sd)) == 859_558_408


def test_small_config_is_cpu_sized_with_attention_only_at_16_and_below():
    config = small_unet_config()
    assert config["sample_size"] == 32 and config["cross_attention_dim"] == 384
    assert config["down_block_types"][0] == "DownBlock2D"  # 32×32: no attention
    assert config["up_block_types"][-1] == "UpBlock2D"
    unet = build_unet(config, num_tasks=4)
    assert 5e6 <= count_parameters(unet) <= 12e6
    assert small_unet_config(layers_per_block=1)["layers_per_block"] == 1
    with pytest.raises(ValueError, match="block_out_channel"):
        small_unet_config(block_out_channel=(32, 64))


def test_build_unet_is_13_in_8_out_and_task_embedding_needs_labels():
    config = dict(
        sample_size=8,
        block_out_channels=[32, 64],
        down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
        layers_per_block=1,
        cross_attention_dim=16,
        in_channels=9,
    )
    unet = build_unet(config, num_tasks=4).eval()
    assert unet.config.in_channels == 13 and unet.config.out_channels == 8
    assert unet.class_embedding.num_embeddings == 4
    x, text = torch.randn(2, 13, 8, 8), torch.randn(2, 77, 16)
    with torch.no_grad():
        out = unet(x, 10, encoder_hidden_states=text, class_labels=torch.tensor([0, 3])).sample
        assert out.shape == (2, 8, 8, 8)
        with pytest.raises(ValueError, match="class_labels"):
            unet(x, 10, encoder_hidden_states=text)
    assert build_unet(config).class_embedding is None
    with pytest.raises(ValueError, match="num_tasks"):
        build_unet(config, num_tasks=0)
    with pytest.raises(ValueError, match="not_a_key"):
        build_unet(dict(config, not_a_key=1))


def test_widen_copies_channels_in_the_unigs_order(tiny_sd):
    sd = tiny_sd.unet
    old_in, old_out = sd.conv_in.weight.clone(), sd.conv_out.weight.clone()
    old_in_b, old_out_b = sd.conv_in.bias.clone(), sd.conv_out.bias.clone()
    unet = widen_unet(sd, num_tasks=4)
    w_in, w_out = unet.conv_in.weight, unet.conv_out.weight
    assert w_in.shape[1] == 13 and w_out.shape[0] == 8
    assert torch.equal(w_in[:, 0:4], old_in[:, 0:4])  # noisy image latent
    assert torch.equal(w_in[:, 4:8], torch.zeros_like(w_in[:, 4:8]))  # new: noisy colormap latent
    assert torch.equal(w_in[:, 8], old_in[:, 4])  # mask
    assert torch.equal(w_in[:, 9:13], old_in[:, 5:9])  # masked-image latent = control
    assert torch.equal(unet.conv_in.bias, old_in_b)
    assert torch.equal(w_out[0:4], old_out) and torch.equal(unet.conv_out.bias[0:4], old_out_b)
    assert not w_out[4:8].any() and not unet.conv_out.bias[4:8].any()
    assert not unet.class_embedding.weight.any()
    assert (unet.config.in_channels, unet.config.out_channels, unet.config.num_class_embeds) == (13, 8, 4)


@pytest.mark.parametrize(
    ("dtype", "atol", "num_tasks"), [(torch.float64, 0.0, 4), (torch.float32, 1e-5, None)]
)
def test_widened_unet_reproduces_sd_inpainting_on_its_image_half(tiny_sd, dtype, atol, num_tasks):
    # float64: bit-identical. float32: the 13-channel conv_in sums in another order than the 9-channel one
    # (oneDNN blocking), ~1e-7 at conv_in, ~2e-6 at the output (outputs ~1): a few float32 ulps.
    sd = copy.deepcopy(tiny_sd.unet).to(dtype)
    unet = widen_unet(copy.deepcopy(sd), num_tasks=num_tasks)
    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(2, 4, 8, 8, generator=g, dtype=dtype)
    mask = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).to(dtype)
    masked = torch.randn(2, 4, 8, 8, generator=g, dtype=dtype)
    text = torch.randn(2, 77, 32, generator=g, dtype=dtype)
    t = torch.tensor([10, 700])
    labels = None if num_tasks is None else torch.tensor([0, 3])
    colormap = torch.zeros_like(noisy)
    with torch.no_grad():
        ref = sd(torch.cat([noisy, mask, masked], 1), t, encoder_hidden_states=text).sample
        x = torch.cat([noisy, colormap, mask, masked], 1)
        out = unet(x, t, encoder_hidden_states=text, class_labels=labels).sample
        # The SD order fed to the widened model must NOT reproduce it (the test can fail).
        wrong = torch.cat([noisy, mask, masked, colormap], 1)
        out_wrong = unet(wrong, t, encoder_hidden_states=text, class_labels=labels).sample
    assert out.shape == (2, 8, 8, 8)
    if atol == 0.0:
        assert torch.equal(out[:, :4], ref)
    else:
        torch.testing.assert_close(out[:, :4], ref, atol=atol, rtol=0)
    assert not out[:, 4:].any()
    assert (out_wrong[:, :4] - ref).abs().max() > 1e-3


def test_widen_rejects_non_inpainting_unets(tiny):
    with pytest.raises(ValueError, match="13 in / 8 out"):
        widen_unet(tiny.unet)
    plain = _meta_unet(**dict(SD15_INPAINT_UNET_CONFIG, in_channels=4))
    with pytest.raises(ValueError, match="4 in"):
        widen_unet(plain)


def test_widened_unet_round_trips_through_save_pretrained(tiny_sd, tmp_path):
    unet = widen_unet(tiny_sd.unet, num_tasks=4)
    unet.save_pretrained(tmp_path / "unet")
    again = UNet2DConditionModel.from_pretrained(tmp_path / "unet", local_files_only=True)
    assert (again.config.in_channels, again.config.out_channels, again.config.num_class_embeds) == (13, 8, 4)
    assert torch.equal(again.conv_in.weight, unet.conv_in.weight)
