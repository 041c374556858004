"""Atomic, resumable training checkpoints (STYLE.md §7).

A run directory holds numbered checkpoint folders::

    <run>/checkpoints/step-00001000/
        <inference files>        written by the caller (for UniGS: `save_unigs` of the EMA weights)
        training_state.pt        everything else a resumed run needs: raw weights, optimizer, EMA,
                                 LR scheduler, step, RNG states (kept apart from inference weights)

Atomicity: a checkpoint is built in a hidden sibling folder `.tmp-step-…` and moved into place with one
`os.replace`, so a checkpoint folder either exists complete or not at all. A process killed mid-write
leaves only a `.tmp-…` folder (ignored, cleaned by the next save) and the previous checkpoint untouched.
Single files use the same pattern (temporary file in the same directory + `os.replace`).

Resuming: :func:`load_latest_intact` takes the newest checkpoint whose `training_state.pt` loads (a disk
that lost or truncated the newest file still resumes from the one before, and says so); the damaged
folder is renamed `damaged-step-…` (kept for inspection, never listed again). A run folder that already
holds a run is not trained into without `resume` or `overwrite` (:func:`prepare_run_folder`): two runs
mixed in one folder would overwrite some checkpoints and keep others.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, safe_open, save_file

from unigs.checks import check_output_dir
from unigs.io import atomic_write as io_atomic_write

CHECKPOINT_PREFIX = "step-"
TMP_PREFIX = ".tmp-"
TRAINING_STATE = "training_state.pt"
CONFIG_METADATA_KEY = "unigs_config"


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint after `step` optimizer steps: `step-00001000` (sorts by step)."""
    if step < 0:
        raise ValueError(f"step must be >= 0, is {step}")
    return f"{CHECKPOINT_PREFIX}{step:08d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoint folders under `root`, oldest first (temporary folders are never listed)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)
             and p.name[len(CHECKPOINT_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint folder under `root`, or None."""
    found = list_checkpoints(root)
    return found[-1] if found else None


def _fsync_tree(folder: Path) -> None:
    """Flush every file under `folder` to disk before the folder is renamed into place."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def save_checkpoint(root: str | Path, step: int, write: Callable[[Path], None],
                    keep: int | None = None) -> Path:
    """Write one checkpoint folder atomically and keep only the newest `keep` (None = keep all).

    Args:
        root: the run's checkpoint directory (created if missing).
        step: optimizer steps done; names the folder.
        write: `write(tmp_folder)` fills the (empty, existing) temporary folder with the checkpoint files.
            If it raises, the temporary folder is removed and earlier checkpoints are untouched.
        keep: how many checkpoints to keep after this one is in place (>= 1).

    Returns:
        The path of the new checkpoint folder.
    """
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be >= 1 or None, is {keep}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{TMP_PREFIX}*"):  # left by a run killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    final = root / checkpoint_name(step)
    tmp = root / f"{TMP_PREFIX}{final.name}-{os.getpid()}"
    tmp.mkdir()
    try:
        write(tmp)
        _fsync_tree(tmp)
        if final.exists():  # re-saving the same step (e.g. final save after a periodic one)
            old = root / f"{TMP_PREFIX}old-{final.name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write one file atomically and durably: `unigs.io.atomic_write` with an fsync before the rename."""
    return io_atomic_write(path, write, fsync=True)


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], config: dict) -> Path:
    """Save `state_dict` as `.safetensors` with `config` (JSON-able) inside its metadata, atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    metadata = {CONFIG_METADATA_KEY: json.dumps(config, sort_keys=True)}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Inverse of :func:`save_weights`: `(state_dict, config)`. Missing file → FileNotFoundError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if CONFIG_METADATA_KEY not in metadata:
        raise ValueError(f"{path} has no {CONFIG_METADATA_KEY!r} metadata; it was not written by unigs")
    return load_file(str(path)), json.loads(metadata[CONFIG_METADATA_KEY])


def rng_states() -> dict:
    """The global RNG states (python, numpy, torch CPU), as plain lists/tensors that `weights_only` loads."""
    np_state = np.random.get_state()
    return {
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` returned."""
    inner, version, gauss = states["python"]
    random.setstate((version, tuple(inner), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])


def save_training_state(folder: str | Path, state: dict) -> Path:
    """Write `state` (tensors, dicts, lists, numbers, str) to `<folder>/training_state.pt`, atomically."""
    return atomic_write(Path(folder) / TRAINING_STATE, lambda tmp: torch.save(state, tmp))


def load_training_state(folder: str | Path) -> dict:
    """Read `<folder>/training_state.pt` (safe `weights_only` unpickling). Missing → FileNotFoundError;
    truncated, empty or not a training state → ValueError naming the file."""
    path = Path(folder) / TRAINING_STATE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a unigs checkpoint: {TRAINING_STATE} is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — zip/pickle/EOF errors of a damaged file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path} is damaged (truncated or empty?): {first}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a unigs training state (not a dict)")
    return state


DAMAGED_PREFIX = "damaged-"


def load_latest_intact(root: str | Path, log: Callable[[str], None] = print) -> tuple[Path, dict] | None:
    """`(folder, training state)` of the newest checkpoint under `root` whose state loads, or None when
    there is no checkpoint. Damaged newer ones are renamed `damaged-step-…` and reported through `log`.

    Raises:
        ValueError: checkpoints exist but none of them loads.
    """
    found = list_checkpoints(root)
    problems = []
    for folder in reversed(found):
        try:
            state = load_training_state(folder)
            if not isinstance(state.get("step"), int):
                raise ValueError(f"{folder / TRAINING_STATE} has no integer 'step'")
        except (ValueError, FileNotFoundError) as err:
            problems.append(str(err))
            aside = folder.with_name(f"{DAMAGED_PREFIX}{folder.name}")
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(folder, aside)
            log(f"checkpoint {folder.name} is damaged ({err}); moved it to {aside.name} and fall back to "
                "the one before")
            continue
        return folder, state
    if problems:
        raise ValueError(f"no intact checkpoint under {root}: " + "; ".join(problems))
    return None


RUN_MARKERS = ("config.json", "metrics.csv", "checkpoints")


def prepare_run_folder(folder: str | Path, resume: bool, overwrite: bool) -> Path:
    """Check (and with `overwrite`, clear) a training run folder before anything is written to it.

    A folder holding an earlier run (`config.json`, `metrics.csv` or `checkpoints/`) is refused unless
    `resume` (continue it) or `overwrite` (its run files are deleted first; other files stay).
    """
    folder = check_output_dir(folder, "--output")
    present = [name for name in RUN_MARKERS if (folder / name).exists()]
    if present and not resume:
        if not overwrite:
            raise ValueError(f"--output {str(folder)!r} already holds a run ({', '.join(present)}); pass "
                             "--resume to continue it or --overwrite to replace it (or choose a new folder)")
        for name in present:
            target = folder / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    return folder
