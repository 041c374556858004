"""`from_pretrained` / `save_pretrained` of the UniGS pipelines: one folder that every loader reads.

`save_pretrained` writes diffusers' own layout (`model_index.json` + `unet/ vae/ text_encoder/ tokenizer/
scheduler/`), with the pipeline's `meta` (grid, vocabulary, task ids, ...) inside `model_index.json`, and
adds two files:

* `unigs.json` — the format marker and meta that `unigs.models.loading.load_unigs` (and so every `unigs`
  command's `--model`) reads;
* `<Class>.py` (e.g. `UniGSEntityPipeline.py`) — a two-line module that imports the pipeline class from
  the installed `unigs` package. `model_index.json` names the class as `["<Class>", "<Class>"]`, diffusers'
  convention for a pipeline whose code is not in diffusers, so `DiffusionPipeline.from_pretrained(folder,
  trust_remote_code=True)` builds the right UniGS class. Without `trust_remote_code` diffusers refuses with
  its own sentence, "... contains custom code in UniGSEntityPipeline.py ... Pass `trust_remote_code=True`",
  which names the class; the module's docstring says how to load it.

`from_pretrained` reads LOCAL files only, through `load_unigs`: such a folder, a `save_unigs` folder or
single file, or an SD-1.5-inpainting diffusers folder / original single file (widened 9/4 → 13/8 with a
zero task embedding, `unigs.models.unet.widen_unet`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from unigs.models.colormap_vae import flagged_meta
from unigs.models.files import write_unigs_json

# diffusers' download/variant options that mean nothing for local files: accepted, ignored
_IGNORED = {"local_files_only", "use_safetensors", "low_cpu_mem_usage", "safety_checker",
            "feature_extractor", "requires_safety_checker", "cache_dir", "force_download", "proxies"}


def load_pipeline(cls: type, path: str | os.PathLike, config_dir: str | os.PathLike | None = None,
                  num_tasks: int | None = 4, torch_dtype: Any = None, **kwargs: Any) -> Any:
    """`cls` built from the model at `path` (module docstring); `torch_dtype` casts every component.

    Raises ValueError naming an unknown keyword, FileNotFoundError naming a missing file.
    """
    from unigs.models.loading import load_unigs

    unknown = sorted(set(kwargs) - _IGNORED)
    if unknown:
        raise ValueError(f"{cls.__name__}.from_pretrained got unknown keyword {unknown[0]!r} "
                         f"(it takes config_dir, num_tasks, torch_dtype)")
    pipe = cls.from_components(load_unigs(path, config_dir=config_dir, num_tasks=num_tasks))
    if torch_dtype is not None:
        pipe.to(torch_dtype=torch_dtype)
    return pipe


SHIM_SOURCE = '''"""This folder holds a UniGS pipeline ({cls}) saved by `{cls}.save_pretrained`.

Load it with the installed `unigs` package:

    from unigs.pipelines import {cls}
    pipe = {cls}.from_pretrained("<this folder>")

or through diffusers: `DiffusionPipeline.from_pretrained("<this folder>", trust_remote_code=True)`.
"""

from unigs.pipelines import {cls}  # noqa: F401
'''


def finish_saved_folder(pipe: Any, folder: str | os.PathLike) -> Path:
    """After diffusers' `save_pretrained`: add `unigs.json` and the class module, point
    `model_index.json` at it (module docstring). Returns the folder."""
    folder = Path(folder)
    cls = type(pipe).__name__
    meta = flagged_meta(pipe.meta, getattr(pipe, "colormap_vae", None))  # colormap_vae/ is read back
    write_unigs_json(folder, meta)  # the same description as save_unigs writes (unigs.models.files)
    (folder / f"{cls}.py").write_text(SHIM_SOURCE.format(cls=cls))
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["_class_name"] = [cls, cls]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True, default=str) + "\n")
    return folder
