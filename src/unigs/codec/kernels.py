"""Compiled loops of Φ (numba): the passes whose numpy form costs a dozen array sweeps or a Python loop.

Each kernel is a plain loop over one rule of :mod:`unigs.codec.dichotomy`'s module docstring; callers
(:mod:`unigs.codec.dichotomy`, :mod:`unigs.codec.regions`) validate and type the inputs, and pass
C-contiguous numpy arrays. The machine code is cached beside the source (or in numba's per-user cache when
that folder is read-only), so only the first call on a machine compiles (about a minute for all of them on
2 cores); :func:`compiled` falls back to compiling per process where no cache folder is writable.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def compiled(fn):
    """numba's ``njit`` with the machine code cached on disk; where no cache folder is writable (numba
    then refuses ``cache=True``), compiled once per process instead."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)


@compiled
def box_down(img, f):
    """(H, W, 3) uint8 → (⌈H/f⌉, ⌈W/f⌉, 3) uint8 rounded means of f×f blocks; a clipped border block
    repeats its last row/column (numpy ``pad(mode="edge")``)."""
    h, w = img.shape[0], img.shape[1]
    hs, ws = (h + f - 1) // f, (w + f - 1) // f
    out = np.empty((hs, ws, 3), np.uint8)
    flat = img.reshape(h, w * 3)  # C-contiguous input (the caller's)
    rows = np.empty(w * 3, np.int32)
    half, area = f * f // 2, f * f
    for by in range(hs):
        rows[:] = 0
        for dy in range(f):  # the block row's f image rows, summed (contiguous: vectorised)
            y = min(by * f + dy, h - 1)
            for i in range(w * 3):
                rows[i] += flat[y, i]
        for bx in range(ws):  # then f columns per block
            for c in range(3):
                acc = 0
                for dx in range(f):
                    acc += rows[min(bx * f + dx, w - 1) * 3 + c]
                out[by, bx, c] = (acc + half) // area
    return out


@compiled
def refine_blocks(ids, table, img, f, n_ids, out):
    """Work-scale ids → full resolution (:func:`unigs.codec.regions.upsample_ids`), in place on ``out``.

    ids (h, w) int32 in [−1, n_ids) per f×f block of img (H, W, 3) uint8; table (n_ids + 1, 3) float32
    mean colour of each id, row n_ids standing for −1; out (H, W) holds every block's own id (the
    caller's block expansion). A block whose 3×3 block neighbourhood (clamped at the border) holds one id
    keeps it; in any other (mixed) block each pixel takes the neighbourhood id whose table colour is
    closest (squared RGB distance; ties: the block's own id, then the first in raster order). Returns
    area (n_ids + 1,) int64, the pixels per id, last slot for −1.
    """
    h, w = ids.shape
    H, W = img.shape[0], img.shape[1]
    pad = np.empty((h + 2, w + 2), np.int32)  # ids with the border repeated: no clamping below
    pad[1:-1, 1:-1] = ids
    pad[0, 1:-1], pad[-1, 1:-1] = ids[0], ids[-1]
    pad[:, 0], pad[:, -1] = pad[:, 1], pad[:, -2]
    area = np.zeros(n_ids + 1, np.int64)
    cand = np.empty(9, np.int32)
    for by in range(h):
        y0, y1 = by * f, min(by * f + f, H)
        for bx in range(w):
            own = ids[by, bx]
            x0, x1 = bx * f, min(bx * f + f, W)
            same = True
            for dy in range(3):
                for dx in range(3):
                    same &= pad[by + dy, bx + dx] == own
            if same:
                area[own if own >= 0 else n_ids] += (y1 - y0) * (x1 - x0)
                continue
            cand[0], n = own, 1
            for dy in range(3):
                for dx in range(3):
                    v = pad[by + dy, bx + dx]
                    new = True
                    for i in range(n):
                        new &= cand[i] != v
                    if new:
                        cand[n] = v
                        n += 1
            for y in range(y0, y1):
                for x in range(x0, x1):
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
    return area


