"""Eq. 6–7 of Φ (paper §3.2): weighted colour units → colour leaves, the progressive dichotomy.

Starting from all units, a region is split in two by 2-means (Eq. 6), depth first, until it satisfies
the stop rule; the leaves are the colour classes. K is whatever the tree produces; no count is given.

* **Stop rule.** Eq. 7, msd < δ (mean squared distance to the region mean, feature units of
  :mod:`unigs.codec.color`), plus the small-mode guard: a region is also split while ≥ ``min_area`` of its
  weight lies farther than √(far_factor·δ) from its mean. At most ``max_leaves`` leaves.
* **2-means.** Deterministic: the exact 2-means cut of the projections on the principal axis (Otsu-style
  prefix sums), then ≤ 4 weighted Lloyd steps in feature space. A mode with a one-sided tail can be cut
  in its middle, so afterwards leaves merge back, closest first, whenever their union passes the stop
  rule.
* **Background first.** Every unit whose channels are all < ``background_level`` is one background leaf
  before any split, so no visible colour is ever averaged into the black background.
* **Flat pixels first.** Only flat pixels (:mod:`unigs.codec.histogram`) take part; leaves with fewer than
  ``min_area`` flat pixels are dropped. **Fallback:** small or textured entities own few or no flat
  pixels, so the remaining colours that are neither near a kept leaf nor a blend of two of them (RGB/8
  distance² to every segment between two leaf means, background included, > far_factor·δ) get a
  dichotomy of their own on all their pixels, and all of its leaves are kept. Every other colour (ramps,
  dropped leaves) goes to the nearest foreground leaf in feature space.
* **Painted maps** take every pixel, ``min_area`` 1 and no fallback: ``decode(palette.encode(masks))``
  returns every visible entity exactly.
"""

from __future__ import annotations

import numpy as np

from unigs.codec._loops import rows
from unigs.codec.config import DichotomyConfig
from unigs.codec.histogram import Units


def group_sums(group: np.ndarray, k: int, values: np.ndarray) -> np.ndarray:
    """(n,) ids in [0, k), (n, D) values → (k, D) per-id sums, in one bincount (row order, as D bincounts)."""
    d = values.shape[1]
    idx = (group[:, None] * d + np.arange(d)).reshape(-1)
    return np.bincount(idx, weights=values.reshape(-1), minlength=k * d).reshape(k, d)


def dichotomy(x: np.ndarray, w: np.ndarray, cfg: DichotomyConfig, min_area: float) -> np.ndarray:
    """Eq. 6–7 dichotomy, then merge-back: compact leaf ids (n,) of the weighted rows x (n, D), w (n,)."""
    x, w = np.ascontiguousarray(x, np.float64), np.ascontiguousarray(w, np.float64)
    delta, far = float(cfg.delta), float(cfg.far_factor)
    leaf = rows.dichotomy(x, w, delta, float(min_area), int(cfg.max_leaves), far)
    return rows.merge_back(leaf, x, w, delta, float(min_area), far)


def colour_leaves(units: Units, cfg: DichotomyConfig) -> tuple[np.ndarray, int, int]:
    """The leaves of :class:`~unigs.codec.histogram.Units` (module docstring, in order).

    Returns the leaf id (n,) int64 in [0, k) of every unit, k ≥ 1, and the id of the background leaf
    (0, or −1 if no unit is near-black).
    """
    rgb, feat, w_all, clean = units.rgb, units.feat, units.w_all, units.clean
    leaf = np.full(len(rgb), -1, dtype=np.int64)
    background = (rgb < cfg.background_level).all(1)  # first split: the near-black units, one leaf
    k, bg_id = (1, 0) if background.any() else (0, -1)
    leaf[background] = bg_id
    fg = np.flatnonzero(~background)
    if len(fg) == 0:
        return leaf, 1, bg_id
    area = 1 if clean else cfg.min_area
    weight = units.w_flat[fg] if (units.w_flat[fg] > 0).any() else w_all[fg]  # no flat pixel: every one
    part, wp = fg[weight > 0], weight[weight > 0]
    lp = dichotomy(feat[part], wp, cfg, area)  # Eq. 6–7 on the flat pixels
    n = int(lp.max()) + 1
    mass = np.bincount(lp, weights=wp, minlength=n)
    kept = np.flatnonzero(mass >= area)  # tiny leaves are dropped, their colours reassigned below
    rank = np.full(n, -1, dtype=np.int64)
    rank[kept] = k + np.arange(len(kept))
    leaf[part] = rank[lp]
    centroid = group_sums(lp, n, feat[part] * wp[:, None])[kept] / mass[kept, None]
    k += len(kept)
    loose = np.flatnonzero(leaf < 0)
    if not clean and len(loose):  # the fallback: colours of regions with too few flat pixels
        have = leaf >= 0
        size = np.bincount(leaf[have], weights=w_all[have], minlength=k)
        anchor = group_sums(leaf[have], k, rgb[have] * w_all[have, None])[size > 0] / size[size > 0, None]
        res = rows.blend_residual(rgb[loose] * cfg.rgb_scale, anchor * cfg.rgb_scale, bg_id >= 0)
        odd = loose[res > cfg.far_factor * cfg.delta]
        if len(odd):
            lo = dichotomy(feat[odd], w_all[odd], cfg, cfg.min_area)  # every leaf kept (tiny: stage A)
            no = int(lo.max()) + 1
            mo = np.bincount(lo, weights=w_all[odd], minlength=no)
            leaf[odd] = k + lo
            new = group_sums(lo, no, feat[odd] * w_all[odd, None]) / mo[:, None]
            centroid = np.concatenate((centroid, new))
            k += no
            loose = np.flatnonzero(leaf < 0)
    if len(centroid) == 0:  # no foreground leaf (only possible without fallback): all is background
        leaf[loose] = 0
        return leaf, 1, 0
    # Boundary blends, gradients and dropped leaves → nearest foreground leaf in feature space.
    fl = feat[loose]
    d2 = (fl**2).sum(1)[:, None] - 2 * fl @ centroid.T + (centroid**2).sum(1)[None]
    leaf[loose] = bg_id + 1 + d2.argmin(1)
    return leaf, k, bg_id
