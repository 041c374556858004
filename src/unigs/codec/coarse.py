"""Ω — the coarse-mask generator (paper supplementary Algorithm 1, taken from Paint-by-Example).

Given the entities to inpaint (or to refer to), Ω draws the region m_c the model must fill
(1 = fill, paper §3.4 / Table 2):

* with probability ``p_blob`` an irregular **Bezier blob**: four quadratic Bezier curves (top, right,
  down, left) whose end points are the entity box's corners and whose control points sit on the
  *extended* box, sampled at t = 0.05 … 0.90 (i = 1 … 18), each point jittered by a random integer in
  [−jitter, jitter] per axis, and the resulting polygon filled (PIL ``ImageDraw.polygon``);
* otherwise the **extended box** itself.

Conventions fixed here:

* Boxes are ``(x0, y0, x1, y1)`` integer pixel coordinates with exclusive ends, so the box covers
  ``mask[y0:y1, x0:x1]``.
* Extended box (the choice of Paint-by-Example's ``open-images.py``): each side moves toward its image
  border by a uniform random integer in ``[0, floor(0.4 · free space)]``, where the free space is the
  distance from that side to the border.
* Algorithm 1 as printed in the paper has the left curve start and end at the same corner (y0 → y0);
  Paint-by-Example's code runs it bottom-left → top-left, closing the loop. We follow the code.
* Algorithm 1 skips a sample whose x *or* y already occurred on the same curve. On these symmetric
  curves y(t) = y(1 − t) (top/down) and x(t) = x(1 − t) (left/right) in exact arithmetic, so which
  samples that rule drops depends on floating-point rounding in the ``bezier`` package (exact
  equality of e.g. y(0.1) and y(0.9)), not on geometry. We keep all 18 samples per curve (72 points);
  PIL fills a polygon with repeated points correctly, so nothing needs de-duplicating.
* The blob's curves bulge outward from the box, so the blob covers the box except near its corners,
  where the curves start at t = 0.05 and ±jitter px can nibble at it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from unigs.codec.palette import check_masks

# Algorithm 1: t = i * 0.05 for i = 1..18 (the curves stop short of t = 1).
CURVE_T: np.ndarray = np.arange(1, 19) * 0.05
EXTEND_FRACTION: float = 0.4  # Paint-by-Example: up to 40 % of the free space on each side


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _as_mask_stack(masks) -> np.ndarray:
    """Validate masks (H, W) or (N, H, W), bool or 0/1 integers → (N, H, W) bool, N ≥ 1."""
    masks = check_masks(masks)
    if masks.shape[0] == 0:
        raise ValueError(f"masks must hold at least one non-empty image, got shape {masks.shape}")
    return masks


def mask_bbox(mask) -> tuple[int, int, int, int]:
    """Tight box ``(x0, y0, x1, y1)`` (exclusive ends) of a (H, W) mask or of the union of (N, H, W).

    Raises ValueError when no pixel is set.
    """
    masks = _as_mask_stack(mask)
    union = masks.any(axis=0)
    rows = np.flatnonzero(union.any(axis=1))
    cols = np.flatnonzero(union.any(axis=0))
    if len(rows) == 0:
        raise ValueError(f"mask is empty (no pixel set in a {union.shape} mask): it has no bounding box")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _check_bbox(bbox, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"shape must be (H, W) with H, W >= 1, got {shape}")
    h, w = shape
    if len(bbox) != 4:
        raise ValueError(f"bbox must be (x0, y0, x1, y1), got {bbox}")
    x0, y0, x1, y1 = (int(v) for v in bbox)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"bbox must satisfy 0 <= x0 < x1 <= W={w} and 0 <= y0 < y1 <= H={h}, got {bbox}")
    return x0, y0, x1, y1


def extended_bbox(bbox, shape: tuple[int, int], rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Move each side of ``bbox`` toward the border by a random 0…40 % of its free space.

    bbox: (x0, y0, x1, y1), exclusive ends, inside an image of ``shape`` (H, W). Returns the same format.
    """
    rng = _check_rng(rng)
    x0, y0, x1, y1 = _check_bbox(bbox, shape)
    h, w = shape
    free = np.array([x0, y0, w - x1, h - y1])  # left, up, right, down
    # integers(0, k + 1) is Python's randint(0, k): both ends included.
    step = rng.integers(0, np.floor(EXTEND_FRACTION * free).astype(np.int64) + 1)
    return x0 - int(step[0]), y0 - int(step[1]), x1 + int(step[2]), y1 + int(step[3])


