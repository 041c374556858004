"""Where the examples of a training step come from: datasets mixed by ratio, crop/flip, a DataLoader.

Everything before the VAE — JPEG decoding, polygon/RLE rasterisation, crop and flip, Ω, Ψ and the Table-2
sampling — runs in a `torch.utils.data.DataLoader` (`num_workers` processes), off the training step.
One loader item is one micro-batch, keyed by (step, micro-batch); its examples come from the RNG of
(seed, step, micro-batch, process) alone (:func:`step_rng`). Which worker builds an item does not enter,
so a run is the same for any `num_workers`, and resuming at step s (the loader starts at key (s, 0))
continues exactly. The RNG draws are those of the in-process sampler this replaced: an existing run
resumes bit-exactly.

**Datasets** (`datasets` key, :class:`DatasetMixture`): each example first draws its task, then a
dataset among those that may serve it, by the datasets' ratios. The entity task (every entity of the
image in the colormap) draws only from datasets marked ``complete`` — fully annotated ones such as
EntitySeg or the procedural scenes (§4.1: the paper trains entity segmentation on EntitySeg only);
a COCO or OpenImages JSON is incomplete by default and serves the other three tasks.

**Crop and flip** (`crop_min_scale`, `random_flip`): a random square of side ∈ [crop_min_scale, 1]·S
of the S-px image, resized back to S (image bilinear, masks nearest; masks emptied by the crop are
dropped), then a horizontal flip with probability ½, masks alike. Ψ and Ω are computed afterwards, on the
cropped masks, so palette and coarse masks always match the pixels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unigs.data.source import EntitySource, square_resize
from unigs.data.tasks import TaskMixture, TrainingExample, sample_example

POOL_TAG = 0x9001  # separates the pool's RNG streams from the steps' (seed, step, micro, process)


def step_rng(config: Any, step: int, micro: int, process: int) -> np.random.Generator:
    """The RNG of (seed, step, micro-batch, process): the data position is the step (exact resume)."""
    return np.random.default_rng([config.seed, step, micro, process])


# --------------------------------------------------------------------------------------------- sources
def dataset_entries(config: Any) -> list[dict[str, Any]]:
    """The config's datasets as {data, images_dir, ratio, complete}: `datasets`, or the single `data` (which
    then serves every task, as before `datasets` existed). `complete` defaults to true for "scenes" only."""
    if not config.datasets:
        return [{"data": config.data, "images_dir": config.images_dir, "ratio": 1.0, "complete": True}]
    out = []
    for e in config.datasets:
        data = str(e.get("data", "scenes"))
        out.append({"data": data, "images_dir": e.get("images_dir"), "ratio": float(e.get("ratio", 1.0)),
                    "complete": bool(e.get("complete", data == "scenes"))})
    return out


def dataset_shares(config: Any) -> list[float]:
    """The fraction of all training examples each dataset serves, under the task ratios and the
    entity-only-on-complete rule; raises ValueError when a task with ratio > 0 has no dataset."""
    entries = dataset_entries(config)
    ratios = np.array([e["ratio"] for e in entries])
    complete = np.array([e["complete"] for e in entries])
    share = np.zeros(len(entries))
    for task, ratio in (config.task_ratios if config.multitask else {config.tasks: 1.0}).items():
        w = ratios * complete if task == "entity" else ratios
        if float(ratio) > 0 and not w.sum() > 0:
            raise ValueError(f"no dataset can serve the task {task!r}: " + (
                "the entity task needs a dataset marked `complete: true` (e.g. EntitySeg)"
                if task == "entity" else "every dataset ratio is 0"))
        if float(ratio) > 0:
            share += float(ratio) * w / w.sum()
    return (share / share.sum()).tolist()


class DatasetMixture:
    """The training datasets of a config, their ratios and which may serve the entity task (docstring)."""

    def __init__(self, config: Any):
        self.legacy = not config.datasets  # the single `data` key: the draw order from before `datasets`
        entries = dataset_entries(config)
        self.shares = dataset_shares(config)  # checks that every task has a dataset
        self.names = [e["data"] for e in entries]
        self.sources = [EntitySource(e["data"], config.image_size, e["images_dir"], config.num_scenes)
                        for e in entries]
        self.ratios = np.array([e["ratio"] for e in entries])
        self.complete = np.array([e["complete"] for e in entries])
        # every category name of the datasets, in first-seen order (the model's meta "vocabulary")
        self.vocabulary = list(dict.fromkeys(v for s in self.sources for v in s.vocabulary))

    def eligible(self, task: str) -> np.ndarray:
        """`(D,)` dataset weights for `task`: the ratios, zero for incomplete datasets on the entity task."""
        return self.ratios * self.complete if task == "entity" else self.ratios

    def draw(self, task: str, rng: np.random.Generator) -> EntitySource:
        """One dataset for an example of `task` (one uniform number from `rng`)."""
        cumulative = np.cumsum(self.eligible(task))
        k = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        return self.sources[min(k, len(self.sources) - 1)]


def crop_and_flip(image: np.ndarray, masks: np.ndarray, names: list[str], rng: np.random.Generator,
                  min_scale: float, flip: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Random square crop (side ∈ [min_scale, 1]·S, resized back to S) and horizontal flip (p = ½) of an
    `(S, S, 3) uint8` image with its `(N, S, S) bool` masks; masks emptied by the crop are dropped.
    Draws from `rng` only for what is on (min_scale < 1, flip)."""
    size = image.shape[0]
    if min_scale < 1.0:
        side = max(1, int(round(size * rng.uniform(min_scale, 1.0))))
        y0, x0 = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        window = (slice(y0, y0 + side), slice(x0, x0 + side))
        image, masks, names = square_resize(image[window], masks[:, window[0], window[1]], names, size)
    if flip and rng.random() < 0.5:
        image, masks = np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(masks[:, :, ::-1])
    return image, masks, names


