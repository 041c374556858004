"""Φ's compiled region clean-up walks (numba), one per stage of :mod:`unigs.codec.cleanup`.

Merging is a graph walk over a few hundred regions with data-dependent rounds: as numpy it is hundreds of
small array calls per map, as a loop it costs less than finding the regions. The rules are stated with
the stage functions in :mod:`unigs.codec.cleanup`; :mod:`unigs.codec.reference` restates them in numpy.

State between the walks (arrays, changed in place where said): per region ``group`` (m,) its group after
stage A; per group ``root`` (g,) the group it merged into (itself if none), ``alive`` (g,) whether it
still merges, ``gsize`` (g,) pixels, ``grgb`` (g, 3) colour sums; the shared ramps ``blend`` (g,) and
their (source, target) pairs ``ramp`` (2·E, 2) with their count.
"""

from __future__ import annotations

import numpy as np

from unigs.codec._loops import compiled
from unigs.codec._loops.pixels import number_roots
from unigs.codec._loops.rows import segment_residual
from unigs.codec.color import feature_row, feature_rows


@compiled
def _dist2(f, a, b):
    s = 0.0
    for c in range(f.shape[1]):
        s += (f[a, c] - f[b, c]) ** 2
    return s


@compiled
def _settle(parent):
    """Each node points at its root; a cycle (each tiny region chose the other) is rooted at its smallest
    id. ``parent`` (m,) is a functional graph; modified in place."""
    m = len(parent)
    state = np.zeros(m, np.int8)  # 0 new, 1 on the current path, 2 settled
    path = np.empty(m, np.int64)
    for s in range(m):
        n, i = 0, s
        while state[i] == 0:
            state[i] = 1
            path[n] = i
            n += 1
            i = parent[i]
        if state[i] == 1:  # a new cycle: from i round to i; its smallest id becomes the root
            low, j = i, parent[i]
            while j != i:
                low = min(low, j)
                j = parent[j]
            j = i
            while True:
                nxt = parent[j]
                parent[j] = low
                state[j] = 2
                if nxt == i:
                    break
                j = nxt
            parent[low] = low
        root = parent[i] if state[i] == 2 else i
        while parent[root] != root:
            root = parent[root]
        for r in range(n):
            parent[path[r]] = root
            state[path[r]] = 2


@compiled
def _compact(out, g):
    """Keys in [−1, g) → 0.. in ascending key order over the keys present (as ``np.unique``'s inverse), in
    place: the background (−1), if present, becomes 0. Returns (out, whether it was present)."""
    rank = np.zeros(g + 1, np.int64)
    for v in out.ravel():
        rank[v + 1] = 1
    has_bg = rank[0] == 1
    n = -1
    for i in range(g + 1):
        if rank[i]:
            n += 1
            rank[i] = n
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = rank[out[y, x] + 1]
    return out, has_bg


@compiled
def tiny_groups(pa, pb, cnt, csize, crgb, min_area, use_rgb, use_lab, rgb_scale, lab_scale):
    """Step A: the root region (m,) of every region's group (arguments as :func:`merge_regions`)."""
    m, n_edges = len(csize), len(pa)
    # Every group of < min_area px points at the touching group of the closest colour (longer shared
    # boundary on ties, then the first such edge); cycles are rooted at their smallest id; ≤ 8 rounds.
    parent = np.arange(m)
    feat = np.empty((m, 3 * use_rgb + 3 * use_lab))
    size = np.zeros(m)
    known = np.zeros(m, np.bool_)  # feat[i] is the feature of root i's group (its members unchanged)
    for _ in range(8):
        old = size
        size = np.zeros(m)
        rgb_sum = np.zeros((m, 3))
        for i in range(m):
            size[parent[i]] += csize[i]
            for c in range(3):
                rgb_sum[parent[i], c] += crgb[i, c] * csize[i]
        known &= size == old
        for i in range(m):
            if size[i] > 0:
                rgb_sum[i] /= size[i]  # the group's mean colour
        best = np.full(m, -1)
        best_d2 = np.full(m, np.inf)
        best_bnd = np.zeros(m)
        for way in range(2):
            for e in range(n_edges):
                s, t = parent[pa[e]], parent[pb[e]]
                if way == 1:
                    s, t = t, s
                if s == t or size[s] >= min_area:
                    continue
                for q in (s, t):  # features only of the groups in question
                    if not known[q]:
                        feature_row(rgb_sum[q], feat[q], use_rgb, use_lab, rgb_scale, lab_scale)
                        known[q] = True
                d2 = _dist2(feat, s, t)
                if d2 < best_d2[s] or (d2 == best_d2[s] and cnt[e] > best_bnd[s]):
                    best[s], best_d2[s], best_bnd[s] = t, d2, cnt[e]
        moved = False
        for s in range(m):
            if best[s] >= 0:
                parent[s] = best[s]
                moved = True
        if not moved:
            break
        _settle(parent)
    return parent




