"""The COCO JSON boundary: check every entry's types and values *before* pycocotools sees it.

pycocotools trusts its input. A null or NaN polygon coordinate makes `frPyObjects` allocate without bound (or
segfault under a memory cap); negative RLE counts overflow; an RLE whose counts do not sum to H×W is decoded
from uninitialised memory (a different mask on every call); a list as an id is unhashable. So each entry is
checked here, and a failure is a `ValueError` whose sentence names the entry (annotation id, image id or
category index). `unigs.data.coco.CocoEntities` decides what to do with it (skip and count, or raise).

Accepted:
- ids: int or str (not bool).
- image entry: a dict with an id, a non-empty str `file_name`, integer `height` and `width` >= 1 whose
  product is within the image pixel limit (`unigs.io.max_pixels`).
- category entry: a dict with an id and a str `name`.
- segmentation: a list of polygons, each a flat list of >= 0 finite numbers (fewer than 3 points are
  ignored later), or an RLE dict `{"size": [H, W], "counts": ...}` whose size is the image's and whose
  counts — a list of non-negative integers, or a compressed str — sum to H×W.
- `area`: a finite number >= 0, or null/missing (then computed from the mask). `iscrowd`: 0, 1 or bool.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from unigs.io import check_image_size

MAX_UINT32 = 2**32 - 1  # pycocotools stores RLE counts as uint32


def is_id(value: Any) -> bool:
    """A usable COCO id: int or str, not bool (lists and dicts are not hashable; floats are ambiguous)."""
    return isinstance(value, int | str) and not isinstance(value, bool)


def _integer(value: Any) -> int | None:
    """`value` as an int if it is an integral number (480 or 480.0), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    return int(value) if np.isfinite(value) and float(value).is_integer() else None


def check_image_entry(img: Any, index: int) -> tuple[Any, int, int]:
    """`(id, height, width)` of an `images[index]` entry; ValueError naming it when it is not usable."""
    if not isinstance(img, dict):
        raise ValueError(f"images[{index}] must be an object, is {type(img).__name__}")
    name = f"image {img.get('id')!r}" if is_id(img.get("id")) else f"images[{index}]"
    missing = [k for k in ("id", "file_name", "height", "width") if img.get(k) is None]
    if missing:
        raise ValueError(f"{name} lacks {missing}")
    if not is_id(img["id"]):
        raise ValueError(f"{name}: id must be an int or a string, is {img['id']!r}")
    if not isinstance(img["file_name"], str) or not img["file_name"].strip():
        raise ValueError(f"{name}: file_name must be a non-empty string, is {img['file_name']!r}")
    h, w = _integer(img["height"]), _integer(img["width"])
    if h is None or w is None or h < 1 or w < 1:
        raise ValueError(f"{name}: height and width must be integers >= 1, are {img['height']!r} and "
                         f"{img['width']!r}")
    check_image_size(h, w, name)
    return img["id"], h, w


def check_category(cat: Any, index: int) -> tuple[Any, str]:
    """`(id, name)` of a `categories[index]` entry; ValueError naming it when it is not usable."""
    if not isinstance(cat, dict):
        raise ValueError(f"categories[{index}] must be an object, is {type(cat).__name__}")
    if not is_id(cat.get("id")):
        raise ValueError(f"categories[{index}]: id must be an int or a string, is {cat.get('id')!r}")
    if not isinstance(cat.get("name"), str):
        raise ValueError(f"category {cat['id']!r} (categories[{index}]) has no string 'name': "
                         f"{cat.get('name')!r}")
    return cat["id"], cat["name"]


