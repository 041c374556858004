"""Φ — the progressive dichotomy decoder: entity colormap → entity masks (paper §3.2, Eq. 5–7, Fig. 3).

:func:`decode` is the recipe; each step lives in its own module, in the order it runs:

1. :mod:`unigs.codec.workscale` — a large decoded map is decoded at 1/f scale and refined back.
2. :mod:`unigs.codec.histogram` — pixels → weighted colour units (bins), and which pixels are flat.
3. :mod:`unigs.codec.leaves` — Eq. 6–7: the dichotomy of the units into colour leaves.
4. :mod:`unigs.codec.cleanup` — the region clean-up, one function per stage: tiny regions, close
   touching regions, darker versions / shared ramps, same colour apart, midpoint, holes.
5. :func:`unigs.codec.cleanup.entities` — background, palette snapping, order by area.

Every constant is a field of :class:`~unigs.codec.config.DichotomyConfig`, with its reason. Features and
δ's units: :mod:`unigs.codec.color`. :func:`decode_reference` (:mod:`unigs.codec.reference`) is a plain
numpy + scikit-image restatement of the same rules, for tests.

**Limitations.** Two touching entities closer than 2δ in colour after the round trip are one entity; an
entity that is a darker version of a touching one (e.g. (0, 0, 128) next to (0, 0, 255)) is merged into
it; a dark entity's blurred edge against black is decided by the fixed ``background_level``.
"""

from __future__ import annotations

import numpy as np
import torch

from unigs.codec import cleanup as C
from unigs.codec import reference, workscale
from unigs.codec._loops import pixels
from unigs.codec.color import FEATURES, LAB_SCALE, RGB_SCALE, check_rgb, pixel_features, rgb_to_lab
from unigs.codec.config import STAGES, DichotomyConfig
from unigs.codec.histogram import colour_units
from unigs.codec.leaves import colour_leaves

__all__ = ["FEATURES", "LAB_SCALE", "RGB_SCALE", "STAGES", "DichotomyConfig", "decode", "decode_reference",
           "decode_with_colors", "pixel_features", "rgb_to_lab", "warm_up"]


def decode_ids(img: np.ndarray, cfg: DichotomyConfig) -> tuple[np.ndarray, np.ndarray]:
    """Φ on one ``(H, W, 3) uint8`` numpy map → (ids (H, W) int, −1: none; colours (K, 3) uint8)."""
    ids, colors, rank = _decode_ranked(img, cfg)
    return (ids if rank is None else np.take(np.append(rank, -1), ids)), colors


def _decode_ranked(img: np.ndarray, cfg: DichotomyConfig):
    """:func:`decode_ids` and a rank: None, or (from the work scale) output id rank[i] of a stored id i
    (the areas at full resolution can reorder the entities; the mask pass applies it for free)."""
    scaled = workscale.at_work_scale(img, cfg, decode_ids)
    return scaled if scaled is not None else (*_decode_full(img, img, cfg), None)


def _decode_full(img, img_np: np.ndarray, cfg: DichotomyConfig):
    """Φ at full resolution; ``img`` numpy or torch (histogram on its device), ``img_np`` its numpy copy."""
    units = colour_units(img, cfg)  # pixels → colour bins, flat pixels
    leaf, k, bg_id = colour_leaves(units, cfg)  # Eq. 6–7
    return clean_up(units.to_pixels(leaf, k), k, bg_id, img_np, cfg, painted=units.clean)


