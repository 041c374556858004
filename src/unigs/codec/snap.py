"""User-painted colormaps → Ψ colormaps: snap near-palette colours, refuse the rest, re-encode.

A colormap that a person edits in a paint program (SPG-Net's "edit the predicted segmentation") or a partial
segmentation given as a PNG (LDMSeg's mask completion) is rarely exactly Ψ's output: brushes anti-alias
their edges, and the person chooses colours by eye. The model was trained on exact, location-aware Ψ
colours (§3.2), so before such a map becomes a condition it is made exact here:

1. **Snap.** Every pixel goes to its nearest palette colour or black (`palette.nearest_palette_index`,
   per-channel nearest level). A pixel farther than `tolerance` from that colour in any channel is not a
   palette colour painted slightly off but a different colour: it is refused, with one sentence naming the
   colour and how many pixels have it. The default tolerance 24 is 3/8 of the level spacing 64, so an
   anti-aliased edge halfway between two palette colours (32 away from both) is refused too — better than
   guessing which entity it belongs to. Snapping never merges two palette colours.
2. **Re-encode** (:func:`canonical_colormap`): each distinct snapped colour is one entity; Ψ paints them
   again with the colours of their own centres of mass, so a region the user painted in "any free colour"
   still reaches the model in the colour that its location would have had in training.
"""

from __future__ import annotations

import numpy as np

from unigs.codec import palette

DEFAULT_TOLERANCE = 24  # max per-channel distance to the nearest palette colour that is still snapped


def _check_rgb(colormap: np.ndarray, name: str) -> np.ndarray:
    colormap = np.asarray(colormap)
    if colormap.ndim != 3 or colormap.shape[-1] != 3 or colormap.dtype != np.uint8:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB image, got shape {colormap.shape} "
                         f"dtype {colormap.dtype}")
    return colormap


def snap_to_palette(colormap: np.ndarray, tolerance: int = DEFAULT_TOLERANCE,
                    name: str = "colormap") -> np.ndarray:
    """Every pixel → its nearest palette colour or black; refuse pixels farther than `tolerance`.

    Args:
        colormap: `(H, W, 3) uint8`.
        tolerance: max per-channel distance in [0, 255] (0 = only exact palette colours and black pass).

    Returns:
        `(H, W, 3) uint8` holding only palette colours and black.

    Raises:
        ValueError naming the most frequent refused colour and the number of refused pixels.
    """
    colormap = _check_rgb(colormap, name)
    if not 0 <= tolerance <= 255:
        raise ValueError(f"tolerance must be in [0, 255], is {tolerance}")
    index = palette.nearest_palette_index(colormap)
    black = np.zeros((1, 3), np.uint8)
    snapped = np.concatenate([black, palette.PALETTE])[index + 1]
    off = np.abs(snapped.astype(np.int16) - colormap.astype(np.int16)).max(-1) > tolerance
    if off.any():
        colours, counts = np.unique(colormap[off], axis=0, return_counts=True)
        worst = tuple(int(c) for c in colours[counts.argmax()])
        raise ValueError(f"{name} has {int(off.sum())} pixel(s) in {len(colours)} colour(s) that are not "
                         f"palette colours (e.g. RGB {worst}, more than {tolerance} from the nearest "
                         f"palette colour in a channel); paint entities with unigs.codec.palette.PALETTE "
                         f"colours and background black")
    return snapped


def colormap_masks(colormap: np.ndarray) -> np.ndarray:
    """One mask per distinct non-black colour of an exact colormap, `(K, H, W) bool`, by colour value."""
    colormap = _check_rgb(colormap, "colormap")
    rgb = colormap.astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours = np.unique(packed)
    return packed[None] == colours[colours != 0][:, None, None]


def canonical_colormap(colormap: np.ndarray, region: np.ndarray | None = None, grid: int = 11,
                       tolerance: int = DEFAULT_TOLERANCE, name: str = "colormap") -> np.ndarray:
    """A user colormap as Ψ would have painted its entities (module docstring).

    Args:
        colormap: `(H, W, 3) uint8`, entities in (near-)palette colours, black = background.
        region: optional `(H, W) bool`; pixels outside it are background (e.g. outside an inpainting hole).
        grid: Ψ's grid b.

    Returns:
        `(H, W, 3) uint8` = `palette.encode(entities)`, black where there is none.
    """
    masks = colormap_masks(snap_to_palette(colormap, tolerance, name))
    if region is not None:
        region = np.asarray(region, bool)
        if region.shape != masks.shape[1:]:
            raise ValueError(f"{name} is {masks.shape[1]}x{masks.shape[2]} (HxW) but the region is "
                             f"{region.shape[0]}x{region.shape[1]}")
        masks = masks & region[None]
    masks = masks[masks.any(axis=(1, 2))]
    if len(masks) == 0:
        return np.zeros(colormap.shape, np.uint8)
    return palette.encode(masks, grid=grid)
