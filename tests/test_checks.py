"""unigs.checks (numbers, devices, output folders) and unigs.outputs (a run's files as one atomic set)."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import stat

import pytest

from unigs.checks import (
    MAX_SEED,
    arg_float,
    arg_seed,
    check_number,
    check_output_dir,
    check_seed,
    resolve_device,
)
from unigs.outputs import OutputSet


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "1", None, True])
def test_non_finite_and_non_numbers_are_refused_naming_the_input(value):
    with pytest.raises(ValueError, match="guidance"):
        check_number("guidance", value)


def test_number_ranges_integers_and_seeds():
    assert check_number("x", 2.0, integer=True) == 2
    with pytest.raises(ValueError, match="integer"):
        check_number("x", 2.5, integer=True)
    with pytest.raises(ValueError, match=">= 0"):
        check_number("x", -1, low=0)
    with pytest.raises(ValueError, match="> 0"):
        check_number("x", 0, low=0, low_open=True)
    assert check_seed("seed", MAX_SEED) == MAX_SEED
    for bad in (-1, MAX_SEED + 1, 10**30):
        with pytest.raises(ValueError, match="seed"):
            check_seed("seed", bad)


def test_argparse_types_report_the_flag():
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--guidance", type=arg_float(0))
    parser.add_argument("--seed", type=arg_seed)
    assert parser.parse_args(["--guidance", "7.5", "--seed", str(MAX_SEED)]).seed == MAX_SEED
    for argv in (["--guidance", "nan"], ["--guidance", "inf"], ["--seed", "-1"], ["--seed", "1e40"]):
        with pytest.raises(argparse.ArgumentError):
            parser.parse_args(argv)


def test_devices_are_checked_before_use():
    assert str(resolve_device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="'foo'"):
        resolve_device("foo")
    with pytest.raises(ValueError, match="meta"):
        resolve_device("meta")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_output_dir_that_is_a_file_under_a_file_or_unwritable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(ValueError, match="under"):
        check_output_dir(tmp_path / "file" / "sub")
    with pytest.raises(ValueError, match="is a file"):
        check_output_dir("/dev/null")
    assert check_output_dir(tmp_path / "new" / "deep").is_dir()
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="cannot be written"):
            check_output_dir(ro / "x")


def test_output_set_commits_together_with_0644_or_leaves_nothing(tmp_path):
    with OutputSet(tmp_path / "out") as outputs:
        (outputs.path("results.json")).write_text("[]")
        (outputs.path("sub/overlay.png")).write_bytes(b"png")
        assert not (tmp_path / "out" / "results.json").exists()  # nothing visible before the end
    for name in ("results.json", "sub/overlay.png"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644
    with pytest.raises(RuntimeError):
        with OutputSet(tmp_path / "out2") as outputs:
            outputs.path("results.json").write_text("[]")
            raise RuntimeError("crash after half the files")
    assert [p.name for p in (tmp_path / "out2").iterdir() if not p.name.startswith(".unigs.lock")] == []


def _write_pair(out: str, tag: int, rounds: int) -> None:
    from unigs.io import write_json

    for _ in range(rounds):
        with OutputSet(out) as outputs:
            write_json(outputs.path("results.json"), {"tag": tag})
            write_json(outputs.path("images.json"), {"tag": tag})


def test_two_processes_into_one_out_never_mix_their_files(tmp_path):
    out = str(tmp_path / "out")
    procs = [multiprocessing.get_context("fork").Process(target=_write_pair, args=(out, tag, 25))
             for tag in (1, 2)]
    for p in procs:
        p.start()
    seen = set()
    while any(p.is_alive() for p in procs):
        try:
            from unigs.outputs import folder_lock

            with folder_lock(tmp_path / "out"):
                pair = [json.loads((tmp_path / "out" / n).read_text())["tag"]
                        for n in ("results.json", "images.json")]
        except (FileNotFoundError, OSError):
            continue
        seen.add(tuple(pair))
        assert pair[0] == pair[1], "results.json of one run paired with images.json of the other"
    for p in procs:
        p.join()
        assert p.exitcode == 0
    final = [json.loads((tmp_path / "out" / n).read_text())["tag"] for n in ("results.json", "images.json")]
    assert final[0] == final[1]
