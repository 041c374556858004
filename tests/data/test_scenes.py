"""Tests for the procedural scenes (unigs.data.scenes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unigs.data import scenes as S


@pytest.fixture(scope="module")
def many_scenes() -> list[S.Scene]:
    return [S.make_scene(seed) for seed in range(40)]


# ------------------------------------------------------------------------------------------- geometry
def _thing(name: str, cx=0.5, cy=0.5, r=0.25, angle=0.0) -> S.Entity:
    return S.Entity(name, True, (1.0, 0.0, 0.0), 0, (cx, cy, r, angle))


def test_shape_areas_known_answers():
    size, r = 200, 0.25  # radius 50 px
    px = (r * size) ** 2
    assert S.shape_mask(_thing("ball"), size).sum() == pytest.approx(np.pi * px, rel=0.01)
    assert S.shape_mask(_thing("box"), size).sum() == pytest.approx(1.6**2 * px, rel=0.01)
    assert S.shape_mask(_thing("ring"), size).sum() == pytest.approx(np.pi * (1 - 0.55**2) * px, rel=0.02)
    triangle = S.shape_mask(_thing("triangle"), size).sum()
    assert triangle == pytest.approx(3 * np.sqrt(3) / 4 * px, rel=0.02)
    star = S.shape_mask(_thing("star"), size).sum()  # ten triangles (tip, inner vertex, centre)
    assert star == pytest.approx(5 * 0.45 * np.sin(np.pi / 5) * px, rel=0.02)
    cross = S.shape_mask(_thing("cross"), size).sum()
    assert cross == pytest.approx((2 * 0.6 * 1.9 - 0.6**2) * px, rel=0.02)


def test_shapes_are_distinct_and_fit_their_radius():
    size = 128  # radius 32 px around (64, 64)
    masks = {n: S.shape_mask(_thing(n), size) for n in S.CATEGORIES}
    for a in S.CATEGORIES:
        ys, xs = np.nonzero(masks[a])
        assert np.hypot(xs + 0.5 - 64, ys + 0.5 - 64).max() <= 1.15 * 32, a
        assert masks[a].sum() >= 0.8 * 32**2, a  # never a sliver: visible at the smallest radius
        for b in S.CATEGORIES:
            if a < b:
                iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
                assert iou < 0.85, (a, b, iou)
    with pytest.raises(ValueError, match="'blob'"):
        S.shape_mask(_thing("blob"), size)


def test_shape_mask_bounding_square_matches_full_frame_evaluation():
    e = _thing("heart", cx=0.93, cy=0.1, r=0.15, angle=0.4)  # partly outside the image
    x, y = S._grid(96)
    assert np.array_equal(S.shape_mask(e, 96), S._inside("heart", *S._local(e, x, y)))


# ------------------------------------------------------------------------------------------- scenes
def test_make_scene_is_deterministic():
    a, b = S.make_scene(11), S.make_scene(11)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert a.names == b.names and np.array_equal(a.is_thing, b.is_thing)
    assert not np.array_equal(a.image, S.make_scene(12).image)


def test_scene_types_and_shapes(many_scenes):
    for sc in many_scenes[:5]:
        n = len(sc.names)
        assert sc.image.shape == (128, 128, 3) and sc.image.dtype == np.uint8
        assert sc.masks.shape == (n, 128, 128) and sc.masks.dtype == bool
        assert sc.is_thing.shape == (n,) and sc.is_thing.dtype == bool


def test_masks_partition_the_image_and_are_visible(many_scenes):
    for sc in many_scenes:
        assert (sc.masks.sum(axis=0) == 1).all()  # non-overlapping, union = image
        assert (sc.masks.mean(axis=(1, 2)) >= S.MIN_VISIBLE).all()


def test_stuff_first_then_things_and_stuff_covers_the_rest(many_scenes):
    for sc in many_scenes:
        k = int((~sc.is_thing).sum())
        assert k >= 1 and not sc.is_thing[:k].any() and sc.is_thing[k:].all()
        assert all(n in S.STUFF for n in sc.names[:k]) and all(n in S.CATEGORIES for n in sc.names[k:])
        things = sc.masks[k:].any(axis=0)
        assert np.array_equal(sc.masks[:k].any(axis=0), ~things)


def test_pixels_inside_each_mask_are_that_entity(many_scenes):
    """Painting a layout without grain gives, inside each mask, exactly that entity's own appearance."""
    for seed in (0, 5, 9):
        layout = S.layout_scene(seed)
        sc = S.paint(layout, grain=0.0)
        for e, m in zip(layout.entities, sc.masks, strict=True):
            assert np.array_equal(sc.image[m], S.render_entity(e, 128)[m]), e.name
        top = layout.entities[-1]  # the last thing painted is never occluded
        if top.is_thing:
            assert np.array_equal(sc.masks[-1], S.shape_mask(top, 128))
        grainy = S.paint(layout, grain=2.5, seed=seed).image.astype(int)
        assert np.abs(grainy - sc.image).max() <= 15 and np.abs(grainy - sc.image).mean() > 0.5


