"""Validation sheets during training: the four tasks on fixed held-out examples, every N steps, as PNG.

Every `validate_every` optimizer steps the main process runs the EMA model through each task's pipeline
(`unigs.pipelines`, DDIM, `validation_steps` steps) on `validation_images` examples per task and writes
`<output>/validation/step-XXXXXXXX.png`: one row per example — the task's input, the generated image,
the generated colormap and the target colormap, titled with the prompt. The examples are the same at every
step (drawn once from the RNG of (seed, VALIDATION_TAG, task, k)) so that sheets compare across a run.

Held out: the procedural scenes' "val" split when training on scenes; else `validation_data` (a COCO JSON
with `validation_images_dir`, e.g. val2017), or — without it — the first training dataset (not held out).
Sampling draws only from its own generators inside `torch.random.fork_rng`, so a run with validation
trains bit-identically to one without.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from unigs.conditions import TASKS
from unigs.data.loader import dataset_entries
from unigs.data.source import EntitySource
from unigs.data.tasks import TrainingExample, sample_example
from unigs.models.loading import UniGSComponents
from unigs.pipelines import pipeline_for_task
from unigs.train_config import TrainConfig
from unigs.visualize import sheet

VALIDATION_TAG = 0x7A11


def validation_examples(config: TrainConfig) -> list[TrainingExample]:
    """`validation_images` TrainingExamples per task of `config` (fixed; module docstring)."""
    first = dataset_entries(config)[0]
    data, images_dir = ((config.validation_data, config.validation_images_dir) if config.validation_data
                        else (first["data"], first["images_dir"]))
    source = EntitySource(data, config.image_size, images_dir, num_scenes=max(64, config.validation_images),
                          split="val")
    ratios = config.task_ratios if config.multitask else {config.tasks: 1.0}
    tasks = [t for t in TASKS if float(ratios.get(t, 0)) > 0]
    examples = []
    for task in tasks:
        for k in range(config.validation_images):
            rng = np.random.default_rng([config.seed, VALIDATION_TAG, TASKS.index(task), k])
            while True:
                image, masks, names = source.get(int(rng.integers(len(source))))
                if len(masks):
                    break
            examples.append(sample_example(task, image, masks, names, rng, source.vocabulary,
                                           max_entities=3, negative_prob=0.0, grid=config.grid))
    return examples


@torch.no_grad()
def run_example(pipe, example, steps: int, seed: int):
    """The pipeline output (numpy) of one TrainingExample, called the way its task's pipeline reads."""
    kw = {"num_inference_steps": steps, "output_type": "np", "generator": torch.Generator().manual_seed(seed),
          "prompt": example.prompt}
    image = example.image_target
    if example.task in ("inpainting", "referring"):
        return pipe(example.names, image, example.coarse_mask, **kw)
    if example.task == "synthesis":
        return pipe(example.names, example.control, **kw)
    return pipe(image, **kw)


def validation_sheet(components: UniGSComponents, examples: list[TrainingExample], path: str | Path,
                     steps: int, device: Any = "cpu", seed: int = 0) -> Path:
    """Write the sheet of `examples` under `components` (EMA weights) to `path` (PNG); returns `path`."""
    pipes: dict[str, Any] = {}
    rows = []
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        for k, ex in enumerate(examples):
            if ex.task not in pipes:
                pipes[ex.task] = pipeline_for_task(ex.task, components).to(device)
                pipes[ex.task].set_progress_bar_config(disable=True)
            out = run_example(pipes[ex.task], ex, steps, seed + k)
            rows.append([(f"{ex.prompt[:40]}", ex.control), ("image", out.images[0]),
                         ("colormap", out.colormaps[0]), ("target", ex.colormap_target)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet(rows)).save(path)
    return path
