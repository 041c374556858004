"""Φ's settings for colormaps a model predicts: one model run per example, then Φ swept over the cached maps.

Φ (`unigs.codec.dichotomy.decode`, settings in `unigs.codec.config.DichotomyConfig`) was tuned on VAE round
trips of exact colormaps (benchmarks/codec.py). A model's one-step read-out is a conditional mean: stuff is
crisp, things are faint, washed-out blobs, which the codec's settings can fragment into rings or drop. This
benchmark asks whether other settings read such maps better (issue 16):

1. `unigs eval`'s own loop (`unigs.evaluate.runner.evaluate`: the same scenes, coarse masks, names and seeds
   as `unigs eval --split S --limit N --seed K`) runs the referring, entity and inpainting pipelines once per
   example at their defaults; each example's predicted colormap *before* Φ (`out.colormaps`, already black
   outside m_c for referring and inpainting) is cached with its targets in `--cache-dir`, keyed by the model
   file, split, limit and seed.
2. Each setting of the grid re-reads every cached map as the pipelines do (`UniGSPipeline.masks_from_
   colormaps`: referring and inpainting inside m_c, background dropped; entity background kept, then made
   non-overlapping)
   and scores it with `unigs eval`'s metric code (`unigs.evaluate.runner.mask_metrics`).

Rows: `unigs eval` (its own numbers, recorded while predicting), `pipelines` (each pipeline's current
read-out, `UniGSPipeline.readout`: it must reproduce the first row; the line under the table says whether
it does), `default` (the codec's settings), then the grid. The last lines name, per task, the best setting
and whether it beats `pipelines` clearly (`choose`). Choose on `--split val`; report the choice on
`--split test` (`--settings` the chosen one, `pipelines` and `default`). The model run is the slow part
(once per model, split, limit and seed); a setting takes seconds.

    .venv/bin/python benchmarks/readout.py --split val --limit 48
    .venv/bin/python benchmarks/readout.py --split test --limit 32 --settings "pipelines;default;delta=20"
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import multiprocessing
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigs.codec.config import DichotomyConfig
from unigs.data.scenes import STUFF
from unigs.evaluate.runner import EvalConfig, entity_readout, evaluate, mask_metrics
from unigs.pipelines.base import UniGSPipeline
from unigs.pipelines.entity import UniGSEntityPipeline
from unigs.pipelines.inpainting import UniGSInpaintPipeline
from unigs.pipelines.referring import UniGSReferringPipeline

TASKS = ("referring", "entity", "inpainting")
PIPELINES = {"referring": UniGSReferringPipeline, "entity": UniGSEntityPipeline,
             "inpainting": UniGSInpaintPipeline}
REGION_TASKS = ("referring", "inpainting")  # read inside the coarse mask m_c, background dropped
# The default grid: the pipelines' read-out, the codec's settings, then one field changed at a time.
GRID = ("pipelines;default;delta=5;delta=20;delta=40;merge_factor=1;merge_factor=4;merge_factor=8;min_area=8;"
        "min_area=64;min_area=128;far_factor=2;far_factor=16;edge_threshold=12;edge_threshold=48;"
        "edge_threshold=96;background_level=16;background_level=64;stages=tiny+touching+darker+apart;"
        "regions=False")
COLUMNS = {  # column → (task, metric of `unigs eval`)
    "ref mIoU": ("referring", "mIoU"), "recall": ("referring", "recall"),
    "things": ("referring", "mIoU_things"), "stuff": ("referring", "mIoU_stuff"),
    "AP^e": ("entity", "AP"), "PQ": ("entity", "PQ"), "ent things": ("entity", "mIoU_things"),
    "rec things": ("entity", "recall_things"),
    "inp mIoU": ("inpainting", "mIoU"), "inp things": ("inpainting", "mIoU_things"),
}
EVAL_ROW = "unigs eval"  # the row of `unigs eval`'s own numbers (the pipelines' read-out when predicting)
PIPELINES_ROW = "pipelines"  # the setting that is each pipeline's current read-out (UniGSPipeline.readout)
# the choice rule's metrics
DECIDING = {"referring": ("mIoU", "recall"), "entity": ("AP", "PQ"), "inpainting": ("mIoU", "recall")}


@dataclass
class Prediction:
    """One example's model output before Φ and what it is scored against (`mask_metrics` reads the last
    two). colormap `(H, W, 3) uint8`; coarse `(H, W) bool` m_c (referring, inpainting) or None (entity)."""

    colormap: np.ndarray
    coarse: np.ndarray | None
    entity_masks: np.ndarray
    entity_names: list[str]


# ------------------------------------------------------------------------------------ the settings
def parse_settings(text: str) -> list[tuple[str, dict[str, Any]]]:
    """`"default;delta=20,min_area=48;stages=tiny+holes"` → [(label, Φ keyword arguments)], each checked
    against `DichotomyConfig` (an unknown field or a bad value raises naming it). Values take the type of
    the field's default; `stages` is `+`-joined; `default` is the codec's settings; `pipelines` (None) is
    each pipeline's own read-out (`UniGSPipeline.readout`)."""
    defaults = {f.name: f.default for f in dataclasses.fields(DichotomyConfig)}
    out = []
    for label in (s.strip() for s in text.split(";")):
        if not label:
            continue
        if label == PIPELINES_ROW:
            out.append((label, None))
            continue
        kwargs: dict[str, Any] = {}
        for pair in ([] if label == "default" else label.split(",")):
            name, _, value = pair.partition("=")
            name = name.strip()
            if name not in defaults or name == "keep_background":
                raise ValueError(f"setting {pair!r}: {name!r} is not a Φ field one can sweep "
                                 f"(known: {sorted(set(defaults) - {'keep_background'})})")
            kwargs[name] = _typed(name, value.strip(), defaults[name])
        DichotomyConfig.from_kwargs(**kwargs)  # validates the values
        out.append((label, kwargs))
    if not out:
        raise ValueError(f"no settings in {text!r}")
    return out


