"""Config files and `--set` overrides for the typed config dataclasses (STYLE.md §6).

One YAML/JSON file per experiment, plus `--set KEY=VALUE` overrides parsed as YAML; an unknown key raises
a ValueError naming it, and scalars get the type of their dataclass field (YAML reads `1e-3` as a string).
This is the YAML boundary: a syntax error in the file or in a `--set` value is a ValueError naming the file
(and line) or the `--set` item; float fields refuse NaN and ±inf.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from unigs.checks import check_number, check_seed
from unigs.io import check_image_size, check_input_file


def config_from_dict(values: dict[str, Any], cls: type, **init: Any) -> Any:
    """A config dataclass `cls` (`TrainConfig`, `VAETrainConfig`) from a dict; an unknown key raises
    ValueError naming it. `init`: init-only arguments of `cls` (TrainConfig's `check_paths`)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; known keys: {sorted(known)}")
    return cls(**{key: _coerce(cls, key, value) for key, value in values.items()}, **init)


def _coerce(cls: type, key: str, value: Any) -> Any:
    """YAML reads `1e-3` (no dot) as a string and `1` as an int: give float/int/bool fields their type, or
    raise a ValueError naming the key."""
    kind = {f.name: f.type for f in fields(cls)}[key]
    target = {"float": float, "int": int, "bool": bool}.get(kind if isinstance(kind, str) else kind.__name__)
    if target is float and isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{cls.__name__}.{key} must be a finite number, is {value!r}")
    if target is None or isinstance(value, target) and not (target is int and isinstance(value, bool)):
        return value
    if target is bool or isinstance(value, bool):
        raise ValueError(f"{cls.__name__}.{key} must be {kind}, is {value!r}")
    try:
        converted = target(value)
    except (TypeError, ValueError):
        raise ValueError(f"{cls.__name__}.{key} must be {kind}, is {value!r}") from None
    if target is int and converted != float(value):
        raise ValueError(f"{cls.__name__}.{key} must be an integer, is {value!r}")
    if target is float and not math.isfinite(converted):
        raise ValueError(f"{cls.__name__}.{key} must be a finite number, is {value!r}")
    return converted


def check_config_numbers(config: Any) -> None:
    """The checks every training config shares: `seed` in [0, 2**63 - 1] (numpy refuses negative seeds
    only deep inside the run), float fields finite, `image_size`² within the image pixel limit."""
    check_seed(f"{type(config).__name__}.seed", config.seed)
    for f in fields(config):
        if f.type in (float, "float"):
            check_number(f"{type(config).__name__}.{f.name}", getattr(config, f.name))
    size = int(config.image_size)
    check_image_size(size, size, f"{type(config).__name__}.image_size {size}")


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """The key → value dict of a YAML/JSON config file (None → empty)."""
    if path is None:
        return {}
    path = check_input_file(path, "config file")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ValueError(f"config file {path} is not UTF-8 text") from None
    except yaml.YAMLError as err:
        raise ValueError(f"config file {path} is not valid YAML: {_yaml_problem(err)}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of keys to values")
    return values


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`["steps=20", "unet={layers_per_block: 1}"]` → dict; values are parsed as YAML."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {item!r}: the value is not valid YAML: {_yaml_problem(err)}") from None
    return out


def _yaml_problem(err: Exception) -> str:
    """One line from a yaml error: its problem and (1-based) line and column."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem
