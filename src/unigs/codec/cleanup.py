"""Φ's region clean-up, stage by stage: colour leaves → whole entities after a real VAE round trip.

The leaves of Eq. 6–7 are colour classes; a round trip adds texture, colour shifts and blurred edges
against black (Fig. 3), so the clean-up works on *regions*, 4-connected pixels of one leaf, with their
exact mean colours. :func:`unigs.codec.dichotomy.decode` calls the stages below in this order; each
one's rule is in its docstring, τ = ``merge_factor``·δ in squared feature units. Painted maps and
``regions=False`` skip the clean-up (:func:`entities` straight on the leaves). The graph walks are
compiled (:mod:`unigs.codec._loops.groups`); :mod:`unigs.codec.reference` restates every stage in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unigs.codec._loops import groups as walk
from unigs.codec._loops import pixels
from unigs.codec.config import DichotomyConfig
from unigs.codec.leaves import group_sums
from unigs.codec.palette import PALETTE, nearest_palette_index


@dataclass
class Regions:
    """4-connected regions of a leaf map: comp (H, W) region per pixel; every touching pair pa < pb (E,)
    with its shared boundary cnt (E,) in pixel edges; per region its leaf (m,), size (m,) and exact mean
    colour (m, 3); the image (H, W, 3) uint8 and the background leaf (−1: none)."""

    comp: np.ndarray
    pa: np.ndarray
    pb: np.ndarray
    cnt: np.ndarray
    leaf: np.ndarray
    size: np.ndarray
    rgb: np.ndarray
    img: np.ndarray
    bg_id: int


@dataclass
class Groups:
    """Groups of regions while they merge (arrays as in :mod:`unigs.codec._loops.groups`)."""

    group: np.ndarray  # (m,) group of each region (after stage A)
    root: np.ndarray  # (g,) the group each merged into (itself if none)
    alive: np.ndarray  # (g,) still merging: not background, not merged, not a shared ramp
    isbg: np.ndarray  # (g,) mostly background-leaf pixels
    size: np.ndarray  # (g,) pixels
    rgb: np.ndarray  # (g, 3) colour sums
    black: np.ndarray  # (3,) background colour, RGB/8 (zeros without background)
    blend: np.ndarray  # (g,) shared ramps (stage B2)
    ramp: np.ndarray  # (2·E, 2) each ramp's (source, target) pairs, the first n_ramp rows used
    n_ramp: int = 0


def _flags(cfg: DichotomyConfig) -> tuple:
    return "rgb" in cfg.features, "lab" in cfg.features, float(cfg.rgb_scale), float(cfg.lab_scale)


def find_regions(labels: np.ndarray, bg_id: int, img: np.ndarray) -> Regions:
    """Leaf map (H, W) int → its :class:`Regions` (compiled labelling, raster order as scikit-image)."""
    comp, m, pa, pb, cnt = pixels.components(labels)
    leaf = np.zeros(m, np.int64)
    leaf[comp.reshape(-1)] = labels.reshape(-1)
    size, rgb = pixels.id_sums(comp, img, m, 0)
    return Regions(comp, pa, pb, cnt, leaf, size, rgb / size[:, None], img, int(bg_id))


def absorb_tiny_regions(r: Regions, cfg: DichotomyConfig) -> Groups:
    """Stage A: a group of < ``min_area`` px joins the touching group of the closest colour (longer shared
    boundary on ties), in ≤ ``tiny_rounds`` rounds until none is that small (slivers, specks, black
    holes; mutual choices are rooted at the smaller id). Groups that are mostly background-leaf pixels are
    background and take no part below."""
    if cfg.runs("tiny"):
        parent = walk.tiny_groups(r.pa, r.pb, r.cnt, r.size, r.rgb, float(cfg.min_area), *_flags(cfg))
    else:
        parent = np.arange(len(r.size))
    group, g, size, rgb, isbg, black = walk.number_groups(parent, r.leaf, r.size, r.rgb, r.bg_id)
    return Groups(group, np.arange(g), ~isbg, isbg, size, rgb, black * cfg.rgb_scale, np.zeros(g, bool),
                  np.empty((2 * len(r.pa), 2), np.int64))


def merge_close_touching(gr: Groups, r: Regions, cfg: DichotomyConfig) -> None:
    """Stage B1: touching groups closer than τ merge, in rounds of mutual cheapest pairs (the smaller joins
    the larger): this undoes Eq. 7 splits of one entity's texture."""
    if cfg.runs("touching"):
        _rounds(gr, r, cfg, dark=False)


