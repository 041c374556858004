"""unigs.data.coco: COCO / EntitySeg / OpenImages-style JSON → entity samples; bad data; results JSON."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from unigs.data.coco import CocoEntities, EntitySample
from unigs.data.coco_masks import annotation_mask, results_json
from unigs.io import masks_to_rle


def _coco_reference(data: dict) -> COCO:
    """pycocotools' own COCO object (annToMask is the reference rasteriser)."""
    coco = COCO()
    coco.dataset = copy.deepcopy(data)
    coco.createIndex()
    return coco


def _rle_str(mask: np.ndarray) -> dict:
    return masks_to_rle(mask[None])[0]


def _coco_dict() -> dict:
    """Image 1 (10 x 8): a polygon square, a crowd (uncompressed RLE), a compressed RLE; image 2: nothing."""
    rle_mask = np.zeros((8, 10), bool)
    rle_mask[5:8, 0:3] = True
    crowd_mask = np.zeros((8, 10), bool)
    crowd_mask[0:2, 6:10] = True
    # uncompressed RLE, column-major: columns 0-5 are empty (48 zeros), columns 6-9 are [1,1,0,0,0,0,0,0]
    counts = [48] + [2, 6] * 4
    crowd = {"size": [8, 10], "counts": counts}
    return {
        "images": [
            {"id": 1, "file_name": "one.png", "height": 8, "width": 10},
            {"id": 2, "file_name": "two.png", "height": 8, "width": 10},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 5, "name": "dog"}],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 16.0,
             "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
            {"id": 12, "image_id": 1, "category_id": 5, "iscrowd": 1, "area": 8.0, "segmentation": crowd},
            {"id": 13, "image_id": 1, "category_id": 5, "iscrowd": 0, "area": 9.0,
             "segmentation": _rle_str(rle_mask)},
        ],
        "_expected": {"crowd": crowd_mask, "rle": rle_mask},
    }


def _write(tmp_path, data: dict, images: dict[str, np.ndarray] | None = None):
    data = {k: v for k, v in data.items() if not k.startswith("_")}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    (tmp_path / "img").mkdir(exist_ok=True)
    for name, arr in (images or {}).items():
        Image.fromarray(arr).save(tmp_path / "img" / name)
    return path


# ------------------------------------------------------------------------------------------ COCO basics
def test_coco_masks_match_pycocotools_and_hand_answers(tmp_path):
    data = _coco_dict()
    expected = data["_expected"]
    ds = CocoEntities(_write(tmp_path, data), include_crowd=True)
    assert len(ds) == 1 and ds.skipped == {"no_entities": 1} and ds.skipped_ids["no_entities"] == [2]
    s = ds[0]
    assert s.image_id == 1 and s.names == ["cat", "dog", "dog"] and s.category_ids == [1, 5, 5]
    assert s.ann_ids == [11, 12, 13] and s.masks.shape == (3, 8, 10) and s.masks.dtype == bool
    ref = _coco_reference(data)
    for i, ann_id in enumerate(s.ann_ids):
        np.testing.assert_array_equal(s.masks[i], ref.annToMask(ref.anns[ann_id]).astype(bool))
    np.testing.assert_array_equal(s.masks[1], expected["crowd"])
    np.testing.assert_array_equal(s.masks[2], expected["rle"])
    assert s.masks[0, 3:6, 3:6].all() and not s.masks[0, 0].any()  # square (2,2)-(6,6) rasterised inside


def test_crowd_dropped_by_default_and_min_area(tmp_path):
    path = _write(tmp_path, _coco_dict())
    assert CocoEntities(path)[0].ann_ids == [11, 13]
    assert CocoEntities(path, min_area=10)[0].ann_ids == [11]
    ds = CocoEntities(path, min_area=100)
    assert len(ds) == 0 and ds.skipped["no_entities"] == 2


def test_unknown_category_and_image_raise(tmp_path):
    data = _coco_dict()
    data["annotations"][0]["category_id"] = 77
    with pytest.raises(ValueError, match="77"):
        CocoEntities(_write(tmp_path, data))
    data = _coco_dict()
    data["annotations"][0]["image_id"] = 99
    with pytest.raises(ValueError, match="annotation 11.*99"):
        CocoEntities(_write(tmp_path, data))


def test_bad_json_and_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        CocoEntities(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        CocoEntities(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="images"):
        CocoEntities({"annotations": []})
    with pytest.raises(FileNotFoundError, match="nodir"):
        CocoEntities(_coco_dict(), tmp_path / "nodir")
    with pytest.raises(ValueError, match="on_error"):
        CocoEntities(_coco_dict(), on_error="ignore")


# ----------------------------------------------------------------------------------------- image files
def test_images_lazy_missing_corrupt_and_wrong_size(tmp_path):
    data = _coco_dict()
    img = np.full((8, 10, 3), 77, np.uint8)
    path = _write(tmp_path, data)
    with pytest.raises(FileNotFoundError, match="one.png"):
        CocoEntities(path, tmp_path / "img")
    ds = CocoEntities(path, tmp_path / "img", on_error="skip")
    assert len(ds) == 0 and ds.skipped["missing_image"] == 1

    Image.fromarray(img).save(tmp_path / "img" / "one.png")
    s = CocoEntities(path, tmp_path / "img")[0]
    assert s._image is None  # lazy: nothing read yet
    np.testing.assert_array_equal(s.image, img)

    (tmp_path / "img" / "one.png").write_bytes(b"garbage")
    ds = CocoEntities(path, tmp_path / "img")
    with pytest.raises(ValueError, match="one.png"):
        ds[0].image  # noqa: B018
    ds = CocoEntities(path, tmp_path / "img", on_error="skip")
    assert list(ds) == [] and ds.skipped["bad_image"] == 1

    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "img" / "one.png")
    with pytest.raises(ValueError, match="5x5"):
        CocoEntities(path, tmp_path / "img")[0].image  # noqa: B018
    with pytest.raises(ValueError, match="without images_dir"):
        CocoEntities(path)[0].image  # noqa: B018


