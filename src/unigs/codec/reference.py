"""Φ's plain, slow reference: the rules of :func:`unigs.codec.dichotomy.decode` restated in numpy and
scikit-image, for tests that check the fast path against it.

Independent of the fast path's code for everything after Eq. 6–7: the units are single pixels (no
histogram), the flat mask is the torch one, and the region clean-up (every stage of
:mod:`unigs.codec.cleanup`), the entity read-out and the work scale are written here again, as array
operations and plain Python loops over groups, without the compiled walks. Only Eq. 6–7 themselves
(:func:`unigs.codec.leaves.colour_leaves`) are shared; their compiled loops have their own tests.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label as sk_label

from unigs.codec.color import features_np
from unigs.codec.config import DichotomyConfig
from unigs.codec.histogram import Units, flat_mask
from unigs.codec.leaves import colour_leaves
from unigs.codec.palette import PALETTE, nearest_palette_index


def decode_ids(img: np.ndarray, cfg: DichotomyConfig) -> tuple[np.ndarray, np.ndarray]:
    """One ``(H, W, 3) uint8`` map → (ids (H, W) int64, −1: none; colours (K, 3) uint8), slowly."""
    h, w = img.shape[:2]
    f = min(h, w) // cfg.work_size if cfg.regions and cfg.work_size is not None else 1
    q = img[::4, ::4].reshape(-1, 3)
    if f >= 2 and len(np.unique(q, axis=0)) > cfg.max_clean_colors:  # not painted: the work scale
        small = box_down(img, f)
        ids, colors = decode_ids(small, cfg.replace(min_area=max(1, round(cfg.min_area / f**2)),
                                                    work_size=None))
        return upsample(ids, colors, small, img, f)
    rgb = img.reshape(-1, 3).astype(np.float64)
    colours, count = np.unique(img.reshape(-1, 3), axis=0, return_counts=True)
    bins = np.unique(colours >> (cfg.bin_size.bit_length() - 1), axis=0)
    clean = len(colours) <= cfg.max_clean_colors and len(bins) == len(colours)  # painted, as decode
    ones = np.ones(h * w)
    cells = flat_mask(torch.from_numpy(img), cfg.edge_threshold).numpy()
    flat = ones if clean else np.repeat(np.repeat(cells, 4, 0), 4, 1)[:h, :w].reshape(-1).astype(np.float64)
    units = Units(rgb, features_np(rgb, cfg.features), ones, flat, clean, None, None, 0)
    leaf, k, bg_id = colour_leaves(units, cfg)
    return clean_up(leaf.reshape(h, w), k, bg_id, img, cfg, painted=clean)


def clean_up(labels: np.ndarray, k: int, bg_id: int, img: np.ndarray, cfg: DichotomyConfig,
             painted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`unigs.codec.dichotomy.clean_up`, slowly: leaf map → (ids (H, W), colours (K, 3) uint8)."""
    if painted or not cfg.regions or k <= 1:
        return entities(labels, np.arange(k) == bg_id, img, cfg)
    pix, has_bg = regions(labels, bg_id, img, cfg)
    return entities(pix, np.arange(pix.max() + 1) == (0 if has_bg else -1), img, cfg)


