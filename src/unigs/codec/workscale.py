"""Φ's work scale: a large decoded map is decoded on a box-averaged copy and its ids refined back.

The colour of a latent round trip varies at the latent scale (8 px for SD), so a decoded map whose short
side is ≥ 2·``work_size`` runs Φ (colours and clean-up) on a copy box-averaged by f = ⌊short side /
work_size⌋ (512² → 128² at the default 128), with ``min_area`` / f² (≥ 1). The ids come back to full
resolution by blocks: a block whose 3×3 block neighbourhood holds one id takes it; in a block at a
boundary every pixel takes the neighbourhood id of the closest mean colour (RGB, the id-less pixels' mean
standing for "none"), so boundaries are pixel-precise again (the midpoint of a blend, Fig. 3). Painted
maps (exact colours, tested on a 4-px subsample) and ``regions=False`` stay at full resolution. At the
shipped model's 128 px nothing changes (f = 1); docs/results.md measures the trade at 512 px.
"""

from __future__ import annotations

import numpy as np

from unigs.codec._loops import pixels
from unigs.codec.config import DichotomyConfig


def work_factor(shape: tuple[int, int], work_size: int | None) -> int:
    """Integer down-scaling f of a decoded map for the region clean-up: ⌊short side / work_size⌋ when the
    short side is ≥ 2·work_size, else 1 (None: always 1)."""
    if work_size is None:
        return 1
    f = min(shape) // work_size
    return f if f >= 2 else 1


def at_work_scale(img: np.ndarray, cfg: DichotomyConfig, decode_small):
    """(ids, colours, rank) of a large decoded map from ``decode_small(small_map, small_cfg)`` at 1/f scale
    brought back by :func:`upsample_ids`; None when the map runs at full resolution (small, painted, or
    ``regions=False``)."""
    f = work_factor(img.shape[:2], cfg.work_size) if cfg.regions else 1
    if f == 1 or looks_painted(img, cfg.max_clean_colors):
        return None
    small = box_down(img, f)
    small_cfg = cfg.replace(min_area=max(1, round(cfg.min_area / f**2)), work_size=None)
    ids, colors = decode_small(small, small_cfg)
    return upsample_ids(ids, colors, small, img, f)


def looks_painted(img: np.ndarray, max_colors: int) -> bool:
    """Cheap necessary test for a painted map: at most ``max_colors`` exact colours on a 4-px subsample
    (occupied 8-level bins first, which already rule out most decoded maps)."""
    if not pixels.few_bins(img, 4, 5, max_colors):
        return False
    q = img[::4, ::4].astype(np.int32)
    return len(np.unique((q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2])) <= max_colors


def box_down(img: np.ndarray, f: int) -> np.ndarray:
    """(H, W, 3) uint8 → (⌈H/f⌉, ⌈W/f⌉, 3) uint8 rounded means of f×f blocks (edge rows/columns repeated)."""
    return pixels.box_down(np.ascontiguousarray(img), int(f))


def upsample_ids(ids: np.ndarray, colors: np.ndarray, small: np.ndarray, img: np.ndarray, f: int):
    """Entity ids of a map decoded at 1/f scale → full resolution, and their colours, by area again.

    ids (h, w) int (−1: none) of ``small`` = box_down(img, f), colors (K, 3) uint8 per id. A full-res
    pixel of a block whose 3×3 block neighbourhood holds one id takes it; in a block at an entity
    boundary each pixel takes the neighbourhood id of the closest mean colour (RGB, means over ``small``;
    −1 stands for the mean of the pixels without an id, black if there are none; ties: the block's own
    id); compiled (:func:`unigs.codec._loops.pixels.refine_blocks`). Returns (ids (H, W), int8 for < 128
    ids, colors (K', 3) uint8, rank): output entity rank[i] is id i (−1: none left), K' ≤ K entities
    ordered by area at full resolution, descending (ties: colour ascending); rank None: the ids as they are.
    """
    k = len(colors)
    count, table = pixels.id_sums(ids, small, k + 1, 1)  # row 0: no id
    table /= np.maximum(count, 1)[:, None]
    table = np.ascontiguousarray(np.roll(table, -1, 0), np.float32)  # row i: mean of id i, last: no id
    h, w = ids.shape
    narrow = np.int8 if k < 2**7 else np.int16 if k < 2**15 else np.int32  # cheap full-res writes
    ids = np.ascontiguousarray(ids, np.int32)
    out = np.empty((h * f, w * f), narrow)  # every block's own id (numpy: a block row, copied f times) …
    out.reshape(h, f, w * f)[:] = np.repeat(ids.astype(narrow), f, 1)[:, None, :]
    out = out[:img.shape[0], :img.shape[1]]
    area = pixels.refine_blocks(ids, table, np.ascontiguousarray(img), int(f), k, out)[:k]  # … then the rest
    order = sorted(np.flatnonzero(area).tolist(), key=lambda i: (-area[i], *colors[i].tolist()))
    rank = None
    if order != list(range(k)):  # the areas at full resolution reorder the ids (or drop one)
        rank = np.full(k, -1, dtype=np.int64)
        rank[order] = np.arange(len(order))
    return out, colors[order].reshape(-1, 3), rank
