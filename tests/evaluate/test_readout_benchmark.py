"""benchmarks/readout.py's helpers: settings parsing, re-reading cached predictions, the choice rule."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from unigs.conditions import TASK_IDS
from unigs.data.scenes import STUFF
from unigs.data.tasks import sample_example
from unigs.evaluate.runner import MAX_ENTITIES, EvalConfig, load_items

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "readout.py"


@pytest.fixture(scope="module")
def readout():
    spec = importlib.util.spec_from_file_location("readout_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickle look the module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_parse_settings(readout):
    settings = readout.parse_settings("pipelines;default; delta=20,min_area=48 ;stages=tiny+holes;"
                                      "regions=False;work_size=None")
    assert settings[0] == ("pipelines", None)  # each pipeline's own read-out
    assert settings[1:] == [("default", {}), ("delta=20,min_area=48", {"delta": 20.0, "min_area": 48}),
                        ("stages=tiny+holes", {"stages": ("tiny", "holes")}),
                        ("regions=False", {"regions": False}),
                        ("work_size=None", {"work_size": None})]
    assert isinstance(settings[2][1]["min_area"], int)
    readout.parse_settings(readout.GRID)  # the default grid is valid
    with pytest.raises(ValueError, match="'deltta'"):
        readout.parse_settings("deltta=3")
    with pytest.raises(ValueError, match="keep_background"):
        readout.parse_settings("keep_background=True")  # fixed by the task, not swept
    with pytest.raises(ValueError, match="delta"):
        readout.parse_settings("delta=-1")


def _exact_predictions(readout, limit=3, size=32):
    """Predictions that are the exact colormap targets of `unigs eval`'s examples (a perfect model)."""
    held = load_items(EvalConfig(split="val", limit=limit), size)
    preds = {}
    for task in readout.TASKS:
        preds[task] = []
        for index, item in enumerate(held.items):
            ex = sample_example(task, item.image, item.masks, item.names,
                                np.random.default_rng([0, index, TASK_IDS[task]]), held.vocabulary,
                                max_entities=MAX_ENTITIES, negative_prob=0.0)
            coarse = ex.coarse_mask if task in readout.REGION_TASKS else None
            preds[task].append(readout.Prediction(ex.colormap_target, coarse, ex.entity_masks,
                                                  list(ex.entity_names)))
    return preds


def test_sweep_scores_exact_maps_perfectly_and_settings_matter(readout):
    preds = _exact_predictions(readout)
    settings = readout.parse_settings("default;delta=100000;delta=10")
    rows = readout.sweep(preds, settings, frozenset(STUFF), workers=2)  # the last two in forked workers
    assert [r["setting"] for r in rows] == ["default", "delta=100000", "delta=10"]
    default, huge, same = (r["metrics"] for r in rows)
    for task in default:  # δ = 10 is the default: the worker's row equals this process's
        assert same[task] == pytest.approx(default[task], nan_ok=True)
    assert default["referring"]["mIoU"] == pytest.approx(1.0)
    assert default["inpainting"]["mIoU"] == pytest.approx(1.0)
    assert default["entity"]["AP"] == pytest.approx(1.0) and default["entity"]["PQ"] == pytest.approx(1.0)
    # below a huge δ Eq. 7 never splits: all foreground colours are one entity
    assert huge["entity"]["PQ"] < 0.9 and huge["referring"]["mIoU"] <= 1.0
    for task, column in readout.COLUMNS.values():
        assert column in default[task]


def test_choose_needs_a_clear_win(readout):
    def row(name, ref, ent):
        return {"setting": name, "metrics": {"referring": {"mIoU": ref[0], "recall": ref[1]},
                                             "entity": {"AP": ent[0], "PQ": ent[1]}}}

    rows = [row("default", (0.5, 0.5), (0.3, 0.2)), row("a", (0.6, 0.56), (0.31, 0.2)),
            row("b", (0.7, 0.3), (0.3, 0.21))]
    best, gain, wins = readout.choose(rows, "referring", 0.03)
    assert best["setting"] == "a" and gain == pytest.approx(0.08) and wins
    best, gain, wins = readout.choose(rows, "entity", 0.03)
    assert best["setting"] == "a" and not wins  # +0.005: noise
    rows.append(row("c", (0.9, 0.46), (0.3, 0.2)))  # best mean, but recall falls by 0.04: not a clear win
    best, _, wins = readout.choose(rows, "referring", 0.03)
    assert best["setting"] == "c" and not wins


def test_predict_on_a_tiny_model_reproduces_eval(readout):
    """The cached colormaps re-read with the codec's settings give `unigs eval`'s own numbers."""
    from tiny_models import tiny_components

    preds, reference, stuff = readout.predict(tiny_components(0), "val", 2, 0)
    assert {t: len(p) for t, p in preds.items()} == {"referring": 2, "entity": 2, "inpainting": 2}
    assert preds["referring"][0].colormap.dtype == np.uint8 and preds["entity"][0].coarse is None
    for task in readout.REGION_TASKS:  # black outside m_c
        assert not preds[task][0].colormap[~preds[task][0].coarse].any()
    (row,) = readout.sweep(preds, readout.parse_settings("pipelines"), stuff)
    for task, metric in readout.COLUMNS.values():
        assert row["metrics"][task][metric] == pytest.approx(reference[task][metric], nan_ok=True), metric
