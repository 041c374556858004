"""Φ's plain, slow reference implementation: the rules of :func:`unigs.codec.dichotomy.decode` applied to
single pixels (no histogram), kept for tests that check the fast path against it."""

from __future__ import annotations

import numpy as np
import torch

from unigs.codec import regions as rg
from unigs.codec.dichotomy import (
    _as_colormaps,
    _as_uint8,
    _check_args,
    _check_work_size,
    _decode_units,
    _features_np,
    _flat_mask,
)


def decode_reference(colormap, delta: float = 10.0, keep_background: bool = False, *,
                     features: str = "rgb+lab", min_area: int = 24, edge_threshold: float = 24.0,
                     snap_to_palette: bool = False, bin_size: int = 8, max_leaves: int = 256,
                     background_level: float = 32.0, max_clean_colors: int = 256, regions: bool = True,
                     work_size: int | None = 128):
    """Plain, slow Φ: the rules of :func:`decode` with per-pixel 2-means (no histogram: every pixel is its
    own unit, with its exact colour and feature; ``bin_size`` only enters the painted-map test; the flat
    mask by the torch :func:`_flat_mask`). One ``(H, W, 3)`` colormap → ``(K, H, W) bool``, same container
    as the input."""
    _check_args(delta, features, min_area, bin_size, edge_threshold)
    work_size = _check_work_size(work_size)
    batch, is_numpy, batched = _as_colormaps(colormap)
    if batched:
        raise ValueError(f"decode_reference takes one (H, W, 3) colormap, got shape {tuple(batch.shape)}")
    img = _as_uint8(batch[0].cpu())
    labels, colors = _reference_ids(img.numpy(), delta, keep_background, features, int(min_area),
                                    edge_threshold, snap_to_palette, bin_size, max_leaves, background_level,
                                    max_clean_colors, bool(regions), work_size)
    masks = labels[None] == np.arange(len(colors))[:, None, None]
    return masks if is_numpy else torch.from_numpy(masks).to(batch.device)


def _reference_ids(img_np, delta, keep_background, features, min_area, edge_threshold, snap_to_palette,
                   bin_size, max_leaves, background_level, max_clean_colors, regions, work_size):
    """:func:`decode_reference` of one uint8 numpy map as (ids (H, W) int64, colours (K, 3) uint8)."""
    if regions:  # the work scale, as decode
        def decode_small(small, area):
            return _reference_ids(small, delta, keep_background, features, area, edge_threshold,
                                  snap_to_palette, bin_size, max_leaves, background_level, max_clean_colors,
                                  regions, None)

        scaled = rg.at_work_scale(img_np, work_size, max_clean_colors, min_area, decode_small)
        if scaled is not None:
            ids, colors, rank = scaled
            return (ids if rank is None else np.where(ids >= 0, rank[np.maximum(ids, 0)], -1)), colors
    img = torch.from_numpy(img_np)
    h, w = img.shape[:2]
    rgb = img.reshape(-1, 3).double().numpy()
    v = rgb.astype(np.int64)
    colours = np.unique((v[:, 0] << 16) | (v[:, 1] << 8) | v[:, 2])
    shift = bin_size.bit_length() - 1  # painted: few colours, no two in one histogram bin (as decode)
    bins = np.unique(((colours >> 16) >> shift << 16) | (((colours >> 8) & 255) >> shift << 8)
                     | ((colours & 255) >> shift))
    clean = len(colours) <= max_clean_colors and len(bins) == len(colours)
    ones = np.ones(h * w)
    if clean:
        flat = ones
    else:  # every pixel takes its 4×4 cell's flag
        cells = _flat_mask(img, edge_threshold).numpy()
        flat = np.repeat(np.repeat(cells, 4, 0), 4, 1)[:h, :w].reshape(-1).astype(np.float64)
    feat = _features_np(rgb, features)
    leaf, k, bg_id = _decode_units(rgb, feat, ones, flat, clean=clean, delta=delta, min_area=int(min_area),
                                   max_leaves=max_leaves, background_level=background_level)
    labels, colors = rg._finish(leaf.reshape(h, w), k, bg_id, img_np, clean=clean, regions=regions,
                                features=features, keep_background=keep_background, min_area=min_area,
                                delta=delta, snap_to_palette=snap_to_palette,
                                background_level=background_level)
    return labels.reshape(h, w), colors
