"""The model-file boundary: read what a UniGS model folder or file says about itself, defensively.

`unigs.models.loading` reads every header and weight through here, so a damaged model is a `ValueError`
naming the file and what is wrong with it (never a KeyError from deep inside, nor a misleading hint):

- `unigs.json` that is truncated / not JSON, not an object, of another format, or without a `meta` object;
- a `.safetensors` file that cannot be opened (truncated, empty, not safetensors at all) or whose UniGS
  header is damaged;
- weights that do not fit the configured model (missing/unexpected keys, other shapes);
- weights holding NaN or inf: they run and silently give black images and one whole-image mask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from unigs.io import check_input_file

FORMAT = "unigs"


def check_meta(meta: Any, source: str) -> dict:
    """`meta` if it is a dict whose known keys have usable types, else a ValueError naming `source`."""
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: 'meta' must be an object, is {type(meta).__name__}")
    text = meta.get("text_encoder")
    if text is not None and not isinstance(text, dict):
        raise ValueError(f"{source}: meta.text_encoder must be an object, is {text!r}")
    for key in ("image_size", "grid", "latent_factor"):
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{source}: meta.{key} must be a positive integer, is {value!r}")
    if not isinstance(meta.get("colormap_decoder", False), bool):
        raise ValueError(f"{source}: meta.colormap_decoder must be true or false, "
                         f"is {meta['colormap_decoder']!r}")
    return meta


def read_unigs_json(path: Path) -> dict:
    """The `{"format", "version", "meta"}` object of a model folder's `unigs.json`, checked."""
    path = check_input_file(path, "model description")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is damaged (not valid JSON: {err}); re-save the model") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path} must hold a JSON object, holds {type(info).__name__}")
    if info.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} has format {info.get('format')!r}, expected {FORMAT!r}")
    if "meta" not in info:
        raise ValueError(f"{path} has no 'meta' object (image_size, grid, tasks, ...); re-save the model")
    check_meta(info["meta"], str(path))
    return info


def safetensors_header(path: Path) -> dict:
    """The string metadata of a `.safetensors` file; ValueError naming it when it cannot be opened."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # noqa: BLE001 — safetensors raises its own error types for damaged files
        raise ValueError(f"model file {path} cannot be read as safetensors (truncated or damaged?): "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def read_unigs_header(path: Path) -> dict | None:
    """The UniGS description inside a single-file model, None for another (e.g. SD) safetensors file."""
    header = safetensors_header(path)
    if header.get("format") != FORMAT:
        return None
    try:
        info = json.loads(header[FORMAT])
    except (KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"model file {path} has a damaged UniGS header: {err}") from None
    if not isinstance(info, dict):
        raise ValueError(f"model file {path}: the UniGS header must be a JSON object")
    if "meta" not in info:
        raise ValueError(f"model file {path} has no 'meta' in its UniGS header; re-save the model")
    check_meta(info["meta"], f"model file {path}")
    for key in ("unet_config", "vae_config", "scheduler_config"):
        if not isinstance(info.get(key), dict):
            raise ValueError(f"model file {path}: its UniGS header lacks the {key} object")
    return info


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a `.safetensors` file; ValueError naming it when the data is truncated."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"model file {path} cannot be read (truncated or damaged?): "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def load_weights_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str,
                      source: Any) -> None:
    """`module.load_state_dict(state, strict=True)`, a mismatch as a ValueError naming `what` and
    `source`; then :func:`check_finite_weights`."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0] if str(err) else "mismatch"
        raise ValueError(f"{source}: the {what} weights do not fit its config ({first})") from None
    check_finite_weights(module, what, source)


def check_finite_weights(module: torch.nn.Module, what: str, source: Any) -> None:
    """ValueError naming the first parameter or buffer of `module` that holds NaN or inf."""
    for name, value in module.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{source}: the {what} weight {name!r} holds NaN/inf values; the model file is "
                             "damaged (or was saved from a diverged run)")