@compiled
def number_groups(parent, cleaf, csize, crgb, bg_id):
    """Groups of stage A, numbered by root id: (group (m,) of each region, g, gsize (g,), grgb (g, 3),
    isbg (g,): mostly pixels of the background leaf ``bg_id``, black (3,): their mean colour, unscaled;
    zeros without background)."""
    m = len(parent)
    gid, g = number_roots(parent)
    group = np.empty(m, np.int64)
    gsize, grgb, bgpx = np.zeros(g), np.zeros((g, 3)), np.zeros(g)
    for i in range(m):
        q = gid[parent[i]]
        group[i] = q
        gsize[q] += csize[i]
        for c in range(3):
            grgb[q, c] += crgb[i, c] * csize[i]
        if cleaf[i] == bg_id:
            bgpx[q] += csize[i]
    isbg = bgpx * 2 > gsize
    black = np.zeros(3)
    if isbg.any():
        for c in range(3):
            black[c] = grgb[isbg, c].sum() / gsize[isbg].sum()
    return group, g, gsize, grgb, isbg, black


@compiled
def merge_rounds(eu, ev, root, alive, gsize, grgb, black, tau, dark, blend, ramp, n_ramp, use_rgb,
                 use_lab, rgb_scale, lab_scale):
    """Stages B1 (``dark`` False) and B2 (True) in rounds until nothing merges; returns (root, n_ramp).

    eu, ev (E,) the groups on either side of each touching region pair. B1: touching live groups closer
    than τ in feature space, mutual cheapest pairs, the smaller joins the larger (ties: the higher id),
    else the cheapest pair. B2: cost of u → v is the RGB/8 distance² of u to the segment black → v; a
    group under τ to exactly one touching group joins it (chains ring → ring → entity end where their
    head goes; a chain closing on itself stops as an entity); when only groups under τ to several are
    left, they are shared ramps: set aside (``blend``) with their targets in ``ramp``.
    """
    g, n_edges = len(root), len(eu)
    feat = np.empty((g, max(3, 3 * use_rgb + 3 * use_lab)))
    known = np.zeros(g, np.bool_)  # feat[q] is up to date (q has not grown since)
    while True:
        codes = np.empty(n_edges, np.int64)
        n = 0
        for e in range(n_edges):
            u, v = root[eu[e]], root[ev[e]]
            if u != v and alive[u] and alive[v]:
                codes[n] = min(u, v) * g + max(u, v)
                n += 1
        if n == 0:
            break
        codes = np.unique(codes[:n])
        for code in codes:  # the features of the groups in question (B2: RGB / 8 only)
            for q in (code // g, code % g):
                if not known[q]:
                    col = grgb[q] / max(gsize[q], 1.0)
                    if dark:
                        feat[q, :3] = col * rgb_scale
                    else:
                        feature_row(col, feat[q], use_rgb, use_lab, rgb_scale, lab_scale)
                    known[q] = True
        best = np.full(g, -1)
        best_cost = np.full(g, np.inf)
        n_targets = np.zeros(g, np.int64)
        low_cost, low_u = np.inf, -1
        for way in range(2):  # each pair both ways: (low → high) for all pairs, then (high → low)
            for code in codes:
                u, v = code // g, code % g
                if way == 1:
                    u, v = v, u
                cost = segment_residual(feat[u], black, feat[v]) if dark else _dist2(feat, u, v)
                if cost >= tau:
                    continue
                n_targets[u] += 1
                if cost < best_cost[u]:
                    best[u], best_cost[u] = v, cost
                if cost < low_cost or (cost == low_cost and u < low_u):
                    low_cost, low_u = cost, u
        if low_u < 0:
            break
        dst = np.full(g, -1)  # the group each source joins
        if dark:
            single = (best >= 0) & (n_targets == 1)
            if not single.any():  # only shared ramps are left: set them aside
                for way in range(2):
                    for code in codes:
                        u, v = code // g, code % g
                        if way == 1:
                            u, v = v, u
                        if best[u] >= 0 and segment_residual(feat[u], black, feat[v]) < tau:
                            ramp[n_ramp, 0], ramp[n_ramp, 1] = u, v
                            n_ramp += 1
                for u in range(g):
                    if best[u] >= 0:
                        blend[u] = True
                        alive[u] = False
                continue
            for u in range(g):  # heads: singles whose target is no single (else the first single)
                if single[u] and not single[best[u]]:
                    dst[u] = best[u]
            if (dst < 0).all():
                first = np.flatnonzero(single)[0]
                dst[first] = best[first]
            changed = True
            while changed:  # chains (ring → ring → entity) end where their head goes
                changed = False
                for u in range(g):
                    if single[u] and dst[u] < 0 and dst[best[u]] >= 0:
                        dst[u] = dst[best[u]]
                        changed = True
            for u in range(g):
                if dst[u] == u:  # a chain that closes on itself ends here: an entity, merged no more
                    dst[u] = -1
                    alive[u] = False
        else:
            for u in range(g):
                t = best[u]
                if t >= 0 and best[t] == u and (gsize[u] < gsize[t] or gsize[u] == gsize[t] and u > t):
                    dst[u] = t
            if (dst < 0).all():
                dst[low_u] = best[low_u]
        for u in range(g):  # join (no target is itself a source)
            t = dst[u]
            if t >= 0:
                gsize[t] += gsize[u]
                grgb[t] += grgb[u]
                known[t] = False
                root[u] = t
                alive[u] = False
        root = root[root]
    return root, n_ramp


@compiled
def merge_apart(root, alive, gsize, grgb, min_area, tau, use_rgb, use_lab, rgb_scale, lab_scale):
    """Stage B3: live groups of ≥ min_area px closer than τ in feature space merge, touching or not,
    closest pair first (ties: the first in row-major order; the smaller joins the larger, on equal size
    the first joins the second); returns root."""
    idx = np.flatnonzero(alive & (gsize >= min_area))
    n = len(idx)
    if n < 2:
        return root
    col = np.empty((n, 3))
    for r in range(n):
        col[r] = grgb[idx[r]] / gsize[idx[r]]
    feat = feature_rows(col, use_rgb, use_lab, rgb_scale, lab_scale)
    d2 = np.full((n, n), np.inf)
    for i in range(n):
        for j in range(i + 1, n):
            d2[i, j] = d2[j, i] = _dist2(feat, i, j)
    gone = np.zeros(n, np.bool_)
    while True:
        k = np.argmin(d2)
        i, j = k // n, k % n
        if not d2[i, j] < tau:
            break
        ci, ti = (i, j) if gsize[idx[i]] < gsize[idx[j]] else (j, i)
        a, b = idx[ci], idx[ti]
        gsize[b] += gsize[a]
        grgb[b] += grgb[a]
        root[a] = b
        alive[a] = False
        root = root[root]
        gone[ci] = True
        one = np.empty((1, 3))
        one[0] = grgb[b] / gsize[b]
        feat[ti] = feature_rows(one, use_rgb, use_lab, rgb_scale, lab_scale)[0]
        for r in range(n):  # only the merged row changes
            d2[r, ci] = d2[ci, r] = np.inf
            if r != ti and not gone[r]:
                d2[r, ti] = d2[ti, r] = _dist2(feat, r, ti)
    return root


@compiled
def entity_map(comp, img, group, root, isbg, alive, gsize, grgb, black, blend, ramp, n_ramp, rgb_scale):
    """Regions → ((H, W) int64 entity keys 0.. in the order of the surviving groups, whether there is
    background: then it is key 0). Each pixel of a shared ramp goes to the live entity behind it (its
    targets, through other ramps) whose black ramp explains its colour best (RGB/8 distance² to the
    segment black → entity colour; ties: the lower id), background if none."""
    m, g = len(group), len(root)
    key = np.empty(m, np.int64)
    for i in range(m):
        q = root[group[i]]
        key[i] = -1 if isbg[q] else q
    h, w = comp.shape
    out = np.empty((h, w), np.int64)
    if n_ramp == 0:
        for y in range(h):
            for x in range(w):
                out[y, x] = key[comp[y, x]]
        return _compact(out, g)
    start = np.zeros(g + 1, np.int64)  # candidates of ramp c: cand[start[c]:start[c + 1]], ascending
    cand = np.empty(blend.sum() * g, np.int64)  # ≤ every live group per ramp
    seen = np.zeros(g, np.bool_)
    stack = np.empty(g, np.int64)
    for c in range(g):
        start[c + 1] = start[c]
        if not blend[c]:
            continue
        seen[:] = False
        seen[c] = True
        stack[0], top = c, 1
        while top:
            top -= 1
            q = stack[top]
            for r in range(n_ramp):
                if ramp[r, 0] == q:
                    t = root[ramp[r, 1]]
                    if not seen[t]:
                        seen[t] = True
                        if alive[t]:
                            cand[start[c + 1]] = t
                            start[c + 1] += 1
                        elif blend[t]:
                            stack[top] = t
                            top += 1
        cand[start[c]:start[c + 1]].sort()
    ent = np.empty((g, 3))
    for q in range(g):
        for c in range(3):
            ent[q, c] = grgb[q, c] / max(gsize[q], 1.0) * rgb_scale
    px = np.empty(3)
    for y in range(h):
        for x in range(w):
            q = key[comp[y, x]]
            if q < 0 or not blend[q]:
                out[y, x] = q
                continue
            choice, low = -1, np.inf
            for c in range(3):
                px[c] = img[y, x, c] * rgb_scale
            for r in range(start[q], start[q + 1]):
                t = cand[r]
                res = segment_residual(px, black, ent[t])
                if res < low:
                    choice, low = t, res
            out[y, x] = choice
    return _compact(out, g)