@compiled
def flat_cells(img, thr4):
    """Φ's flat mask (:func:`unigs.codec.dichotomy._flat_mask`) on (H, W, 3) uint8, in integers: per 4×4
    cell the sum s of its 2×2 subsample (every other pixel; a clipped cell repeats its last subsample
    row/column), padded by linear extrapolation (2·s[0] − s[1]) at the border; a cell is flat when
    max over channels and axes of |s(+1) − s(−1)| < thr4 (4 × the grey-level threshold, as float32).
    Returns (⌈H/4⌉, ⌈W/4⌉) bool."""
    H, W = img.shape[0], img.shape[1]
    h2, w2 = (H + 1) // 2, (W + 1) // 2  # the subsample
    h4, w4 = (h2 + 1) // 2, (w2 + 1) // 2
    p = np.empty((3, h4 + 2, w4 + 2), np.int32)
    for i in range(h4):
        ya, yb = 4 * i, 2 * min(2 * i + 1, h2 - 1)
        for j in range(w4):
            xa, xb = 4 * j, 2 * min(2 * j + 1, w2 - 1)
            for c in range(3):
                p[c, i + 1, j + 1] = (np.int32(img[ya, xa, c]) + img[yb, xa, c] + img[ya, xb, c]
                                      + img[yb, xb, c])
    for c in range(3):
        for j in range(1, w4 + 1):
            if h4 > 1:
                p[c, 0, j] = 2 * p[c, 1, j] - p[c, 2, j]
                p[c, h4 + 1, j] = 2 * p[c, h4, j] - p[c, h4 - 1, j]
            else:
                p[c, 0, j] = p[c, h4 + 1, j] = p[c, 1, j]
        for i in range(1, h4 + 1):
            if w4 > 1:
                p[c, i, 0] = 2 * p[c, i, 1] - p[c, i, 2]
                p[c, i, w4 + 1] = 2 * p[c, i, w4] - p[c, i, w4 - 1]
            else:
                p[c, i, 0] = p[c, i, w4 + 1] = p[c, i, 1]
    flat = np.empty((h4, w4), np.bool_)
    for i in range(h4):
        for j in range(w4):
            g = 0
            for c in range(3):
                g = max(g, abs(p[c, i + 1, j + 2] - p[c, i + 1, j]), abs(p[c, i + 2, j + 1] - p[c, i, j + 1]))
            flat[i, j] = g < thr4
    return flat


@compiled
def pixel_codes(img, bits, thr4, code):
    """Φ's histogram codes (:mod:`unigs.codec.dichotomy`, "Speed") of (H, W, 3) uint8 into ``code``
    (H, W) (uint16, or uint32 past 16 bits): (bin << 1) | flat, the bin the channels quantised to
    ``bits`` bits (r → g → b), flat from :func:`flat_cells`. Returns the [not flat, flat] pixel count of
    every bin, (2^(3·bits), 2) int64."""
    flat = flat_cells(img, thr4)
    shift = 8 - bits
    both = np.zeros((1 << (3 * bits), 2), np.int64)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            r, g = np.int64(img[y, x, 0]) >> shift, np.int64(img[y, x, 1]) >> shift
            b = (r << (2 * bits)) | (g << bits) | (np.int64(img[y, x, 2]) >> shift)
            fl = np.int64(flat[y >> 2, x >> 2])
            code[y, x] = (b << 1) | fl
            both[b, fl] += 1
    return both


@compiled
def masks_of(ids, k, rank):
    """(H, W) ids (−1: none) → (k, H, W) bool, id i ≥ 0 in mask rank[i] (none if −1): one write per
    pixel into zeroed planes."""
    H, W = ids.shape
    out = np.zeros((k, H, W), np.bool_)
    for y in range(H):
        for x in range(W):
            v = ids[y, x]
            if v >= 0 and rank[v] >= 0:
                out[rank[v], y, x] = True
    return out


