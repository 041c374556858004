"""Φ's compiled per-pixel passes (numba): histogram codes and flat cells (:mod:`unigs.codec.histogram`),
box mean and refinement (:mod:`unigs.codec.workscale`), connected regions, midpoint, holes and the id sums
(:mod:`unigs.codec.cleanup`), the mask writes (:mod:`unigs.codec.dichotomy`)."""

from __future__ import annotations

import numpy as np

from unigs.codec._loops import compiled


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
    """Work-scale ids → full resolution (:func:`unigs.codec.workscale.upsample_ids`), in place on ``out``.

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
    """Φ's flat mask (:func:`unigs.codec.histogram.flat_mask`) on (H, W, 3) uint8, in integers: per 4×4
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
    """Φ's histogram codes (:mod:`unigs.codec.histogram`, "Speed") of (H, W, 3) uint8 into ``code``
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
def number_roots(parent):
    """Roots (parent[q] == q) of a union-find forest numbered 0.. in id order: (rank (n,) int64, −1 for
    the other nodes, and the number of roots)."""
    rank = np.full(len(parent), -1)
    m = 0
    for q in range(len(parent)):
        if parent[q] == q:
            rank[q] = m
            m += 1
    return rank, m


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
    """Fig. 3 blends with black (:func:`unigs.codec.cleanup.midpoint_to_background`), in place on pix
    (H, W) int64 (0: background, ≥ 1 entities; some background pixel required): a pixel of entity e
    whose colour projects on the segment black → c_e below its middle goes to the background; c_e is the
    mean of e's pixels at or above that middle, from e's plain mean in ``steps`` fixed-point steps."""
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
