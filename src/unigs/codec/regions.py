"""Region clean-up of Φ: connected regions of the dichotomy's leaves, merged and re-assigned so that a real
VAE round trip (texture, colour shifts, blurred edges against black) decodes to whole entities.

Split out of :mod:`unigs.codec.dichotomy`, whose module docstring describes the rules (point 3 of its
conventions); ``decode(..., regions=False)`` skips this stage.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import label as _label

from unigs.codec import kernels
from unigs.codec.dichotomy import RGB_SCALE, _features_np, _group_sums, _segment_residual

MERGE_FACTOR = 2.0  # touching regions closer than MERGE_FACTOR · δ (squared) are one entity
MIDPOINT_STEPS = 3  # fixed-point steps for an entity's core colour (_midpoint)

def _colour_sums(ids: np.ndarray, img: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) float64 sums of the (H, W, 3) image's colours per id; ``ids`` the flat ids in [0, n)."""
    return np.stack([np.bincount(ids, weights=img[..., c].reshape(-1), minlength=n) for c in range(3)], 1)


def _components(labels: np.ndarray):
    """4-connected regions of equal leaf id: (H, W) int64 ids 0..m−1, m, and every pair of touching
    regions once, (pa, pb) with pa < pb and their shared boundary length ``count`` in pixel edges."""
    comp = _label(labels, background=-1, connectivity=1) - 1
    m = int(comp.max()) + 1
    codes = []
    for a, b in ((comp[:, 1:], comp[:, :-1]), (comp[1:], comp[:-1])):
        diff = a != b
        codes.append(np.minimum(a[diff], b[diff]) * m + np.maximum(a[diff], b[diff]))
    pairs, count = np.unique(np.concatenate(codes), return_counts=True)
    return comp, m, pairs // m, pairs % m, count