@compiled
def few_bins(img, step, bits, max_bins):
    """Whether the colours of every ``step``-th pixel of (H, W, 3) uint8 fall in at most ``max_bins`` bins
    of ``bits`` bits per channel (stops at the first bin too many: decoded maps fail within a few rows)."""
    seen = np.zeros(1 << (3 * bits), np.bool_)
    shift = 8 - bits
    n = 0
    for y in range(0, img.shape[0], step):
        for x in range(0, img.shape[1], step):
            code = ((np.int64(img[y, x, 0]) >> shift) << (2 * bits)) | (
                (np.int64(img[y, x, 1]) >> shift) << bits) | (np.int64(img[y, x, 2]) >> shift)
            if not seen[code]:
                seen[code] = True
                n += 1
                if n > max_bins:
                    return False
    return True


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
def id_sums(ids, img, n, offset):
    """Pixel count (n,) and colour sums (n, 3), float64, per id of the (H, W) int map ``ids`` + ``offset``
    (in [0, n)) over the (H, W, 3) uint8 image, in one pass."""
    count = np.zeros(n)
    sums = np.zeros((n, 3))
    for y in range(ids.shape[0]):
        for x in range(ids.shape[1]):
            i = ids[y, x] + offset
            count[i] += 1
            sums[i, 0] += img[y, x, 0]
            sums[i, 1] += img[y, x, 1]
            sums[i, 2] += img[y, x, 2]
    return count, sums


@compiled
def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@compiled
def label4(values):
    """4-connected regions of equal value in an (H, W) int map → (H, W) int64 ids 0..m−1, numbered in
    raster order of their first pixel (as scikit-image's ``label``), and m. One scan with provisional
    labels (a pixel equal to its left or upper neighbour takes its label; union-find where both meet),
    then one relabelling pass."""
    h, w = values.shape
    lab = np.empty((h, w), np.int64)
    parent = np.empty(h * w, np.int64)
    n = 0
    for y in range(h):
        for x in range(w):
            v = values[y, x]
            left = x > 0 and values[y, x - 1] == v
            up = y > 0 and values[y - 1, x] == v
            if left:
                lab[y, x] = lab[y, x - 1]
                if up and lab[y - 1, x] != lab[y, x]:
                    a, b = _root(parent, lab[y, x]), _root(parent, lab[y - 1, x])
                    parent[max(a, b)] = min(a, b)  # the root is the set's first label (raster order)
            elif up:
                lab[y, x] = lab[y - 1, x]
            else:
                parent[n] = n
                lab[y, x] = n
                n += 1
    final = np.empty(n, np.int64)
    m = 0
    for i in range(n):  # labels were made in raster order, so their roots come first
        r = _root(parent, i)
        if r == i:
            final[i] = m
            m += 1
        else:
            final[i] = final[r]
    for y in range(h):
        for x in range(w):
            lab[y, x] = final[lab[y, x]]
    return lab, m


@compiled
def components(labels):
    """4-connected regions of equal leaf id: (comp (H, W) int64 ids 0..m−1, m, pa, pb, count): every pair
    of touching regions once, pa < pb ascending by (pa, pb), with its shared boundary in pixel edges."""
    comp, m = label4(labels)
    h, w = comp.shape
    codes = np.empty(2 * h * w, np.int64)
    n = 0
    for y in range(h):
        for x in range(w):
            c = comp[y, x]
            if x > 0 and comp[y, x - 1] != c:
                codes[n] = min(c, comp[y, x - 1]) * m + max(c, comp[y, x - 1])
                n += 1
            if y > 0 and comp[y - 1, x] != c:
                codes[n] = min(c, comp[y - 1, x]) * m + max(c, comp[y - 1, x])
                n += 1
    codes = np.sort(codes[:n])
    pa, pb, count = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float64)
    k = 0
    for i in range(n):
        if i == 0 or codes[i] != codes[i - 1]:
            pa[k], pb[k], count[k] = codes[i] // m, codes[i] % m, 1.0
            k += 1
        else:
            count[k - 1] += 1.0
    return comp, m, pa[:k], pb[:k], count[:k]