def _typed(name: str, value: str, default: Any) -> Any:
    if name == "stages":
        return tuple(s for s in value.split("+") if s)
    if isinstance(default, bool):
        if value not in ("True", "False"):
            raise ValueError(f"setting {name}={value!r}: expected True or False")
        return value == "True"
    if value == "None":
        return None
    return int(value) if isinstance(default, int) or name == "work_size" else float(value)


# ------------------------------------------------------------------------- predict once, cache
def predict(components: Any, split: str, limit: int, seed: int,
            tasks: tuple[str, ...] = TASKS) -> tuple[dict[str, list[Prediction]], dict, frozenset[str]]:
    """Run `unigs eval`'s loop for `tasks` (referring, entity, inpainting) at the pipelines' defaults; keep
    each example's colormap before Φ. Returns (task → predictions, `unigs eval`'s metrics, the stuff names).
    Each (seed, scene, task) has its own RNG in `unigs eval`, so tasks run apart give the same examples."""
    preds: dict[str, list[Prediction]] = {t: [] for t in tasks}

    def keep(task: str, item: Any, ex: Any, out: Any) -> None:
        coarse = ex.coarse_mask if task in REGION_TASKS else None
        preds[task].append(Prediction(np.asarray(out.colormaps[0], np.uint8), coarse, ex.entity_masks,
                                      list(ex.entity_names)))

    result = evaluate(components, EvalConfig(tasks=tasks, split=split, limit=limit, seed=seed),
                      progress=False, on_example=keep)
    return preds, result.metrics, frozenset(STUFF)  # procedural scenes: `load_items`'s stuff names