def check_area(value: Any, ann_id: Any) -> float | None:
    """The annotation's `area` as a float, None when null/missing; ValueError when not finite and >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"annotation {ann_id}: area must be a finite number >= 0, is {value!r}")
    return float(value)


def check_iscrowd(value: Any, ann_id: Any) -> bool:
    if value in (None, 0, 1) and not isinstance(value, float):
        return bool(value)
    raise ValueError(f"annotation {ann_id}: iscrowd must be 0 or 1, is {value!r}")


def check_segmentation(segmentation: Any, height: int, width: int, ann_id: Any = None) -> None:
    """Raise a ValueError naming `ann_id` unless `segmentation` is safe to give pycocotools (module doc)."""
    if isinstance(segmentation, list):
        for k, poly in enumerate(segmentation):
            _check_polygon(poly, k, ann_id)
    elif isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            raise ValueError(f"annotation {ann_id}: an RLE segmentation needs 'size' and 'counts', has "
                             f"{sorted(map(str, segmentation))}")
        _check_rle(segmentation, height, width, ann_id)
    else:
        raise ValueError(f"annotation {ann_id}: segmentation must be polygons or an RLE dict, "
                         f"got {type(segmentation).__name__}")


def _check_polygon(poly: Any, k: int, ann_id: Any) -> None:
    if not isinstance(poly, list | tuple):
        raise ValueError(f"annotation {ann_id}: polygon {k} must be a list of numbers, is "
                         f"{type(poly).__name__}")
    try:
        arr = np.asarray(poly)
    except (ValueError, TypeError, OverflowError):
        arr = np.asarray([], dtype=object)
    if arr.dtype.kind not in "iuf" or arr.ndim != 1:
        raise ValueError(f"annotation {ann_id}: polygon {k} must be a flat list of numbers, holds "
                         f"{_sample(poly)}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"annotation {ann_id}: polygon {k} holds a NaN or infinite coordinate")


def _check_rle(rle: dict, height: int, width: int, ann_id: Any) -> None:
    size = rle["size"]
    if (not isinstance(size, list | tuple) or len(size) != 2 or any(_integer(v) is None for v in size)):
        raise ValueError(f"annotation {ann_id}: RLE size must be [height, width], is {size!r}")
    size = [_integer(v) for v in size]
    if size != [height, width]:
        raise ValueError(f"annotation {ann_id}: RLE size {size} does not match the image size "
                         f"{[height, width]}")
    counts = rle["counts"]
    if isinstance(counts, list):
        arr = np.asarray(counts) if counts else np.zeros(0, np.int64)
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise ValueError(f"annotation {ann_id}: RLE counts must be a list of integers, holds "
                             f"{_sample(counts)}")
        if arr.size and (arr.min() < 0 or arr.max() > MAX_UINT32):
            raise ValueError(f"annotation {ann_id}: RLE counts must be in [0, 2**32), holds "
                             f"{int(arr.min())} .. {int(arr.max())}")
        total = int(arr.sum(dtype=np.int64))
    elif isinstance(counts, str | bytes):
        total = compressed_rle_length(counts, ann_id)
    else:
        raise ValueError(f"annotation {ann_id}: RLE counts must be a list or a string, is "
                         f"{type(counts).__name__}")
    if total != height * width:
        raise ValueError(f"annotation {ann_id}: RLE counts sum to {total}, not height x width = "
                         f"{height * width}")


def compressed_rle_length(counts: str | bytes, ann_id: Any = None) -> int:
    """The number of pixels a compressed COCO RLE string covers (the sum of its runs).

    The decoder of pycocotools' `rleFrString` (5-bit groups, continuation bit 0x20, sign bit 0x10, runs
    from the third on stored as the difference to the run two before), checking what it does not: every
    character in '0'..'o', no dangling group, no negative run.
    """
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"annotation {ann_id}: compressed RLE counts are not ASCII") from None
    runs: list[int] = []
    p, n = 0, len(counts)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError(f"annotation {ann_id}: compressed RLE counts end inside a number")
            c = counts[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"annotation {ann_id}: compressed RLE counts hold the byte {counts[p]!r}, "
                                 "outside '0'..'o'")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0 or x > MAX_UINT32:
            raise ValueError(f"annotation {ann_id}: compressed RLE counts decode to a run of {x}")
        runs.append(x)
    return sum(runs)


def _sample(values: Any) -> str:
    """A short description of what a list holds, for error messages."""
    items = values if isinstance(values, list | tuple) else [values]
    bad = [v for v in items if isinstance(v, bool) or not isinstance(v, numbers.Real)]
    shown = repr(bad[0]) if bad else "nested lists"
    return shown if len(shown) <= 40 else shown[:37] + "..."