def clean_up(labels: np.ndarray, k: int, bg_id: int, img: np.ndarray, cfg: DichotomyConfig,
             painted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The region clean-up, stage by stage, and the read-out: leaf map (H, W) in [0, k) with background
    leaf ``bg_id`` (−1: none) of the (H, W, 3) uint8 ``img`` → (ids (H, W), −1: none; colours (K, 3))."""
    if painted or not cfg.regions or k <= 1:  # painted map (or no clean-up): leaves are entities
        return C.entities(labels, np.arange(k) == bg_id, img, cfg)
    regions = C.find_regions(labels, bg_id, img)
    groups = C.absorb_tiny_regions(regions, cfg)  # A
    C.merge_close_touching(groups, regions, cfg)  # B1
    C.merge_darker_versions(groups, regions, cfg)  # B2
    C.merge_same_colour_apart(groups, cfg)  # B3
    pix, has_bg = C.split_shared_ramps(groups, regions, cfg)  # B2's shared ramps, per pixel
    if has_bg:
        pix = C.fill_background_holes(C.midpoint_to_background(pix, img, cfg), cfg)  # C, holes
    return C.entities(pix, np.arange(int(pix.max()) + 1) == (0 if has_bg else -1), img, cfg)


def decode_with_colors(colormap, delta: float = 10.0, keep_background: bool = False, **kwargs):
    """Φ (Eq. 5–7) with the mean colour of each mask.

    Args:
        colormap: ``(H, W, 3)`` or a batch ``(B, H, W, 3)``, uint8 or float in [0, 255] (read at integer
            grey levels), numpy or torch (any device).
        delta: Eq. 7 threshold δ > 0 (units: :mod:`unigs.codec.color`; the paper's best, 10, by default).
        keep_background: keep the near-black region as an entity (entity segmentation) or drop it
            (inpainting, referring).
        **kwargs: any other field of :class:`~unigs.codec.config.DichotomyConfig` (``features``,
            ``min_area``, ``edge_threshold``, ``snap_to_palette``, ``bin_size``, ``regions``, ``stages``,
            ``work_size`` …), each documented there.

    Returns:
        ``(masks (K, H, W) bool, colors (K, 3) uint8)``, numpy for numpy input, torch on the input's
        device for torch input; masks are disjoint, ordered by area (descending). A batch gives
        ``(list of masks, list of colors)``.
    """
    cfg = DichotomyConfig.from_kwargs(delta=delta, keep_background=keep_background, **kwargs)
    batch, is_numpy, batched = as_colormaps(colormap)
    outs = []
    for img in batch.numpy() if is_numpy else batch:  # numpy in: the whole path stays in numpy
        img = as_uint8(img)  # one memory layout for the compiled loops (a strided view is copied)
        img = np.ascontiguousarray(img) if is_numpy else img.contiguous()
        if is_numpy:
            ids, colors, rank = _decode_ranked(img, cfg)
            rank = np.arange(len(colors)) if rank is None else rank
            outs.append((pixels.masks_of(ids, len(colors), rank), colors))
        else:
            outs.append(_decode_torch(img, cfg))
    if batched:
        return [m for m, _ in outs], [c for _, c in outs]
    return outs[0]


def _decode_torch(img: torch.Tensor, cfg: DichotomyConfig):
    """One uint8 tensor map: the histogram on its device, the rest on CPU; masks and colours on its device."""
    img_np = img.cpu().numpy()
    if workscale.work_factor(img_np.shape[:2], cfg.work_size if cfg.regions else None) > 1:
        ids, colors = decode_ids(img_np, cfg)  # (a painted map comes back here at full resolution)
    else:
        ids, colors = _decode_full(img, img_np, cfg)
    if img.device.type == "cpu":
        masks = torch.from_numpy(pixels.masks_of(ids, len(colors), np.arange(len(colors))))
    else:
        flat = torch.from_numpy(np.asarray(ids, np.int64)).to(img.device).reshape(-1)
        keep = torch.nonzero(flat >= 0).squeeze(1)
        masks = torch.zeros((len(colors), flat.numel()), dtype=torch.bool, device=img.device)
        masks[flat[keep], keep] = True
        masks = masks.reshape(len(colors), *ids.shape)
    return masks, torch.from_numpy(colors).to(img.device)


def decode(colormap, delta: float = 10.0, keep_background: bool = False, **kwargs):
    """Φ: colormap → entity masks ``(K, H, W) bool`` (a list for a batch); arguments as
    :func:`decode_with_colors`."""
    return decode_with_colors(colormap, delta, keep_background, **kwargs)[0]


def decode_reference(colormap, delta: float = 10.0, keep_background: bool = False, **kwargs):
    """Plain, slow Φ for tests (:func:`unigs.codec.reference.decode_reference`): one ``(H, W, 3)``
    colormap → ``(K, H, W) bool``, same container as the input; arguments as :func:`decode`."""
    cfg = DichotomyConfig.from_kwargs(delta=delta, keep_background=keep_background, **kwargs)
    batch, is_numpy, batched = as_colormaps(colormap)
    if batched:
        raise ValueError(f"decode_reference takes one (H, W, 3) colormap, got shape {tuple(batch.shape)}")
    ids, colors = reference.decode_ids(np.ascontiguousarray(as_uint8(batch[0].cpu()).numpy()), cfg)
    masks = ids[None] == np.arange(len(colors))[:, None, None]
    return masks if is_numpy else torch.from_numpy(masks).to(batch.device)


# ------------------------------------------------------------------------------------------ inputs
def as_colormaps(colormap) -> tuple[torch.Tensor, bool, bool]:
    """Validate; return (B, H, W, 3) tensor (uint8 or float), was-numpy, was-batched."""
    t, is_numpy = check_rgb(colormap, "colormap")  # type, last dim, dtype, NaN and float range
    if t.ndim not in (3, 4):
        raise ValueError(f"colormap must be (H, W, 3) or (B, H, W, 3), got shape {tuple(t.shape)}")
    if t.shape[-3] == 0 or t.shape[-2] == 0:
        raise ValueError(f"colormap must have a non-empty image size, got shape {tuple(t.shape)}")
    return (t if t.ndim == 4 else t[None]), is_numpy, t.ndim == 4


def as_uint8(img):
    """Float colormaps are read at integer grey levels (round half to even, as torch and numpy both do)."""
    if isinstance(img, np.ndarray):
        return img if img.dtype == np.uint8 else np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img if img.dtype == torch.uint8 else img.round().clamp(0, 255).to(torch.uint8)


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
