"""Config files and `--set` overrides for the typed config dataclasses (STYLE.md §6).

One YAML/JSON file per experiment, plus `--set KEY=VALUE` overrides parsed as YAML; an unknown key raises
a ValueError naming it, and scalars get the type of their dataclass field (YAML reads `1e-3` as a string).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any


def config_from_dict(values: dict[str, Any], cls: type | None = None, **init: Any) -> Any:
    """A config dataclass (default: `unigs.train.TrainConfig`) from a dict; an unknown key raises
    ValueError naming it. `init`: init-only arguments of `cls` (TrainConfig's `check_paths`)."""
    if cls is None:
        from unigs.train import TrainConfig

        cls = TrainConfig
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
    return converted


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """The key → value dict of a YAML/JSON config file (None → empty)."""
    if path is None:
        return {}
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of keys to values")
    return values


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`["steps=20", "unet={layers_per_block: 1}"]` → dict; values are parsed as YAML."""
    import yaml

    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