def _regions(labels: np.ndarray, k: int, bg_id: int, img: np.ndarray, *, features: str, min_area: int,
             delta: float) -> np.ndarray:
    """The region clean-up (module docstring, "Regions", steps A–B3) of a leaf map.

    labels (H, W) leaf ids in [0, k), bg_id the background leaf (−1: none), img (H, W, 3) uint8. Returns
    (H, W) int64 entity keys: −1 background, else an arbitrary id per entity.
    """
    comp, m, pa, pb, cnt = _components(labels)
    flat = comp.reshape(-1)
    cleaf = np.zeros(m, np.int64)
    cleaf[flat] = labels.reshape(-1)
    csize = np.bincount(flat, minlength=m).astype(np.float64)
    crgb = _colour_sums(flat, img, m)
    crgb /= csize[:, None]  # exact mean colour of each region
    parent = np.arange(m)
    ids = np.arange(m)
    for _ in range(8):  # A: every tiny group points at its best neighbour; again for still-tiny groups
        size = np.bincount(parent, weights=csize, minlength=m)
        u, v = parent[pa], parent[pb]
        src, dst, bnd = np.concatenate((u, v)), np.concatenate((v, u)), np.concatenate((cnt, cnt))
        sel = (src != dst) & (size[src] < min_area)
        if not sel.any():
            break
        src, dst, bnd = src[sel], dst[sel], bnd[sel]
        rgb_sum = _group_sums(parent, m, crgb * csize[:, None])
        nodes, inv = np.unique(np.concatenate((src, dst)), return_inverse=True)
        f = _features_np(rgb_sum[nodes] / size[nodes, None], features)
        d2 = ((f[inv[: len(src)]] - f[inv[len(src):]]) ** 2).sum(1)
        order = np.lexsort((-bnd, d2, src))  # per source: closest colour, then longest boundary
        first = np.ones(len(order), bool)
        first[1:] = src[order][1:] != src[order][:-1]
        parent[src[order[first]]] = dst[order[first]]
        parent = np.where(parent[parent] == ids, np.minimum(parent, ids), parent)  # 2-cycles: one root
        while not (parent[parent] == parent).all():  # pointer jumping to the roots
            parent = parent[parent]
    _, group = np.unique(parent, return_inverse=True)
    g = int(group.max()) + 1
    gsize = np.bincount(group, weights=csize, minlength=g)
    grgb = _group_sums(group, g, crgb * csize[:, None])  # Σ colour · px, per group
    isbg = np.bincount(group, weights=csize * (cleaf == bg_id), minlength=g) * 2 > gsize
    eu, ev = group[pa], group[pb]
    root = np.arange(g)
    alive = ~isbg
    tau = MERGE_FACTOR * delta
    black = grgb[isbg].sum(0) / gsize[isbg].sum() * RGB_SCALE if isbg.any() else None

    def join(src: np.ndarray, dst: np.ndarray) -> None:  # groups src → dst (roots, dst not in src)
        np.add.at(gsize, dst, gsize[src])
        np.add.at(grgb, dst, grgb[src])
        root[src] = dst
        alive[src] = False
        root[:] = root[root]

    blends: dict[int, np.ndarray] = {}
    for dark in (False, True):  # B1: close colours; B2: darker versions (blends with black)
        if dark and black is None:
            break
        while True:  # rounds over the touching pairs of live groups (Borůvka-style, cheapest first)
            u, v = root[eu], root[ev]
            sel = (u != v) & alive[u] & alive[v]
            if not sel.any():
                break
            code = np.unique(np.minimum(u[sel], v[sel]) * g + np.maximum(u[sel], v[sel]))
            u, v = np.concatenate((code // g, code % g)), np.concatenate((code % g, code // g))  # both ways
            col = grgb / np.maximum(gsize, 1)[:, None]  # every group's mean (cheaper than compacting)
            if dark:  # cost of u joining v: u on the segment black → v
                c = col * RGB_SCALE
                cost = _segment_residual(c[u], black, c[v])
            else:
                f = _features_np(col, features)
                cost = ((f[u] - f[v]) ** 2).sum(1)
            ok = cost < tau
            if not ok.any():
                break
            u, v, cost = u[ok], v[ok], cost[ok]
            order = np.lexsort((cost, u))
            u, v, cost = u[order], v[order], cost[order]
            first = np.ones(len(u), bool)
            first[1:] = u[1:] != u[:-1]
            best = dict(zip(u[first].tolist(), v[first].tolist(), strict=True))
            if dark:  # sources with one target join it; a ramp of several entities is split per pixel
                n_targets = np.bincount(u, minlength=g)
                single = {c: t for c, t in best.items() if n_targets[c] == 1}
                src = [c for c, t in single.items() if t not in single] or list(single)[:1]
                if len(src) and len(single) > len(src):  # chains (ring → ring → entity) join in one round
                    end = {c: best[c] for c in src}
                    pending = {c: t for c, t in single.items() if c not in end}
                    while pending:
                        step = {c: end[t] for c, t in pending.items() if t in end}
                        if not step:
                            break  # the rest are cycles, or lead into one
                        end.update(step)
                        pending = {c: t for c, t in pending.items() if c not in step}
                    src, best = list(end), end
                if not src:  # only shared ramps are left
                    for c in best:
                        blends[c] = v[u == c]
                    alive[list(best)] = False
                    continue
            else:  # mutual best pairs, the smaller group joins the larger
                src = [c for c, t in best.items() if best.get(t) == c and (gsize[c], -c) < (gsize[t], -t)]
                src = src or [int(u[np.argmin(cost)])]
            src = np.array(src)
            join(src, np.array([best[c] for c in src.tolist()]))
    # B3: groups of one colour are one entity, touching or not (closest first; few groups by now).
    idx = np.flatnonzero(alive & (gsize >= min_area))
    if len(idx) >= 2:  # pairwise distances once, then only the merged row changes
        f = _features_np(grgb[idx] / gsize[idx, None], features)
        d2 = ((f[:, None] - f[None]) ** 2).sum(-1)
        np.fill_diagonal(d2, np.inf)
        gone = np.zeros(len(idx), bool)
        while True:
            i, j = np.unravel_index(d2.argmin(), d2.shape)
            if d2[i, j] >= tau:
                break
            ci, ti = (i, j) if gsize[idx[i]] < gsize[idx[j]] else (j, i)
            join(np.array([idx[ci]]), np.array([idx[ti]]))
            gone[ci] = True
            f[ti] = _features_np(grgb[idx[ti]] / gsize[idx[ti]], features)
            row = ((f - f[ti]) ** 2).sum(1)
            row[gone | (np.arange(len(idx)) == ti)] = np.inf
            d2[ti], d2[:, ti] = row, row
            d2[ci], d2[:, ci] = np.inf, np.inf
    final = root[group]  # per region
    out = np.where(isbg[final], -1, final)[comp]

    memo: dict[int, set[int]] = {}

    def live(c: int) -> set[int]:  # the live entities behind a shared ramp (its targets, recursively)
        if c not in memo:
            memo[c] = set()  # a cycle of shared ramps ends here
            found = set()
            for t in set(root[blends[c]].tolist()):
                found |= {t} if alive[t] else live(t) if t in blends else set()
            memo[c] = found
        return memo[c]

    if blends:  # each pixel of a shared ramp → the entity whose black ramp explains it best
        is_blend = np.zeros(g + 1, bool)
        is_blend[list(blends)] = True
        flat_out = out.reshape(-1)
        pix = np.flatnonzero(is_blend[flat_out])  # (−1 indexes the extra False)
        owner = flat_out[pix]
        groups = sorted(blends)
        cands = [sorted(live(c)) for c in groups]
        table = np.full((g + 1, max(1, max(map(len, cands)))), -1, dtype=np.int64)  # padded, −1: none
        for c, cand in zip(groups, cands, strict=True):
            table[c, :len(cand)] = cand
        cand = table[owner]  # (P, L) candidate entities of every ramp pixel
        x = img.reshape(-1, 3)[pix].astype(np.float64) * RGB_SCALE
        col = (grgb / gsize[:, None] * RGB_SCALE)[np.maximum(cand, 0)]
        res = np.where(cand >= 0, _segment_residual(x[:, None], black, col), np.inf)
        best = np.take_along_axis(cand, res.argmin(1)[:, None], 1)[:, 0]
        flat_out[pix] = np.where(np.isfinite(res.min(1)), best, -1)  # no live candidate: background
    return out


def _midpoint(pix: np.ndarray, img: np.ndarray) -> np.ndarray:
    """Fig. 3 blends with black: a pixel of entity e (ids ≥ 1; 0 = background) whose colour projects on
    the segment background → c_e below its middle (t < 1/2) goes to the background. c_e is the mean of
    e's pixels with t ≥ 1/2 against e's plain mean (its ramp left out)."""
    flat = pix.reshape(-1)
    fg = np.flatnonzero(flat > 0)
    e = flat[fg]
    n = int(pix.max()) + 1
    rgb = img.reshape(-1, 3)
    bg = flat == 0
    black = np.array([rgb[bg, c].mean(dtype=np.float64) for c in range(3)])
    y = [rgb[fg, c] - black[c] for c in range(3)]  # per channel (no reduce over a 3-axis), float64
    keep = np.ones(len(fg))
    for _ in range(MIDPOINT_STEPS):  # mean of all pixels, then of the core
        cnt = np.maximum(np.bincount(e, weights=keep, minlength=n), 1)
        seg = [np.bincount(e, weights=yc * keep, minlength=n) / cnt for yc in y]  # c_e − black
        half = 0.5 * (seg[0] ** 2 + seg[1] ** 2 + seg[2] ** 2)
        dot = y[0] * seg[0][e] + y[1] * seg[1][e] + y[2] * seg[2][e]
        keep = (dot >= np.maximum(half, 0.5e-12)[e]).astype(np.float64)  # t = dot / max(|seg|², 1e-12) ≥ 1/2
    out = flat.copy()
    out[fg[keep == 0]] = 0
    return out.reshape(pix.shape)


def _fill_holes(pix: np.ndarray, min_area: int) -> np.ndarray:
    """Background specks (4-connected, < ``min_area`` px; ids: 0 = background, ≥ 1 entities) that the
    midpoint rule cut out of an entity go to the entity they share most boundary with (Fig. 3 black
    holes)."""
    holes, _ = ndimage.label(pix == 0)  # 4-connected; 1.. per background component, 0 elsewhere
    size = np.bincount(holes.reshape(-1))
    small = np.flatnonzero(size < min_area)
    small = small[small > 0]
    if len(small) == 0:
        return pix
    is_small = np.zeros(len(size), bool)
    is_small[small] = True
    n = int(pix.max()) + 1
    codes = []
    for h1, h2, p1, p2 in ((holes[:, 1:], holes[:, :-1], pix[:, 1:], pix[:, :-1]),
                           (holes[1:], holes[:-1], pix[1:], pix[:-1])):
        for h, p in ((h1, p2), (h2, p1)):  # a hole pixel and its neighbour's entity
            sel = is_small[h] & (p > 0)
            codes.append(h[sel].astype(np.int64) * n + p[sel])
    code, count = np.unique(np.concatenate(codes), return_counts=True)
    order = np.lexsort((-count, code // n))
    first = np.ones(len(order), bool)
    first[1:] = (code // n)[order][1:] != (code // n)[order][:-1]
    target = np.zeros(len(size), np.int64)
    target[(code // n)[order[first]]] = (code % n)[order[first]]
    return np.where(is_small[holes], target[holes], pix)


def _finish(labels, k, bg_id, img, *, clean, regions, features, keep_background, min_area, delta,
            snap_to_palette, background_level):
    """Leaves → output ids (H, W) int64 (−1: none) and colours (K, 3) uint8, by area descending.

    ``labels`` (H, W) leaf id per pixel in [0, k), ``bg_id`` the background leaf (−1: none), ``img`` the
    (H, W, 3) uint8 numpy colormap.
    """
    if regions and not clean and k > 1:
        key = _regions(labels, k, bg_id, img, features=features, min_area=min_area, delta=delta)
        _, pix = np.unique(key, return_inverse=True)  # the background (−1), if any, is entity 0
        pix = pix.reshape(key.shape)
        if (key == -1).any():
            pix = _fill_holes(_midpoint(pix, img), min_area)
        bg = np.zeros(int(pix.max()) + 1, bool)
        bg[0] = (key == -1).any()
    else:  # painted map (or regions=False): the leaves are the entities
        pix = labels
        bg = np.zeros(k, bool)
        if bg_id >= 0:
            bg[bg_id] = True
    n = len(bg)
    flat = pix.reshape(-1)
    size = np.bincount(flat, minlength=n).astype(np.float64)
    color = _colour_sums(flat, img, n)
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
    """The work scale of Φ (dichotomy module docstring): (ids, colours) of a large decoded map, from
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
    q = img[::4, ::4].astype(np.int32)
    code = ((q[..., 0] >> 3) << 10) | ((q[..., 1] >> 3) << 5) | (q[..., 2] >> 3)
    if np.count_nonzero(np.bincount(code.reshape(-1), minlength=1 << 15)) > max_colors:
        return False
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
    id): the boundary moves back to pixel precision, the midpoint of a blend (Fig. 3). One compiled pass
    over the pixels (:func:`unigs.codec.kernels.refine_blocks`). Returns (ids (H, W) int32, colors (K', 3)
    uint8), K' ≤ K ids ordered by area descending (ties: colour ascending), as :func:`_finish`.
    """
    k = len(colors)
    flat = ids.reshape(-1) + 1  # 0: no id
    count = np.maximum(np.bincount(flat, minlength=k + 1), 1)
    table = _colour_sums(flat, small, k + 1) / count[:, None]
    table = np.ascontiguousarray(np.roll(table, -1, 0), np.float32)  # row i: mean of id i, last: no id
    full, area = kernels.refine_blocks(np.ascontiguousarray(ids, np.int32), table, np.ascontiguousarray(img),
                                       int(f), k)
    area = area[:k]
    order = sorted(np.flatnonzero(area).tolist(), key=lambda i: (-area[i], *colors[i].tolist()))
    rank = np.full(k + 1, -1, dtype=np.int32)  # last slot: id −1 stays −1
    rank[order] = np.arange(len(order))
    return kernels.relabel(full, rank), colors[order].reshape(-1, 3)
