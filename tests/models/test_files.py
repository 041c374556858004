"""unigs.models.files: damaged model folders and files are one sentence naming the file, never a KeyError,
a misleading "needs config_dir" or — for NaN weights — a silently black result."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from tiny_models import tiny_components

from unigs.models.loading import load_unigs, save_unigs


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    components = tiny_components(seed=0)
    folder = save_unigs(components, root / "folder")
    single = save_unigs(components, root / "model.safetensors", single_file=True)
    with torch.no_grad():
        next(components.unet.parameters()).fill_(float("nan"))
    nan = save_unigs(components, root / "nan.safetensors", single_file=True)
    return folder, single, nan


@pytest.mark.parametrize("content, match", [
    (lambda info: {k: v for k, v in info.items() if k != "meta"}, "no 'meta'"),
    (lambda info: {**info, "meta": []}, "'meta' must be an object"),
    (lambda info: {**info, "meta": {**info["meta"], "image_size": "big"}}, "image_size"),
    (lambda info: [info], "JSON object"),
])
def test_unigs_json_without_usable_meta(saved, tmp_path, content, match):
    folder = shutil.copytree(saved[0], tmp_path / "m")
    info = json.loads((folder / "unigs.json").read_text())
    (folder / "unigs.json").write_text(json.dumps(content(info)))
    with pytest.raises(ValueError, match=match):
        load_unigs(folder)


def test_truncated_unigs_json_names_the_file(saved, tmp_path):
    folder = shutil.copytree(saved[0], tmp_path / "m")
    text = (folder / "unigs.json").read_text()
    (folder / "unigs.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="unigs.json is damaged"):
        load_unigs(folder)


@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_truncated_single_file_says_damaged_not_config_dir(saved, tmp_path, keep):
    data = saved[1].read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match="cut.safetensors.*(truncated|damaged)"):
        load_unigs(cut)


def test_nan_weights_are_refused_at_load(saved):
    with pytest.raises(ValueError, match="NaN/inf"):
        load_unigs(saved[2])
    assert load_unigs(saved[1]).meta  # the intact file still loads
