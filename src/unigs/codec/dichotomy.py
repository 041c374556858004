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
* **Background first.** Every unit (colour) whose channels are all < ``background_level`` (32, half a
  palette step) is one background leaf before any split; the dichotomy runs on the other colours only,
  so no visible colour is ever averaged into the black background.
* **Boundaries (Fig. 3: blends, gradients, black holes).** A VAE round trip turns every edge into a ramp
  of interpolated colours (≈ 2 latent cells wide). Only *flat* pixels — where the colour of 4×4-pixel
  cells changes by < ``edge_threshold`` grey levels between the cells left/right and above/below (a ramp
  of 3 levels per pixel) — take part in the first dichotomy; leaves with fewer than ``min_area`` flat
  pixels (default 24) are dropped. **Fallback:** small or textured entities (a real small VAE at 128 px:
  objects 15–40 px wide, interior colour texture) own few or no flat pixels, so the remaining colours
  that are neither near a kept leaf nor a blend of two of them (RGB/8 distance² to every segment
  between two leaf means, background included, > 4δ) get a dichotomy of their own on all their pixels,
  and all of its leaves are kept. Every other colour (ramps, dropped leaves) goes to the nearest
  foreground leaf in feature space.
* **Regions (decoded maps only; ``regions=False`` skips it).** The leaves are colour classes; the
  clean-up works on *regions*, 4-connected pixels of one leaf (scikit-image ``label``), with their exact
  mean colours (features of the mean RGB). (A) A group of < ``min_area`` px joins the touching group of
  the closest colour (longer shared boundary on ties), in rounds until none is that small: slivers,
  specks, black holes. Groups that are mostly background-leaf pixels are background and take no part
  below. (B1) Touching groups merge while their colour distance² is < ``regions.MERGE_FACTOR``·δ (= 2δ), in
  rounds of mutual cheapest pairs (the smaller joins the larger): this undoes Eq. 7 splits of one
  entity's texture. (B2) A touching group that is a darker version of exactly one other (its RGB/8
  colour within distance² 2δ of the segment black → other) joins it; one that is a darker version of
  several (a ramp shared by close entities) is split per pixel, each pixel to the entity whose black
  ramp explains it best. (B3) Groups of ≥ ``min_area`` px closer than 2δ merge, touching or not (one
  colour is one entity, possibly disconnected). (C) **Midpoint:** a pixel of entity e whose colour
  projects below the middle of the segment black → c_e goes to the background, c_e being e's core
  colour (mean of its pixels above that middle, ``regions.MIDPOINT_STEPS`` fixed-point steps): the blurred
  edge against black sits at the colour midpoint, as in the painted map. Background specks of
  < ``min_area`` px this cuts out go back to the entity they share most boundary with.
* **Work scale (decoded maps of ≥ 2·``work_size`` px, default 128).** The colour of a latent round trip
  varies at the latent scale (8 px for SD), so a large decoded map runs Φ (colours and regions) on a copy
  box-averaged by f = ⌊short side / work_size⌋ (512² → 128²), with ``min_area`` / f² (≥ 1). The ids come
  back to full resolution by blocks: a block whose 3×3 block neighbourhood holds one id takes it; in a
  block at a boundary every pixel takes the neighbourhood id of the closest mean colour (RGB, the
  id-less pixels' mean standing for "none"), so boundaries are pixel-precise again (the midpoint of a
  blend). Painted maps (exact colours, tested on a 4-px subsample) and ``regions=False`` stay at full
  resolution; ``work_size=None`` turns it off. On the codec benchmark it costs ≈ 0.02 mIoU against the
  full-resolution clean-up and makes the clean-up about as cheap as the colour path.
* **Painted (clean) colormaps.** A map with ≤ ``max_clean_colors`` distinct colours, no two in one
  histogram bin, did not go through a VAE: every pixel takes part, units are its exact colours,
  ``min_area`` is 1 px and there is no fallback and no region clean-up, so ``decode(palette.encode(
  masks))`` returns every visible entity exactly (distinct colours assumed).