def quadratic_bezier(nodes, t) -> np.ndarray:
    """Points of the quadratic Bezier B(t) = (1−t)² P0 + 2(1−t)t P1 + t² P2.

    nodes: (3, 2) float (P0, P1, P2 as (x, y)); t: (T,) in [0, 1]. Returns (T, 2) float64.
    """
    nodes = np.asarray(nodes, dtype=np.float64)
    if nodes.shape != (3, 2):
        raise ValueError(f"nodes must have shape (3, 2) (three (x, y) points), got shape {nodes.shape}")
    t = np.asarray(t, dtype=np.float64)[:, None]
    return (1 - t) ** 2 * nodes[0] + 2 * (1 - t) * t * nodes[1] + t**2 * nodes[2]


def blob_polygon(bbox, ext, rng: np.random.Generator, jitter: int = 5) -> np.ndarray:
    """The jittered polygon of Algorithm 1: (72, 2) float64 (x, y) points, clockwise on screen.

    bbox, ext: the box and its extension, (x0, y0, x1, y1). Curves run top (left → right), right
    (top → bottom), down (right → left), left (bottom → top), so the polygon closes.
    """
    x0, y0, x1, y1 = bbox
    ex0, ey0, ex1, ey1 = ext
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    curves = [
        [(x0, y0), (xm, ey0), (x1, y0)],  # top
        [(x1, y0), (ex1, ym), (x1, y1)],  # right
        [(x1, y1), (xm, ey1), (x0, y1)],  # down
        [(x0, y1), (ex0, ym), (x0, y0)],  # left (Paint-by-Example's code; see module doc)
    ]
    points = np.concatenate([quadratic_bezier(nodes, CURVE_T) for nodes in curves])  # (72, 2)
    return points + rng.integers(-jitter, jitter + 1, size=points.shape)


def coarse_mask(masks, rng: np.random.Generator, p_blob: float = 0.5, jitter: int = 5) -> np.ndarray:
    """Ω(M): a coarse region covering the entities' union box; (H, W) bool, True = region to fill.

    masks: (H, W) or (N, H, W), bool or 0/1 integers, with at least one pixel set.
    rng: the only source of randomness (same seed → same mask).
    p_blob: probability of the Bezier blob (else the extended box); jitter: ±px per blob point.
    """
    rng = _check_rng(rng)
    if not 0.0 <= float(p_blob) <= 1.0:
        raise ValueError(f"p_blob must be a probability in [0, 1], got {p_blob}")
    if isinstance(jitter, bool) or not isinstance(jitter, int | np.integer) or jitter < 0:
        raise ValueError(f"jitter must be a non-negative integer number of pixels, got {jitter!r}")
    stack = _as_mask_stack(masks)
    h, w = stack.shape[1:]
    bbox = mask_bbox(stack)
    ext = extended_bbox(bbox, (h, w), rng)
    if rng.random() < p_blob:
        canvas = Image.new("L", (w, h), 0)
        polygon = blob_polygon(bbox, ext, rng, int(jitter))
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon.tolist()], fill=1)
        return np.asarray(canvas, dtype=np.uint8).astype(bool)
    region = np.zeros((h, w), dtype=bool)
    region[ext[1] : ext[3], ext[0] : ext[2]] = True
    return region