def merge_darker_versions(gr: Groups, r: Regions, cfg: DichotomyConfig) -> None:
    """Stage B2: a touching group that is a darker version of exactly one other (its RGB/8 colour within
    τ of the segment black → other) joins it; one that is a darker version of several (a ramp shared by
    close entities) is set aside, to be split per pixel by :func:`split_shared_ramps`."""
    if cfg.runs("darker") and gr.isbg.any():  # "darker" means towards the background colour
        _rounds(gr, r, cfg, dark=True)


def _rounds(gr: Groups, r: Regions, cfg: DichotomyConfig, dark: bool) -> None:
    gr.root, gr.n_ramp = walk.merge_rounds(gr.group[r.pa], gr.group[r.pb], gr.root, gr.alive, gr.size, gr.rgb,
                                           gr.black, float(cfg.tau), dark, gr.blend, gr.ramp, gr.n_ramp,
                                           *_flags(cfg))


def merge_same_colour_apart(gr: Groups, cfg: DichotomyConfig) -> None:
    """Stage B3: groups of ≥ ``min_area`` px closer than τ merge, touching or not, closest pair first (one
    colour is one entity, possibly disconnected, e.g. behind an occluder)."""
    if cfg.runs("apart"):
        gr.root = walk.merge_apart(gr.root, gr.alive, gr.size, gr.rgb, float(cfg.min_area), float(cfg.tau),
                                   *_flags(cfg))


def split_shared_ramps(gr: Groups, r: Regions, cfg: DichotomyConfig) -> tuple[np.ndarray, bool]:
    """Groups → entity map ((H, W) int64 keys 0.., whether key 0 is background): each pixel of a shared
    ramp (B2) goes to the entity behind it whose black ramp explains its colour best."""
    return walk.entity_map(r.comp, r.img, gr.group, gr.root, gr.isbg, gr.alive, gr.size, gr.rgb, gr.black,
                           gr.blend, gr.ramp, gr.n_ramp, float(cfg.rgb_scale))


def midpoint_to_background(pix: np.ndarray, img: np.ndarray, cfg: DichotomyConfig) -> np.ndarray:
    """Stage C (Fig. 3, blends with black): a pixel of entity e whose colour projects below the middle of
    the segment black → c_e goes to the background, c_e being e's core colour (mean of its pixels above
    that middle, ``midpoint_steps`` fixed-point steps): the blurred edge against black sits at the colour
    midpoint, as in the painted map. ``pix`` (H, W) with background 0, changed in place."""
    return pixels.midpoint(pix, img, int(cfg.midpoint_steps)) if cfg.runs("midpoint") else pix


def fill_background_holes(pix: np.ndarray, cfg: DichotomyConfig) -> np.ndarray:
    """Last stage: background specks of < ``min_area`` px (4-connected) go to the entity they share the
    most boundary with (ties: the smaller key). ``pix`` (H, W) with background 0, changed in place."""
    return pixels.fill_holes(pix, int(cfg.min_area)) if cfg.runs("holes") else pix


def entities(pix: np.ndarray, bg: np.ndarray, img: np.ndarray, cfg: DichotomyConfig):
    """Entity map → output ids (H, W) int64 (−1: none) and colours (K, 3) uint8, by area descending.

    ``pix`` (H, W) keys in [0, n), ``bg`` (n,) which keys are background, ``img`` (H, W, 3) uint8. Every
    key whose mean colour has each channel < ``background_level`` is background too; all background is
    one entity, dropped unless ``keep_background``. ``snap_to_palette`` merges keys whose means snap to one
    palette colour and reports that colour. Order: area descending, ties by colour (r, g, b ascending).
    """
    n = len(bg)
    size, color = pixels.id_sums(pix, img, n, 0)
    color /= np.maximum(size, 1)[:, None]
    key = np.arange(n)
    if cfg.snap_to_palette:  # entities that snap to one palette colour are one entity
        idx = nearest_palette_index(color)
        color = np.where(idx[:, None] >= 0, PALETTE[np.maximum(idx, 0)], 0).astype(np.float64)
        key = idx + 1  # 0 = black
    bg = bg | (color < cfg.background_level).all(1)
    key = np.where(bg, -1, key)  # every near-black entity → one background entity
    key = np.where(size > 0, key, -2)  # ids no pixel has
    _, group = np.unique(key, return_inverse=True)
    g = int(group.max()) + 1
    g_size = np.bincount(group, weights=size, minlength=g)
    g_color = group_sums(group, g, color * size[:, None]) / np.maximum(g_size, 1)[:, None]
    drop = ((np.bincount(group, weights=bg, minlength=g) > 0) & (not cfg.keep_background)) | (g_size == 0)
    order = sorted((i for i in range(g) if not drop[i]), key=lambda i: (-g_size[i], *g_color[i]))
    rank = np.full(g, -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[group][pix], np.clip(np.round(g_color[order]), 0, 255).astype(np.uint8).reshape(-1, 3)