* **Speed.** :func:`decode` never runs 2-means over pixels: one ``bincount`` histogram of colours
  quantised to ``bin_size`` grey levels (15-bit key at the default 8; each bin is represented by its
  centre, an error ≤ 4 levels, far below the palette step), splits on the few hundred/thousand occupied
  bins weighted by their flat-pixel counts, and one lookup back to pixels. Per pixel the colour path
  does integer work only: a code ``(bin << 1) | flat`` (uint16) counted into the histogram as it is
  made, one ``lut[code]`` and one write into the masks; the features of every bin centre come from a
  cached table (no per-pixel float feature, CIELAB for bins only). Numpy input stays in numpy (the flat
  mask in integer cell sums, equal to the float torch one); torch input runs the same steps in torch on
  its device, with the splits on CPU (a small table with data-dependent control flow), and gives the
  same masks. The data-dependent loops — the dichotomy and merge-back on the bins, the region clean-up
  (connected components, merge rounds over the touching regions, midpoint, holes), the box mean, the
  refinement back to full resolution and the mask writes — are compiled (numba:
  :mod:`unigs.codec.kernels`, :mod:`unigs.codec.leaves`, :mod:`unigs.codec.merge`; :func:`warm_up`
  compiles them ahead); as numpy they were hundreds of small array calls per map. The clean-up runs on
  CPU; at full resolution it would still cost several times the colour path at 512², hence the work
  scale.
  :func:`decode_reference` applies the same rules to single pixels (no histogram).
* **Background.** The background leaf (or region group), and any entity whose mean colour has every
  channel < ``background_level``, are one background entity: dropped when ``keep_background=False``,
  else kept. ``snap_to_palette=True`` merges entities whose means snap to one palette colour and
  reports that colour.
* **Limitations.** Two touching entities closer than 2δ in colour after the round trip are one entity;
  an entity that is a darker version of a touching one (e.g. (0, 0, 128) next to (0, 0, 255)) is merged
  into it; a dark entity's blurred edge against black is decided by the fixed ``background_level``.
* **Order.** Masks by area descending, ties by mean colour (r, g, b ascending).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from unigs.codec import kernels, leaves
from unigs.codec.color import _rgb_to_lab_numpy, _unit_float, check_rgb, rgb_to_lab

__all__ = ["FEATURES", "decode", "decode_reference", "decode_with_colors", "pixel_features", "rgb_to_lab",
           "warm_up"]

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
    if is_numpy:  # numpy in: numpy throughout
        return _features_np(rgb.astype(np.float64 if rgb.dtype == np.float64 else np.float32), features)
    x = _unit_float(t)
    parts = []
    if "rgb" in features:
        parts.append(x * (255.0 * RGB_SCALE))
    if "lab" in features:
        parts.append(rgb_to_lab(x * 255.0) * LAB_SCALE)
    out = torch.cat(parts, dim=-1)
    return out.numpy() if is_numpy else out


def _features_np(x: np.ndarray, features: str) -> np.ndarray:
    """:func:`pixel_features` of checked float numpy colours in [0, 255], same float dtype (no checks:
    Φ calls it on many small internal arrays)."""
    parts = [x * x.dtype.type(RGB_SCALE)] if "rgb" in features else []
    if "lab" in features:
        parts.append(_rgb_to_lab_numpy(x) * x.dtype.type(LAB_SCALE))
    return np.concatenate(parts, -1)