def model_key(path: str) -> str:
    """A short digest of the model file's bytes: a replaced model never reads a stale cache."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def cached_predictions(model_path: str, split: str, limit: int, seed: int, cache_dir: Path, threads: int,
                       tasks: tuple[str, ...] = TASKS) -> tuple[dict[str, list[Prediction]], dict,
                                                                frozenset[str], list[Path]]:
    """`predict` once per (model bytes, split, limit, seed, task), one pickle per task; later runs load it
    (so the tasks can be predicted by separate processes). `unigs eval`'s numbers come back NaN where the
    pipeline's `readout` changed since the prediction (the colormaps stay valid: Φ comes after them)."""
    stem = f"{Path(model_path).stem}-{model_key(model_path)}-{split}-{limit}-s{seed}"
    paths = {task: cache_dir / f"{stem}-{task}.pkl" for task in tasks}
    missing = tuple(task for task, path in paths.items() if not path.is_file())
    if missing:
        from unigs.models.loading import load_unigs

        torch.set_num_threads(threads)
        torch.set_grad_enabled(False)
        preds, metrics, stuff = predict(load_unigs(model_path), split, limit, seed, missing)
        cache_dir.mkdir(parents=True, exist_ok=True)
        for task in missing:
            with open(paths[task], "wb") as f:
                pickle.dump({"predictions": preds[task], "metrics": metrics[task], "stuff": stuff,
                             "readout": dict(PIPELINES[task].readout)}, f)
    preds, metrics, stuff = {}, {}, frozenset()
    for task, path in paths.items():
        with open(path, "rb") as f:
            cached = pickle.load(f)
        preds[task], metrics[task], stuff = cached["predictions"], cached["metrics"], cached["stuff"]
        if cached.get("readout", {}) != dict(PIPELINES[task].readout):  # `unigs eval` read it otherwise
            metrics[task] = {k: float("nan") for k in metrics[task]}
    return preds, metrics, stuff, list(paths.values())


# ------------------------------------------------------------------------------ re-read, score
def read_out(task: str, pred: Prediction, phi: dict[str, Any] | None) -> np.ndarray:
    """The masks the `task` pipeline would return for this colormap with Φ settings `phi` (None: the
    pipeline's own `readout`; entity: made non-overlapping as `unigs eval` scores them)."""
    region = None if pred.coarse is None else pred.coarse[None]
    phi = dict(PIPELINES[task].readout) if phi is None else phi
    masks = UniGSPipeline.masks_from_colormaps(pred.colormap[None], region,
                                               keep_background=PIPELINES[task].keep_background, **phi)[0]
    masks = masks[masks.any(axis=(1, 2))]
    return entity_readout(masks)[0] if task == "entity" else masks


def score_setting(preds: dict[str, list[Prediction]], phi: dict[str, Any] | None,
                  stuff: frozenset[str]) -> dict[str, dict[str, float]]:
    """task → `unigs eval`'s metrics of every cached prediction read with Φ settings `phi`."""
    return {task: mask_metrics(task, [read_out(task, p, phi) for p in task_preds], task_preds, stuff)
            for task, task_preds in preds.items()}


def sweep(preds: dict[str, list[Prediction]], settings: list[tuple[str, dict]], stuff: frozenset[str],
          on_row: Any = None, workers: int = 1) -> list[dict]:
    """One row per setting, in order: label, Φ keyword arguments, task → metrics, seconds. With `workers`
    > 1 the settings after the first are scored in that many forked processes (the first, in this one,
    loads Φ's compiled loops that the workers then share)."""
    rows = [_score_row(settings[0], preds, stuff)]
    if on_row is not None:
        on_row(rows[0])
    rest = settings[1:]
    if workers > 1 and len(rest) > 1:
        _SHARED.update(preds=preds, stuff=stuff)  # forked workers inherit it: nothing is pickled but rows
        with multiprocessing.get_context("fork").Pool(min(workers, len(rest))) as pool:
            for row in pool.imap(_score_shared, rest):
                rows.append(row)
                if on_row is not None:
                    on_row(row)
        return rows
    for setting in rest:
        rows.append(_score_row(setting, preds, stuff))
        if on_row is not None:
            on_row(rows[-1])
    return rows


_SHARED: dict[str, Any] = {}


def _score_shared(setting: tuple[str, dict]) -> dict:
    return _score_row(setting, _SHARED["preds"], _SHARED["stuff"])


def _score_row(setting: tuple[str, dict], preds: dict[str, list[Prediction]], stuff: frozenset[str]) -> dict:
    start = time.perf_counter()
    label, phi = setting
    return {"setting": label, "phi": phi, "metrics": score_setting(preds, phi, stuff),
            "s": time.perf_counter() - start}


