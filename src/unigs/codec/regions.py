"""Region clean-up of Φ: connected regions of the dichotomy's leaves, merged and re-assigned so that a real
VAE round trip (texture, colour shifts, blurred edges against black) decodes to whole entities.

Split out of :mod:`unigs.codec.dichotomy`, whose module docstring describes the rules (point 3 of its
conventions); ``decode(..., regions=False)`` skips this stage.
"""

from __future__ import annotations

import numpy as np

from unigs.codec import kernels, merge
from unigs.codec.dichotomy import LAB_SCALE, RGB_SCALE, _group_sums

MERGE_FACTOR = 2.0  # touching regions closer than MERGE_FACTOR · δ (squared) are one entity
MIDPOINT_STEPS = 3  # fixed-point steps for an entity's core colour (kernels.midpoint)

def _regions(labels: np.ndarray, k: int, bg_id: int, img: np.ndarray, *, features: str, min_area: int,
             delta: float) -> tuple[np.ndarray, bool]:
    """The region clean-up (dichotomy module docstring, "Regions", steps A–B3) of a leaf map.

    labels (H, W) leaf ids in [0, k), bg_id the background leaf (−1: none), img (H, W, 3) uint8. Returns
    ((H, W) int64 entity keys 0.., has_background): with background, key 0 is the background. The regions
    and their sums here; the merging is one compiled walk (:func:`unigs.codec.merge.merge_regions`).
    """
    comp, m, pa, pb, cnt = kernels.components(labels)
    cleaf = np.zeros(m, np.int64)
    cleaf[comp.reshape(-1)] = labels.reshape(-1)
    csize, crgb = kernels.id_sums(comp, img, m, 0)
    crgb /= csize[:, None]  # exact mean colour of each region
    return merge.merge_regions(comp, img, pa, pb, cnt, cleaf, csize, crgb, int(bg_id), float(min_area),
                               float(delta), MERGE_FACTOR, "rgb" in features, "lab" in features, RGB_SCALE,
                               LAB_SCALE)