# ------------------------------------------------------------------------------------------ checks
def _check_args(delta: float, features: str, min_area: int, bin_size: int, edge_threshold: float) -> None:
    if not isinstance(delta, int | float) or not 0 < delta < float("inf"):
        raise ValueError(f"delta must be a finite number > 0 (Eq. 7 threshold), got {delta!r}")
    if features not in FEATURES:
        raise ValueError(f"features must be one of {list(FEATURES)}, got {features!r}")
    if not isinstance(min_area, int | np.integer) or min_area < 1:
        raise ValueError(f"min_area must be an integer >= 1 (pixels), got {min_area!r}")
    if bin_size not in (1, 2, 4, 8, 16):
        raise ValueError(f"bin_size must be one of 1, 2, 4, 8, 16 grey levels, got {bin_size!r}")
    if not isinstance(edge_threshold, int | float) or not edge_threshold > 0:
        raise ValueError(f"edge_threshold must be a number > 0 (grey levels), got {edge_threshold!r}")


def _check_work_size(work_size):
    if work_size is not None and (not isinstance(work_size, int | np.integer) or work_size < 1):
        raise ValueError(f"work_size must be an integer >= 1 (pixels) or None, got {work_size!r}")
    return None if work_size is None else int(work_size)


def _as_colormaps(colormap) -> tuple[torch.Tensor, bool, bool]:
    """Validate; return (B, H, W, 3) tensor (uint8 or float), was-numpy, was-batched."""
    t, is_numpy = check_rgb(colormap, "colormap")  # type, last dim, dtype, NaN and float range
    if t.ndim not in (3, 4):
        raise ValueError(f"colormap must be (H, W, 3) or (B, H, W, 3), got shape {tuple(t.shape)}")
    if t.shape[-3] == 0 or t.shape[-2] == 0:
        raise ValueError(f"colormap must have a non-empty image size, got shape {tuple(t.shape)}")
    return (t if t.ndim == 4 else t[None]), is_numpy, t.ndim == 4


# -------------------------------------------------------------------------------------- dichotomy
def _group_sums(group: np.ndarray, k: int, values: np.ndarray) -> np.ndarray:
    """(n,) ids in [0, k), (n, D) values → (k, D) per-id sums, in one bincount (row order, as D bincounts)."""
    d = values.shape[1]
    idx = (group[:, None] * d + np.arange(d)).reshape(-1)
    return np.bincount(idx, weights=values.reshape(-1), minlength=k * d).reshape(k, d)


# ------------------------------------------------------------------------------------- boundaries
def _flat_mask(img: torch.Tensor, edge_threshold: float) -> torch.Tensor:
    """(H, W, 3) colormap → (⌈H/4⌉, ⌈W/4⌉) bool per 4×4 cell, True where the local colour gradient is small.

    On the 4×4 cell means s, g = max over channels and axes of |s(+1) − s(−1)|, the colour
    change over 8 px: a linear ramp of k grey levels per pixel gives g = 8k. Every pixel of a cell shares
    the cell's flag. Torch (any device); :func:`_flat_mask_numpy` is the same on numpy, bit for bit.
    """
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
    return torch.maximum(gx, gy).amax(1)[0] < float(np.float32(edge_threshold))


def _flat_mask_numpy(img: np.ndarray, edge_threshold: float) -> np.ndarray:
    """:func:`_flat_mask` on a ``(H, W, 3) uint8`` array in integers (compiled,
    :func:`unigs.codec.kernels.flat_cells`): 4 × the cell means are exact integer sums, compared with 4 ×
    the threshold (the float32 one of the torch path), so both give the same cells."""
    return kernels.flat_cells(np.ascontiguousarray(img), 4 * float(np.float32(edge_threshold)))


# --------------------------------------------------------------------------------------- histogram
# A pixel's code is (bin << 1) | flat: its colour bin (channels quantised to `bits` bits, r→g→b) and
# whether its 4×4 cell is flat. One bincount of the codes gives every bin's [not flat, flat] counts, and
# one lookup `lut[code]` takes the labels back to the pixels.
def _codes_torch(img: torch.Tensor, bits: int, edge_threshold: float) -> torch.Tensor:
    """(H, W, 3) uint8 tensor → (H, W) int32 pixel codes on its device (same values as numpy)."""
    q = (img >> (8 - bits)).int()
    key = (q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]
    h, w = key.shape
    flat = _flat_mask(img, edge_threshold)
    flat = flat[:, None, :, None].expand(flat.shape[0], 4, flat.shape[1], 4).reshape(4 * flat.shape[0], -1)
    return (key << 1) | flat[:h, :w]