def choose(rows: list[dict], task: str, noise: float) -> tuple[dict, float, bool]:
    """The row with the best mean of `DECIDING[task]` metrics; its gain over the `pipelines` row (else
    the first row: `unigs eval`'s numbers); whether it wins clearly (gain > noise and no deciding metric
    more than `noise` below)."""
    def mean(r):
        return float(np.mean([r["metrics"][task][m] for m in DECIDING[task]]))

    base = next((r for r in rows if r["setting"] == PIPELINES_ROW), rows[0])
    best = max(rows, key=mean)
    gain = mean(best) - mean(base)
    holds = all(best["metrics"][task][m] >= base["metrics"][task][m] - noise for m in DECIDING[task])
    return best, gain, bool(gain > noise and holds)


def format_row(row: dict, width: int) -> str:
    values = " ".join(f"{row['metrics'][t][m]:>{max(6, len(c))}.3f}" if t in row["metrics"] else
                      f"{'':>{max(6, len(c))}}" for c, (t, m) in COLUMNS.items())
    return f"{row['setting']:<{width}} {values} {row['s']:>5.0f}"


def header(width: int) -> str:
    return f"{'setting':<{width}} " + " ".join(f"{c:>{max(6, len(c))}}" for c in COLUMNS) + f" {'s':>5}"


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from model import machine_info  # benchmarks/model.py

    from unigs.models.loading import default_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="UniGS model file (default: the bundled one)")
    parser.add_argument("--split", default="val", choices=("val", "test"), help="choose on val, report test")
    parser.add_argument("--limit", type=int, default=48, help="scenes of the split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default=GRID, help="';'-separated Φ settings, each k=v,k=v or default")
    parser.add_argument("--cache-dir", default="runs/readout", help="where the model's predictions are kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the model run")
    parser.add_argument("--workers", type=int, default=1, help="processes that score settings")
    parser.add_argument("--noise", type=float, default=0.03, help="a gain below this is not a win")
    parser.add_argument("--tasks", default=",".join(TASKS), help="referring,entity or one of them")
    parser.add_argument("--predict-only", action="store_true", help="fill the cache, sweep nothing")
    args = parser.parse_args()
    settings = parse_settings(args.settings)
    tasks = tuple(t for t in args.tasks.split(",") if t)
    if not tasks or set(tasks) - set(TASKS):
        raise SystemExit(f"--tasks must name some of {', '.join(TASKS)}, got {args.tasks!r}")
    model_path = str(args.model or default_model_path())
    start = time.perf_counter()
    preds, reference, stuff, cache = cached_predictions(model_path, args.split, args.limit, args.seed,
                                                        Path(args.cache_dir), args.threads, tasks)
    torch.set_num_threads(args.threads)
    print(machine_info())
    print(f"model {model_path} | {args.split} split, {args.limit} scenes, seed {args.seed} | predictions "
          f"{', '.join(map(str, cache))} ({time.perf_counter() - start:.0f} s) | examples "
          + ", ".join(f"{t} {len(p)}" for t, p in preds.items())
          + " | each pipeline's default steps and guidance")
    if args.predict_only:
        return
    width = max(len(EVAL_ROW), *(len(label) for label, _ in settings))
    print(header(width))
    # the pipelines' own read-out, as `unigs eval` scored it while predicting (free: no Φ runs again)
    rows = [{"setting": EVAL_ROW, "phi": None, "metrics": reference, "s": 0.0}]
    print(format_row(rows[0], width), flush=True)
    rows += sweep(preds, settings, stuff, on_row=lambda r: print(format_row(r, width), flush=True),
                  workers=args.workers)
    base = next((r for r in rows if r["setting"] == PIPELINES_ROW), None)
    if base is not None:  # the cache holds what Φ saw in the pipelines (unless `readout` changed since)
        same = all(np.isclose(base["metrics"][t][m], reference[t][m], rtol=0, atol=1e-9, equal_nan=True)
                   for _, (t, m) in COLUMNS.items() if t in tasks)
        print(f"{PIPELINES_ROW} row {'reproduces' if same else 'DIFFERS FROM'} `unigs eval`'s numbers on "
              "these examples")
    for task in tasks:
        best, gain, wins = choose(rows, task, args.noise)
        print(f"{task:<10} best mean({', '.join(DECIDING[task])}): {best['setting']} "
              f"({gain:+.3f} over {PIPELINES_ROW if base is not None else EVAL_ROW}; "
              f"{'a clear win' if wins else 'not a clear win'} at noise "
              f"{args.noise})")


if __name__ == "__main__":
    main()
