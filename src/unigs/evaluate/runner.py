"""Run a UniGS model over held-out examples, task by task, and collect the DESIGN.md metrics (paper §4).

Examples are built exactly as in training: each held-out image goes through
``unigs.data.tasks.sample_example`` with ``max_entities=3`` (the paper's inference setting, §4.1) and a
fixed per-(seed, image, task) RNG, so every run with the same seed sees the same coarse masks, entities
and prompts. Referring negatives are switched off (``negative_prob=0``): Table 5 scores present entities.

Per task:

=============  ==========================================================================================
inpainting     hole MAE / PSNR of Î vs I_0 inside m_c; mIoU / recall of the output masks vs the target
               entities; FID (Î vs the I_0 of the same examples) and CLIP score (Î vs the entity names)
synthesis      mask alignment: mIoU / recall of the model's *own* entity segmentation of Î against the
               input colormap's entities (DESIGN.md, tiny-model rule); FID and CLIP score as above
referring      mIoU / recall of the output masks vs the target entities (Table 5)
entity         mIoU / recall, AP^e / AP50 / AP75 (non-overlapping, area-fraction scores) and class-agnostic
               PQ / SQ / RQ vs all entities (Table 6, LDMSeg)
=============  ==========================================================================================

mIoU and recall are pooled over the data set: the mean over *all* ground-truth entities
(:func:`unigs.evaluate.metrics.pool_match_scores`), not the mean of per-image means. They are also
reported for things and for stuff apart (``mIoU_things`` … ``recall_stuff``): stuff is
``scenes.STUFF`` for procedural scenes and the categories marked ``isthing: 0`` (or type "stuff") in a
COCO JSON; everything else is a thing. Hole MAE / PSNR are
means over images. FID and CLIP score need local weights; without them the value is a string that says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unigs.checks import check_number, check_seed
from unigs.conditions import TASK_IDS, TASKS, check_task, join_names
from unigs.data.coco import CocoEntities
from unigs.data.coco_masks import results_json
from unigs.data.scenes import CATEGORIES, STUFF, SceneDataset
from unigs.data.source import square_resize
from unigs.data.tasks import sample_example
from unigs.evaluate import generation, segmentation
from unigs.evaluate.metrics import best_match_scores, pool_match_scores
from unigs.pipelines import pipeline_for_task

NA_WEIGHTS = "n/a (pass --fid-weights / --clip-model with local weights)"
MAX_ENTITIES = 3  # entities per example at inference (§4.1)


@dataclass
class EvalConfig:
    """What to evaluate. `data` is "scenes" or a COCO JSON path (`images_dir` then holds its images)."""

    tasks: tuple[str, ...] = TASKS
    data: str = "scenes"
    images_dir: str | None = None
    split: str = "val"
    limit: int = 100
    steps: int | None = None  # None = each pipeline's NUM_INFERENCE_STEPS (benchmarks/sampling.py)
    seed: int = 0
    guidance_scale: float | None = None  # None = each pipeline's default
    allow_train_split: bool = False
    fid_weights: str | None = None
    clip_model: str | None = None

    def __post_init__(self):
        self.tasks = tuple(check_task(t) for t in self.tasks)
        if not self.tasks:
            raise ValueError("tasks is empty: name at least one of " + ", ".join(TASKS))
        if self.split not in ("train", "val", "test"):
            raise ValueError(f"split must be one of ['train', 'val', 'test'], is {self.split!r}")
        if not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"limit must be a positive integer, is {self.limit!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ValueError(f"steps must be a positive integer, is {self.steps!r}")
        check_seed("seed", self.seed)
        if self.guidance_scale is not None:
            check_number("guidance_scale", self.guidance_scale, low=0)


@dataclass
class EvalResult:
    """metrics: task -> metric -> number (NaN where undefined) or an explanatory string.
    predictions: COCO result entries (RLE) of the entity task, non-overlapping, area-fraction scores."""

    metrics: dict[str, dict[str, Any]]
    counts: dict[str, int]
    split_label: str
    held_out: bool
    predictions: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class HeldOutItem:
    image_id: Any
    image: np.ndarray  # (S, S, 3) uint8
    masks: np.ndarray  # (N, S, S) bool
    names: list[str]


@dataclass
class HeldOutSet:
    """The held-out images, the name vocabulary, the names that are stuff, a label, whether held out."""

    items: list[HeldOutItem]
    vocabulary: list[str]
    stuff: frozenset[str]
    label: str
    held_out: bool


def load_items(config: EvalConfig, size: int) -> HeldOutSet:
    """The held-out images at `size` px with their vocabulary, stuff names, split label and status.

    Scenes: `SceneDataset(split)` (its seeds are disjoint from the train split). COCO: the JSON as given,
    centre-cropped and resized like training (`unigs.data.source.square_resize`); a JSON whose file name
    contains "train" is treated as training data. Training data is refused unless `allow_train_split`.
    """
    if config.data == "scenes":
        held_out = config.split != "train"
        label = f"scenes:{config.split}"
        _refuse_train(held_out, label, config.allow_train_split)
        scenes = SceneDataset(split=config.split, length=config.limit, size=size)
        items = [HeldOutItem(scenes.seed_of(i), s.image, s.masks, list(s.names))
                 for i, s in enumerate(scenes)]
        return HeldOutSet(items, list(CATEGORIES) + list(STUFF), frozenset(STUFF), label, held_out)

    path = Path(config.data)
    if not path.is_file():
        raise FileNotFoundError(f"--data must be 'scenes' or a COCO JSON file; {str(path)!r} does not exist")
    if config.images_dir is None:
        raise ValueError(f"--images is needed with a COCO JSON ({str(path)!r}): the folder of its images")
    held_out = "train" not in path.name.lower()
    label = f"coco:{path.name}"
    _refuse_train(held_out, label, config.allow_train_split)
    dataset = CocoEntities(path, config.images_dir)
    items = []
    for sample in dataset:
        if len(items) == config.limit:
            break
        image, masks, names = square_resize(sample.image, sample.masks, list(sample.names), size)
        if len(masks):
            items.append(HeldOutItem(sample.image_id, image, masks, names))
    stuff = frozenset(dataset.stuff_names)
    return HeldOutSet(items, sorted(set(dataset.categories.values())), stuff, label, held_out)


def _refuse_train(held_out: bool, label: str, allow: bool) -> None:
    if not held_out and not allow:
        raise ValueError(f"{label} is training data; evaluate on held-out data (--split val|test, a val "
                         "JSON) or pass --allow-train-split to do it anyway (the results are then labelled)")


def _seed(*parts: int) -> int:
    """A 31-bit seed derived from integers (independent streams per (seed, image, task))."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] >> 1)


