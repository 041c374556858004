"""unigs.data.coco_checks and the reader's skip-and-count rules: wrong JSON types and values never reach
pycocotools (which allocates without bound on a null coordinate and decodes short RLEs from uninitialised
memory); each bad annotation is named, skipped and counted, and the rest of the file is used."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest

from unigs.data.coco import CocoEntities
from unigs.data.coco_checks import check_segmentation, compressed_rle_length
from unigs.data.coco_masks import annotation_mask
from unigs.io import masks_to_rle


def _data() -> dict:
    return {"images": [{"id": 1, "file_name": "a.png", "height": 8, "width": 10},
                       {"id": 2, "file_name": "b.png", "height": 8, "width": 10}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 11, "image_id": 1, "category_id": 1, "area": 16.0,
                             "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
                            {"id": 12, "image_id": 2, "category_id": 1, "area": 16.0,
                             "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]}]}


BAD_ANNOTATIONS = {
    "null coordinate": {"segmentation": [[2, None, 6, 2, 6, 6, 2, 6]]},
    "NaN coordinate": {"segmentation": [[2, float("nan"), 6, 2, 6, 6, 2, 6]]},
    "dict in polygon": {"segmentation": [[2, {"x": 1}, 6, 2, 6, 6]]},
    "int RLE counts": {"segmentation": {"size": [8, 10], "counts": 5}},
    "negative RLE counts": {"segmentation": {"size": [8, 10], "counts": [-5, 85]}},
    "short RLE": {"segmentation": {"size": [8, 10], "counts": [5, 10]}},
    "short compressed RLE": {"segmentation": {"size": [8, 10], "counts": "12"}},
    "RLE of another size": {"segmentation": {"size": [4, 4], "counts": [16]}},
    "NaN area": {"area": float("nan")},
    "negative area": {"area": -3},
    "string area": {"area": "big"},
    "iscrowd 7": {"iscrowd": 7},
    "list image id": {"image_id": [1]},
    "no segmentation": {"segmentation": None},
}


@pytest.mark.parametrize("name", sorted(BAD_ANNOTATIONS))
def test_bad_annotation_is_named_skipped_and_counted(name):
    data = _data()
    data["annotations"][0].update(BAD_ANNOTATIONS[name])
    if name == "no segmentation":
        del data["annotations"][0]["segmentation"]
    data = json.loads(json.dumps(data))
    with pytest.warns(UserWarning, match="annotation 11"):
        ds = CocoEntities(data)
    assert sum(ds.bad_annotations.values()) == 1
    assert [i for ids in ds.bad_annotation_ids.values() for i in ids] == [11]
    assert [s.image_id for s in ds] == [2]  # the rest of the file is used


@pytest.mark.parametrize("change, key", [
    ({"height": None}, "height"), ({"file_name": None}, "file_name"), ({"height": -8}, "height"),
    ({"id": [1]}, "id"), ({"height": 40000, "width": 40000}, "megapixels"),
])
def test_bad_image_entry_is_skipped_with_its_annotations(change, key):
    data = _data()
    data["images"][0].update(change)
    with pytest.warns(UserWarning, match=key):
        ds = CocoEntities(data)
    assert ds.skipped["bad_image_entry"] == 1 and ds.bad_annotations["image entry invalid"] == 1
    assert [s.image_id for s in ds] == [2]


def test_category_without_name_skips_its_annotations_and_file_level_errors_raise():
    data = _data()
    del data["categories"][0]["name"]
    with pytest.warns(UserWarning, match="name"):
        ds = CocoEntities(data)
    assert len(ds) == 0 and len(ds.bad_categories) == 1
    for broken, match in [({"annotations": {}}, "annotations"), ({"images": None}, "images"),
                          ({"categories": 3}, "categories")]:
        with pytest.raises(ValueError, match=match):
            CocoEntities({**_data(), **broken})


def test_file_that_is_not_json_a_folder_or_too_deep(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "latin.json").write_bytes(b'{"images": "\xff"}')
    for name in ("deep.json", "latin.json"):
        with pytest.raises(ValueError, match=name):
            CocoEntities(tmp_path / name)
    with pytest.raises(ValueError, match="folder"):
        CocoEntities(tmp_path)


def test_compressed_rle_length_matches_pycocotools_and_refuses_garbage():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((7, 9)) < rng.random()
        counts = masks_to_rle(mask)[0]["counts"]
        assert compressed_rle_length(counts) == 63
    for garbage in ("\x7f\x7f", "0a", "é"):
        with pytest.raises(ValueError, match="annotation 3"):
            compressed_rle_length(garbage, 3)


def test_annotation_mask_refuses_what_pycocotools_would_misread():
    with pytest.raises(ValueError, match="annotation 9.*sum"):
        annotation_mask({"size": [8, 10], "counts": [5, 10]}, 8, 10, ann_id=9)
    with pytest.raises(ValueError, match="annotation 9.*NaN"):
        annotation_mask([[1, 1, float("nan"), 2, 3, 3]], 8, 10, ann_id=9)
    check_segmentation({"size": [8, 10], "counts": [80]}, 8, 10)  # a full-length RLE is fine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycocotools' numpy-2 notice
        assert not annotation_mask({"size": [8, 10], "counts": [80]}, 8, 10).any()


def test_untouched_file_has_no_bad_entries():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ds = CocoEntities(copy.deepcopy(_data()))
    assert len(ds) == 2 and not ds.bad_annotations and not ds.skipped