# -------------------------------------------------------------------------------- region clean-up
def regions(labels: np.ndarray, bg_id: int, img: np.ndarray, cfg: DichotomyConfig):
    """Leaf map (H, W) → (entity keys (H, W) int64 0.., whether key 0 is background): stages A–C."""
    comp = sk_label(labels, background=-1, connectivity=1) - 1
    m = int(comp.max()) + 1
    size = np.bincount(comp.ravel(), minlength=m).astype(np.float64)
    rgb = np.stack([np.bincount(comp.ravel(), img[..., c].ravel(), m) for c in range(3)], 1) / size[:, None]
    leaf = np.zeros(m, np.int64)
    leaf[comp.ravel()] = labels.ravel()
    a = np.concatenate((comp[:, 1:].ravel(), comp[1:].ravel()))
    b = np.concatenate((comp[:, :-1].ravel(), comp[:-1].ravel()))
    codes, cnt = np.unique(np.minimum(a, b)[a != b] * m + np.maximum(a, b)[a != b], return_counts=True)
    pa, pb = codes // m, codes % m

    def feat(col, rgb_only=False):
        col = np.asarray(col, np.float64)
        return col * cfg.rgb_scale if rgb_only else features_np(col[None], cfg.features)[0]

    # A: tiny groups join the touching group of the closest colour (ties: the longer region boundary).
    parent = np.arange(m)
    for _ in range(cfg.tiny_rounds if cfg.runs("tiny") else 0):
        gsize = np.bincount(parent, size, m)
        gmean = np.stack([np.bincount(parent, size * rgb[:, c], m) for c in range(3)], 1)
        gmean /= np.maximum(gsize, 1e-300)[:, None]
        gfeat = features_np(gmean, cfg.features)
        best = {}
        for s_, t_ in ((pa, pb), (pb, pa)):
            for e in range(len(pa)):
                s, t = parent[s_[e]], parent[t_[e]]
                if s == t or gsize[s] >= cfg.min_area:
                    continue
                d2 = ((gfeat[s] - gfeat[t]) ** 2).sum()
                if s not in best or d2 < best[s][1] or (d2 == best[s][1] and cnt[e] > best[s][2]):
                    best[s] = (t, d2, cnt[e])
        if not best:
            break
        ptr = np.arange(m)
        for s, (t, _, _) in best.items():
            ptr[s] = t
        parent = np.array([_cycle_root(ptr, parent[i]) for i in range(m)])
    roots = np.unique(parent)
    group = np.searchsorted(roots, parent)  # groups numbered by root id
    g = len(roots)
    gsize = np.bincount(group, size, g)
    gsum = np.stack([np.bincount(group, size * rgb[:, c], g) for c in range(3)], 1)
    isbg = np.bincount(group, size * (leaf == bg_id), g) * 2 > gsize
    black = gsum[isbg].sum(0) / gsize[isbg].sum() * cfg.rgb_scale if isbg.any() else np.zeros(3)
    root = np.arange(g)
    alive = ~isbg
    eu, ev = group[pa], group[pb]
    ramps: list[tuple[int, int]] = []
    blend = np.zeros(g, bool)

    def find(q):
        while root[q] != q:
            q = root[q]
        return q

    def join(u, t):
        gsize[t] += gsize[u]
        gsum[t] += gsum[u]
        root[u] = t
        alive[u] = False

    # B1 (touching, close colour) and B2 (darker version of a touching group; shared ramps set aside).
    for dark in (False, True):
        if not cfg.runs("darker" if dark else "touching") or (dark and not isbg.any()):
            continue
        while True:
            ends = [(find(x), find(y)) for x, y in zip(eu, ev, strict=True)]
            pairs = sorted({(min(u, v), max(u, v)) for u, v in ends if u != v and alive[u] and alive[v]})
            if not pairs:
                break
            f = {q: feat(gsum[q] / gsize[q], dark) for p in pairs for q in p}

            def cost(u, v, f=f, dark=dark):
                return _seg2(f[u], black, f[v]) if dark else ((f[u] - f[v]) ** 2).sum()

            best, n_targets, low = {}, {}, None
            for u, v in [(u, v) for u, v in pairs] + [(v, u) for u, v in pairs]:
                c = cost(u, v)
                if c >= cfg.tau:
                    continue
                n_targets[u] = n_targets.get(u, 0) + 1
                if u not in best or c < best[u][1]:
                    best[u] = (v, c)
                if low is None or c < low[1] or (c == low[1] and u < low[0]):
                    low = (u, c)
            if low is None:
                break
            dst = {}
            if dark:
                single = {u for u in best if n_targets[u] == 1}
                if not single:  # only shared ramps left
                    for u, v in [(u, v) for u, v in pairs] + [(v, u) for u, v in pairs]:
                        if u in best and cost(u, v) < cfg.tau:
                            ramps.append((u, v))
                    for u in best:
                        blend[u], alive[u] = True, False
                    continue
                dst = {u: best[u][0] for u in sorted(single) if best[u][0] not in single}
                if not dst:
                    first = min(single)
                    dst[first] = best[first][0]
                changed = True
                while changed:
                    changed = False
                    for u in range(g):
                        if u in single and u not in dst and best[u][0] in dst:
                            dst[u] = dst[best[u][0]]
                            changed = True
                for u in [u for u in dst if dst[u] == u]:  # a chain closing on itself: an entity
                    del dst[u]
                    alive[u] = False
            else:
                for u, (t, _) in best.items():
                    if best.get(t, (None,))[0] == u and (gsize[u], -u) < (gsize[t], -t):
                        dst[u] = t
                if not dst:
                    dst[low[0]] = best[low[0]][0]
            for u in sorted(dst):
                join(u, dst[u])
    # B3: groups of ≥ min_area px closer than τ merge, touching or not; closest pair first.
    idx = [q for q in range(g) if alive[q] and gsize[q] >= cfg.min_area] if cfg.runs("apart") else []
    fe = {q: feat(gsum[q] / gsize[q]) for q in idx}
    while len(idx) >= 2:
        d2, i, j = min((((fe[idx[i]] - fe[idx[j]]) ** 2).sum(), i, j) for i in range(len(idx))
                       for j in range(len(idx)) if i != j)
        if not d2 < cfg.tau:
            break
        small, big = (idx[i], idx[j]) if gsize[idx[i]] < gsize[idx[j]] else (idx[j], idx[i])
        join(small, big)
        fe[big] = feat(gsum[big] / gsize[big])
        idx.remove(small)
    # Keys; shared-ramp pixels → the live entity behind them whose black ramp explains them best.
    key = np.array([-1 if isbg[find(group[i])] else find(group[i]) for i in range(m)])
    pix = key[comp]
    for c in np.flatnonzero(blend):
        cand, stack, seen = set(), [c], {c}
        while stack:
            q = stack.pop()
            for t in (find(t) for s, t in ramps if s == q):
                if t not in seen:
                    seen.add(t)
                    if alive[t]:
                        cand.add(t)
                    elif blend[t]:
                        stack.append(t)
        at = pix == c
        if not cand:
            pix[at] = -1
            continue
        cand = sorted(cand)
        px = img[at].astype(np.float64) * cfg.rgb_scale
        res = np.stack([_seg2(px, black, gsum[t] / gsize[t] * cfg.rgb_scale) for t in cand], 1)
        pix[at] = np.asarray(cand)[res.argmin(1)]
    has_bg = bool((pix == -1).any())
    _, pix = np.unique(pix, return_inverse=True)  # keys → 0.. in order; the background (−1) first
    pix = pix.reshape(labels.shape)
    if has_bg:
        pix = midpoint(pix, img, cfg) if cfg.runs("midpoint") else pix
        pix = fill_holes(pix, cfg) if cfg.runs("holes") else pix
    return pix, has_bg


