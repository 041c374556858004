"""The output-folder boundary: a run's files land in `--out` together, complete, or not at all.

Every command that writes results does it through :class:`OutputSet`:

1. at the start, before any compute, `--out` is checked and created (`unigs.checks.check_output_dir`);
2. the run writes every file into a hidden staging folder `.unigs-staging-<pid>-*` inside `--out` (made on
   the first `outputs.path("results.json")`; same file system, so moving is a rename);
3. on success the files are moved into place one by one with `os.replace`, holding an exclusive lock on
   `<out>/.unigs.lock`, and get mode 0644. Two processes writing into one `--out` therefore never mix
   their files: the folder holds one run's complete set (the later one's, where names collide), never
   results.json of one with images.json of the other. On failure (an error, Ctrl-C) the staging folder is
   removed and `--out` is left as it was. A staging folder left by a killed process is removed by the
   next run into the same `--out`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from unigs.checks import check_output_dir
from unigs.io import FILE_MODE

STAGING_PREFIX = ".unigs-staging-"
LOCK_NAME = ".unigs.lock"


@contextmanager
def folder_lock(folder: Path):
    """An exclusive advisory lock on `folder` (`fcntl.flock` on `<folder>/.unigs.lock`; no-op without
    fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(folder / LOCK_NAME, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_stale_staging(out: Path) -> None:
    """Staging folders of processes that no longer run (killed mid-run)."""
    for stale in out.glob(f"{STAGING_PREFIX}*"):
        pid = stale.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


class OutputSet:
    """The files of one run, staged and then moved into `out` as a set (module docstring).

    Use as a context manager::

        with OutputSet(args.out) as outputs:      # checks and creates --out now, before compute
            ...                                   # compute
            save_png(outputs.path("image.png"), image)
        # here every file is in args.out (or, after an exception, none of them)
    """

    def __init__(self, out: str | os.PathLike, flag: str = "--out"):
        self.out = check_output_dir(out, flag)
        _remove_stale_staging(self.out)
        self._stage: Path | None = None
        self.committed: list[Path] = []

    @property
    def stage(self) -> Path:
        """The staging folder (created on first use)."""
        if self._stage is None:
            self._stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=self.out))
        return self._stage

    def path(self, relative: str | os.PathLike) -> Path:
        """Where to write the output `relative` (to `out`) during the run; parent folders are created."""
        relative = Path(relative)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"output name {str(relative)!r} must stay inside {self.out}")
        path = self.stage / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self) -> list[Path]:
        """Move every staged file into `out` under the folder lock; returns the final paths."""
        if self._stage is None:
            return self.committed
        files = sorted(p for p in self._stage.rglob("*") if p.is_file())
        with folder_lock(self.out):
            for staged in files:
                final = self.out / staged.relative_to(self._stage)
                if final.is_dir():
                    raise ValueError(f"cannot write {final}: a folder of that name is in the way")
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(staged, FILE_MODE)
                os.replace(staged, final)
                self.committed.append(final)
        self.discard()
        return self.committed

    def discard(self) -> None:
        """Remove the staging folder and whatever is left in it."""
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()
