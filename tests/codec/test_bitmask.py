"""Bit-mask codec (LDMSeg): exact ids ↔ bits round trips, the mask autoencoder, `unigs train-mask-ae`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unigs.cli import main as cli_main
from unigs.codec import bitmask
from unigs.models.mask_ae import (
    BitMaskCodec,
    MaskAE,
    MaskAEConfig,
    id_log_probs,
    load_mask_ae,
    mask_ae_loss,
    num_parameters,
)
from unigs.train_mask_ae import MaskAETrainConfig, mask_batch


def _masks() -> np.ndarray:
    masks = np.zeros((3, 16, 16), bool)
    masks[0] = True                     # a large "stuff" entity under everything
    masks[1, 2:8, 2:8] = True           # a thing on top of it
    masks[2, 10:14, 9:15] = True
    return masks


def test_ids_bits_ids_round_trip_is_exact_for_every_code():
    ids = np.arange(128).reshape(8, 16)
    bits = bitmask.ids_to_bits(ids)
    assert bits.shape == (7, 8, 16) and bits.dtype == np.float32 and set(np.unique(bits)) == {-1.0, 1.0}
    assert np.array_equal(bitmask.bits_to_ids(bits), ids)
    assert bitmask.ids_to_bits(np.array([[5]]))[:, 0, 0].tolist() == [1, -1, 1, -1, -1, -1, -1]  # LSB first


def test_encode_decode_round_trip_gives_the_visible_masks():
    masks = _masks()
    bits = bitmask.encode(masks)
    out = bitmask.decode(bits)
    visible = masks.copy()
    visible[0] &= ~(masks[1] | masks[2])  # the smaller entities are written on top of the large one
    assert np.array_equal(out, visible)
    # random ids round trip too, and the background (uncovered pixels) comes back as id 0
    ids = bitmask.id_map(masks[1:], ids=[127, 64])
    assert set(np.unique(ids)) == {0, 64, 127}
    assert len(bitmask.decode(bitmask.ids_to_bits(ids), keep_background=True)) == 3


def test_decode_reads_logits_and_noisy_planes():
    bits = bitmask.encode(_masks())
    noisy = bits * 0.3 + np.random.default_rng(0).normal(0, 0.05, bits.shape).astype(np.float32)
    assert np.array_equal(bitmask.decode(noisy), bitmask.decode(bits))


@pytest.mark.parametrize(("call", "words"), [
    (lambda: bitmask.encode(np.zeros((128, 4, 4), bool)), "at most 127 entities"),
    (lambda: bitmask.encode(np.zeros((2, 4, 4), np.float32)), "dtype float32"),
    (lambda: bitmask.encode(np.zeros((1, 2, 4, 4), bool)), "shape (N, H, W)"),
    (lambda: bitmask.encode(np.zeros((2, 4, 4), bool), ids=[3, 3]), "distinct"),
    (lambda: bitmask.decode(np.zeros((6, 4, 4))), "7, H, W), got shape (6, 4, 4)"),
    (lambda: bitmask.decode(np.zeros((7, 4, 4), object)), "real numbers"),
    (lambda: bitmask.ids_to_bits(np.array([[200]])), "[0, 127]"),
])
def test_bad_input_is_a_one_sentence_error(call, words):
    with pytest.raises(ValueError) as err:
        call()
    assert words in str(err.value) and "\n" not in str(err.value)


def test_autoencoder_shapes_and_size():
    model = MaskAE(MaskAEConfig(channels=(8, 8, 16, 16)))
    z = model.encode(torch.zeros(2, 7, 32, 24))
    assert z.shape == (2, 4, 4, 3) and model.decode(z).shape == (2, 7, 32, 24)
    assert num_parameters(MaskAE()) < 2_000_000  # LDMSeg's "shallow" autoencoder: ~2 M or less
    assert MaskAE().config.downsample == 8
    with pytest.raises(ValueError, match="divisible by the mask autoencoder's downsampling factor 8"):
        MaskAE().encode(torch.zeros(1, 7, 20, 16))


def test_id_probabilities_sum_to_one_and_the_loss_trains():
    torch.manual_seed(0)
    logits = torch.randn(1, 7, 4, 4)
    total = id_log_probs(logits, torch.arange(128)).exp().sum(1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)
    model = MaskAE(MaskAEConfig(channels=(8, 8)))
    ids = torch.from_numpy(bitmask.id_map(_masks()))[None]
    bits = torch.from_numpy(bitmask.ids_to_bits(ids.numpy()))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(8):
        loss, parts = mask_ae_loss(model(bits), bits, ids)
        first = first if first is not None else float(loss.detach())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert float(loss.detach()) < first and set(parts) == {"bit_ce", "mask_bce", "dice"}


def test_mask_batch_uses_random_distinct_ids():
    config = MaskAETrainConfig(image_size=16, num_scenes=4, batch_size=3, model={"channels": [8, 8]})
    from unigs.data.source import EntitySource

    bits, ids = mask_batch(config, EntitySource("scenes", 16, num_scenes=4), np.random.default_rng(0))
    assert bits.shape == (3, 7, 16, 16) and ids.shape == (3, 16, 16)
    assert np.array_equal(bitmask.bits_to_ids(bits), ids)
    assert ids.max() > 10  # random codes, not 1..N


def test_train_mask_ae_two_steps_writes_a_checkpoint_and_a_codec(tmp_path):
    out = tmp_path / "run"
    code = cli_main(["train-mask-ae", "--output", str(out), "--set", "image_size=16", "--set", "num_scenes=2",
                     "--set", "batch_size=2", "--set", "steps=2", "--set", "eval_scenes=2",
                     "--set", "model={channels: [8, 8]}", "--set", "log_every=1"])
    assert code == 0
    assert (out / "checkpoints").is_dir() and any((out / "checkpoints").rglob("mask_ae.safetensors"))
    report = json.loads((out / "mask_ae_report.json").read_text())
    assert report["steps_done"] == 2 and 0 <= report["bit_accuracy"] <= 1 and len(report["log"]) == 2
    codec = BitMaskCodec.from_pretrained(out / "mask_ae")
    z = codec.encode(_masks())
    assert z.shape == (4, 8, 8) and codec.decode(z).shape[1:] == (16, 16)
    assert load_mask_ae(out / "mask_ae").config.scaling_factor == pytest.approx(report["scaling_factor"])


def test_train_mask_ae_bad_config_is_one_line(tmp_path, capsys):
    code = cli_main(["train-mask-ae", "--output", str(tmp_path / "r"), "--set", "image_size=20"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "multiple of the downsampling factor 8, is 20" in err