def _cycle_root(ptr: np.ndarray, i: int) -> int:
    """Follow ``ptr`` from i to the cycle it ends in; that cycle's smallest id."""
    path = []
    while i not in path:
        path.append(i)
        i = ptr[i]
    return min(path[path.index(i):])


def _seg2(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance of points x (..., 3) to the segment [a, b] (a blend of a and b is ≈ 0)."""
    ab = b - a
    t = np.clip(((x - a) * ab).sum(-1) / max((ab**2).sum(), 1e-12), 0.0, 1.0)
    return ((x - a - t[..., None] * ab) ** 2).sum(-1)


def midpoint(pix: np.ndarray, img: np.ndarray, cfg: DichotomyConfig) -> np.ndarray:
    """Stage C: an entity pixel projecting below the middle of black → its core colour → background."""
    n = int(pix.max()) + 1
    x = img.reshape(-1, 3).astype(np.float64)
    p = pix.reshape(-1)
    black = x[p == 0].sum(0) / (p == 0).sum()
    d = x - black
    keep = np.ones(len(p), bool)
    for _ in range(cfg.midpoint_steps):
        sel = (p > 0) & keep
        cnt = np.bincount(p[sel], minlength=n)
        core = np.stack([np.bincount(p[sel], d[sel, c], n) for c in range(3)], 1)
        core /= np.maximum(cnt, 1)[:, None]
        half = np.maximum(0.5 * (core**2).sum(1), 0.5e-12)
        dot = d[:, 0] * core[p, 0] + d[:, 1] * core[p, 1] + d[:, 2] * core[p, 2]
        keep = np.where(p > 0, dot >= half[p], keep)
    return np.where(keep, p, 0).reshape(pix.shape)


def fill_holes(pix: np.ndarray, cfg: DichotomyConfig) -> np.ndarray:
    """Background specks of < min_area px → the entity sharing most boundary with them (ties: smaller)."""
    hole = sk_label(pix == 0, background=0, connectivity=1)  # 1.. per background component
    size = np.bincount(hole.ravel())
    out = pix.copy()
    for q in np.flatnonzero(size[1:] < cfg.min_area) + 1:
        at = hole == q
        votes = []
        for sh in ((0, 1), (0, -1), (1, 0), (-1, 0)):  # the neighbour of each hole pixel, each side
            nb = np.full(pix.shape, -1)
            dst = tuple(slice(max(s, 0), pix.shape[a] + min(s, 0)) for a, s in enumerate(sh))
            src = tuple(slice(max(-s, 0), pix.shape[a] + min(-s, 0)) for a, s in enumerate(sh))
            nb[dst] = pix[src]
            votes.append(nb[at & (nb > 0)])
        votes = np.concatenate(votes)
        if len(votes):
            ent, cnt = np.unique(votes, return_counts=True)
            out[at] = ent[np.argmax(cnt)]
    return out


# ---------------------------------------------------------------------------------------- read-out
def entities(pix: np.ndarray, bg: np.ndarray, img: np.ndarray, cfg: DichotomyConfig):
    """Keys → (ids (H, W), −1: none; colours (K, 3) uint8): near-black and background keys are one
    background entity (kept with keep_background), palette snapping, order by area then colour."""
    ents: dict = {}
    for key in np.unique(pix):
        at = pix == key
        color = img[at].astype(np.float64).mean(0)
        name = int(key)
        if cfg.snap_to_palette:
            idx = int(nearest_palette_index(color[None])[0])
            color, name = (PALETTE[idx].astype(np.float64) if idx >= 0 else np.zeros(3)), ("p", idx)
        if bg[key] or (color < cfg.background_level).all():
            name = "background"
        area, total, members = ents.get(name, (0, np.zeros(3), []))
        ents[name] = (area + at.sum(), total + color * at.sum(), members + [int(key)])
    out = np.full(pix.shape, -1, np.int64)
    order = sorted(((a, t / a, mem) for name, (a, t, mem) in ents.items()
                    if name != "background" or cfg.keep_background), key=lambda e: (-e[0], *e[1]))
    for rank, (_, _, mem) in enumerate(order):
        out[np.isin(pix, mem)] = rank
    colors = np.array([np.clip(np.round(c), 0, 255) for _, c, _ in order], np.uint8).reshape(-1, 3)
    return out, colors


# -------------------------------------------------------------------------------------- work scale
def box_down(img: np.ndarray, f: int) -> np.ndarray:
    """Rounded means of f×f blocks, the clipped border blocks padded by repetition."""
    h, w = img.shape[:2]
    hs, ws = -(-h // f), -(-w // f)
    pad = np.pad(img, ((0, hs * f - h), (0, ws * f - w), (0, 0)), mode="edge").astype(np.float64)
    return np.floor(pad.reshape(hs, f, ws, f, 3).mean((1, 3)) + 0.5).astype(np.uint8)


def upsample(ids: np.ndarray, colors: np.ndarray, small: np.ndarray, img: np.ndarray, f: int):
    """Work-scale ids → full resolution: a pixel takes, among its block's 3×3 neighbourhood ids, the one
    whose mean colour over ``small`` is closest (float32; ties: its block's own id); by area again."""
    h, w = ids.shape
    H, W = img.shape[:2]
    k = len(colors)
    table = np.zeros((k + 1, 3), np.float32)  # row k: the id-less pixels ("none"), black if none
    for i in range(-1, k):
        if (ids == i).any():
            table[i] = small[ids == i].astype(np.float64).mean(0)
    by, bx = np.arange(H) // f, np.arange(W) // f
    own = ids[by][:, bx]
    best, best_d = own.copy(), np.full((H, W), np.inf, np.float32)
    x = img.astype(np.float32)
    for dy, dx in [(0, 0)] + [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]:  # own id first: ties
        cand = ids[np.clip(by + dy, 0, h - 1)][:, np.clip(bx + dx, 0, w - 1)]
        d = ((x - table[cand]) ** 2).sum(-1, dtype=np.float32)
        better = d < best_d
        best, best_d = np.where(better, cand, best), np.where(better, d, best_d)
    area = np.array([(best == i).sum() for i in range(k)])
    order = sorted(np.flatnonzero(area).tolist(), key=lambda i: (-area[i], *colors[i].tolist()))
    rank = np.full(k + 1, -1)
    rank[order] = np.arange(len(order))
    return rank[best], colors[order].reshape(-1, 3)
