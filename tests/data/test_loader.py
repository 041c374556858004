"""unigs.data.loader: worker-independent micro-batches, crop/flip alignment, dataset mixing and the
entity-only-on-complete rule."""

from __future__ import annotations

import numpy as np
import pytest

from unigs.data.loader import (
    DatasetMixture,
    StepBatches,
    crop_and_flip,
    sample_batch,
    step_loader,
    step_rng,
)
from unigs.train_config import TrainConfig


def config(**values) -> TrainConfig:
    return TrainConfig(vae="x", image_size=32, num_scenes=16, batch_size=3, steps=3, **values)


def same_examples(a, b) -> bool:
    return all(x.prompt == y.prompt and x.task == y.task
               and np.array_equal(x.colormap_target, y.colormap_target)
               and np.array_equal(x.image_target, y.image_target) for x, y in zip(a, b, strict=True))


def test_loader_items_do_not_depend_on_workers_or_start():
    cfg = config(grad_accum=2, num_workers=0)
    mixture = DatasetMixture(cfg)
    serial = list(step_loader(StepBatches(cfg, mixture, process=0), start=0))
    assert len(serial) == 6
    workers = config(grad_accum=2, num_workers=2)
    parallel = list(step_loader(StepBatches(workers, mixture, process=0), start=1))
    assert len(parallel) == 4
    for a, b in zip(serial[2:], parallel, strict=True):  # resuming at step 1 = items from key (1, 0) on
        assert (a.noise_seed, a.torch_seed) == (b.noise_seed, b.torch_seed)
        assert same_examples(a.examples, b.examples)
    other = list(step_loader(StepBatches(cfg, mixture, process=1), start=0))
    assert other[0].noise_seed != serial[0].noise_seed  # each process draws its own examples


def test_loader_draws_are_the_in_process_sampler_of_before():
    # the step used to draw: 2 seeds, then the batch, from step_rng(seed, step, micro, process)
    cfg = config()
    mixture = DatasetMixture(cfg)
    item = StepBatches(cfg, mixture, process=0)[(2, 0)]
    rng = step_rng(cfg, 2, 0, 0)
    assert item.noise_seed == int(rng.integers(2**63)) and item.torch_seed == int(rng.integers(2**63))
    assert same_examples(item.examples, sample_batch(cfg, mixture, rng))


def test_crop_and_flip_keep_masks_on_their_pixels():
    rng = np.random.default_rng(0)
    size = 32
    image = np.zeros((size, size, 3), np.uint8)
    masks = np.zeros((2, size, size), bool)
    masks[0, 2:12, 3:9] = True  # left object, red
    masks[1, 20:30, 18:31] = True  # right object, green
    image[masks[0]] = (255, 0, 0)
    image[masks[1]] = (0, 255, 0)
    flips = 0
    for _ in range(20):
        img, m, names = crop_and_flip(image, masks, ["a", "b"], rng, 0.6, True)
        assert img.shape == (size, size, 3) and m.shape[1:] == (size, size) and len(names) == len(m)
        for mask, name in zip(m, names, strict=True):
            colour = np.array((255, 0, 0) if name == "a" else (0, 255, 0))
            inside = img[mask].astype(int)
            assert (np.abs(inside - colour).sum(axis=1) < 200).mean() > 0.9  # mask still on its object
        if "a" in names:
            flips += np.argwhere(m[names.index("a")])[:, 1].mean() > 16
    assert flips > 0  # the left object was mirrored to the right at least once
    same, m2, _ = crop_and_flip(image, masks, ["a", "b"], rng, 1.0, False)  # off: untouched
    assert same is image and m2 is masks


def test_entity_task_only_draws_from_complete_datasets(coco_mini):
    datasets = [{"data": "scenes", "ratio": 0.5, "complete": True},
                {"data": str(coco_mini / "annotations" / "instances_val2017.json"),
                 "images_dir": str(coco_mini / "val2017"), "ratio": 0.5}]
    cfg = config(datasets=datasets, max_entities=2)
    mixture = DatasetMixture(cfg)
    assert mixture.complete.tolist() == [True, False]
    rng = np.random.default_rng(0)
    drawn = {task: [mixture.sources.index(mixture.draw(task, rng)) for _ in range(200)]
             for task in ("entity", "inpainting")}
    assert set(drawn["entity"]) == {0}
    assert 60 < sum(drawn["inpainting"]) < 140  # ratio 0.5: COCO serves about half of the other tasks
    assert mixture.shares[1] == pytest.approx(0.8 * 0.5) and len(mixture.sources[0]) == 16
    examples = sample_batch(cfg, mixture, np.random.default_rng(1))
    assert len(examples) == 3
    with pytest.raises(ValueError, match="complete"):
        DatasetMixture(config(datasets=datasets[1:]))


def test_bad_dataset_entries_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="colour"):
        config(datasets=[{"data": "scenes", "colour": 1}])
    with pytest.raises(FileNotFoundError, match="absent.json"):
        config(datasets=[{"data": str(tmp_path / "absent.json"), "images_dir": "x"}])
    config(datasets=[{"data": str(tmp_path / "absent.json"), "images_dir": "x"}], check_paths=False)