# ----------------------------------------------------------------------------------- geometry problems
def test_polygon_outside_image_is_clipped_with_warning():
    inside = annotation_mask([[2, 2, 10, 2, 10, 6, 2, 6]], 8, 10)
    with pytest.warns(UserWarning, match="annotation 7"):
        clipped = annotation_mask([[2, 2, 25, 2, 25, 6, 2, 6]], 8, 10, ann_id=7)
    np.testing.assert_array_equal(clipped, inside)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        annotation_mask([[0, 0, 10, 0, 10, 8, 0, 8]], 8, 10)  # exactly on the border: no warning
    assert not annotation_mask([[1, 1, 3, 3]], 8, 10).any()  # < 3 points ignored, not read as a box


def test_rle_of_wrong_size_names_annotation():
    with pytest.raises(ValueError, match="annotation 5"):
        annotation_mask(_rle_str(np.ones((4, 4), bool)), 8, 10, ann_id=5)
    with pytest.raises(ValueError, match="annotation 6"):
        annotation_mask("nonsense", 8, 10, ann_id=6)


# ----------------------------------------------------------------------------- EntitySeg / OpenImages
def test_entityseg_style_categories_and_stuff_flags():
    wall = np.zeros((6, 6), bool)
    wall[:3] = True
    person = np.zeros((6, 6), bool)
    person[4:, 2:4] = True
    data = {
        "images": [{"id": 3, "file_name": "sub/e.jpg", "height": 6, "width": 6}],
        "categories": [{"id": 1, "name": "wall", "isthing": 0}, {"id": 2, "name": "person", "type": "thing"},
                       {"id": 3, "name": "sky"}],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": 1, "segmentation": _rle_str(wall), "area": 18},
            {"id": 2, "image_id": 3, "category_id": 2, "segmentation": _rle_str(person), "area": 4},
        ],
    }
    s = CocoEntities(data)[0]
    assert s.names == ["wall", "person"] and s.isthing == [False, True] and s.file_name == "sub/e.jpg"
    np.testing.assert_array_equal(s.masks, np.stack([wall, person]))


def test_openimages_style_string_ids_no_area_images_without_annotations():
    m = np.zeros((4, 7), bool)
    m[1:3, 2:6] = True
    data = {
        "images": [{"id": "0a1b", "file_name": "0a1b.jpg", "height": 4, "width": 7},
                   {"id": "ffee", "file_name": "ffee.jpg", "height": 4, "width": 7}],
        "categories": [{"id": 601, "name": "Bicycle wheel"}],
        "annotations": [{"id": "a1", "image_id": "0a1b", "category_id": 601, "segmentation": _rle_str(m)}],
    }
    ds = CocoEntities(data, min_area=5)
    assert len(ds) == 1 and ds.skipped_ids["no_entities"] == ["ffee"]
    s = ds[0]
    assert s.image_id == "0a1b" and s.names == ["Bicycle wheel"] and s.ann_ids == ["a1"]
    np.testing.assert_array_equal(s.masks[0], m)
    assert len(CocoEntities(data, min_area=9)) == 0  # area computed from the mask (8 px) when absent


# ------------------------------------------------------------------------------------------ results_json
def test_results_json_known_box_and_loadres():
    masks = np.zeros((3, 8, 10), bool)
    masks[0, 2:5, 1:7] = True  # x 1..6, y 2..4 → bbox [1, 2, 6, 3], area 18
    masks[1, 6:8, 8:10] = True
    res = results_json(1, masks, scores=[0.9, 0.5, 0.1])
    assert len(res) == 2  # the empty third mask is left out
    assert res[0]["bbox"] == [1.0, 2.0, 6.0, 3.0] and res[0]["area"] == 18.0 and res[0]["score"] == 0.9
    json.dumps(res)
    gt = _coco_reference(_coco_dict())
    dt = gt.loadRes(res)
    np.testing.assert_array_equal(dt.annToMask(dt.anns[1]).astype(bool), masks[0])
    assert [r["category_id"] for r in results_json(1, masks[:2], category_id=[5, 1])] == [5, 1]
    with pytest.raises(ValueError, match="scores"):
        results_json(1, masks, scores=[1.0])
    with pytest.raises(ValueError, match="category"):
        results_json(1, masks, category_id=[1])


def test_entity_sample_checks_lengths():
    with pytest.raises(ValueError, match="2 masks"):
        EntitySample(1, "a.jpg", np.zeros((2, 3, 3), bool), ["a"], [1])


# -------------------------------------------------------------------------------------- real coco-mini
def test_coco_mini_val_matches_pycocotools(coco_mini):
    ann = coco_mini / "annotations" / "instances_val2017.json"
    ds = CocoEntities(ann, coco_mini / "val2017")
    ref = COCO(str(ann))
    assert len(ds) + sum(ds.skipped.values()) == len(ref.imgs)
    for i in (0, len(ds) - 1):
        s = ds[i]
        assert s.image.shape == (s.height, s.width, 3) and s.image.dtype == np.uint8
        for j, ann_id in enumerate(s.ann_ids):
            a = ref.anns[ann_id]
            assert not a["iscrowd"] and ref.cats[a["category_id"]]["name"] == s.names[j]
            np.testing.assert_array_equal(s.masks[j], ref.annToMask(a).astype(bool))
