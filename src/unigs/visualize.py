"""Pictures for people: masks over images, and titled contact sheets. Pure functions, numpy + PIL."""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def distinct_colors(k: int) -> np.ndarray:
    """`k` well-separated, saturated colours.

    Hues step by the golden ratio so neighbours in the list differ strongly whatever `k` is; the
    value alternates so that long lists still separate. Deterministic.

    Returns:
        `(k, 3) uint8`.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    out = np.zeros((k, 3), dtype=np.uint8)
    for i in range(k):
        hue = (0.13 + i * 0.618033988749895) % 1.0
        value = 1.0 if i % 2 == 0 else 0.8
        out[i] = np.round(np.array(colorsys.hsv_to_rgb(hue, 0.85, value)) * 255)
    return out


def as_rgb_uint8(array: np.ndarray, name: str = "image") -> np.ndarray:
    """Coerce a picture to `(H, W, 3) uint8`.

    Accepts `(H, W)` or `(H, W, 1|3|4)`; bool → 0/255; float taken to be in [0, 1]; uint8 as is
    (alpha dropped).
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[..., :3] if a.shape[2] != 1 else a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"{name} must be (H, W) or (H, W, 1|3|4), got shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(f"{name} has integer values outside [0, 255] (dtype {a.dtype})")
        a = a.astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return a


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of a mask with a 4-neighbour outside the mask (the image border counts as outside).

    Args:
        mask: `(H, W)` bool.

    Returns:
        `(H, W)` bool, a subset of `mask`.
    """
    m = np.pad(mask.astype(bool), 1, constant_values=False)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask.astype(bool) & ~inner


def overlay(
    image: np.ndarray, masks: np.ndarray, colors: np.ndarray | None = None, alpha: float = 0.5
) -> np.ndarray:
    """Blend coloured masks over an image and draw each mask's outline at full opacity.

    Masks are drawn in order, so a later mask covers an earlier one where they overlap.

    Args:
        image: `(H, W, 3) uint8` (grayscale/bool/float accepted, see `as_rgb_uint8`).
        masks: `(K, H, W)` bool (or one `(H, W)` mask); K may be 0.
        colors: `(K, 3) uint8`; default `distinct_colors(K)`.
        alpha: fill opacity in [0, 1].

    Returns:
        `(H, W, 3) uint8`, a new array.
    """
    img = as_rgb_uint8(image)
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[1:] != img.shape[:2]:
        raise ValueError(f"masks must be (K, {img.shape[0]}, {img.shape[1]}) to match the image, "
                         f"got {masks.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    k = len(masks)
    colors = distinct_colors(k) if colors is None else np.asarray(colors)
    if colors.shape != (k, 3):
        raise ValueError(f"colors must be ({k}, 3) for {k} masks, got shape {colors.shape}")
    out = img.astype(np.float32)
    col = colors.astype(np.float32)
    for i in range(k):
        m = masks[i].astype(bool)
        out[m] = (1.0 - alpha) * out[m] + alpha * col[i]
    for i in range(k):
        out[mask_outline(masks[i])] = col[i]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def sheet(
    rows: list[list[tuple[str, np.ndarray]]], pad: int = 4, background: int = 255
) -> np.ndarray:
    """Lay out titled tiles in a grid: one list per row, each tile `(title, picture)`.

    Columns are as wide as their widest tile and rows as tall as their tallest, so tiles of different
    sizes line up; each tile sits top-left in its cell under its title (PIL's default font, clipped to
    the cell). Rows may have different lengths. Pictures: `(H, W)`, `(H, W, 1|3|4)`, uint8/bool/float
    (see `as_rgb_uint8`).

    Returns:
        `(H', W', 3) uint8`.
    """
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("sheet needs at least one row and no empty rows")
    tiles = [[(str(t), as_rgb_uint8(a, name=f"tile {t!r}")) for t, a in row] for row in rows]
    font = ImageFont.load_default()
    x0, y0, x1, y1 = font.getbbox("Ag")
    title_h = (y1 - min(y0, 0)) + 4
    ncols = max(len(r) for r in tiles)
    col_w = [max(row[c][1].shape[1] for row in tiles if c < len(row)) for c in range(ncols)]
    row_h = [max(a.shape[0] for _, a in row) + title_h for row in tiles]
    width = sum(col_w) + pad * (ncols + 1)
    height = sum(row_h) + pad * (len(tiles) + 1)
    canvas = Image.new("RGB", (width, height), (background,) * 3)
    y = pad
    for r, row in enumerate(tiles):
        x = pad
        for c, (title, arr) in enumerate(row):
            cell = Image.new("RGB", (col_w[c], row_h[r]), (background,) * 3)
            ink = (0, 0, 0) if background > 127 else (255, 255, 255)
            ImageDraw.Draw(cell).text((1, 1), title, fill=ink, font=font)
            cell.paste(Image.fromarray(arr), (0, title_h))
            canvas.paste(cell, (x, y))
            x += col_w[c] + pad
        y += row_h[r] + pad
    return np.asarray(canvas, dtype=np.uint8).copy()
