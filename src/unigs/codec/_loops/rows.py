"""Compiled Eq. 6–7 of Φ on weighted rows (numba): the progressive dichotomy, the merge-back of its
leaves, and the blend residuals of the fallback (:func:`unigs.codec.leaves.colour_leaves`).

The rules are in :mod:`unigs.codec.leaves`' module docstring; rows are histogram bins (or single pixels
in the reference decoder), a few hundred to a few thousand, with data-dependent control flow.
"""

from __future__ import annotations

import numpy as np

from unigs.codec._loops import compiled
from unigs.codec._loops.pixels import number_roots


@compiled
def _dot(a, b):
    s = 0.0
    for i in range(len(a)):
        s += a[i] * b[i]
    return s


@compiled
def _matvec(a, v):
    """a (n, d) @ v (d,) as plain loops (no BLAS call for these small shapes)."""
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        out[i] = _dot(a[i], v)
    return out


@compiled
def _matmul(a, b):
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            for j in range(b.shape[1]):
                out[i, j] += a[i, k] * b[k, j]
    return out


@compiled
def _two_means(xc, w, total, side, max_iter):
    """Weighted 2-means (Eq. 6) of centred rows ``xc`` (n, D), weights ``w`` (Σ = ``total``) into ``side``
    (n,) bool; False if the rows cannot be split (:func:`dichotomy`)."""
    n, d = xc.shape
    if n < 2:
        return False
    cov = np.zeros((d, d))
    for i in range(n):
        for a in range(d):
            wa = xc[i, a] * w[i]
            for b in range(d):
                cov[a, b] += wa * xc[i, b]
    trace = 0.0
    widest = 0
    for a in range(d):
        trace += cov[a, a]
        if cov[a, a] > cov[widest, widest]:
            widest = a
    if not trace > 0:
        return False
    # Principal axis: cov¹² · (widest column), as (cov/trace)⁴ applied three times to cov's column.
    c2 = _matmul(cov / trace, cov / trace)
    c4 = _matmul(c2, c2)
    v = cov[:, widest].copy()
    for _ in range(3):
        v = _matvec(c4, v)
    proj = _matvec(xc, v)
    order = np.argsort(proj)  # ties need no order: the cut only falls between distinct values
    best, cut_value = 0.0, 0.0
    cw, cs = 0.0, 0.0
    for r in range(n - 1):  # the exact 2-means cut of the projections (Otsu): prefix sums
        i, j = order[r], order[r + 1]
        cw += w[i]
        cs += w[i] * proj[i]
        if proj[j] > proj[i]:  # only between distinct values
            gain = cs * cs / (cw * (total - cw))
            if gain > best:
                best, cut_value = gain, proj[i]
    if best <= 0:
        return False
    for i in range(n):
        side[i] = proj[i] > cut_value
    s1 = np.empty(d)
    new = np.empty(n, np.bool_)
    for _ in range(max_iter):  # Lloyd steps; centred, so the other centroid is −s1 / (W − m1)
        m1 = 0.0
        s1[:] = 0.0
        for i in range(n):
            if side[i]:
                m1 += w[i]
                for a in range(d):
                    s1[a] += w[i] * xc[i, a]
        if m1 <= 0 or m1 >= total:
            return False
        # |x − c1|² < |x − c0|²  ⇔  x · s1 > |s1|² (W − 2 m1) / (2 m1 (W − m1))
        thr = _dot(s1, s1) * (total - 2 * m1) / (2 * m1 * (total - m1))
        same = True
        for i in range(n):
            new[i] = _dot(xc[i], s1) > thr
            same = same and new[i] == side[i]
        if same:
            break
        side[:] = new
    ones = 0
    for i in range(n):
        ones += side[i]
    return 0 < ones < n


@compiled
def dichotomy(x, w, delta, min_area, max_leaves, far_factor):
    """Depth-first progressive dichotomy (Eq. 6–7) over weighted rows x (n, D) float64, w (n,) float64;
    returns the leaf id (n,) int64 of each row, leaves numbered in the order they are reached.

    A region is split while (Eq. 7) its weighted mean squared distance to its mean is ≥ δ, or (small-mode
    guard) ≥ ``min_area`` of its weight lies farther than √(far_factor·δ) from the mean, and at most
    ``max_leaves`` leaves would result. 2-means: the best cut of the projections on the principal axis
    (12 power iterations from the widest column of the weighted covariance), then ≤ 4 weighted Lloyd
    steps in the full feature space; the side with the larger projections is visited first.
    """
    n, d = x.shape
    leaf = np.zeros(n, np.int64)
    perm = np.arange(n)  # rows of each pending region lie contiguous in perm
    starts, ends = np.empty(n + 1, np.int64), np.empty(n + 1, np.int64)
    starts[0], ends[0], top = 0, n, 1
    n_leaves = 0
    side = np.empty(n, np.bool_)
    while top > 0:
        top -= 1
        s, e = starts[top], ends[top]
        idx = perm[s:e].copy()
        m = e - s
        wi = w[idx]
        total = wi.sum()
        mean = np.zeros(d)
        for r in range(m):
            mean += wi[r] * x[idx[r]]
        mean /= total
        xc = np.empty((m, d))
        msd, far = 0.0, 0.0
        for r in range(m):
            d2 = 0.0
            for a in range(d):
                xc[r, a] = x[idx[r], a] - mean[a]
                d2 += xc[r, a] * xc[r, a]
            msd += wi[r] * d2
            if d2 > far_factor * delta:
                far += wi[r]
        split = False
        if n_leaves + top + 2 <= max_leaves and (msd >= delta * total or far >= min_area):
            split = _two_means(xc, wi, total, side[:m], 4)
        if not split:
            for r in range(m):
                leaf[idx[r]] = n_leaves
            n_leaves += 1
            continue
        lo = s  # stable partition: the False side first, so the True side is popped first
        for r in range(m):
            if not side[r]:
                perm[lo] = idx[r]
                lo += 1
        hi = lo
        for r in range(m):
            if side[r]:
                perm[hi] = idx[r]
                hi += 1
        starts[top], ends[top] = s, lo
        starts[top + 1], ends[top + 1] = lo, e
        top += 2
    return leaf


