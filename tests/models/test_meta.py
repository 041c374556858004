"""unigs.models.meta: the model's facts round-trip exactly, unknown and missing keys are named with the file,
and the files written before ModelMeta existed (the shipped model) load unchanged."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tiny_models import tiny_components, tiny_meta

from unigs.models import files
from unigs.models.loading import default_model_path, save_unigs
from unigs.models.meta import MINILM, ModelMeta


def _full_meta() -> ModelMeta:
    """A meta with every optional field set away from its default."""
    return tiny_meta(colormap_decoder=True, source="unigs train", step=7, train_config={"seed": 2},
                     vocabulary=("ball", "sky"), domain="procedural scenes", text_encoder=MINILM)


def test_round_trip_through_json_is_exact():
    for meta in (tiny_meta(), tiny_meta(num_tasks=None, tasks=("entity",)), _full_meta()):
        data = json.loads(json.dumps(meta.to_dict()))
        assert ModelMeta.from_dict(data, "m.json") == meta
        assert set(data) == {f.name for f in dataclasses.fields(ModelMeta)}  # every field is written
    assert _full_meta().to_dict()["text_encoder"] == {"kind": "minilm"}  # the format-1 layout on disk


def test_meta_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny_meta().grid = 7


@pytest.mark.parametrize("change, match", [
    (lambda d: {**d, "gird": 11}, r"m\.json: unknown meta key 'gird'"),
    (lambda d: {k: v for k, v in d.items() if k != "latent_factor"},
     r"m\.json: meta lacks the required key 'latent_factor'"),
    (lambda d: {**d, "text_encoder": {"kind": "saved", "tokenizer": "minilm"}},
     r"m\.json: unknown meta key 'text_encoder\.tokenizer'"),
    (lambda d: {**d, "text_encoder": "minilm"}, r"m\.json: meta\.text_encoder must be an object"),
    (lambda d: {**d, "text_encoder": {"kind": "clip"}}, r"m\.json: meta\.text_encoder must be"),
    (lambda d: {**d, "grid": "11"}, r"m\.json: meta\.grid must be a positive integer, is '11'"),
    (lambda d: {**d, "multitask": 1}, r"m\.json: meta\.multitask must be true or false"),
    (lambda d: {**d, "tasks": ["inpainting", "panoptic"]}, r"m\.json: meta\.tasks must be"),
    (lambda d: {**d, "step": -1}, r"m\.json: meta\.step must be a non-negative integer"),
    (lambda d: [d], r"m\.json: 'meta' must be an object, is list"),
])
def test_strict_errors_name_the_key_and_the_file(change, match):
    with pytest.raises(ValueError, match=match):
        ModelMeta.from_dict(change(_full_meta().to_dict()), "m.json")


def test_bad_values_are_refused_when_built_in_python_too():
    with pytest.raises(ValueError, match=r"meta\.image_size must be a positive integer, is 0"):
        tiny_meta(image_size=0)


def test_the_shipped_model_file_loads_unchanged():
    """The asset was written before ModelMeta: it lacks colormap_decoder (the old writer left it out when
    False). It parses as it is, and writing the meta back changes none of its values."""
    raw = json.loads(files.safetensors_header(default_model_path())[files.FORMAT])["meta"]
    assert "colormap_decoder" not in raw
    meta, info = files.read_unigs_header(default_model_path())
    assert meta.colormap_decoder is False and meta.text_encoder == MINILM and meta.image_size == 128
    assert meta.vocabulary and meta.train_config["image_size"] == 128
    written = meta.to_dict()
    assert {k: written[k] for k in raw} == raw and set(written) - set(raw) == {"colormap_decoder"}


def test_folder_and_single_file_hold_one_description(tmp_path):
    """save_unigs' two layouts (and save_pretrained's unigs.json) write the same format, version and meta."""
    components = tiny_components(seed=0)
    components.meta = dataclasses.replace(_full_meta(), colormap_decoder=False, text_encoder="saved")
    folder = json.loads((save_unigs(components, tmp_path / "m") / files.UNIGS_JSON).read_text())
    header = files.safetensors_header(save_unigs(components, tmp_path / "m.safetensors", single_file=True))
    single = json.loads(header[files.FORMAT])
    assert header["format"] == folder["format"] == single["format"] == files.FORMAT
    assert folder == {k: single[k] for k in ("format", "version", "meta")}
    assert files.read_unigs_json(tmp_path / "m" / files.UNIGS_JSON)[0] == components.meta


def test_another_format_version_is_refused(tmp_path):
    components = tiny_components(seed=0)
    folder = save_unigs(components, tmp_path / "m")
    info = json.loads((folder / files.UNIGS_JSON).read_text())
    (folder / files.UNIGS_JSON).write_text(json.dumps({**info, "version": 2}))
    with pytest.raises(ValueError, match=r"unigs\.json has UniGS format version 2"):
        files.read_unigs_json(folder / files.UNIGS_JSON)
