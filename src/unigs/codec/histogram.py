"""Φ's units: a colormap's pixels as a weighted colour histogram, and which pixels are flat (Fig. 3).

**Speed.** Φ never runs 2-means over pixels. Per pixel it does integer work only: a code
``(bin << 1) | flat`` (uint16 at the default bin size) counted into one histogram as it is made, and later
one ``lut[code]`` lookup. A bin stands for its centre colour (an error ≤ ``bin_size`` / 2 grey levels,
far below the 64-level palette step), so Eq. 6–7 run on a few hundred/thousand occupied bins weighted by
their pixel counts; the features of every bin centre come from a cached table. Numpy input stays in
numpy (the flat mask in integer cell sums, equal to the float torch one); torch input runs the same
steps in torch on its device and gives the same codes.

**Flat pixels.** A VAE round trip turns every edge into a ramp of interpolated colours (≈ 2 latent cells
wide). On 4×4-pixel cell means s, g = max over channels and axes of |s(+1) − s(−1)|, the colour change
over 8 px; a cell is flat when g < ``edge_threshold`` (a ramp of 3 levels per pixel gives 24). Only flat
pixels take part in the first dichotomy (:mod:`unigs.codec.leaves`).

**Painted maps.** A map with ≤ ``max_clean_colors`` distinct colours, no two in one bin, did not go through
a VAE: the units are its exact colours and every pixel takes part.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from unigs.codec._loops import pixels
from unigs.codec.color import features_np
from unigs.codec.config import DichotomyConfig

CELL = 4  # flat-mask cell side in pixels (half an SD latent cell: a ramp spans several cells)


@dataclass
class Units:
    """A colormap as weighted colour units (histogram bins, or exact colours of a painted map).

    rgb (n, 3) float64 colour of each unit, feat (n, D) float64 its feature, w_all (n,) its pixel count,
    w_flat (n,) its count of flat pixels; ``clean`` whether the map is painted; ``code`` (H, W) every
    pixel's code (numpy, or torch on the input's device), ``occupied`` (n,) the bin of each unit.
    """

    rgb: np.ndarray
    feat: np.ndarray
    w_all: np.ndarray
    w_flat: np.ndarray
    clean: bool
    code: np.ndarray | torch.Tensor
    occupied: np.ndarray
    n_bins: int

    def to_pixels(self, leaf: np.ndarray, k: int) -> np.ndarray:
        """Leaf id (n,) in [0, k) of every unit → (H, W) leaf id per pixel (numpy, small int type)."""
        lut = np.zeros((self.n_bins, 2), dtype=np.int8 if k < 2**7 else np.int16 if k < 2**15 else np.int32)
        lut[self.occupied] = leaf[:, None]  # code → leaf: both flags of a bin
        code = self.code if isinstance(self.code, np.ndarray) else self.code.cpu().numpy()
        return np.take(lut.reshape(-1), code)


def colour_units(img, cfg: DichotomyConfig) -> Units:
    """One ``(H, W, 3) uint8`` colormap (numpy, or torch on any device) → its :class:`Units`."""
    bits = cfg.bits
    n_bins = 1 << (3 * bits)
    if isinstance(img, np.ndarray):
        code = np.empty(img.shape[:2], np.uint16 if 3 * bits + 1 <= 16 else np.uint32)
        both = pixels.pixel_codes(img, bits, CELL * float(np.float32(cfg.edge_threshold)), code)
    else:
        code = codes_torch(img, bits, cfg.edge_threshold)
        both = torch.bincount(code.reshape(-1), minlength=2 * n_bins).reshape(-1, 2).cpu().numpy()
    counts = both[:, 0] + both[:, 1]  # [not flat, flat] per bin
    occupied = np.flatnonzero(counts)
    exact = painted_colors(img, code, occupied, n_bins) if len(occupied) <= cfg.max_clean_colors else None
    w = counts[occupied].astype(np.float64)
    if exact is not None:  # units are the exact colours; every pixel takes part
        rgb = exact.astype(np.float64)
        return Units(rgb, features_np(rgb, cfg.features), w, w, True, code, occupied, n_bins)
    rgb, feat = bin_colors_and_features(occupied, bits, cfg.features)  # a bin's colour is its centre
    return Units(rgb, feat, w, both[occupied, 1].astype(np.float64), False, code, occupied, n_bins)


# ------------------------------------------------------------------------------------- flat pixels
def flat_mask(img: torch.Tensor, edge_threshold: float) -> torch.Tensor:
    """(H, W, 3) colormap → (⌈H/4⌉, ⌈W/4⌉) bool per 4×4 cell, True where the local colour gradient is small.

    Torch (any device); :func:`flat_mask_numpy` is the same on numpy, bit for bit. Every pixel of a cell
    shares the cell's flag.
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


def flat_mask_numpy(img: np.ndarray, edge_threshold: float) -> np.ndarray:
    """:func:`flat_mask` on a ``(H, W, 3) uint8`` array in integers (compiled): 4 × the cell means are
    exact integer sums, compared with 4 × the threshold (the float32 one of the torch path)."""
    return pixels.flat_cells(np.ascontiguousarray(img), CELL * float(np.float32(edge_threshold)))


def codes_torch(img: torch.Tensor, bits: int, edge_threshold: float) -> torch.Tensor:
    """(H, W, 3) uint8 tensor → (H, W) int32 pixel codes on its device (same values as numpy)."""
    q = (img >> (8 - bits)).int()
    key = (q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]
    h, w = key.shape
    flat = flat_mask(img, edge_threshold)
    flat = flat[:, None, :, None].expand(flat.shape[0], CELL, flat.shape[1], CELL)
    return (key << 1) | flat.reshape(CELL * flat.shape[0], -1)[:h, :w]


# ----------------------------------------------------------------------------------------- colours
def painted_colors(img, code, occupied: np.ndarray, n_bins: int) -> np.ndarray | None:
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


def bin_rgb(bins: np.ndarray, bits: int) -> np.ndarray:
    """Centre colours (n, 3) float64 of histogram bins (an error ≤ bin_size / 2 grey levels)."""
    top, size = (1 << bits) - 1, 1 << (8 - bits)
    levels = np.stack(((bins >> (2 * bits)) & top, (bins >> bits) & top, bins & top), 1)
    return levels * size + (size - 1) / 2.0


def bin_colors_and_features(bins: np.ndarray, bits: int, features: str) -> tuple[np.ndarray, np.ndarray]:
    """Centre colours (n, 3) and features (n, D) of histogram bins, float64; one gather from a cached
    table for bin sizes ≥ 8 (2^15 rows), else computed for the given bins only."""
    if bits > 5:
        rgb = bin_rgb(bins, bits)
        return rgb, features_np(rgb, features)
    table = _bin_table(bits, features)[bins]
    return table[:, :3], table[:, 3:]


@functools.lru_cache(maxsize=8)
def _bin_table(bits: int, features: str) -> np.ndarray:
    """[centre colour ‖ feature] of every bin, (2^(3·bits), 3 + D) float64, read-only; once per argument."""
    rgb = bin_rgb(np.arange(1 << (3 * bits)), bits)
    table = np.concatenate((rgb, features_np(rgb, features)), 1)
    table.setflags(write=False)
    return table
