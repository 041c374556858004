"""Tests for unigs.models.text: the offline MiniLM encoder, prompt encoding, local folders."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_text_encoder

from unigs.models.text import MAX_LENGTH, encode_prompt, load_text_encoder


def _pooled(tokenizer, encoder, prompt: str) -> torch.Tensor:
    states = encode_prompt(tokenizer, encoder, [prompt], "cpu")[0]
    n = int(tokenizer(prompt, return_tensors="pt").attention_mask.sum())
    return states[:n].mean(0)


def test_minilm_loads_offline_and_encodes_meaning(no_network):
    tokenizer, encoder = load_text_encoder()
    states = encode_prompt(tokenizer, encoder, ["inpainting: generate dog.", "panoptic: all entities."])
    assert states.shape == (2, MAX_LENGTH, 384) and states.dtype == torch.float32
    cat, kitten, car = (_pooled(tokenizer, encoder, w) for w in ("cat", "kitten", "airplane"))
    cos = torch.nn.functional.cosine_similarity
    assert cos(cat, kitten, dim=0) > cos(cat, car, dim=0) + 0.1  # real pretrained weights, not random


def test_long_prompts_are_truncated_to_77_tokens():
    tokenizer, encoder = tiny_text_encoder()
    states = encode_prompt(tokenizer, encoder, "dog " * 200)
    assert states.shape == (1, MAX_LENGTH, 32)


def test_tiny_encoder_is_seeded():
    a = encode_prompt(*tiny_text_encoder(seed=3), ["a cat"])
    b = encode_prompt(*tiny_text_encoder(seed=3), ["a cat"])
    c = encode_prompt(*tiny_text_encoder(seed=4), ["a cat"])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_local_folder_round_trip(tmp_path, no_network):
    tokenizer, encoder = tiny_text_encoder()
    encoder.save_pretrained(tmp_path / "text_encoder")
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    tok2, enc2 = load_text_encoder(tmp_path)  # an SD/UniGS folder with text_encoder/ and tokenizer/
    torch.testing.assert_close(encode_prompt(tok2, enc2, ["x"]), encode_prompt(tokenizer, encoder, ["x"]))


def test_missing_folders_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text_encoder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_text_encoder(tmp_path)


@pytest.mark.parametrize("prompts", [[], [1, 2], None])
def test_bad_prompts_raise(prompts):
    with pytest.raises(ValueError, match="prompts"):
        encode_prompt(*tiny_text_encoder(), prompts)


def test_prompts_past_77_tokens_warn():
    from tiny_models import tiny_components

    from unigs.models.text import encode_prompt

    c = tiny_components(seed=0)
    long = "generate " + ", ".join(f"thing{i}" for i in range(50)) + "."
    with pytest.warns(UserWarning, match="first 77"):
        states = encode_prompt(c.tokenizer, c.text_encoder, [long], "cpu")
    assert states.shape[1] == 77
