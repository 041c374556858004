"""Fixtures of the evaluation tests: a tiny random CLIPModel folder and a tiny TorchScript feature net."""

import json

import pytest
import torch


class MeanColour(torch.nn.Module):
    """Feature network: `(B, 3, H, W)` in [0, 1] -> itself; the FID wrapper pools it to the mean colour."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x



@pytest.fixture(scope="session")
def mean_colour_net(tmp_path_factory):
    """Path of a TorchScript file of :class:`MeanColour`."""
    path = tmp_path_factory.mktemp("fid") / "mean_colour.pt"
    torch.jit.save(torch.jit.script(MeanColour()), str(path))
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A local folder with a seeded random CLIPModel, a 58-token CLIPTokenizer and an image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    path = tmp_path_factory.mktemp("clip")
    chars = list("abcdefghijklmnopqrstuvwxyz,.")
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt"))
    tokenizer.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(
        path)
    text = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2,
                max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                  image_size=16, patch_size=4)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8))
    model.save_pretrained(path)
    return path