def evaluate(components: Any, config: EvalConfig, progress: bool = True, device: str = "cpu",
             on_example: Callable[[str, HeldOutItem, Any, Any], None] | None = None) -> EvalResult:
    """Run every task of `config` over the held-out items and compute its metrics (module docstring).

    `on_example(task, item, example, output)`, when given, sees every example and its pipeline output
    (the demo's result sheet is built this way).
    """
    size, grid = components.meta.image_size, components.meta.grid
    held = load_items(config, size)
    items, vocabulary = held.items, held.vocabulary
    if not items:
        raise ValueError(f"no usable images in {config.data!r} (every image lost its entities at {size} px)")
    fid_net = generation.load_feature_network(config.fid_weights) if config.fid_weights else None
    clip = generation.load_clip(config.clip_model) if config.clip_model else None

    pipes: dict[str, Any] = {}

    def pipe(task: str):
        if task not in pipes:
            pipes[task] = pipeline_for_task(task, components).to(device)
            pipes[task].set_progress_bar_config(disable=True)
        return pipes[task]

    def kwargs(index: int, task: str) -> dict:
        kw = {"output_type": "np",
              "generator": torch.Generator().manual_seed(_seed(config.seed, index, TASK_IDS[task], 1))}
        if config.guidance_scale is not None:
            kw["guidance_scale"] = config.guidance_scale
        if config.steps is not None:
            kw["num_inference_steps"] = config.steps
        return kw

    metrics: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    skipped: Counter = Counter()
    predictions: list[dict] = []
    for task in config.tasks:
        scores, kinds, holes, generated, real, texts = [], [], [], [], [], []
        outputs, examples = [], []  # the masks of inpainting, referring and entity, and their examples
        done = 0
        for index, item in enumerate(tqdm(items, desc=f"eval {task}", disable=not progress)):
            rng = np.random.default_rng([config.seed, index, TASK_IDS[task]])
            try:
                ex = sample_example(task, item.image, item.masks, item.names, rng, vocabulary,
                                    max_entities=MAX_ENTITIES, negative_prob=0.0, grid=grid)
            except ValueError:
                skipped[f"{task}: no entity to sample"] += 1
                continue
            done += 1
            if task in ("inpainting", "referring"):
                out = pipe(task)(ex.names, item.image, ex.coarse_mask, prompt=ex.prompt,
                                 **kwargs(index, task))
                outputs.append(out.masks[0])
                examples.append(ex)
                if task == "inpainting":
                    holes.append(generation.hole_error(out.images[0], item.image, ex.coarse_mask))
            elif task == "synthesis":
                out = pipe(task)(ex.names, ex.control, prompt=ex.prompt, **kwargs(index, task))
                seg = pipe("entity")(out.images[0], **kwargs(index, "entity"))
                scores.append(generation.mask_alignment(seg.masks[0], ex.control))
                kinds.append(_is_stuff(_names_of(generation.colormap_entities(ex.control), ex), held.stuff))
            else:
                out = pipe(task)(item.image, **kwargs(index, task))
                disjoint, score = entity_readout(out.masks[0].reshape(-1, size, size))
                outputs.append(disjoint)
                examples.append(ex)
                predictions += _results(item.image_id, disjoint, score)
            if on_example is not None:
                on_example(task, item, ex, out)
            if task in ("inpainting", "synthesis"):
                generated.append(out.images[0])
                real.append(item.image)
                texts.append(join_names(ex.names))
        counts[task] = done
        if task == "synthesis":
            pooled = pool_match_scores(scores)
            row: dict[str, Any] = {"mIoU": pooled.miou, "recall": pooled.recall, **_by_kind(pooled, kinds)}
        else:
            row = mask_metrics(task, outputs, examples, held.stuff)
        if task == "inpainting":
            row["hole_MAE"] = float(np.nanmean([h[0] for h in holes])) if holes else float("nan")
            row["hole_PSNR"] = float(np.nanmean([h[1] for h in holes])) if holes else float("nan")
        if task in ("inpainting", "synthesis"):
            row["FID"] = _fid(fid_net, real, generated)
            row["CLIP_score"] = (float(clip(np.stack(generated), texts).mean()) if clip and generated
                                 else NA_WEIGHTS if clip is None else float("nan"))
        metrics[task] = row
    return EvalResult(metrics, counts, held.label, held.held_out, predictions, dict(skipped))