def test_an_occluded_thing_keeps_only_its_visible_part():
    for seed in range(40):
        layout = S.layout_scene(seed)
        things = [(k, e) for k, e in enumerate(layout.entities) if e.is_thing]
        for k, e in things:
            full = S.shape_mask(e, 128)
            visible = layout.label == k
            if visible.sum() < full.sum():  # occluded: the hidden part belongs to something on top
                assert (visible <= full).all() and (layout.label[full & ~visible] > k).all()
                return
    pytest.fail("no occlusion in 40 scenes")


def test_several_instances_of_a_category_appear(many_scenes):
    repeated = [sc for sc in many_scenes if len(sc.names) > len(set(sc.names))]
    assert len(repeated) >= 10
    names = [n for sc in many_scenes for n in sc.names]
    assert set(S.CATEGORIES) <= set(names) and len(set(names) & set(S.STUFF)) >= 4


def test_object_counts_and_bad_arguments():
    for seed in range(10):
        sc = S.make_scene(seed, min_objects=3, max_objects=4)
        assert 3 <= sc.is_thing.sum() <= 4
    bare = S.make_scene(3, min_objects=0, max_objects=0)
    assert not bare.is_thing.any() and (bare.masks.sum(0) == 1).all()
    with pytest.raises(ValueError, match="min_objects"):
        S.make_scene(0, min_objects=5, max_objects=2)
    with pytest.raises(ValueError, match="size"):
        S.make_scene(0, size=8)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_any_resolution(size):
    for seed in range(3):
        sc = S.make_scene(seed, size=size)
        assert sc.image.shape == (size, size, 3) and sc.masks.shape[1:] == (size, size)
        assert (sc.masks.sum(axis=0) == 1).all()


def test_shapes_scale_with_size():
    agree = []
    for seed in range(8):
        small, large = S.layout_scene(seed, size=64), S.layout_scene(seed, size=256)
        if [e.name for e in small.entities] == [e.name for e in large.entities]:
            agree.append((small.label == large.label[1::4, 1::4]).mean())  # 256 px centres over 64 px ones
    assert len(agree) >= 6 and min(agree) > 0.9


# ------------------------------------------------------------------------------------------- dataset
def test_splits_have_disjoint_seeds():
    seeds = {split: {S.SceneDataset(split, 50).seed_of(i) for i in range(50)}
             for split in S.SPLIT_SEED_OFFSETS}
    assert not seeds["train"] & seeds["val"] and not seeds["val"] & seeds["test"]
    assert not seeds["train"] & seeds["test"]
    ranges = sorted((o, o + S.SPLIT_SEED_SPAN) for o in S.SPLIT_SEED_OFFSETS.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    val = S.SceneDataset("val", 3, size=64)
    assert np.array_equal(val[1].image, S.make_scene(S.SPLIT_SEED_OFFSETS["val"] + 1, size=64).image)
    assert np.array_equal(val[-1].image, val[2].image) and len(val) == 3


def test_dataset_bad_arguments():
    with pytest.raises(ValueError, match="'dev'"):
        S.SceneDataset("dev", 10)
    with pytest.raises(ValueError, match="length"):
        S.SceneDataset("train", 0)
    with pytest.raises(IndexError):
        S.SceneDataset("train", 3)[3]


def test_save_scenes_as_coco_round_trip(tmp_path):
    from pycocotools.coco import COCO

    from unigs.data.coco import CocoEntities
    from unigs.data.scenes_coco import save_scenes_as_coco
    from unigs.io import load_image

    ds = S.SceneDataset("test", 3, size=64)
    path = save_scenes_as_coco(ds, tmp_path)
    data = json.loads(path.read_text())
    assert {c["name"] for c in data["categories"]} == set(S.CATEGORIES) | set(S.STUFF)
    coco = COCO(str(path))
    for i in range(3):
        sc, image_id = ds[i], ds.seed_of(i) + 1
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        masks = np.stack([coco.annToMask(a).astype(bool) for a in anns])
        assert np.array_equal(masks, sc.masks)
        assert [coco.cats[a["category_id"]]["name"] for a in anns] == sc.names
        assert [coco.cats[a["category_id"]]["isthing"] for a in anns] == sc.is_thing.astype(int).tolist()
        info = coco.imgs[image_id]
        assert np.array_equal(load_image(tmp_path / "images" / info["file_name"]), sc.image)
    entities = CocoEntities(path, tmp_path / "images")
    assert len(entities) == 3
    sample = entities[0]
    assert sample.names == ds[0].names and np.array_equal(sample.masks, ds[0].masks)
    assert np.array_equal(sample.image, ds[0].image)
