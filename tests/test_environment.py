"""Importing unigs changes no environment variable (issue 14), and the shipped model still loads offline.

Flags such as HF_HUB_OFFLINE and GRADIO_ANALYTICS_ENABLED are set where they are needed — the `unigs ui`
command, `local_files_only=True` on every `from_pretrained` — never by an import, which would change them
for the whole process of anyone who imports a unigs module.

The check runs in a subprocess with a minimal environment (none of those flags set), so a module-level
`os.environ.setdefault(...)` cannot hide behind a value the test runner already has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

SCRIPT = r"""
import importlib, json, os, pkgutil, socket, warnings

warnings.simplefilter("ignore")
# the libraries unigs builds on, first: what they do to the environment on import is theirs, not unigs'
for name in ("numpy", "torch", "diffusers", "transformers", "gradio"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
before = dict(os.environ)

import unigs

skipped = []
for info in pkgutil.walk_packages(unigs.__path__, "unigs."):
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as err:  # an optional extra (gradio for unigs.ui) that is not installed
        if err.name is None or err.name.startswith("unigs"):
            raise
        skipped.append(info.name)
after_import = dict(os.environ)


def refuse(*args, **kwargs):
    raise AssertionError(f"network access attempted: {args}")


socket.socket.connect = socket.create_connection = socket.getaddrinfo = refuse
from unigs.models.loading import default_model_path, load_unigs

components = load_unigs(default_model_path())


def changes(now):
    return {k: [before.get(k), now.get(k)] for k in set(before) | set(now) if before.get(k) != now.get(k)}


print(json.dumps({"import": changes(after_import), "load": changes(dict(os.environ)), "skipped": skipped,
                  "image_size": components.meta.image_size}))
"""


def test_importing_unigs_sets_no_environment_variable_and_the_model_loads_offline():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    for key in ("HF_HOME", "NUMBA_CACHE_DIR"):  # where caches live, so the run reads the same ones
        if key in os.environ:
            env[key] = os.environ[key]
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=1800)  # a hang guard: ~20 s on a quiet machine
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["import"] == {}, f"importing unigs changed the environment: {result['import']}"
    assert result["load"] == {}, f"loading the shipped model changed the environment: {result['load']}"
    assert result["skipped"] in ([], ["unigs.ui"])
    assert result["image_size"] == 128