@compiled
def midpoint(pix, img, steps):
    """Fig. 3 blends with black (:func:`unigs.codec.regions._midpoint`), in place on pix (H, W) int64
    (0: background, ≥ 1 entities; some background pixel required): a pixel of entity e whose colour
    projects on the segment black → c_e below its middle goes to the background; c_e is the mean of e's
    pixels at or above that middle, from e's plain mean in ``steps`` fixed-point steps."""
    h, w = pix.shape
    n = pix.max() + 1
    black = np.zeros(3)
    nb = 0
    for y in range(h):
        for x in range(w):
            if pix[y, x] == 0:
                nb += 1
                for c in range(3):
                    black[c] += img[y, x, c]
    black /= nb
    seg = np.zeros((n, 3))
    keep = np.ones((h, w), np.bool_)
    for _ in range(steps):
        sums, cnt = np.zeros((n, 3)), np.zeros(n)
        for y in range(h):
            for x in range(w):
                e = pix[y, x]
                if e > 0 and keep[y, x]:
                    cnt[e] += 1
                    for c in range(3):
                        sums[e, c] += img[y, x, c] - black[c]
        half = np.empty(n)
        for e in range(n):
            for c in range(3):
                seg[e, c] = sums[e, c] / max(cnt[e], 1.0)
            half[e] = max(0.5 * (seg[e, 0] ** 2 + seg[e, 1] ** 2 + seg[e, 2] ** 2), 0.5e-12)
        for y in range(h):
            for x in range(w):
                e = pix[y, x]
                if e > 0:
                    dot = ((img[y, x, 0] - black[0]) * seg[e, 0] + (img[y, x, 1] - black[1]) * seg[e, 1]
                           + (img[y, x, 2] - black[2]) * seg[e, 2])
                    keep[y, x] = dot >= half[e]
    for y in range(h):
        for x in range(w):
            if not keep[y, x]:
                pix[y, x] = 0
    return pix


@compiled
def fill_holes(pix, min_area):
    """Background specks (4-connected, < ``min_area`` px) of pix (H, W) int64 (0: background) → the entity
    they share the most boundary with (ties: the smaller id); in place."""
    h, w = pix.shape
    hole, m = label4((pix == 0).astype(np.int8))
    size = np.zeros(m, np.int64)
    for y in range(h):
        for x in range(w):
            size[hole[y, x]] += 1
    n = pix.max() + 1
    small = np.zeros(m, np.bool_)
    for y in range(h):
        for x in range(w):
            small[hole[y, x]] = pix[y, x] == 0 and size[hole[y, x]] < min_area
    if not small.any():
        return pix
    codes = np.empty(4 * h * w, np.int64)  # (hole, entity) per boundary edge of a small hole
    k = 0
    for y in range(h):
        for x in range(w):
            if not small[hole[y, x]]:
                continue
            for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and pix[yy, xx] > 0:
                    codes[k] = hole[y, x] * n + pix[yy, xx]
                    k += 1
    codes = np.sort(codes[:k])
    target = np.zeros(m, np.int64)
    best = np.zeros(m, np.int64)
    run = 0
    for i in range(k):  # ascending codes: per hole, the entity with the longest run (ties: smaller id)
        run = run + 1 if i > 0 and codes[i] == codes[i - 1] else 1
        if i == k - 1 or codes[i + 1] != codes[i]:
            q, e = codes[i] // n, codes[i] % n
            if run > best[q]:
                target[q], best[q] = e, run
    for y in range(h):
        for x in range(w):
            if small[hole[y, x]]:
                pix[y, x] = target[hole[y, x]]
    return pix


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
    rank = np.full(k, -1)
    m = 0
    for q in range(k):
        if root[q] == q:
            rank[q] = m
            m += 1
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
