"""Tests for the Table-2 task samplers (unigs.data.tasks)."""

from __future__ import annotations

import numpy as np
import pytest

from unigs.codec import palette
from unigs.conditions import DEFAULT_TASK_RATIOS, TASK_IDS, TASKS, prompt_for
from unigs.data import tasks as T
from unigs.data.scenes import CATEGORIES, STUFF, make_scene

VOCAB = CATEGORIES + STUFF


def disc(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def colors_of(colormap: np.ndarray) -> set[int]:
    """The non-black colours of a colormap, each packed as 0xRRGGBB."""
    packed = colormap.astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    return set(np.unique(packed).tolist()) - {0}


def reference_colormap(ex: T.TrainingExample, masks: np.ndarray, names: list[str]) -> np.ndarray:
    """The target rule written out plainly: named, >= 50 % inside the region, clipped to it."""
    if ex.task == "entity":
        return palette.encode(masks)
    positive = set(ex.names) - set(ex.negative_names)
    chosen = [i for i, m in enumerate(masks)
              if names[i] in positive and (m & ex.coarse_mask).sum() >= T.INSIDE_FRACTION * m.sum()]
    clipped = masks[chosen] & ex.coarse_mask
    return palette.encode(clipped) if len(chosen) else np.zeros(masks.shape[1:] + (3,), np.uint8)


def check_table2(ex: T.TrainingExample, image: np.ndarray, masks: np.ndarray, names: list[str],
                 max_entities: int) -> None:
    """Every invariant of Table 2 and of the module's target rule, for one example."""
    h, w = image.shape[:2]
    assert ex.task_id == TASK_IDS[ex.task] and ex.prompt == prompt_for(ex.task, ex.names)
    for arr in (ex.control, ex.image_target, ex.colormap_target):
        assert arr.shape == (h, w, 3) and arr.dtype == np.uint8
    assert ex.coarse_mask.shape == (h, w) and ex.coarse_mask.dtype == bool
    k = len(ex.entity_masks)
    assert ex.entity_masks.shape == (k, h, w) and len(ex.entity_names) == k
    assert (ex.entity_masks.sum(axis=0) <= 1).all()  # as painted: non-overlapping
    for m in ex.entity_masks:  # each painted mask is exactly one colour of the colormap
        inside = ex.colormap_target[m]
        assert (inside == inside[0]).all() and inside[0].any()
    assert np.array_equal(ex.colormap_target.any(axis=2), ex.entity_masks.any(axis=0))
    if ex.task != "entity":
        assert 1 <= len(ex.names) and k <= max_entities and len(colors_of(ex.colormap_target)) == k
        assert not ex.entity_masks[:, ~ex.coarse_mask].any()  # clipped to the region
        assert set(ex.entity_names) <= set(ex.names) - set(ex.negative_names)
    if not ex.truncated:
        assert np.array_equal(ex.colormap_target, reference_colormap(ex, masks, names))
    if ex.task == "inpainting":
        assert np.array_equal(ex.control, image * ~ex.coarse_mask[..., None])
        assert not ex.control[ex.coarse_mask].any() and np.array_equal(ex.image_target, image)
        assert not ex.negative_names
    elif ex.task == "synthesis":
        assert ex.coarse_mask.all() and np.array_equal(ex.control, ex.colormap_target)
        assert np.array_equal(ex.image_target, image) and not ex.negative_names
    elif ex.task == "referring":
        assert np.array_equal(ex.control, image) and np.array_equal(ex.image_target, ex.control)
        touching = {names[i] for i, m in enumerate(masks) if (m & ex.coarse_mask).any()}
        assert not set(ex.negative_names) & touching
    else:
        assert ex.coarse_mask.all() and ex.prompt == "panoptic: all entities."
        assert np.array_equal(ex.control, image) and np.array_equal(ex.image_target, image)
        assert sorted(ex.entity_names) == sorted(names)


@pytest.fixture(scope="module")
def scenes():
    return [make_scene(seed) for seed in range(12)]


# ---------------------------------------------------------------------------------------------- tasks
@pytest.mark.parametrize("task", TASKS)
def test_examples_obey_table2(task, scenes):
    rng = np.random.default_rng(0)
    for sc in scenes:
        for max_entities in (4, 3, 1):
            ex = T.sample_example(task, sc.image, sc.masks, sc.names, rng, VOCAB, max_entities=max_entities)
            assert ex.task == task
            check_table2(ex, sc.image, sc.masks, sc.names, max_entities)


def test_entity_colormap_covers_the_whole_image(scenes):
    rng = np.random.default_rng(1)
    for sc in scenes[:4]:
        ex = T.sample_example("entity", sc.image, sc.masks, sc.names, rng, VOCAB, max_entities=1)
        assert ex.colormap_target.any(axis=2).all()  # stuff included: no black pixel
        assert len(colors_of(ex.colormap_target)) == len(sc.names) > 1  # max_entities does not apply
        assert ex.names == sc.names


def test_every_instance_of_a_named_category_is_in_the_target():
    """Synthesis (region J) on three balls and a box: asking for "ball" colours all three."""
    h = w = 64
    masks = np.stack([disc(h, w, 12, 12, 6), disc(h, w, 12, 50, 6), disc(h, w, 50, 30, 6),
                      disc(h, w, 48, 52, 7) & ~disc(h, w, 50, 30, 6)])
    names = ["ball", "ball", "ball", "box"]
    image = np.full((h, w, 3), 90, np.uint8)
    seen_ball = False
    for seed in range(30):
        ex = T.sample_example("synthesis", image, masks, names, np.random.default_rng(seed), VOCAB)
        if "ball" in ex.names:
            seen_ball = True
            assert ex.entity_names.count("ball") == 3
            assert len(colors_of(ex.colormap_target)) == len(ex.names) + 2
        assert not ex.truncated
    assert seen_ball


@pytest.mark.parametrize("task", ["referring", "inpainting"])
def test_target_rule_known_answer(task, monkeypatch):
    """Region = left half. Balls 100 %, 60 % and 40 % inside; "find ball" colours the first two, clipped."""
    h, w = 40, 80
    region = np.zeros((h, w), bool)
    region[:, :40] = True
    monkeypatch.setattr(T.coarse, "coarse_mask", lambda masks, rng: region)
    square = np.zeros((3, h, w), bool)
    square[0, 5:15, 10:20] = True  # ball, fully inside
    square[1, 20:30, 34:44] = True  # ball, 6 of 10 columns inside
    square[2, 5:15, 36:46] = True  # ball, 4 of 10 columns inside
    box = np.zeros((1, h, w), bool)
    box[0, 25:35, 5:15] = True
    masks, names = np.concatenate([square, box]), ["ball", "ball", "ball", "box"]
    image = np.full((h, w, 3), 50, np.uint8)
    seen = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        ex = T.sample_example(task, image, masks, names, rng, VOCAB, negative_prob=0.0)
        seen.add(tuple(ex.names))
        expected = [0, 1] * ("ball" in ex.names) + [3] * ("box" in ex.names)
        assert sorted(ex.entity_names) == sorted(names[i] for i in expected)
        assert ex.entity_masks.sum() == sum((masks[i] & region).sum() for i in expected)
    assert ("ball",) in seen and ("box",) in seen


def test_same_name_neighbours_join_the_target_in_the_region(scenes):
    """Referring/inpainting examples where the target holds more instances of a name than were sampled."""
    rng, found = np.random.default_rng(2), 0
    for sc in scenes:
        for task in ("inpainting", "referring"):
            ex = T.sample_example(task, sc.image, sc.masks, sc.names, rng, VOCAB, negative_prob=0.0)
            found += len(ex.entity_names) > len(set(ex.entity_names))
    assert found >= 3


def test_too_many_instances_are_truncated_to_max_entities():
    h = w = 64
    masks = np.stack([disc(h, w, 10 + 20 * (i // 3), 10 + 20 * (i % 3), 5) for i in range(6)])
    image = np.zeros((h, w, 3), np.uint8)
    ex = T.sample_example("synthesis", image, masks, ["ball"] * 6, np.random.default_rng(0), VOCAB,
                          max_entities=2)
    assert ex.truncated and ex.names == ["ball"] and len(ex.entity_masks) == 2
    assert len(colors_of(ex.colormap_target)) == 2


# ------------------------------------------------------------------------------------------ negatives
def test_negatives_give_empty_targets_and_absent_names(scenes):
    rng = np.random.default_rng(3)
    for sc in scenes:
        ex = T.sample_example("referring", sc.image, sc.masks, sc.names, rng, VOCAB, negative_prob=1.0)
        assert ex.negative_names == ex.names and not ex.colormap_target.any() and len(ex.entity_masks) == 0
        touching = {n for n, m in zip(sc.names, sc.masks, strict=True) if (m & ex.coarse_mask).any()}
        assert not set(ex.names) & touching and set(ex.names) <= set(VOCAB)
        assert ex.prompt == prompt_for("referring", ex.names) and len(set(ex.names)) == len(ex.names)
        check_table2(ex, sc.image, sc.masks, sc.names, 4)


def test_negatives_need_an_absent_vocabulary_name(scenes):
    sc = scenes[0]
    ex = T.sample_example("referring", sc.image, sc.masks, sc.names, np.random.default_rng(0),
                          vocabulary=sc.names, negative_prob=1.0)  # every candidate is in the image
    assert not ex.negative_names and ex.colormap_target.any()
    ex = T.sample_example("referring", sc.image, sc.masks, sc.names, np.random.default_rng(0), None,
                          negative_prob=1.0)
    assert not ex.negative_names


def test_negative_rate_follows_lambda(scenes):
    rng, counts = np.random.default_rng(4), {0.0: [0, 0], 0.5: [0, 0]}
    for lam in counts:
        for i in range(120):
            sc = scenes[i % len(scenes)]
            ex = T.sample_example("referring", sc.image, sc.masks, sc.names, rng, VOCAB, negative_prob=lam)
            counts[lam][0] += len(ex.negative_names)
            counts[lam][1] += len(ex.names)
    assert counts[0.0][0] == 0
    assert 0.38 < counts[0.5][0] / counts[0.5][1] < 0.62


def test_other_tasks_never_use_negatives(scenes):
    sc, rng = scenes[1], np.random.default_rng(5)
    for task in ("inpainting", "synthesis", "entity"):
        for _ in range(5):
            ex = T.sample_example(task, sc.image, sc.masks, sc.names, rng, VOCAB, negative_prob=1.0)
            assert not ex.negative_names and ex.colormap_target.any()


# -------------------------------------------------------------------------------------------- general
@pytest.mark.parametrize("task", TASKS)
def test_deterministic_given_the_rng(task, scenes):
    sc = scenes[2]
    a = T.sample_example(task, sc.image, sc.masks, sc.names, np.random.default_rng(9), VOCAB)
    b = T.sample_example(task, sc.image, sc.masks, sc.names, np.random.default_rng(9), VOCAB)
    assert a.prompt == b.prompt and np.array_equal(a.coarse_mask, b.coarse_mask)
    assert np.array_equal(a.control, b.control) and np.array_equal(a.colormap_target, b.colormap_target)


def test_draws_vary_with_the_rng(scenes):
    sc = scenes[2]
    regions = {T.sample_example("inpainting", sc.image, sc.masks, sc.names, np.random.default_rng(s),
                                VOCAB).coarse_mask.tobytes() for s in range(6)}
    assert len(regions) >= 4


def test_bad_inputs(scenes):
    sc, rng = scenes[0], np.random.default_rng(0)
    img, masks, names = sc.image, sc.masks, sc.names
    cases = [
        (("segment", img, masks, names), {}, "'segment'"),
        (("entity", img.astype(np.float32), masks, names), {}, "uint8"),
        (("entity", img[..., :2], masks, names), {}, r"\(H, W, 3\)"),
        (("entity", img, masks[:, :10], names), {}, "masks must be"),
        (("entity", img, masks[0], names), {}, "masks must be"),
        (("entity", img, masks * 2, names), {}, "0/1"),
        (("entity", img, masks, names[:-1]), {}, "names"),
        (("entity", img, masks, [""] + names[1:]), {}, "non-empty name"),
        (("entity", img, np.zeros_like(masks), names), {}, "no entities"),
        (("referring", img, masks[:0], []), {}, "no entities"),
        (("referring", img, masks, names), {"max_entities": 0}, "max_entities"),
        (("referring", img, masks, names), {"max_entities": True}, "max_entities"),
        (("referring", img, masks, names), {"negative_prob": 1.5}, "negative_prob"),
    ]
    for args, kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            T.sample_example(*args, rng=rng, vocabulary=VOCAB, **kwargs)
    with pytest.raises(ValueError, match="rng"):
        T.sample_example("entity", img, masks, names, 0, VOCAB)


def test_empty_masks_are_ignored():
    h = w = 32
    masks = np.stack([disc(h, w, 16, 16, 6), np.zeros((h, w), bool)])
    ex = T.sample_example("referring", np.zeros((h, w, 3), np.uint8), masks.astype(np.uint8),
                          ["ball", "ghost"], np.random.default_rng(0), VOCAB, negative_prob=0.0)
    assert ex.names == ["ball"]


# ------------------------------------------------------------------------------------------- mixture
def test_task_mixture_default_ratios():
    mix = T.TaskMixture()
    assert mix.ratios == DEFAULT_TASK_RATIOS and mix.tasks == TASKS
    rng = np.random.default_rng(0)
    draws = [mix.draw(rng) for _ in range(4000)]
    for task, p in DEFAULT_TASK_RATIOS.items():
        assert abs(draws.count(task) / len(draws) - p) < 0.03
    again = T.TaskMixture(DEFAULT_TASK_RATIOS)
    assert [again.draw(np.random.default_rng(1)) for _ in range(3)] == [mix.draw(np.random.default_rng(1))
                                                                        for _ in range(3)]


def test_task_mixture_single_task_and_errors():
    mix = T.TaskMixture({"referring": 1.0})
    rng = np.random.default_rng(0)
    assert {mix.draw(rng) for _ in range(50)} == {"referring"}
    with pytest.raises(ValueError, match="'panoptic'"):
        T.TaskMixture({"panoptic": 1.0})
    with pytest.raises(ValueError, match="sum to 1"):
        T.TaskMixture({"inpainting": 0.3, "synthesis": 0.3, "referring": 0.2, "entity": 0.3})
    with pytest.raises(ValueError, match="'synthesis'"):
        T.TaskMixture({"inpainting": 1.5, "synthesis": -0.5})


# ------------------------------------------------------------------------------------------ coco-mini
def test_samplers_on_coco_mini(coco_mini):
    from unigs.data.coco import CocoEntities

    ds = CocoEntities(coco_mini / "annotations" / "instances_val2017.json", coco_mini / "val2017")
    vocabulary = list(ds.categories.values())
    rng = np.random.default_rng(0)
    for index in (0, 1):
        sample = ds[index]
        assert len(sample.names) >= 1
        for task in TASKS:
            ex = T.sample_example(task, sample.image, sample.masks, sample.names, rng, vocabulary,
                                  max_entities=3, negative_prob=0.5)
            check_table2(ex, sample.image, sample.masks, sample.names, 3)