# -------------------------------------------------------------------------------------------- examples
def sample_one(config: Any, mixture: DatasetMixture, rng: np.random.Generator, tasks,
               index: int | None = None) -> TrainingExample:
    """One TrainingExample: a task drawn by `tasks` (a TaskMixture; None = the single task), then a dataset
    and an image of it (`index`, default drawn; a new draw while the image has no entity left)."""
    augment = config.crop_min_scale < 1.0 or config.random_flip
    if mixture.legacy:  # one dataset: the draw order of the sampler before `datasets` (exact resume)
        source = mixture.sources[0]
        index = int(rng.integers(len(source))) if index is None else index
    else:
        task = tasks.draw(rng) if tasks is not None else config.tasks
        source = mixture.draw(task, rng)
        index = int(rng.integers(len(source))) if index is None else index % len(source)
    while True:
        image, masks, names = source.get(index)
        if augment and len(masks):
            image, masks, names = crop_and_flip(image, masks, names, rng, config.crop_min_scale,
                                                config.random_flip)
        if len(masks):
            break
        index = int(rng.integers(len(source)))
    if mixture.legacy:
        task = tasks.draw(rng) if tasks is not None else config.tasks
    return sample_example(task, image, masks, names, rng, source.vocabulary, max_entities=config.max_entities,
                          negative_prob=config.negative_prob, grid=config.grid)


def task_mixture(config: Any) -> TaskMixture | None:
    """The TaskMixture of a multi-task config, None for a single-task one."""
    return TaskMixture(config.task_ratios) if config.multitask else None


def sample_batch(config: Any, mixture: DatasetMixture, rng: np.random.Generator) -> list:
    """`batch_size` TrainingExamples; tasks drawn per example; prompts dropped to "" for CFG."""
    tasks = task_mixture(config)
    examples = []
    for _ in range(config.batch_size):
        ex = sample_one(config, mixture, rng, tasks)
        if rng.random() < config.prompt_drop_prob:
            ex = dataclasses.replace(ex, prompt="")
        examples.append(ex)
    return examples


def pool_examples(config: Any, mixture: DatasetMixture, start: int, stop: int) -> list:
    """Examples `start … stop-1` of the pre-encoded pool: example i is draw i % pool_draws of pool scene
    i // pool_draws; the scene from the RNG of (seed, POOL_TAG, scene), the draw from (…, scene, draw)."""
    tasks, draws = task_mixture(config), config.pool_draws
    examples = []
    for i in range(start, stop):
        rng = np.random.default_rng([config.seed, POOL_TAG, i // draws])
        scene = int(rng.integers(len(mixture.sources[0]))) if mixture.legacy else int(rng.integers(2**31))
        rng = np.random.default_rng([config.seed, POOL_TAG, i // draws, i % draws])
        examples.append(sample_one(config, mixture, rng, tasks, index=scene))
    return examples


# ---------------------------------------------------------------------------------------------- loader
@dataclass
class MicroBatch:
    """What the loader hands the step: the seeds of its noise/timesteps and of torch's global RNG, and
    either `examples` (TrainingExamples to encode) or pool `index` + `drop` (prompt dropped) arrays."""

    noise_seed: int
    torch_seed: int
    examples: list | None = None
    index: np.ndarray | None = None
    drop: np.ndarray | None = None


class StepBatches(torch.utils.data.Dataset):
    """Map-style dataset: key (step, micro) → that micro-batch's :class:`MicroBatch` on `process`."""

    def __init__(self, config: Any, mixture: DatasetMixture | None, process: int, pool_size: int = 0):
        self.config, self.mixture, self.process, self.pool_size = config, mixture, process, pool_size

    def __len__(self) -> int:
        return self.config.steps * self.config.grad_accum

    def __getitem__(self, key: tuple[int, int]) -> MicroBatch:
        config = self.config
        rng = step_rng(config, key[0], key[1], self.process)
        seeds = int(rng.integers(2**63)), int(rng.integers(2**63))
        if self.pool_size:
            index = rng.integers(self.pool_size, size=config.batch_size)
            drop = rng.random(config.batch_size) < config.prompt_drop_prob
            return MicroBatch(*seeds, index=index, drop=drop)
        return MicroBatch(*seeds, examples=sample_batch(config, self.mixture, rng))


def _identity(item: Any) -> Any:
    return item


def step_loader(dataset: StepBatches, start: int) -> torch.utils.data.DataLoader:
    """Micro-batches of steps `start … steps-1` in order, built by `config.num_workers` processes."""
    config = dataset.config
    keys = [(s, m) for s in range(start, config.steps) for m in range(config.grad_accum)]
    workers = int(config.num_workers)
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=keys, num_workers=workers,
                                       collate_fn=_identity, prefetch_factor=4 if workers else None)
