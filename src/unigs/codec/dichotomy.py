"""Φ — the progressive dichotomy decoder: entity colormap → entity masks (paper §3.2, Eq. 5–7, Fig. 3).

Algorithm (Eq. 6–7). Every pixel gets a 6-d feature p = RGB ‖ CIELAB. Starting from the whole image, a
region is split in two by 2-means (Eq. 6), depth first, until it satisfies the stop rule; the leaves are
the entities. K is whatever the tree produces; no cluster count is given.

Conventions the paper leaves open, fixed here:

* **Feature scaling and δ units.** p = (R, G, B) / 8 ‖ (L*, a*, b*) / 3, RGB in [0, 255], CIELAB from
  :func:`unigs.codec.color.rgb_to_lab`: both halves span ≈ 32 units, one palette step (64 grey levels) is
  8 RGB units. δ bounds the *mean squared* Euclidean distance of Eq. 7 in these units. Scales: i.i.d.
  noise of σ = 2 / 3 grey levels gives 0.4 / 0.9; the two closest palette colours are 65 apart (squared),
  so an even mix of them has msd 16. δ = 10 (the paper's best, Table 9a) sits between the two.
* **Stop rule.** Eq. 7 (msd < δ) plus a small-mode guard: a region is also split while ≥ ``min_area`` of
  its pixels lie farther than 2√δ from its mean (squared distance > 4δ). Eq. 7 alone averages a small
  entity away inside a large region (a 1 % entity of the closest colour adds 0.6 to the msd). At most
  ``max_leaves`` leaves.
* **2-means.** Deterministic: the exact 2-means cut of the projections on the principal axis (top
  eigenvector of the weighted covariance; Otsu-style prefix sums), then ≤ 4 weighted Lloyd steps in 6-d.
  A mode with a one-sided tail can be cut in its middle, so afterwards leaves are merged back, closest
  first, whenever their union passes the stop rule (Eq. 7 from the leaf sums, the guard on centroids).
* **Boundaries (Fig. 3: blends, gradients, black holes).** A VAE round trip turns every edge into a ramp
  of interpolated colours ≈ 16 px wide. Only *flat* pixels — where the colour of 4×4-pixel cells changes
  by < ``edge_threshold`` grey levels between the cells left/right and above/below (a ramp of 3 levels
  per pixel) — take part in the splits. Afterwards every colour (ramps, dropped leaves) goes to the
  nearest kept leaf in feature space, which puts a blurred boundary at the colour midpoint of its sides.
  Leaves with fewer than ``min_area`` flat pixels (default 24, more than one 4×4 cell: bilinear
  upsampling leaves one-cell blend plateaus at image corners) are dropped that way. Limitation: an entity
  narrower than ≈ 3 latent cells (24 px at ×8) owns no flat pixel and goes to its neighbours.
* **Painted (clean) colormaps.** A map with ≤ ``max_clean_colors`` distinct colours, no two in one
  histogram bin, did not go through a VAE: every pixel takes part, units are its exact colours and
  ``min_area`` is 1 px, so
  ``decode(palette.encode(masks))`` returns every visible entity exactly (distinct colours assumed).
* **Speed.** :func:`decode` never runs 2-means over pixels: one ``bincount`` histogram of colours
  quantised to ``bin_size`` grey levels (15-bit key at the default 8; each bin is represented by its
  centre, an error ≤ 4 levels, far below the palette step), splits on the few hundred/thousand occupied
  bins weighted by their flat-pixel counts, and one lookup back to pixels. Histogram, flat mask, lookup
  and masks run in torch on the input's device; the splits run on CPU (a small table with data-dependent
  control flow). :func:`decode_reference` applies the same rules to single pixels (no histogram).
* **Background.** Leaves whose mean colour has every channel < ``background_level`` (32, half a palette
  step) are one background leaf: dropped when ``keep_background=False``, else kept as an entity.
  ``snap_to_palette=True`` merges leaves whose means snap to the same palette colour and reports it.
* **Order.** Masks by area descending, ties by mean colour (r, g, b ascending).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from unigs.codec.color import _unit_float, check_rgb, rgb_to_lab

__all__ = ["FEATURES", "decode", "decode_reference", "decode_with_colors", "pixel_features", "rgb_to_lab"]

FEATURES = ("rgb+lab", "rgb", "lab")
RGB_SCALE = 1.0 / 8.0  # one palette step (64 grey levels) = 8 units
LAB_SCALE = 1.0 / 3.0  # L* in [0, 100] → [0, 33]
FAR_FACTOR = 4.0  # small-mode guard: squared distance > FAR_FACTOR · δ counts as "far"


def pixel_features(rgb, features: str = "rgb+lab"):
    """Φ's pixel feature p_o (§3.2), scaled as in the module docstring.

    Args:
        rgb: ``(..., 3)`` uint8 or float in [0, 255], numpy array or torch tensor (any device).
        features: ``"rgb+lab"`` (6-d, the paper's choice), ``"rgb"`` or ``"lab"`` (3-d; Table 9b).

    Returns:
        ``(..., D)`` float32 (float64 for float64 input), same container type and device as ``rgb``.
    """
    if features not in FEATURES:
        raise ValueError(f"features must be one of {list(FEATURES)}, got {features!r}")
    t, is_numpy = check_rgb(rgb)
    x = _unit_float(t)
    parts = []
    if "rgb" in features:
        parts.append(x * (255.0 * RGB_SCALE))
    if "lab" in features:
        parts.append(rgb_to_lab(x * 255.0) * LAB_SCALE)
    out = torch.cat(parts, dim=-1)
    return out.numpy() if is_numpy else out


# ------------------------------------------------------------------------------------------ checks
def _check_args(delta: float, features: str, min_area: int, bin_size: int, edge_threshold: float) -> None:
    if not isinstance(delta, int | float) or not delta > 0:
        raise ValueError(f"delta must be a number > 0 (Eq. 7 threshold), got {delta!r}")
    if features not in FEATURES:
        raise ValueError(f"features must be one of {list(FEATURES)}, got {features!r}")
    if not isinstance(min_area, int | np.integer) or min_area < 1:
        raise ValueError(f"min_area must be an integer >= 1 (pixels), got {min_area!r}")
    if bin_size not in (1, 2, 4, 8, 16):
        raise ValueError(f"bin_size must be one of 1, 2, 4, 8, 16 grey levels, got {bin_size!r}")
    if not isinstance(edge_threshold, int | float) or not edge_threshold > 0:
        raise ValueError(f"edge_threshold must be a number > 0 (grey levels), got {edge_threshold!r}")


def _as_colormaps(colormap) -> tuple[torch.Tensor, bool, bool]:
    """Validate; return (B, H, W, 3) tensor (uint8 or float), was-numpy, was-batched."""
    t, is_numpy = check_rgb(colormap, "colormap")  # type, last dim, dtype, NaN and float range
    if t.ndim not in (3, 4):
        raise ValueError(f"colormap must be (H, W, 3) or (B, H, W, 3), got shape {tuple(t.shape)}")
    if t.shape[-3] == 0 or t.shape[-2] == 0:
        raise ValueError(f"colormap must have a non-empty image size, got shape {tuple(t.shape)}")
    return (t if t.ndim == 4 else t[None]), is_numpy, t.ndim == 4


# -------------------------------------------------------------------------------------- dichotomy
def _two_means(x: np.ndarray, w: np.ndarray, mean: np.ndarray, max_iter: int = 4) -> np.ndarray | None:
    """Weighted 2-means (Eq. 6 𝓑𝓚) on rows of ``x``; returns a bool side per row, None if unsplittable.

    Deterministic start: the best 2-means cut of the projections on the principal axis (top eigenvector
    of the weighted covariance by power iteration; exact in 1-D via prefix sums, as Otsu's threshold),
    then Lloyd steps in the full feature space.
    """
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc
    axis = cov[:, int(np.argmax(np.diag(cov)))]  # power iteration from the widest column
    for _ in range(12):
        axis = cov @ axis
        axis /= np.linalg.norm(axis) + 1e-300
    proj = xc @ axis
    if len(x) < 2:
        return None
    order = np.argsort(proj, kind="stable")
    ws, ps = w[order], proj[order]
    total_w, total_s, total_wx = ws.sum(), ws @ ps, w @ x
    cw, cs = np.cumsum(ws)[:-1], np.cumsum(ws * ps)[:-1]
    gain = (cs / cw - (total_s - cs) / (total_w - cw)) ** 2 * cw * (total_w - cw)  # between-class scatter
    gain[ps[1:] <= ps[:-1]] = -1.0  # only cut between distinct values
    cut = int(np.argmax(gain))
    if gain[cut] <= 0:
        return None
    side = proj > ps[cut]
    for _ in range(max_iter):
        m1 = w @ side
        if m1 <= 0 or m1 >= total_w:
            return None
        c1 = (w * side) @ x / m1
        c0 = (total_wx - m1 * c1) / (total_w - m1)
        # |x - c1|² < |x - c0|²  ⇔  x·(c1 - c0) > (|c1|² - |c0|²) / 2
        new = x @ (c1 - c0) > 0.5 * (c1 @ c1 - c0 @ c0)
        if np.array_equal(new, side):
            break
        side = new
    return None if side.all() or not side.any() else side


def _dichotomy(x: np.ndarray, w: np.ndarray, delta: float, min_area: float, max_leaves: int) -> np.ndarray:
    """Depth-first progressive dichotomy (Eq. 6–7) over weighted rows; returns the leaf id of each row."""
    leaf = np.zeros(len(x), dtype=np.int64)
    n_leaves = 0
    stack = [np.arange(len(x))]
    while stack:
        idx = stack.pop()
        xi, wi = x[idx], w[idx]
        mean = wi @ xi / wi.sum()
        d2 = ((xi - mean) ** 2).sum(1)
        msd = wi @ d2 / wi.sum()  # Eq. 7 left-hand side
        far = wi[d2 > FAR_FACTOR * delta].sum()  # small-mode guard (module docstring)
        side = None
        if (msd >= delta or far >= min_area) and n_leaves + len(stack) + 2 <= max_leaves:
            side = _two_means(xi, wi, mean)
        if side is None:
            leaf[idx] = n_leaves
            n_leaves += 1
        else:
            stack += [idx[~side], idx[side]]
    return leaf


def _merge_back(leaf: np.ndarray, x: np.ndarray, w: np.ndarray, delta: float, min_area: float) -> np.ndarray:
    """Merge leaves whose union passes the stop rule, closest pairs first (one pass, union-find); undoes
    2-means cuts through one noisy colour (a dense mode with a one-sided tail gets cut in its middle)."""
    leaf = np.unique(leaf, return_inverse=True)[1]
    k = int(leaf.max()) + 1
    mass = np.bincount(leaf, weights=w, minlength=k)
    sx = np.stack([np.bincount(leaf, weights=w * f, minlength=k) for f in x.T], 1)  # Σ w x per leaf
    sxx = np.bincount(leaf, weights=w * (x**2).sum(1), minlength=k)  # Σ w |x|² per leaf
    cen = sx / mass[:, None]
    d2 = ((cen[:, None] - cen[None]) ** 2).sum(-1)
    # Only pairs whose between-leaf term alone is below δ can pass Eq. 7 together.
    between = mass[:, None] * mass[None] / (mass[:, None] + mass[None]) ** 2 * d2
    ii, jj = np.nonzero(np.triu(between < delta, 1))
    root = np.arange(k)
    for n in np.argsort(d2[ii, jj], kind="stable"):
        a, b = root[ii[n]], root[jj[n]]
        if a == b:
            continue
        m, s1, s2 = mass[a] + mass[b], sx[a] + sx[b], sxx[a] + sxx[b]
        if s2 / m - (s1 @ s1) / m**2 >= delta:  # Eq. 7 on the union, from the leaf sums
            continue
        # Small-mode guard on leaf level: neither part may be a mode of >= min_area far from the union mean.
        mu = s1 / m
        far = [((sx[c] / mass[c] - mu) ** 2).sum() > FAR_FACTOR * delta for c in (a, b)]
        if not any(f and mass[c] >= min_area for f, c in zip(far, (a, b), strict=True)):
            root[root == b] = a
            mass[a], sx[a], sxx[a] = m, s1, s2
    return np.unique(root[leaf], return_inverse=True)[1]


# ------------------------------------------------------------------------------------- boundaries
def _flat_mask(img: torch.Tensor, edge_threshold: float) -> torch.Tensor:
    """(H, W, 3) colormap → (H, W) bool, True where the local colour gradient is small (module docstring).

    On the 4×4 cell means s, g = max over channels and axes of |s(+1) − s(−1)|, the colour
    change over 8 px: a linear ramp of k grey levels per pixel gives g = 8k. Every pixel of a cell shares
    the cell's flag.
    """
    h, w = img.shape[:2]
    # Cell means from every other pixel of each 4×4 cell (4× cheaper; noise σ → σ/2).
    s = F.avg_pool2d(img[::2, ::2].permute(2, 0, 1)[None].float(), 2, 2, ceil_mode=True)
    # Pad by linear extrapolation (2·s[0] − s[1]): at the border the central difference becomes twice the
    # one-sided one, so a ramp cut by the image border is not mistaken for a flat region.
    for dim in (-2, -1):
        first, last = s.narrow(dim, 0, 1), s.narrow(dim, s.shape[dim] - 1, 1)
        if s.shape[dim] == 1:
            s = torch.cat((first, s, last), dim)
        else:
            second, before_last = s.narrow(dim, 1, 1), s.narrow(dim, s.shape[dim] - 2, 1)
            s = torch.cat((2 * first - second, s, 2 * last - before_last), dim)
    gx = (s[..., 1:-1, 2:] - s[..., 1:-1, :-2]).abs()
    gy = (s[..., 2:, 1:-1] - s[..., :-2, 1:-1]).abs()
    flat = torch.maximum(gx, gy).amax(1)[0] < edge_threshold
    h4, w4 = flat.shape
    return flat[:, None, :, None].expand(h4, 4, w4, 4).reshape(4 * h4, 4 * w4)[:h, :w]


# ----------------------------------------------------------------------------------------- decode
def _decode_units(rgb, w_all, w_flat, *, clean, delta, keep_background, features, min_area,
                  snap_to_palette, max_leaves, background_level):
    """Φ on weighted colour units (histogram bins, or single pixels in the reference).

    rgb (n, 3) float64 colour of each unit, w_all (n,) its pixel count, w_flat (n,) its count of flat
    pixels. Returns the output mask index of each unit (n,) int64 (−1: dropped background) and the
    colours (K, 3) uint8 of the K masks, ordered by area descending, ties by colour.
    """
    feat = pixel_features(rgb, features).astype(np.float64)
    area = 1 if clean else min_area
    weight = w_flat if (w_flat > 0).any() else w_all  # no flat pixel at all: use every pixel
    part = weight > 0
    leaf = np.full(len(rgb), -1, dtype=np.int64)
    leaf[part] = _dichotomy(feat[part], weight[part], float(delta), area, max_leaves)  # Eq. 6–7
    leaf[part] = _merge_back(leaf[part], feat[part], weight[part], float(delta), area)
    k = int(leaf.max()) + 1
    mass = np.bincount(leaf[part], weights=weight[part], minlength=k)
    kept = np.flatnonzero(mass >= area)  # tiny leaves are dropped, their colours reassigned below
    if len(kept) == 0:
        return np.full(len(rgb), -1, dtype=np.int64), np.zeros((0, 3), np.uint8)
    fp, wp, lp = feat[part], weight[part], leaf[part]
    centroid = np.stack([np.bincount(lp, weights=wp * f, minlength=k) for f in fp.T], 1)[kept]
    centroid /= mass[kept, None]
    loose = ~np.isin(leaf, kept)
    # Boundary blends, gradients and dropped leaves → nearest kept leaf in feature space.
    d2 = (feat[loose] ** 2).sum(1)[:, None] - 2 * feat[loose] @ centroid.T + (centroid**2).sum(1)[None]
    leaf[loose] = kept[d2.argmin(1)]
    _, leaf = np.unique(leaf, return_inverse=True)
    k = int(leaf.max()) + 1
    size = np.bincount(leaf, weights=w_all, minlength=k)
    color = np.stack([np.bincount(leaf, weights=w_all * c, minlength=k) for c in rgb.T], 1) / size[:, None]
    key = np.arange(k)
    if snap_to_palette:  # leaves that snap to one palette colour are one entity
        from unigs.codec.palette import PALETTE, nearest_palette_index

        idx = nearest_palette_index(color)
        color = np.where(idx[:, None] >= 0, PALETTE[np.maximum(idx, 0)], 0).astype(np.float64)
        key = idx + 1  # 0 = black
    background = (color < background_level).all(1)
    key = np.where(background, -1, key)  # every near-black leaf → one background leaf
    _, group = np.unique(key, return_inverse=True)
    g = int(group.max()) + 1
    g_size = np.bincount(group, weights=size, minlength=g)
    g_color = np.stack([np.bincount(group, weights=size * c, minlength=g) for c in color.T], 1)
    g_color /= g_size[:, None]
    g_drop = (np.bincount(group, weights=background, minlength=g) > 0) & (not keep_background)
    order = sorted((i for i in range(g) if not g_drop[i]), key=lambda i: (-g_size[i], *g_color[i]))
    rank = np.full(g, -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[group][leaf], np.clip(np.round(g_color[order]), 0, 255).astype(np.uint8).reshape(-1, 3)


def _masks(labels: torch.Tensor, k: int) -> torch.Tensor:
    """(H, W) int labels (−1 = none) → (k, H, W) bool."""
    if labels.device.type == "cpu":  # numpy's comparison is several times faster than torch's on CPU
        return torch.from_numpy(labels.numpy()[None] == np.arange(k)[:, None, None])
    flat = labels.reshape(-1)
    keep = torch.nonzero(flat >= 0).squeeze(1)
    masks = torch.zeros((k, flat.numel()), dtype=torch.bool, device=labels.device)
    masks[flat[keep], keep] = True
    return masks.reshape(k, *labels.shape)


def _decode_fast(img: torch.Tensor, opts: dict, bin_size: int, edge_threshold: float, max_clean_colors: int):
    """One (H, W, 3) colormap through the histogram path → (K, H, W) bool on img's device, (K, 3) uint8."""
    if img.is_floating_point():  # float input is read at integer grey levels
        img = img.round().clamp(0, 255).to(torch.uint8)
    bits = 8 - (bin_size.bit_length() - 1)  # bits per channel left after quantising
    q = (img >> (8 - bits)).int()
    key = ((q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]).reshape(-1)
    flat = _flat_mask(img, edge_threshold).reshape(-1)
    both = torch.bincount(key * 2 + flat, minlength=2 << (3 * bits)).reshape(-1, 2)  # [not flat, flat]
    counts = both.sum(1)
    occupied = torch.nonzero(counts).squeeze(1)
    clean = False
    if len(occupied) <= max_clean_colors:  # few bins: painted if every bin holds one exact colour
        c = img.int()
        exact = ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).reshape(-1)
        rep = torch.zeros(len(counts), dtype=exact.dtype, device=img.device)
        rep[key] = exact  # some pixel's colour per bin
        if bool((rep[key] == exact).all()):
            uniq = rep[occupied]
            clean, rgb = True, torch.stack(((uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255), 1)
    if not clean:  # a bin's colour is its centre
        top = (1 << bits) - 1
        levels = torch.stack(((occupied >> (2 * bits)) & top, (occupied >> bits) & top, occupied & top), 1)
        rgb = levels * bin_size + (bin_size - 1) / 2.0
    w = counts[occupied]
    w_flat = w if clean else both[occupied, 1]
    unit_label, colors = _decode_units(rgb.cpu().double().numpy(), w.cpu().double().numpy(),
                                       w_flat.cpu().double().numpy(), clean=clean, **opts)
    lut = torch.full((len(counts),), -1, dtype=torch.long, device=img.device)
    lut[occupied] = torch.from_numpy(unit_label).to(img.device)
    return _masks(torch.take(lut, key.long()).reshape(img.shape[:2]), len(colors)), colors


def decode_with_colors(colormap, delta: float = 10.0, keep_background: bool = False, *,
                       features: str = "rgb+lab", min_area: int = 24, edge_threshold: float = 24.0,
                       snap_to_palette: bool = False, bin_size: int = 8, max_leaves: int = 256,
                       background_level: float = 32.0, max_clean_colors: int = 256):
    """Φ (Eq. 5–7) with the mean colour of each mask; see the module docstring for every rule.

    Args:
        colormap: ``(H, W, 3)`` or a batch ``(B, H, W, 3)``, uint8 or float in [0, 255] (read at integer
            grey levels), numpy or torch (any device).
        delta: Eq. 7 threshold δ > 0 (units in the module docstring; the paper's best, 10, by default).
        keep_background: keep the near-black region as an entity (entity segmentation) or drop it
            (inpainting, referring).
        features: ``"rgb+lab"`` | ``"rgb"`` | ``"lab"`` (Table 9b).
        min_area: flat pixels a leaf needs to be kept (and the small-mode guard's mass), ≥ 1.
        edge_threshold: grey levels per 8 px; pixels with a steeper local gradient are boundary pixels.
        snap_to_palette: merge leaves by nearest palette colour and report palette colours.
        bin_size: grey levels per histogram bin (power of two ≤ 16); max_leaves: cap on the leaf count.
        background_level: a leaf whose mean has every channel below this is background.
        max_clean_colors: a map with at most this many distinct colours is treated as painted.

    Returns:
        ``(masks (K, H, W) bool, colors (K, 3) uint8)``, numpy for numpy input, torch on the input's
        device for torch input; masks are disjoint, ordered by area (descending). A batch gives
        ``(list of masks, list of colors)``.
    """
    _check_args(delta, features, min_area, bin_size, edge_threshold)
    batch, is_numpy, batched = _as_colormaps(colormap)
    opts = dict(delta=delta, keep_background=keep_background, features=features, min_area=int(min_area),
                snap_to_palette=snap_to_palette, max_leaves=max_leaves, background_level=background_level)
    outs = []
    for img in batch:
        masks, colors = _decode_fast(img, opts, bin_size, edge_threshold, max_clean_colors)
        outs.append((masks.numpy(), colors) if is_numpy else (masks, torch.from_numpy(colors).to(img.device)))
    if batched:
        return [m for m, _ in outs], [c for _, c in outs]
    return outs[0]


def decode(colormap, delta: float = 10.0, keep_background: bool = False, **kwargs):
    """Φ: colormap → entity masks ``(K, H, W) bool`` (a list for a batch); arguments as
    :func:`decode_with_colors`."""
    return decode_with_colors(colormap, delta, keep_background, **kwargs)[0]


def decode_reference(colormap, delta: float = 10.0, keep_background: bool = False, *,
                     features: str = "rgb+lab", min_area: int = 24, edge_threshold: float = 24.0,
                     snap_to_palette: bool = False, bin_size: int = 8, max_leaves: int = 256,
                     background_level: float = 32.0, max_clean_colors: int = 256):
    """Plain, slow Φ: the rules of :func:`decode` with per-pixel 2-means (no histogram: every pixel is its
    own unit, with its exact colour; ``bin_size`` only enters the painted-map test). One ``(H, W, 3)``
    colormap → ``(K, H, W) bool``, same container as the input."""
    _check_args(delta, features, min_area, bin_size, edge_threshold)
    batch, is_numpy, batched = _as_colormaps(colormap)
    if batched:
        raise ValueError(f"decode_reference takes one (H, W, 3) colormap, got shape {tuple(batch.shape)}")
    img = batch[0].cpu()
    if img.is_floating_point():
        img = img.round().clamp(0, 255).to(torch.uint8)
    h, w = img.shape[:2]
    rgb = img.reshape(-1, 3).double().numpy()
    v = rgb.astype(np.int64)
    colours = np.unique((v[:, 0] << 16) | (v[:, 1] << 8) | v[:, 2])
    shift = bin_size.bit_length() - 1  # painted: few colours, no two in one histogram bin (as decode)
    bins = np.unique(((colours >> 16) >> shift << 16) | (((colours >> 8) & 255) >> shift << 8)
                     | ((colours & 255) >> shift))
    clean = len(colours) <= max_clean_colors and len(bins) == len(colours)
    ones = np.ones(h * w)
    flat = ones if clean else _flat_mask(img, edge_threshold).reshape(-1).double().numpy()
    labels, colors = _decode_units(rgb, ones, flat, clean=clean, delta=delta, keep_background=keep_background,
                                   features=features, min_area=int(min_area), snap_to_palette=snap_to_palette,
                                   max_leaves=max_leaves, background_level=background_level)
    masks = _masks(torch.from_numpy(labels).reshape(h, w), len(colors))
    return masks.numpy() if is_numpy else masks.to(batch.device)
