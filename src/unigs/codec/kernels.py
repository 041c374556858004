"""Compiled loops of Φ (numba): the passes whose numpy form costs a dozen array sweeps or a Python loop.

Each kernel is a plain loop with the same rule as the numpy it replaced, documented where it is called
(:mod:`unigs.codec.regions`, :mod:`unigs.codec.dichotomy`). Inputs are validated and typed by the callers;
the kernels take contiguous numpy arrays only. ``cache=True`` keeps the machine code beside the source (or
in numba's per-user cache when that folder is read-only), so only the first call on a machine compiles.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def box_down(img, f):
    """(H, W, 3) uint8 → (⌈H/f⌉, ⌈W/f⌉, 3) uint8 rounded means of f×f blocks; a clipped border block
    repeats its last row/column (numpy ``pad(mode="edge")``)."""
    h, w = img.shape[0], img.shape[1]
    hs, ws = (h + f - 1) // f, (w + f - 1) // f
    out = np.empty((hs, ws, 3), np.uint8)
    acc = np.zeros((ws, 3), np.int64)
    half, area = f * f // 2, f * f
    for by in range(hs):
        acc[:] = 0
        for dy in range(f):
            y = min(by * f + dy, h - 1)
            for x in range(ws * f):
                xc = min(x, w - 1)
                b = x // f
                for c in range(3):
                    acc[b, c] += img[y, xc, c]
        for b in range(ws):
            for c in range(3):
                out[by, b, c] = (acc[b, c] + half) // area
    return out


@njit(cache=True, nogil=True)
def refine_blocks(ids, table, img, f, n_ids):
    """Work-scale ids → full resolution (:func:`unigs.codec.regions.upsample_ids`).

    ids (h, w) int32 in [−1, n_ids) per f×f block of img (H, W, 3) uint8; table (n_ids + 1, 3) float32
    mean colour of each id, row n_ids standing for −1. A block whose 3×3 block neighbourhood (clamped at
    the border) holds one id gives it to all its pixels; in any other block each pixel takes the
    neighbourhood id whose table colour is closest (squared RGB distance; ties: the block's own id, then
    the first in raster order). Returns (full (H, W) int32 ids, area (n_ids + 1,) int64 pixel count per
    id, last slot for −1).
    """
    h, w = ids.shape
    H, W = img.shape[0], img.shape[1]
    out = np.empty((H, W), np.int32)
    area = np.zeros(n_ids + 1, np.int64)
    cand = np.empty(9, np.int32)
    for by in range(h):
        for bx in range(w):
            own = ids[by, bx]
            cand[0] = own
            n = 1
            for dy in range(-1, 2):
                yy = min(max(by + dy, 0), h - 1)
                for dx in range(-1, 2):
                    v = ids[yy, min(max(bx + dx, 0), w - 1)]
                    seen = False
                    for i in range(n):
                        if cand[i] == v:
                            seen = True
                            break
                    if not seen:
                        cand[n] = v
                        n += 1
            y1, x1 = min(by * f + f, H), min(bx * f + f, W)
            if n == 1:
                for y in range(by * f, y1):
                    for x in range(bx * f, x1):
                        out[y, x] = own
                area[own if own >= 0 else n_ids] += (y1 - by * f) * (x1 - bx * f)
                continue
            for y in range(by * f, y1):
                for x in range(bx * f, x1):
                    r, g, b = np.float32(img[y, x, 0]), np.float32(img[y, x, 1]), np.float32(img[y, x, 2])
                    best, best_d = own, np.float32(np.inf)
                    for i in range(n):
                        row = cand[i] if cand[i] >= 0 else n_ids
                        d = ((r - table[row, 0]) ** 2 + (g - table[row, 1]) ** 2
                             + (b - table[row, 2]) ** 2)
                        if d < best_d:
                            best, best_d = cand[i], d
                    out[y, x] = best
                    area[best if best >= 0 else n_ids] += 1
    return out, area


@njit(cache=True, nogil=True)
def relabel(ids, rank):
    """ids (H, W) int32 in [−1, len(rank) − 1) → rank[ids] in place (−1 reads the last slot)."""
    last = len(rank) - 1
    for y in range(ids.shape[0]):
        for x in range(ids.shape[1]):
            v = ids[y, x]
            ids[y, x] = rank[v if v >= 0 else last]
    return ids


@njit(cache=True, nogil=True)
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
    c2 = (cov / trace) @ (cov / trace)
    c4 = c2 @ c2
    v = cov[:, widest].copy()
    for _ in range(3):
        v = c4 @ v
    proj = xc @ v
    order = np.argsort(proj, kind="mergesort")
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
        thr = (s1 @ s1) * (total - 2 * m1) / (2 * m1 * (total - m1))
        same = True
        for i in range(n):
            new[i] = xc[i] @ s1 > thr
            same = same and new[i] == side[i]
        if same:
            break
        side[:] = new
    ones = 0
    for i in range(n):
        ones += side[i]
    return 0 < ones < n


@njit(cache=True, nogil=True)
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
