"""`unigs.evaluate.runner`: held-out data, an oracle with known answers, and the tiny model end to end."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from tiny_models import tiny_meta

from unigs.evaluate import runner
from unigs.evaluate.runner import NA_WEIGHTS, EvalConfig, evaluate, format_table, load_items, to_json

# --- held-out data -------------------------------------------------------------------------------------


def test_scene_items_are_held_out_and_train_is_refused():
    held = load_items(EvalConfig(limit=2, split="val"), size=32)
    items, vocab, label, held_out = held.items, held.vocabulary, held.label, held.held_out
    assert len(items) == 2 and label == "scenes:val" and held_out
    assert all(it.image_id >= 10_000_000 for it in items)  # val seeds, disjoint from train [0, 1e7)
    assert items[0].image.shape == (32, 32, 3) and items[0].masks.shape[1:] == (32, 32)
    assert "ball" in vocab and "sky" in vocab
    with pytest.raises(ValueError, match="--allow-train-split"):
        load_items(EvalConfig(limit=1, split="train"), size=32)
    held = load_items(EvalConfig(limit=1, split="train", allow_train_split=True), 32)
    items, label, held_out = held.items, held.label, held.held_out
    assert not held_out and label == "scenes:train" and items[0].image_id == 0


def test_coco_items(coco_mini):
    ann = coco_mini / "annotations"
    cfg = EvalConfig(data=str(ann / "instances_val2017.json"), images_dir=str(coco_mini / "val2017"), limit=2)
    held = load_items(cfg, size=64)
    items, vocab, label, held_out = held.items, held.vocabulary, held.label, held.held_out
    assert len(items) == 2 and held_out and label == "coco:instances_val2017.json"
    assert items[0].image.shape == (64, 64, 3) and len(items[0].names) == len(items[0].masks) >= 1
    assert "person" in vocab
    with pytest.raises(ValueError, match="training data"):
        load_items(EvalConfig(data=str(ann / "instances_train2017.json"),
                              images_dir=str(coco_mini / "train2017"), limit=1), size=64)
    with pytest.raises(ValueError, match="--images"):
        load_items(EvalConfig(data=str(ann / "instances_val2017.json"), limit=1), size=64)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_items(EvalConfig(data="nope.json", images_dir=".", limit=1), size=64)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="'paint'"):
        EvalConfig(tasks=("paint",))
    with pytest.raises(ValueError, match="split"):
        EvalConfig(split="dev")
    with pytest.raises(ValueError, match="limit"):
        EvalConfig(limit=0)
    with pytest.raises(ValueError, match="steps"):
        EvalConfig(steps=0)


# --- an oracle pipeline: the plumbing must give perfect scores -----------------------------------------


class _Oracle:
    """Answers every task with the ground truth of the example the runner just sampled."""

    def __init__(self, task, last):
        self.task, self.last = task, last

    def to(self, device):
        return self

    def set_progress_bar_config(self, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        ex = self.last["example"]
        image = ex.image_target
        return SimpleNamespace(images=[image], masks=[ex.entity_masks], colormaps=[ex.colormap_target])


def test_oracle_scores_perfectly(monkeypatch):
    import unigs.data.tasks as tasks

    last = {}
    real_sample = tasks.sample_example

    def recording_sample(*args, **kwargs):
        assert kwargs["max_entities"] == 3 and kwargs["negative_prob"] == 0.0
        last["example"] = real_sample(*args, **kwargs)
        return last["example"]

    monkeypatch.setattr(runner, "sample_example", recording_sample)  # the name runner calls
    monkeypatch.setattr(runner, "pipeline_for_task", lambda task, comps: _Oracle(task, last))
    comps = SimpleNamespace(meta=tiny_meta())
    result = evaluate(comps, EvalConfig(limit=3, steps=1), progress=False)
    m = result.metrics
    for task in ("inpainting", "synthesis", "referring", "entity"):
        assert m[task]["mIoU"] == pytest.approx(1.0) and m[task]["recall"] == pytest.approx(1.0), task
        assert result.counts[task] == 3
    assert m["inpainting"]["hole_MAE"] == 0.0 and m["inpainting"]["hole_PSNR"] == pytest.approx(100.0)
    for key in ("AP", "AP50", "AP75", "PQ", "SQ", "RQ"):
        assert m["entity"][key] == pytest.approx(1.0), key
    assert m["synthesis"]["FID"] == NA_WEIGHTS and m["inpainting"]["CLIP_score"] == NA_WEIGHTS
    assert {p["image_id"] for p in result.predictions} == {10_000_000, 10_000_001, 10_000_002}


def test_things_and_stuff_are_scored_apart(monkeypatch):
    """An oracle that finds only the stuff entities: stuff scores 1, things 0, overall in between."""
    import unigs.data.tasks as tasks
    from unigs.data.scenes import STUFF

    last = {}
    real_sample = tasks.sample_example

    def recording_sample(*args, **kwargs):
        last["example"] = real_sample(*args, **kwargs)
        return last["example"]

    class StuffOnly(_Oracle):
        def __call__(self, *args, **kwargs):
            ex = self.last["example"]
            keep = [n in STUFF for n in ex.entity_names]
            return SimpleNamespace(images=[ex.image_target], masks=[ex.entity_masks[keep]],
                                   colormaps=[ex.colormap_target])

    monkeypatch.setattr(runner, "sample_example", recording_sample)  # the name runner calls
    monkeypatch.setattr(runner, "pipeline_for_task", lambda task, comps: StuffOnly(task, last))
    comps = SimpleNamespace(meta=tiny_meta())
    result = evaluate(comps, EvalConfig(limit=6, steps=1, tasks=("referring", "entity", "synthesis")),
                      progress=False)
    for task in ("entity", "synthesis"):
        row = result.metrics[task]
        assert row["mIoU_stuff"] == pytest.approx(1.0) and row["recall_stuff"] == pytest.approx(1.0), task
        assert row["mIoU_things"] == pytest.approx(0.0) and row["recall_things"] == 0.0, task
        assert 0.0 < row["mIoU"] < 1.0
    row = result.metrics["referring"]
    assert np.isnan(row["mIoU_stuff"]) or row["mIoU_stuff"] == pytest.approx(1.0)


# --- the tiny model end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_result(mean_colour_net, tiny_clip):
    from tiny_models import tiny_components

    config = EvalConfig(limit=2, steps=2, seed=0, fid_weights=str(mean_colour_net), clip_model=str(tiny_clip))
    return config, evaluate(tiny_components(0), config, progress=False)


def test_tiny_model_all_tasks(tiny_result):
    config, result = tiny_result
    assert result.counts == {t: 2 for t in config.tasks} and result.held_out
    for task, row in result.metrics.items():
        assert 0.0 <= row["mIoU"] <= 1.0 and 0.0 <= row["recall"] <= 1.0, task
    assert 0.0 <= result.metrics["inpainting"]["hole_MAE"] <= 1.0
    for task in ("inpainting", "synthesis"):
        assert np.isfinite(result.metrics[task]["FID"]) and result.metrics[task]["FID"] >= 0
        assert 0.0 <= result.metrics[task]["CLIP_score"] <= 100.0
    for key in ("AP", "AP50", "AP75", "PQ", "SQ", "RQ"):
        value = result.metrics["entity"][key]
        assert np.isnan(value) or 0.0 <= value <= 1.0
    for p in result.predictions:
        assert set(p) >= {"image_id", "segmentation", "score", "category_id"} and 0 < p["score"] <= 1
    table = format_table(result)
    assert "entity       AP" in table and "synthesis    FID" in table
    payload = json.loads(json.dumps(to_json(result, config, "tiny")))  # strict JSON: NaN became null
    assert payload["held_out"] and payload["examples"]["entity"] == 2


def test_cli_writes_results_and_is_deterministic(tiny_result, tmp_path, capsys):
    from tiny_models import tiny_components

    from unigs.cli import main
    from unigs.models.loading import save_unigs

    _, expected = tiny_result
    model = save_unigs(tiny_components(0), tmp_path / "model")
    out = tmp_path / "eval"
    code = main(["eval", "--model", str(model), "--limit", "2", "--steps", "2", "--tasks", "referring,entity",
                 "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "referring    mIoU" in printed and "scenes:val" in printed
    results = json.loads((out / "results.json").read_text())
    assert set(results["metrics"]) == {"referring", "entity"}
    for task in ("referring", "entity"):  # same seed, same weights (saved and reloaded) -> same numbers
        for key, value in results["metrics"][task].items():
            want = expected.metrics[task][key]
            assert (value is None and np.isnan(want)) or value == pytest.approx(want), (task, key)
    preds = json.loads((out / "entity_predictions.json").read_text())
    assert len(preds) == len(expected.predictions)


def test_cli_errors(tmp_path, capsys):
    from unigs.cli import main

    assert main(["eval", "--model", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path), "--tasks", "paint", "--out", str(tmp_path)]) == 2
    assert "'paint'" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path), "--split", "train", "--out", str(tmp_path)]) == 2


def test_na_message_names_the_flags():
    assert "--fid-weights" in runner.NA_WEIGHTS and "--clip-model" in runner.NA_WEIGHTS
