"""COCO segmentations ↔ boolean masks: the reader's rasteriser and the writer of result entries.

`annotation_mask` turns one annotation's `segmentation` (polygons, uncompressed or compressed RLE) into an
`(H, W) bool` mask, as `COCO.annToMask` does (`unigs.data.coco` reads datasets with it);
`results_json` turns predicted masks into the result entries `COCO.loadRes` reads (`unigs eval`, the
SAM-style records of `unigs.records`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from unigs.data.coco_checks import check_segmentation
from unigs.io import masks_to_rle


def annotation_mask(segmentation: Any, height: int, width: int, ann_id: Any = None) -> np.ndarray:
    """Rasterise one COCO `segmentation` (polygons, uncompressed RLE or compressed RLE).

    Polygon points outside [0, W] × [0, H] are clipped with a `UserWarning` naming `ann_id`.

    Returns:
        `(H, W) bool`.

    Raises:
        ValueError: naming `ann_id`, for anything `coco_checks.check_segmentation` refuses.
    """
    check_segmentation(segmentation, height, width, ann_id)
    if isinstance(segmentation, list):
        polys = []
        clipped = False
        for poly in segmentation:
            p = np.asarray(poly, dtype=np.float64).reshape(-1)
            if p.size < 6 or p.size % 2:
                continue  # degenerate: fewer than 3 points
            xs, ys = p[0::2], p[1::2]
            if xs.min() < 0 or ys.min() < 0 or xs.max() > width or ys.max() > height:
                clipped = True
                p = p.copy()
                p[0::2] = np.clip(xs, 0, width)
                p[1::2] = np.clip(ys, 0, height)
            polys.append(p.tolist())
        if clipped:
            warnings.warn(f"annotation {ann_id}: polygon points outside the {width}x{height} image were "
                          "clipped", UserWarning, stacklevel=2)
        if not polys:
            return np.zeros((height, width), dtype=bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    else:
        size = [int(v) for v in segmentation["size"]]
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects({"size": size, "counts": [int(c) for c in counts]}, height, width)
        else:
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(rle).astype(bool)


def results_json(
    image_id: Any,
    masks: np.ndarray,
    scores: Sequence[float] | np.ndarray | None = None,
    category_id: int | Sequence[int] = 1,
) -> list[dict]:
    """COCO result entries (what `COCO.loadRes` reads) for one image's predicted masks.

    Empty masks are left out: they cannot match anything and have no box.

    Args:
        image_id: the image id the entries refer to.
        masks: `(N, H, W)` bool.
        scores: N confidences in [0, 1]; default 1.0 each.
        category_id: one id for all (class-agnostic evaluation uses 1) or N ids.

    Returns:
        list of `{"image_id", "category_id", "segmentation": RLE (counts str), "bbox": [x, y, w, h],
        "area", "score"}`.
    """
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    n = len(masks)
    scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != n:
        raise ValueError(f"got {len(scores)} scores for {n} masks")
    cat_ids = [category_id] * n if np.isscalar(category_id) else list(category_id)
    if len(cat_ids) != n:
        raise ValueError(f"got {len(cat_ids)} category ids for {n} masks")
    out = []
    for rle, score, cat in zip(masks_to_rle(masks), scores, cat_ids, strict=True):
        coco_rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        area = float(mask_utils.area(coco_rle))
        if area == 0:
            continue
        out.append({
            "image_id": image_id,
            "category_id": int(cat),
            "segmentation": rle,
            "bbox": [float(v) for v in mask_utils.toBbox(coco_rle)],
            "area": area,
            "score": float(score),
        })
    return out