@compiled
def _union_fails(ma, sa, mb, sb, sxx, delta, min_area, far_factor):
    """The stop rule on the union of leaves a and b from their sums (mass m, Σ w x s, Σ w |x|² of the
    union): Eq. 7 on the union, or either part a mode of ≥ min_area farther than √(far_factor·δ) from the
    union mean."""
    m = ma + mb
    s2 = 0.0
    far_a, far_b = 0.0, 0.0
    for c in range(len(sa)):
        mu = (sa[c] + sb[c]) / m
        s2 += (sa[c] + sb[c]) ** 2
        far_a += (sa[c] / ma - mu) ** 2
        far_b += (sb[c] / mb - mu) ** 2
    return (sxx / m - s2 / m**2 >= delta or ma >= min_area and far_a > far_factor * delta
            or mb >= min_area and far_b > far_factor * delta)


@compiled
def merge_back(leaf, x, w, delta, min_area, far_factor):
    """Merge leaves whose union passes the stop rule, closest centroids first (ties: row-major pair order),
    union-find; undoes 2-means cuts through one noisy colour (a dense mode with a one-sided tail gets cut
    in its middle). ``leaf`` (n,) ids 0..k−1, each used; returns compact ids (0.., in order of the
    smallest member id)."""
    n, d = x.shape
    k = leaf.max() + 1
    mass, sx, sxx = np.zeros(k), np.zeros((k, d)), np.zeros(k)
    for i in range(n):
        q = leaf[i]
        mass[q] += w[i]
        for c in range(d):
            sx[q, c] += x[i, c] * w[i]
            sxx[q] += x[i, c] * x[i, c] * w[i]
    cen = sx / mass.reshape(-1, 1)
    # Only pairs whose between-leaf term alone is below δ can pass Eq. 7 together.
    pi, pj, pd = np.empty(k * k, np.int64), np.empty(k * k, np.int64), np.empty(k * k)
    p = 0
    for i in range(k):
        for j in range(i + 1, k):
            d2 = 0.0
            for c in range(d):
                d2 += (cen[i, c] - cen[j, c]) ** 2
            if mass[i] * mass[j] / (mass[i] + mass[j]) ** 2 * d2 < delta:
                pi[p], pj[p], pd[p] = i, j, d2
                p += 1
    root = np.arange(k)
    for r in np.argsort(pd[:p], kind="mergesort"):
        a, b = root[pi[r]], root[pj[r]]
        if a == b or _union_fails(mass[a], sx[a], mass[b], sx[b], sxx[a] + sxx[b], delta, min_area,
                                  far_factor):
            continue
        for q in range(k):
            if root[q] == b:
                root[q] = a
        mass[a] += mass[b]
        sx[a] += sx[b]
        sxx[a] += sxx[b]
    rank, _ = number_roots(root)
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = rank[root[leaf[i]]]
    return out


@compiled
def blend_residual(x, anchors, with_black):
    """Squared distance (n,) of each colour x (n, 3) to the nearest blend of two anchor colours (segments
    between any two of its 4 nearest anchors, and a point itself), and, ``with_black``, of anchor 0 (the
    background) and one of them; inf without anchors."""
    n, k = len(x), len(anchors)
    out = np.full(n, np.inf)
    near = np.empty(4, np.int64)
    dist = np.empty(4)
    for i in range(n):
        m = 0  # the 4 nearest anchors, insertion-sorted (ties: the lower index first)
        for q in range(k):
            d = 0.0
            for c in range(3):
                d += (x[i, c] - anchors[q, c]) ** 2
            if m < 4 or d < dist[m - 1]:
                j = min(m, 3)
                while j > 0 and dist[j - 1] > d:
                    near[j], dist[j] = near[j - 1], dist[j - 1]
                    j -= 1
                near[j], dist[j] = q, d
                m = min(m + 1, 4)
        for a in range(m):
            for b in range(a, m):
                out[i] = min(out[i], segment_residual(x[i], anchors[near[a]], anchors[near[b]]))
            if with_black:
                out[i] = min(out[i], segment_residual(x[i], anchors[0], anchors[near[a]]))
    return out


@compiled
def segment_residual(x, a, b):
    """Squared distance of the point x to the segment [a, b] (3-vectors): ≈ 0 for a blend t·a + (1 − t)·b,
    the colour of a blurred boundary between a and b (Fig. 3)."""
    s2, dot = 0.0, 0.0
    for c in range(3):
        s2 += (b[c] - a[c]) ** 2
        dot += (x[c] - a[c]) * (b[c] - a[c])
    t = min(max(dot / max(s2, 1e-12), 0.0), 1.0)
    r = 0.0
    for c in range(3):
        r += (x[c] - a[c] - t * (b[c] - a[c])) ** 2
    return r
