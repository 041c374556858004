"""The boundary for numbers, devices and output folders: every command and pipeline checks them here.

Each check returns the clean value or raises a `ValueError` whose one sentence names the input (STYLE.md
§10); the CLI prints it as one line and exits 2. The `arg_*` helpers wrap a check as an argparse `type=`,
so a new command that uses them is safe by construction (argparse reports the flag and exits 2).

- Numbers: NaN and ±inf are refused everywhere a number enters (`--guidance nan` silently meant "no
  guidance"; `inf` gave an all-black colormap). Seeds must lie in [0, 2**63 - 1], the range numpy's
  `default_rng`, `torch.Generator.manual_seed` and Python's `random` all accept.
- Devices: `resolve_device` parses the name and checks the backend exists on this machine *before* any
  weights are loaded ("cuda" without CUDA is a sentence, not an assertion deep in torch).
- Output folders: `check_output_dir` runs before any compute, so that a bad `--out` (a file, a path under a
  file, /dev/null, a read-only or pseudo file system) costs nothing; the run's results are never lost at
  the end.
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

MAX_SEED = 2**63 - 1


# ---------------------------------------------------------------------------------------------- numbers
def check_number(name: str, value: object, *, low: float | None = None, high: float | None = None,
                 integer: bool = False, low_open: bool = False) -> float | int:
    """`value` as a finite float (or int when `integer`), within [low, high] (`low_open`: (low, high]).

    Raises:
        ValueError: not a number (bool and str count as not), not finite, not integral, or out of range;
            the message names `name` and the value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, is {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, is {value!r}")
    if integer:
        if isinstance(value, numbers.Integral):
            value = int(value)
        elif float(value).is_integer():
            value = int(float(value))
        else:
            raise ValueError(f"{name} must be an integer, is {value!r}")
    else:
        value = float(value)
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, is {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, is {value!r}")
    return value


def check_seed(name: str, value: object) -> int:
    """A seed in [0, 2**63 - 1] (see the module docstring)."""
    return int(check_number(name, value, low=0, high=MAX_SEED, integer=True))


def _parse(text: str) -> float | int:
    """A CLI string as an int when it reads as one (exact for big seeds), else a float (NaN/inf included,
    so that the check can name them)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, is {text!r}") from None


def _arg_type(check: Callable[[str, float | int], float | int], label: str) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            return check("value", _parse(text))
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).replace("value ", "", 1)) from None

    parse.__name__ = label  # argparse names the type in its messages
    return parse


def arg_float(low: float | None = None, high: float | None = None, low_open: bool = False):
    """argparse `type=` for a finite float in range."""
    return _arg_type(lambda n, v: check_number(n, v, low=low, high=high, low_open=low_open), "number")


def arg_int(low: int | None = None, high: int | None = None):
    """argparse `type=` for an integer in range (`2.0` is accepted as 2; `2.5`, NaN and inf are not)."""
    return _arg_type(lambda n, v: check_number(n, v, low=low, high=high, integer=True), "integer")


def arg_seed(text: str) -> int:
    """argparse `type=` for a seed in [0, 2**63 - 1]."""
    return _arg_type(check_seed, "seed")(text)


# ---------------------------------------------------------------------------------------------- devices
def resolve_device(name: str | None):
    """A `torch.device` for `name` (None = "cuda" when available, else "cpu"), checked to exist here.

    Raises:
        ValueError: an unknown device string, or a backend / device index this machine does not have.
    """
    import torch  # deferred: the CLI imports this module for its parsers; `unigs --help` loads no torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(name))
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"--device {name!r} is not a device name (try cpu, cuda or cuda:0)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA "
                             "device(s)")
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"--device {name!r}: MPS is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise ValueError(f"--device {name!r}: unigs runs on cpu, cuda or mps, not {device.type!r}")
    return device


# -------------------------------------------------------------------------------------- output folders
def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Make sure `path` is (or can become) a folder we can write into; create it. Call before compute.

    Raises:
        ValueError: `path` or one of its parents is a file (or a device such as /dev/null), the folder
            cannot be created, or a file cannot be written inside it; the message names `flag` and path.
    """
    path = Path(path)
    for part in [path, *path.parents]:
        if part.exists() and not part.is_dir():
            where = "is" if part == path else f"is under {str(part)!r}, which is"
            raise ValueError(f"{flag} {str(path)!r} {where} a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".unigs-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise ValueError(f"{flag} {str(path)!r} cannot be written: {reason}") from None
    return path
