"""Atomic checkpoints: complete-or-absent folders, keep-last-N, config inside safetensors, RNG round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from unigs import checkpoint as ckpt


def _write_ok(value: float):
    def write(folder):
        ckpt.save_weights(folder / "w.safetensors", {"a": torch.full((2, 3), value)}, {"value": value})
        ckpt.save_training_state(folder, {"step": int(value), "t": torch.arange(3)})
    return write


def test_checkpoint_name_sorts_by_step_and_rejects_negative():
    assert ckpt.checkpoint_name(12) == "step-00000012"
    with pytest.raises(ValueError, match="-1"):
        ckpt.checkpoint_name(-1)


def test_save_and_load_round_trip(tmp_path):
    folder = ckpt.save_checkpoint(tmp_path, 5, _write_ok(5.0))
    assert folder.name == "step-00000005"
    weights, config = ckpt.load_weights(folder / "w.safetensors")
    assert config == {"value": 5.0}
    assert torch.equal(weights["a"], torch.full((2, 3), 5.0))
    state = ckpt.load_training_state(folder)
    assert state["step"] == 5 and torch.equal(state["t"], torch.arange(3))


def test_failure_mid_write_keeps_previous_checkpoint(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, _write_ok(1.0))

    def crash(folder):
        # half a checkpoint is on disk when the "kill" happens
        ckpt.save_weights(folder / "w.safetensors", {"a": torch.zeros(2, 3)}, {"value": 2.0})
        (folder / "training_state.pt").write_bytes(b"\x80garbage")
        raise KeyboardInterrupt("killed mid-write")

    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, 2, crash)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-00000001"]
    latest = ckpt.latest_checkpoint(tmp_path)
    assert ckpt.load_weights(latest / "w.safetensors")[1] == {"value": 1.0}
    assert ckpt.load_training_state(latest)["step"] == 1


def test_hard_kill_leftover_tmp_folder_is_ignored_and_cleaned(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, _write_ok(1.0))
    leftover = tmp_path / ".tmp-step-00000002-999"  # what SIGKILL during a write leaves behind
    leftover.mkdir()
    (leftover / "training_state.pt").write_bytes(b"partial")
    assert ckpt.latest_checkpoint(tmp_path).name == "step-00000001"
    ckpt.save_checkpoint(tmp_path, 2, _write_ok(2.0))
    assert not leftover.exists()
    assert ckpt.latest_checkpoint(tmp_path).name == "step-00000002"


def test_atomic_file_write_failure_keeps_old_file(tmp_path):
    path = tmp_path / "w.safetensors"
    ckpt.save_weights(path, {"a": torch.ones(2)}, {"v": 1})

    def crash(tmp):
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        ckpt.atomic_write(path, crash)
    assert ckpt.load_weights(path)[1] == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_keep_last_n_and_resave_same_step(tmp_path):
    for step in (1, 2, 3, 4):
        ckpt.save_checkpoint(tmp_path, step, _write_ok(float(step)), keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]
    ckpt.save_checkpoint(tmp_path, 4, _write_ok(40.0), keep=2)
    assert ckpt.load_weights(tmp_path / "step-00000004" / "w.safetensors")[1] == {"value": 40.0}
    with pytest.raises(ValueError, match="keep"):
        ckpt.save_checkpoint(tmp_path, 5, _write_ok(5.0), keep=0)


def test_missing_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="training_state.pt"):
        ckpt.load_training_state(tmp_path)
    with pytest.raises(FileNotFoundError, match="no weights"):
        ckpt.load_weights(tmp_path / "nope.safetensors")
    assert ckpt.latest_checkpoint(tmp_path / "absent") is None


def test_rng_states_round_trip_through_training_state(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    ckpt.save_training_state(tmp_path, {"rng": ckpt.rng_states()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.set_rng_states(ckpt.load_training_state(tmp_path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