def _finish(labels, k, bg_id, img, *, clean, regions, features, keep_background, min_area, delta,
            snap_to_palette, background_level):
    """Leaves → output ids (H, W) int64 (−1: none) and colours (K, 3) uint8, by area descending.

    ``labels`` (H, W) leaf id per pixel in [0, k), ``bg_id`` the background leaf (−1: none), ``img`` the
    (H, W, 3) uint8 numpy colormap.
    """
    if regions and not clean and k > 1:
        pix, has_bg = _regions(labels, k, bg_id, img, features=features, min_area=min_area, delta=delta)
        if has_bg:
            pix = kernels.fill_holes(kernels.midpoint(pix, img, MIDPOINT_STEPS), min_area)
        bg = np.zeros(int(pix.max()) + 1, bool)
        bg[0] = has_bg
    else:  # painted map (or regions=False): the leaves are the entities
        pix = labels
        bg = np.zeros(k, bool)
        if bg_id >= 0:
            bg[bg_id] = True
    n = len(bg)
    size, color = kernels.id_sums(pix, img, n, 0)
    color /= np.maximum(size, 1)[:, None]
    key = np.arange(n)
    if snap_to_palette:  # entities that snap to one palette colour are one entity
        from unigs.codec.palette import PALETTE, nearest_palette_index

        idx = nearest_palette_index(color)
        color = np.where(idx[:, None] >= 0, PALETTE[np.maximum(idx, 0)], 0).astype(np.float64)
        key = idx + 1  # 0 = black
    bg |= (color < background_level).all(1)
    key = np.where(bg, -1, key)  # every near-black entity → one background entity
    key = np.where(size > 0, key, -2)  # ids no pixel has
    _, group = np.unique(key, return_inverse=True)
    g = int(group.max()) + 1
    g_size = np.bincount(group, weights=size, minlength=g)
    g_color = _group_sums(group, g, color * size[:, None]) / np.maximum(g_size, 1)[:, None]
    g_drop = ((np.bincount(group, weights=bg, minlength=g) > 0) & (not keep_background)) | (g_size == 0)
    order = sorted((i for i in range(g) if not g_drop[i]), key=lambda i: (-g_size[i], *g_color[i]))
    rank = np.full(g, -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[group][pix], np.clip(np.round(g_color[order]), 0, 255).astype(np.uint8).reshape(-1, 3)


# ------------------------------------------------------------------------------------- work scale
def work_factor(shape: tuple[int, int], work_size: int | None) -> int:
    """Integer down-scaling f of a decoded map for the region clean-up: ⌊short side / work_size⌋ when the
    short side is ≥ 2·work_size, else 1 (None: always 1)."""
    if work_size is None:
        return 1
    f = min(shape) // work_size
    return f if f >= 2 else 1


def at_work_scale(img: np.ndarray, work_size: int | None, max_colors: int, min_area: int, decode_small):
    """The work scale of Φ (dichotomy module docstring): (ids, colours, rank) of a large decoded map, from
    ``decode_small(small_map, small_min_area)`` at 1/f scale brought back by :func:`upsample_ids`; None
    when the map runs at full resolution (small, or painted)."""
    f = work_factor(img.shape[:2], work_size)
    if f == 1 or looks_painted(img, max_colors):
        return None
    small = box_down(img, f)
    ids, colors = decode_small(small, max(1, round(min_area / f**2)))
    return upsample_ids(ids, colors, small, img, f)


def looks_painted(img: np.ndarray, max_colors: int) -> bool:
    """Cheap necessary test for a painted map: at most ``max_colors`` exact colours on a 4-px subsample
    (occupied 8-level bins first, which already rule out most decoded maps)."""
    if not kernels.few_bins(img, 4, 5, max_colors):
        return False
    q = img[::4, ::4].astype(np.int32)
    return len(np.unique((q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2])) <= max_colors


def box_down(img: np.ndarray, f: int) -> np.ndarray:
    """(H, W, 3) uint8 → (⌈H/f⌉, ⌈W/f⌉, 3) uint8 rounded means of f×f blocks (edge rows/columns repeated)."""
    return kernels.box_down(np.ascontiguousarray(img), int(f))


def upsample_ids(ids: np.ndarray, colors: np.ndarray, small: np.ndarray, img: np.ndarray, f: int):
    """Entity ids of a map decoded at 1/f scale → full resolution, and their colours, by area again.

    ids (h, w) int (−1: none) of ``small`` = box_down(img, f), colors (K, 3) uint8 per id. A full-res
    pixel of a block whose 3×3 block neighbourhood holds one id takes it; in a block at an entity
    boundary each pixel takes the neighbourhood id of the closest mean colour (RGB, means over ``small``;
    −1 stands for the mean of the pixels without an id, black if there are none; ties: the block's own
    id): the boundary moves back to pixel precision, the midpoint of a blend (Fig. 3); compiled
    (:func:`unigs.codec.kernels.refine_blocks`). Returns (ids (H, W), int8 for < 128 ids, colors (K', 3)
    uint8, rank): output entity rank[i] is id i (−1: none left), K' ≤ K entities ordered by area at full
    resolution, descending (ties: colour ascending), as :func:`_finish`; rank None: the ids as they are.
    """
    k = len(colors)
    count, table = kernels.id_sums(ids, small, k + 1, 1)  # row 0: no id
    table /= np.maximum(count, 1)[:, None]
    table = np.ascontiguousarray(np.roll(table, -1, 0), np.float32)  # row i: mean of id i, last: no id
    h, w = ids.shape
    narrow = np.int8 if k < 2**7 else np.int16 if k < 2**15 else np.int32  # cheap full-res writes
    ids = np.ascontiguousarray(ids, np.int32)
    out = np.empty((h * f, w * f), narrow)  # every block's own id (numpy: a block row, copied f times) …
    out.reshape(h, f, w * f)[:] = np.repeat(ids.astype(narrow), f, 1)[:, None, :]
    out = out[:img.shape[0], :img.shape[1]]
    area = kernels.refine_blocks(ids, table, np.ascontiguousarray(img), int(f), k, out)[:k]  # … then the rest
    order = sorted(np.flatnonzero(area).tolist(), key=lambda i: (-area[i], *colors[i].tolist()))
    rank = None
    if order != list(range(k)):  # the areas at full resolution reorder the ids (or drop one)
        rank = np.full(k, -1, dtype=np.int64)
        rank[order] = np.arange(len(order))
    return out, colors[order].reshape(-1, 3), rank
