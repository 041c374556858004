"""Mask records in the format of SAM's automatic mask generator, which users already parse.

One record per mask (SAM's `SamAutomaticMaskGenerator.generate` keys where they apply, plus COCO's result
keys so that `COCO.loadRes` reads a list of them unchanged):

    {"image_id", "category_id": 1,             COCO result keys (class-agnostic)
     "segmentation",                            COCO RLE (output_mode "coco_rle", default) or an H×W 0/1 list
                                                of lists ("binary_mask")
     "area", "bbox": [x, y, w, h],              pixels, XYWH as in SAM and COCO
     "score",                                   colour purity (below), in [0, 1]
     "name"}                                    the entity name the mask answers, only where it is known

**What the score is.** UniGS predicts a colormap, not a confidence; a mask is trustworthy when its pixels in
the predicted colormap agree on one palette colour (paper §3.2: every entity is painted in one flat colour
of the palette). `color_purity` is the share of the mask's pixels whose colour rounds (per channel, to the
nearest palette level 0/64/128/192/255) to the mask's most common rounded colour: 1.0 for a flat colour,
lower where the model blended colours or hesitated between cells. COCO AP ranks detections by it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unigs.codec.palette import LEVELS
from unigs.data.coco_masks import results_json

OUTPUT_MODES = ("coco_rle", "binary_mask")


def color_purity(colormap: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Colour purity of each mask in `colormap` (module docstring).

    Args:
        colormap: `(H, W, 3) uint8` in [0, 255].
        masks: `(K, H, W) bool`.

    Returns:
        `(K,) float64` in [0, 1]; 0.0 for an empty mask.
    """
    colormap, masks = np.asarray(colormap), np.asarray(masks, dtype=bool)
    if colormap.ndim != 3 or colormap.shape[-1] != 3 or masks.ndim != 3 \
            or masks.shape[1:] != colormap.shape[:2]:
        raise ValueError(f"need a (H, W, 3) colormap and (K, H, W) masks of its size, got shapes "
                         f"{colormap.shape} and {masks.shape}")
    step = LEVELS[1] - LEVELS[0]
    level = np.clip(np.floor(colormap.astype(np.float64) / step + 0.5), 0, len(LEVELS) - 1).astype(np.int64)
    code = (level[..., 0] * len(LEVELS) + level[..., 1]) * len(LEVELS) + level[..., 2]
    scores = np.zeros(len(masks))
    for k, m in enumerate(masks):
        counts = np.bincount(code[m], minlength=len(LEVELS) ** 3)
        total = counts.sum()
        scores[k] = counts.max() / total if total else 0.0
    return scores


def check_output_mode(output_mode: str) -> str:
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"output_mode must be one of {list(OUTPUT_MODES)}, is {output_mode!r}")
    return output_mode


def mask_records(masks: np.ndarray, scores: Sequence[float] | np.ndarray, image_id: int = 0,
                 names: Sequence[str | None] | None = None, output_mode: str = "coco_rle") -> list[dict]:
    """SAM/COCO mask records of one image (module docstring); empty masks are left out.

    Args:
        masks: `(K, H, W) bool` at the image's own size.
        scores: K scores (`color_purity`).
        image_id: the COCO image id the records refer to.
        names: K entity names (None where unknown), or None.
        output_mode: "coco_rle" (default) or "binary_mask".
    """
    check_output_mode(output_mode)
    masks = np.asarray(masks, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    names = list(names) if names is not None else [None] * len(masks)
    if not (len(scores) == len(names) == len(masks)):
        raise ValueError(f"got {len(masks)} masks, {len(scores)} scores and {len(names)} names")
    keep = masks.reshape(len(masks), -1).any(1)
    records = results_json(image_id, masks[keep], scores=scores[keep])
    kept_names = [n for n, k in zip(names, keep, strict=True) if k]
    for record, mask, name in zip(records, masks[keep], kept_names, strict=True):
        if output_mode == "binary_mask":
            record["segmentation"] = mask.astype(np.uint8).tolist()
        if name is not None:
            record["name"] = name
    return records