def _painted_colors(img, code, occupied: np.ndarray, n_bins: int) -> np.ndarray | None:
    """Exact colours (n, 3) int64 of the occupied bins if every bin holds a single exact colour (a painted
    map), else None. Numpy or torch (img, code); a subsample first, where decoded maps already fail."""
    is_numpy = isinstance(img, np.ndarray)
    rep = np.zeros(n_bins, np.int32) if is_numpy else torch.zeros(n_bins, dtype=torch.int32,
                                                                   device=img.device)
    for step in (8, 1):
        c, b = img[::step, ::step], (code[::step, ::step] >> 1).reshape(-1)
        c = c.astype(np.int32) if is_numpy else c.int()
        exact = ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).reshape(-1)
        rep[b] = exact  # some pixel's colour per bin
        if not bool((rep[b] == exact).all()):
            return None
    uniq = (rep if is_numpy else rep.cpu().numpy()).astype(np.int64)[occupied]
    return np.stack(((uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255), 1)


def _bin_rgb(bins: np.ndarray, bits: int) -> np.ndarray:
    """Centre colours (n, 3) float64 of histogram bins (an error ≤ bin_size / 2 grey levels)."""
    top, size = (1 << bits) - 1, 1 << (8 - bits)
    levels = np.stack(((bins >> (2 * bits)) & top, (bins >> bits) & top, bins & top), 1)
    return levels * size + (size - 1) / 2.0


def _bin_colors_and_features(bins: np.ndarray, bits: int, features: str) -> tuple[np.ndarray, np.ndarray]:
    """Centre colours (n, 3) and features (n, D) of histogram bins, float64; one gather from a cached
    table for bin sizes ≥ 8 (2^15 rows), else computed for the given bins only."""
    table = _bin_table(bits, features)[bins] if bits <= 5 else None
    if table is None:
        rgb = _bin_rgb(bins, bits)
        return rgb, _features_np(rgb, features)
    return table[:, :3], table[:, 3:]


@functools.lru_cache(maxsize=8)
def _bin_table(bits: int, features: str) -> np.ndarray:
    """[centre colour ‖ feature] of every bin, (2^(3·bits), 3 + D) float64, read-only; once per argument."""
    rgb = _bin_rgb(np.arange(1 << (3 * bits)), bits)
    table = np.concatenate((rgb, _features_np(rgb, features)), 1)
    table.setflags(write=False)
    return table


# ----------------------------------------------------------------------------------------- leaves
def _leaves(x: np.ndarray, w: np.ndarray, delta: float, min_area: float, max_leaves: int) -> np.ndarray:
    """Eq. 6–7 dichotomy, then merge-back (module docstring): compact leaf ids (n,) of the weighted rows;
    compiled loops (:func:`unigs.codec.leaves.dichotomy`, :func:`unigs.codec.leaves.merge_back`)."""
    x, w = np.ascontiguousarray(x, np.float64), np.ascontiguousarray(w, np.float64)
    leaf = leaves.dichotomy(x, w, float(delta), float(min_area), int(max_leaves), FAR_FACTOR)
    return leaves.merge_back(leaf, x, w, float(delta), float(min_area), FAR_FACTOR)


def _decode_units(rgb, feat, w_all, w_flat, *, clean, delta, min_area, max_leaves, background_level):
    """Φ on weighted colour units (histogram bins, or single pixels in the reference): the leaves.

    rgb (n, 3) float64 colour of each unit, feat (n, D) float64 its feature, w_all (n,) its pixel count,
    w_flat (n,) its count of flat pixels. Returns the leaf id (n,) int64 in [0, k) of every unit, k ≥ 1,
    and the id of the background leaf (0, or −1 if no unit is near-black).
    """
    leaf = np.full(len(rgb), -1, dtype=np.int64)
    background = (rgb < background_level).all(1)  # first split: the near-black units, one leaf
    k, bg_id = (1, 0) if background.any() else (0, -1)
    leaf[background] = bg_id
    fg = np.flatnonzero(~background)
    if len(fg) == 0:
        return leaf, 1, bg_id
    area = 1 if clean else min_area
    weight = w_flat[fg] if (w_flat[fg] > 0).any() else w_all[fg]  # no flat pixel at all: every pixel
    part, wp = fg[weight > 0], weight[weight > 0]
    lp = _leaves(feat[part], wp, float(delta), area, max_leaves)  # Eq. 6–7 on the flat pixels
    n = int(lp.max()) + 1
    mass = np.bincount(lp, weights=wp, minlength=n)
    kept = np.flatnonzero(mass >= area)  # tiny leaves are dropped, their colours reassigned below
    rank = np.full(n, -1, dtype=np.int64)
    rank[kept] = k + np.arange(len(kept))
    leaf[part] = rank[lp]
    centroid = _group_sums(lp, n, feat[part] * wp[:, None])[kept] / mass[kept, None]
    k += len(kept)
    loose = np.flatnonzero(leaf < 0)
    if not clean and len(loose):
        # Fallback: colours neither in a kept leaf nor a blend of two leaves (background included) belong
        # to regions with too few flat pixels (small or textured entities): a dichotomy of their own on
        # all their pixels; every leaf is kept (tiny regions are merged by _regions).
        have = leaf >= 0
        size = np.bincount(leaf[have], weights=w_all[have], minlength=k)
        anchor = _group_sums(leaf[have], k, rgb[have] * w_all[have, None])[size > 0] / size[size > 0, None]
        res = leaves.blend_residual(rgb[loose] * RGB_SCALE, anchor * RGB_SCALE, bg_id >= 0)
        odd = loose[res > FAR_FACTOR * delta]
        if len(odd):
            lo = _leaves(feat[odd], w_all[odd], float(delta), min_area, max_leaves)
            no = int(lo.max()) + 1
            mo = np.bincount(lo, weights=w_all[odd], minlength=no)
            leaf[odd] = k + lo
            new = _group_sums(lo, no, feat[odd] * w_all[odd, None]) / mo[:, None]
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


# ----------------------------------------------------------------------------------------- decode
def _masks(labels, k: int, rank: np.ndarray | None = None):
    """(H, W) int labels (−1 = none) → (k, H, W) bool, numpy or torch (on CPU through numpy); with
    ``rank``, numpy labels l ≥ 0 are mask rank[l] (−1: none)."""
    if isinstance(labels, np.ndarray):  # one write per pixel into zeroed planes (compiled)
        return kernels.masks_of(labels, k, np.arange(k) if rank is None else rank)
    if labels.device.type == "cpu":  # the compiled numpy pass, without a copy
        return torch.from_numpy(_masks(labels.numpy(), k))
    flat = labels.reshape(-1)
    keep = torch.nonzero(flat >= 0).squeeze(1)
    masks = torch.zeros((k, flat.numel()), dtype=torch.bool, device=labels.device)
    masks[flat[keep], keep] = True
    return masks.reshape(k, *labels.shape)


def _decode_one(img, opts: dict, bin_size: int, edge_threshold: float, max_clean_colors: int):
    """One (H, W, 3) uint8 colormap (numpy, or torch on any device) through the histogram path →
    (K, H, W) bool masks in the same container, (K, 3) uint8 numpy colours."""
    ids, colors, rank = _decode_ids(img, opts, bin_size, edge_threshold, max_clean_colors)
    return _masks(ids, len(colors), rank), colors


def _decode_ids(img, opts: dict, bin_size: int, edge_threshold: float, max_clean_colors: int):
    """:func:`_decode_one` as an id map (H, W) of ints (−1: none; numpy, or torch on the input's device),
    (K, 3) uint8 colours and a rank: None, or (numpy maps from the work scale) the output id rank[i] of a
    stored id i ≥ 0 (the areas at full resolution can reorder the entities; one mask pass applies it). A
    large decoded map goes through the work scale (module docstring)."""
    from unigs.codec import regions as rg  # regions builds on this module's primitives

    if opts["regions"] and opts["work_size"] is not None:
        img_np = img if isinstance(img, np.ndarray) else img.cpu().numpy()

        def decode_small(small, area):
            return _decode_ids(small, {**opts, "min_area": area, "work_size": None}, bin_size, edge_threshold,
                               max_clean_colors)[:2]

        scaled = rg.at_work_scale(img_np, opts["work_size"], max_clean_colors, opts["min_area"], decode_small)
        if scaled is not None:
            ids, colors, rank = scaled
            if not isinstance(img, np.ndarray):
                ids = torch.from_numpy(ids if rank is None else np.take(np.append(rank, -1), ids)).long()
                return ids.to(img.device), colors, None
            return ids, colors, rank
    bits = 8 - (bin_size.bit_length() - 1)  # bits per channel left after quantising
    n_bins = 1 << (3 * bits)
    if isinstance(img, np.ndarray):
        code = np.empty(img.shape[:2], np.uint16 if 3 * bits + 1 <= 16 else np.uint32)
        both = kernels.pixel_codes(np.ascontiguousarray(img), bits, 4 * float(np.float32(edge_threshold)),
                                   code)  # [not flat, flat] per bin
    else:
        code = _codes_torch(img, bits, edge_threshold)
        both = torch.bincount(code.reshape(-1), minlength=2 * n_bins).reshape(-1, 2).cpu().numpy()
    counts = both[:, 0] + both[:, 1]
    occupied = np.flatnonzero(counts)
    exact = _painted_colors(img, code, occupied, n_bins) if len(occupied) <= max_clean_colors else None
    clean = exact is not None
    w = counts[occupied].astype(np.float64)
    if clean:  # units are the exact colours; every pixel takes part
        rgb = exact.astype(np.float64)
        feat = _features_np(rgb, opts["features"])
        w_flat = w
    else:  # a bin's colour is its centre
        rgb, feat = _bin_colors_and_features(occupied, bits, opts["features"])
        w_flat = both[occupied, 1].astype(np.float64)
    leaf, k, bg_id = _decode_units(rgb, feat, w, w_flat, clean=clean, delta=opts["delta"],
                                   min_area=opts["min_area"], max_leaves=opts["max_leaves"],
                                   background_level=opts["background_level"])
    lut = np.zeros((n_bins, 2), dtype=np.int8 if k < 2**7 else np.int16 if k < 2**15 else np.int32)
    lut[occupied] = leaf[:, None]  # code → leaf: both flags of a bin
    if isinstance(img, np.ndarray):
        labels, img_np = np.take(lut.reshape(-1), code), img
    else:  # the regions and their merging run on CPU
        labels, img_np = np.take(lut.reshape(-1), code.cpu().numpy()), img.cpu().numpy()
    names = ("regions", "features", "keep_background", "min_area", "delta", "snap_to_palette",
             "background_level")
    out, colors = rg._finish(labels, k, bg_id, img_np, clean=clean, **{n: opts[n] for n in names})
    if not isinstance(img, np.ndarray):
        out = torch.from_numpy(out).to(img.device)
    return out, colors, None


def _as_uint8(img):
    """Float colormaps are read at integer grey levels (round half to even, as torch and numpy both do)."""
    if isinstance(img, np.ndarray):
        return img if img.dtype == np.uint8 else np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img if img.dtype == torch.uint8 else img.round().clamp(0, 255).to(torch.uint8)


def decode_with_colors(colormap, delta: float = 10.0, keep_background: bool = False, *,
                       features: str = "rgb+lab", min_area: int = 24, edge_threshold: float = 24.0,
                       snap_to_palette: bool = False, bin_size: int = 8, max_leaves: int = 256,
                       background_level: float = 32.0, max_clean_colors: int = 256, regions: bool = True,
                       work_size: int | None = 128):
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
        regions: the region clean-up of decoded maps (module docstring, "Regions"); False leaves the
            colour leaves as they are (an ablation).
        work_size: a decoded map whose short side is ≥ 2·work_size is decoded at ⌊short / work_size⌋×
            smaller scale and refined back to full resolution (module docstring, "Work scale"); None:
            always at full resolution. Painted maps and ``regions=False`` always run at full resolution.

    Returns:
        ``(masks (K, H, W) bool, colors (K, 3) uint8)``, numpy for numpy input, torch on the input's
        device for torch input; masks are disjoint, ordered by area (descending). A batch gives
        ``(list of masks, list of colors)``.
    """
    _check_args(delta, features, min_area, bin_size, edge_threshold)
    batch, is_numpy, batched = _as_colormaps(colormap)
    opts = dict(delta=delta, keep_background=keep_background, features=features, min_area=int(min_area),
                snap_to_palette=snap_to_palette, max_leaves=max_leaves, background_level=background_level,
                regions=bool(regions), work_size=_check_work_size(work_size))
    if is_numpy:  # numpy in: the whole path stays in numpy (no tensor round trip)
        batch = batch.numpy()
    outs = []
    for img in batch:
        img = _as_uint8(img)  # one memory layout for the compiled loops (a flipped or strided view is copied)
        img = np.ascontiguousarray(img) if is_numpy else img.contiguous()
        masks, colors = _decode_one(img, opts, bin_size, edge_threshold, max_clean_colors)
        outs.append((masks, colors) if is_numpy else (masks, torch.from_numpy(colors).to(img.device)))
    if batched:
        return [m for m, _ in outs], [c for _, c in outs]
    return outs[0]


def decode(colormap, delta: float = 10.0, keep_background: bool = False, **kwargs):
    """Φ: colormap → entity masks ``(K, H, W) bool`` (a list for a batch); arguments as
    :func:`decode_with_colors`."""
    return decode_with_colors(colormap, delta, keep_background, **kwargs)[0]


def decode_reference(colormap, delta: float = 10.0, keep_background: bool = False, **kwargs):
    """Plain, slow Φ for tests (:func:`unigs.codec.reference.decode_reference`, same arguments as
    :func:`decode`): one ``(H, W, 3)`` colormap → ``(K, H, W) bool``."""
    from unigs.codec.reference import decode_reference as reference  # it builds on this module

    return reference(colormap, delta, keep_background, **kwargs)


def warm_up() -> None:
    """Compile Φ's loops now (about a minute on 2 cores the first time on a machine; numba caches the
    machine code, so later processes only load it): decodes a degraded, a painted and a small map, as
    numpy and as torch. ``./dev.sh`` runs it once after installing; :func:`decode` works without it (it
    compiles on first use)."""
    from unigs.codec.degrade import simulate_latent_roundtrip
    from unigs.codec.palette import encode

    masks = np.zeros((3, 256, 256), bool)
    masks[0, 20:120, 30:200], masks[1, 140:230, 10:90], masks[2, 60:70, 220:240] = True, True, True
    painted = encode(masks)
    degraded = simulate_latent_roundtrip(painted, np.random.default_rng(0))
    for colormap in (degraded, painted, degraded[:96, :96]):
        decode(colormap)
        decode(colormap, keep_background=True, regions=False)
        decode(torch.from_numpy(colormap))  # torch input: int64 ids into the mask pass