def entity_readout(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entity task's scored masks: Φ's `(K, H, W) bool` made non-overlapping by area-fraction scores
    (paper Table 6's constraint; `unigs.evaluate.segmentation`) → (disjoint masks, their scores `(K,)`)."""
    score = segmentation.area_scores(masks)
    return segmentation.non_overlapping(masks, score), score


def mask_metrics(task: str, masks: list[np.ndarray], examples: list[Any],
                 stuff: frozenset[str]) -> dict[str, float]:
    """The `unigs eval` row of a segmenting task from each example's predicted masks.

    Args:
        task: "inpainting", "referring" or "entity".
        masks: per example `(K, H, W) bool` (entity: already :func:`entity_readout`'s disjoint masks).
        examples: the `unigs.data.tasks` examples they answer (`entity_masks`, `entity_names`).
        stuff: the names that are stuff (`HeldOutSet.stuff`).

    Returns:
        mIoU, recall and their things / stuff split, pooled over all target entities; for entity also
        AP^e / AP50 / AP75 and PQ / SQ / RQ (pixels no target covers are void).
    """
    pooled = pool_match_scores([best_match_scores(m, ex.entity_masks) for m, ex in zip(masks, examples,
                                                                                          strict=True)])
    kinds = [_is_stuff(ex.entity_names, stuff) for ex in examples]
    row = {"mIoU": pooled.miou, "recall": pooled.recall, **_by_kind(pooled, kinds)}
    if task == "entity":
        gts = [ex.entity_masks for ex in examples]
        voids = [~g.any(0) for g in gts]
        row.update(segmentation.entity_ap(masks, gts, voids=voids).as_dict())
        pq = segmentation.panoptic_quality(masks, gts, voids)
        row.update({"PQ": pq.pq, "SQ": pq.sq, "RQ": pq.rq})
    return row


def _names_of(gt_masks: np.ndarray, ex: Any) -> list[str]:
    """The name of each ground-truth mask: that of the example's target entity it overlaps most."""
    if len(gt_masks) == 0 or len(ex.entity_masks) == 0:
        return [""] * len(gt_masks)
    overlap = (gt_masks[:, None] & ex.entity_masks[None]).sum(axis=(2, 3))
    return [ex.entity_names[int(k)] for k in overlap.argmax(1)]


def _is_stuff(names: list[str], stuff: frozenset[str]) -> np.ndarray:
    return np.array([n in stuff for n in names], dtype=bool)


def _by_kind(pooled: Any, kinds: list[np.ndarray]) -> dict[str, float]:
    """mIoU / recall over the thing entities and over the stuff entities of the pooled scores."""
    stuff = np.concatenate(kinds) if kinds else np.zeros(0, bool)
    row = {}
    for kind, keep in (("things", ~stuff), ("stuff", stuff)):
        best = pooled.best_iou[keep] if len(stuff) == len(pooled.best_iou) else np.zeros(0)
        row[f"mIoU_{kind}"] = float(best.mean()) if len(best) else float("nan")
        row[f"recall_{kind}"] = float((best >= 0.5).mean()) if len(best) else float("nan")
    return row


def _fid(net: generation.FeatureNetwork | None, real: list, fake: list) -> float | str:
    if net is None:
        return NA_WEIGHTS
    if len(real) < 2:
        return f"n/a (FID needs >= 2 images, got {len(real)})"
    return generation.fid_from_features(net(np.stack(real)), net(np.stack(fake)))


def _results(image_id: Any, masks: np.ndarray, scores: np.ndarray) -> list[dict]:
    return results_json(image_id, masks, scores=scores) if len(masks) else []


def format_table(result: EvalResult) -> str:
    """The task × metric table, one row per (task, metric)."""
    lines = [f"data: {result.split_label}" + ("" if result.held_out else "   [TRAINING DATA — not held out]"),
             f"{'task':<12} {'metric':<11} value"]
    for task, row in result.metrics.items():
        for name, value in row.items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            lines.append(f"{task:<12} {name:<11} {shown}")
        lines.append(f"{task:<12} {'examples':<11} {result.counts.get(task, 0)}")
    return "\n".join(lines)


def to_json(result: EvalResult, config: EvalConfig, model: str) -> dict:
    """results.json content: config, data label, per-task counts and metrics (NaN -> null), metric notes."""
    def clean(v):
        return None if isinstance(v, float) and not np.isfinite(v) else v

    return {
        "model": model,
        "config": asdict(config),
        "data": result.split_label,
        "held_out": result.held_out,
        "examples": result.counts,
        "skipped": result.skipped,
        "metrics": {t: {k: clean(v) for k, v in row.items()} for t, row in result.metrics.items()},
        "notes": {
            "mIoU/recall": "mean over all ground-truth entities of the data set (not of per-image means)",
            "AP": "class-agnostic COCO mask AP, non-overlapping predictions, scores = mask area fraction",
            "PQ": "class-agnostic, IoU > 0.5 matches, pixels no gt covers are void",
            "hole": "MAE in [0, 1] and PSNR (dB, capped at 100) of the image inside m_c vs I_0",
            "synthesis mIoU": "the model's own entity segmentation of Î vs the input colormap's entities",
        },
    }
