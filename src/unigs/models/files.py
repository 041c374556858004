"""The model-file boundary: read what a UniGS model folder or file says about itself, defensively.

`unigs.models.loading` reads every header and weight through here, so a damaged model is a `ValueError`
naming the file and what is wrong with it (never a KeyError from deep inside, nor a misleading hint):

- `unigs.json` that is truncated / not JSON, not an object, of another format or version, or without a
  usable `meta` object (`unigs.models.meta.ModelMeta`, strict: unknown and missing keys are named);
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
from unigs.models.meta import ModelMeta

FORMAT = "unigs"
FORMAT_VERSION = 1  # the layout below; ModelMeta's optional fields load older version-1 files unchanged
UNIGS_JSON = "unigs.json"  # a model folder's description: {"format", "version", "meta"}


# ---------------------------------------------------------------- the one description, written and parsed
# A folder's unigs.json and a single file's UniGS header hold the same object (format, version, meta); the
# single file adds the configs of its parts. Both writers call describe(), both readers parse_description().

def describe(meta: ModelMeta, **configs: Any) -> dict[str, Any]:
    """The JSON object that describes a model: format, version, meta, plus `configs` (single file only)."""
    return {"format": FORMAT, "version": FORMAT_VERSION, "meta": meta.to_dict(), **configs}


def write_unigs_json(folder: Path, meta: ModelMeta) -> Path:
    """Write `folder/unigs.json` (:func:`describe`); returns its path."""
    path = Path(folder) / UNIGS_JSON
    path.write_text(json.dumps(describe(meta), indent=2, default=str) + "\n")
    return path


def single_file_header(meta: ModelMeta, **configs: Any) -> dict[str, str]:
    """The string metadata of a single-file model: the format marker and the description as JSON."""
    return {"format": FORMAT, FORMAT: json.dumps(describe(meta, **configs), default=str)}


def parse_description(info: Any, source: str) -> tuple[ModelMeta, dict]:
    """`(meta, info)` of a description object read from `source`; a ValueError naming `source` when it is
    not an object, has another version, or lacks a usable meta (`ModelMeta.from_dict`, strict)."""
    if not isinstance(info, dict):
        raise ValueError(f"{source} must hold a JSON object, holds {type(info).__name__}")
    if info.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"{source} has UniGS format version {info['version']!r}; this unigs reads version "
                         f"{FORMAT_VERSION}")
    if "meta" not in info:
        raise ValueError(f"{source} has no 'meta' object (image_size, grid, tasks, ...); re-save the model")
    return ModelMeta.from_dict(info["meta"], source), info


def read_unigs_json(path: Path) -> tuple[ModelMeta, dict]:
    """`(meta, info)` of a model folder's `unigs.json`, checked (:func:`parse_description`)."""
    path = check_input_file(path, "model description")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is damaged (not valid JSON: {err}); re-save the model") from None
    if isinstance(info, dict) and info.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} has format {info.get('format')!r}, expected {FORMAT!r}")
    return parse_description(info, str(path))


def safetensors_header(path: Path) -> dict:
    """The string metadata of a `.safetensors` file; ValueError naming it when it cannot be opened."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # noqa: BLE001 — safetensors raises its own error types for damaged files
        raise ValueError(f"model file {path} cannot be read as safetensors (truncated or damaged?): "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def read_unigs_header(path: Path) -> tuple[ModelMeta, dict] | None:
    """`(meta, info)` of the UniGS description inside a single-file model (info holds the parts' configs),
    None for another (e.g. SD) safetensors file."""
    header = safetensors_header(path)
    if header.get("format") != FORMAT:
        return None
    try:
        info = json.loads(header[FORMAT])
    except (KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"model file {path} has a damaged UniGS header: {err}") from None
    meta, info = parse_description(info, f"model file {path}")
    for key in ("unet_config", "vae_config", "scheduler_config"):
        if not isinstance(info.get(key), dict):
            raise ValueError(f"model file {path}: its UniGS header lacks the {key} object")
    return meta, info


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
