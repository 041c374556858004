"""Property-based fuzzing of the input boundaries (hypothesis): the COCO reader, the palette Ψ, the decoder Φ
and the image loader take random shapes, dtypes, NaN/inf, wrong JSON types and truncated bytes, and either
work or raise the documented `ValueError` / `FileNotFoundError` — never another exception — with bounded
memory. Examples are few and small so that the default suite stays fast; the seed is fixed (derandomize)."""

from __future__ import annotations

import io
import json
import resource
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from unigs.codec import dichotomy, palette
from unigs.data.coco import CocoEntities
from unigs.io import load_image

FAST = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
DOCUMENTED = (ValueError, FileNotFoundError)
MEMORY_BOUND_MB = 1500  # peak RSS growth per fuzz test (a null polygon coordinate used to take 16 GB)

# JSON values of every type, including the ones pycocotools chokes on (null, NaN, nested, huge).
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=5),
                         st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                                 st.dictionaries(st.text(max_size=6), inner,
                                                                                 max_size=3)),
                           max_leaves=12)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def memory_bound():
    before = _max_rss_mb()
    yield
    assert _max_rss_mb() - before < MEMORY_BOUND_MB


def _base() -> dict:
    return {"images": [{"id": 1, "file_name": "a.png", "height": 12, "width": 10},
                       {"id": 2, "file_name": "b.png", "height": 12, "width": 10}],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            "annotations": [
                {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 16.0,
                 "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
                {"id": 12, "image_id": 1, "category_id": 2, "iscrowd": 1, "area": 8.0,
                 "segmentation": {"size": [12, 10], "counts": [50, 4, 66]}},
                {"id": 13, "image_id": 2, "category_id": 2, "iscrowd": 0,
                 "segmentation": {"size": [12, 10], "counts": "W2"}}]}


PATHS = [("images", 0, "id"), ("images", 0, "height"), ("images", 1, "width"), ("images", 0, "file_name"),
         ("categories", 0, "name"), ("categories", 1, "id"), ("annotations", 0, "segmentation"),
         ("annotations", 0, "area"), ("annotations", 0, "image_id"), ("annotations", 1, "iscrowd"),
         ("annotations", 1, "segmentation"), ("annotations", 2, "segmentation"), ("annotations", 0, "id")]


@FAST
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=3),
       st.lists(json_values, max_size=8))
def test_coco_reader_takes_any_mutation(memory_bound, mutations, polygon):
    data = _base()
    data["annotations"].append({"id": 14, "image_id": 2, "category_id": 1, "segmentation": [polygon]})
    for (table, index, key), value in mutations:
        data[table][index][key] = value
    data = json.loads(json.dumps(data))  # what a file holds (NaN/inf survive as Python's json writes them)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = CocoEntities(data)
        except DOCUMENTED:
            return
        for sample in ds:
            assert sample.masks.dtype == bool and sample.masks.shape[1:] == (12, 10)
            assert len(sample.masks) == len(sample.names) >= 1
        # a bad RLE is never decoded from uninitialised memory: decoding twice gives the same masks
        for i in range(len(ds)):
            assert np.array_equal(ds[i].masks, ds[i].masks)


@FAST
@given(st.one_of(st.binary(max_size=64), st.integers(0, 400)))
def test_image_loader_takes_random_and_truncated_bytes(tmp_path, memory_bound, blob):
    path = tmp_path / "x.img"
    if isinstance(blob, int):  # a valid PNG cut after `blob` bytes
        buffer = io.BytesIO()
        Image.fromarray(np.arange(300, dtype=np.uint8).reshape(10, 10, 3)).save(buffer, format="PNG")
        blob = buffer.getvalue()[:blob]
    path.write_bytes(blob)
    try:
        image = load_image(path)
    except DOCUMENTED:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@FAST
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]), st.tuples(st.integers(1, 6), st.integers(1, 6)),
                  elements=st.floats(allow_nan=True, allow_infinity=True, width=32)))
def test_image_loader_takes_float_tiffs(tmp_path, pixels):
    path = tmp_path / "x.tif"
    Image.fromarray(pixels.astype(np.float32)).save(path)
    try:
        image = load_image(path)
    except DOCUMENTED:
        assert not np.isfinite(pixels).all()
        return
    finite = pixels.astype(np.float32)
    if finite.max() <= 1.0 and finite.min() >= 0:  # [0, 1] floats are scaled, not read as black
        np.testing.assert_allclose(image[..., 0], np.rint(finite * 255), atol=1)


mask_arrays = hnp.arrays(st.sampled_from([bool, np.uint8, np.int64, np.float32]),
                         st.tuples(st.integers(0, 4), st.integers(0, 12), st.integers(0, 12)),
                         elements=st.integers(0, 1))


@FAST
@given(mask_arrays, st.integers(-1, 13))
def test_palette_takes_any_mask_stack(masks, grid):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            colormap = palette.encode(masks, grid=grid)
        except DOCUMENTED:
            return
    assert colormap.dtype == np.uint8 and colormap.shape == (*masks.shape[1:], 3)


@FAST
@given(hnp.arrays(st.sampled_from([np.uint8, np.float32, np.int16]),
                  st.one_of(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 4)),
                            st.tuples(st.integers(0, 20), st.integers(0, 20))),
                  elements=st.integers(0, 255)),
       st.floats(allow_nan=True, allow_infinity=True))
def test_phi_takes_any_array_and_delta(colormap, delta):
    try:
        masks = dichotomy.decode(colormap, delta=delta)
    except DOCUMENTED:
        return
    assert masks.dtype == bool and masks.shape[1:] == colormap.shape[:2]
