"""Ψ — the location-aware palette: entity masks → entity colormap (paper §3.2).

The paper partitions the image into a b×b grid, gives every grid cell a fixed colour, and paints each
entity with the colour of the cell that holds its centre of mass. Colours come from five levels per RGB
channel, {0, 64, 128, 192, 255}, so there are 5³ − 1 = 124 of them; (0, 0, 0) is the background.

Conventions fixed here (the paper leaves them open):

* **Colour order.** Nested loops r → g → b over :data:`LEVELS` (r outermost), black dropped, so
  ``PALETTE[0] = (0, 0, 64)``, ``PALETTE[3] = (0, 0, 255)``, ``PALETTE[4] = (0, 64, 0)``,
  ``PALETTE[123] = (255, 255, 255)``. Cell ``i`` gets colour ``i``.
* **Cell of an entity.** Centre of mass in continuous pixel coordinates (pixel ``(y, x)`` covers
  ``[y, y+1) × [x, x+1)``, so a pixel's centre is ``index + 0.5``); ``row = floor(cy · b / H)``,
  ``col = floor(cx · b / W)``, clipped to ``[0, b−1]``; cell index ``row · b + col``.
* **Overlaps.** Larger entities are painted first and smaller ones on top (ties: lower index first), so
  a small object lying on a large one (a cup on a table) stays visible.
* **Collisions** (two entities whose centres fall in one cell — the paper's open hole, its 97.4 %
  "coverage ratio"): ``"strict"`` is paper-literal, both get the cell's colour. ``"nearest"`` (default)
  keeps every entity distinguishable: entities are assigned in painting order (largest first), the
  larger keeps its cell, a later one moves to the nearest free cell (Euclidean distance between cell
  centres, ties → lowest cell index); once all b² cells are used the spare colours ``b²..123`` are
  handed out in order. More than 124 non-empty entities cannot be distinguished → ``ValueError``.
* **Inputs.** ``(N, H, W)`` masks, bool or integer holding only 0/1; a single ``(H, W)`` mask is read as
  ``N = 1``; ``N = 0`` is allowed (an all-black colormap). Empty masks are skipped with a
  ``UserWarning`` (cell −1, colour black).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

LEVELS: tuple[int, ...] = (0, 64, 128, 192, 255)
_LEVELS_ARRAY = np.asarray(LEVELS, dtype=np.int64)


def _build_palette() -> np.ndarray:
    rows = [(r, g, b) for r in LEVELS for g in LEVELS for b in LEVELS if (r, g, b) != (0, 0, 0)]
    return np.asarray(rows, dtype=np.uint8)


PALETTE: np.ndarray = _build_palette()  # (124, 3) uint8; index = cell
PALETTE.setflags(write=False)
NUM_COLORS: int = len(PALETTE)
COLLISION_MODES: tuple[str, ...] = ("nearest", "strict")


@dataclass(frozen=True)
class PaletteAssignment:
    """Result of :func:`assign` for N entities.

    cells:       (N,) int64, palette index of each entity (= its grid cell unless moved; ≥ b² for a spare
                 colour; −1 for an empty mask).
    colors:      (N, 3) uint8, ``PALETTE[cells]`` (black for empty masks).
    paint_order: (N,) int64, a permutation of ``range(N)``: entity indices in the order they are painted
                 (descending area, ties by index; empty masks last, they paint nothing).
    moved:       (N,) bool, True where ``"nearest"`` moved the entity off its own cell.
    """

    cells: np.ndarray
    colors: np.ndarray
    paint_order: np.ndarray
    moved: np.ndarray


# ---------------------------------------------------------------------------------------------- checks
def _check_grid(grid: int) -> int:
    if isinstance(grid, bool) or not isinstance(grid, int | np.integer):
        raise ValueError(f"grid must be an integer b with 1 <= b and b*b <= {NUM_COLORS}, got {grid!r}")
    if grid < 1 or grid * grid > NUM_COLORS:
        raise ValueError(
            f"grid must satisfy 1 <= b and b*b <= {NUM_COLORS} (one colour per cell), got b={grid}"
        )
    return int(grid)


def _check_collisions(collisions: str) -> str:
    if collisions not in COLLISION_MODES:
        raise ValueError(f"collisions must be one of {list(COLLISION_MODES)}, got {collisions!r}")
    return collisions


def check_masks(masks) -> np.ndarray:
    """Validate and return masks as a (N, H, W) bool array (a (H, W) mask becomes N = 1); bool or 0/1
    integers accepted, anything else is a ValueError naming it. Shared by the codec modules."""
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (N, H, W) or (H, W), got shape {masks.shape}")
    if masks.shape[1] == 0 or masks.shape[2] == 0:
        raise ValueError(f"masks must have a non-empty image size (H, W), got shape {masks.shape}")
    if masks.dtype == bool:
        return masks
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"masks must be bool or 0/1 integers, got dtype {masks.dtype}")
    if masks.size and (masks.min() < 0 or masks.max() > 1):
        raise ValueError(f"masks must be binary (0/1), got values in [{masks.min()}, {masks.max()}]")
    return masks.astype(bool)


# --------------------------------------------------------------------------------------------- colours
def _level_indices(colors: np.ndarray) -> np.ndarray:
    """Per-channel index of the nearest level, (..., 3) → (..., 3) int64 (ties → the lower level)."""
    # Midpoints between consecutive levels; searchsorted(side="left") sends a value equal to a midpoint
    # to the lower level.
    midpoints = (_LEVELS_ARRAY[:-1] + _LEVELS_ARRAY[1:]) / 2.0
    return np.searchsorted(midpoints, colors, side="left")


def _flat_index(level_idx: np.ndarray) -> np.ndarray:
    """(..., 3) per-channel level indices → palette index (..., ), −1 for black (index 0 before drop)."""
    flat = level_idx[..., 0] * 25 + level_idx[..., 1] * 5 + level_idx[..., 2]
    return flat.astype(np.int64) - 1


def nearest_palette_index(colors) -> np.ndarray:
    """Index of the nearest palette colour in RGB (Euclidean), −1 where the nearest is black.

    colors: (..., 3) in [0, 255], any integer or float dtype. Returns (...) int64 in [−1, 123].
    The palette is the full 5×5×5 level grid minus black, so the nearest grid point in Euclidean RGB is
    the per-channel nearest level (exact, O(pixels)); at an exact midpoint the lower level wins.
    """
    colors = np.asarray(colors)
    if colors.ndim < 1 or colors.shape[-1] != 3:
        raise ValueError(f"colors must have shape (..., 3), got shape {colors.shape}")
    if not (np.issubdtype(colors.dtype, np.integer) or np.issubdtype(colors.dtype, np.floating)):
        raise ValueError(f"colors must be numeric RGB values, got dtype {colors.dtype}")
    return _flat_index(_level_indices(colors))


def color_to_cell(color) -> int:
    """Palette index of an exact palette colour (3,), −1 if it is not one (black included).

    The index is the grid cell for indices < b²; indices ≥ b² are spare colours used by ``"nearest"``.
    """
    color = np.asarray(color)
    if color.shape != (3,):
        raise ValueError(f"color must be one RGB triple of shape (3,), got shape {color.shape}")
    level_idx = _level_indices(color)
    if not np.array_equal(_LEVELS_ARRAY[level_idx], color):
        return -1
    return int(_flat_index(level_idx))


# ----------------------------------------------------------------------------------------------- cells
def _areas_and_cells(masks: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) bool → (area (N,) int64, centre cell (N,) int64 with −1 for empty masks).

    Vectorised: area and centre of mass come from the row/column marginals (two reductions over the
    stack and two matrix-vector products), no per-pixel Python work.
    """
    n, h, w = masks.shape
    as_u8 = masks.view(np.uint8)
    rows_marginal = as_u8.sum(axis=2, dtype=np.int32)  # (N, H)
    cols_marginal = as_u8.sum(axis=1, dtype=np.int32)  # (N, W)
    area = rows_marginal.sum(axis=1, dtype=np.int64)
    safe_area = np.maximum(area, 1)
    cy = rows_marginal @ (np.arange(h) + 0.5) / safe_area  # +0.5: pixel centres
    cx = cols_marginal @ (np.arange(w) + 0.5) / safe_area
    row = np.clip(np.floor(cy * grid / h), 0, grid - 1).astype(np.int64)
    col = np.clip(np.floor(cx * grid / w), 0, grid - 1).astype(np.int64)
    return area, np.where(area > 0, row * grid + col, -1)


def centre_cells(masks, grid: int = 11) -> np.ndarray:
    """Grid cell of every mask's centre of mass, (N, H, W) → (N,) int64, −1 for empty masks."""
    grid = _check_grid(grid)
    return _areas_and_cells(check_masks(masks), grid)[1]


def cell_of(mask, grid: int = 11) -> int:
    """Grid cell ``row * b + col`` of one (H, W) mask's centre of mass; −1 if the mask is empty."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape (H, W), got shape {mask.shape}")
    return int(centre_cells(mask[None], grid)[0])


def _cell_distances(grid: int) -> np.ndarray:
    """(b², b²) Euclidean distance between cell centres (in cell units)."""
    rc = np.stack(np.divmod(np.arange(grid * grid), grid), axis=1).astype(np.float64)
    return np.sqrt(((rc[:, None, :] - rc[None, :, :]) ** 2).sum(-1))


def _resolve_nearest(home: np.ndarray, order: np.ndarray, grid: int) -> np.ndarray:
    """Move colliding entities to the nearest free cell, then to spare colours (see module doc)."""
    cells = home.copy()
    taken = np.zeros(NUM_COLORS, dtype=bool)
    distances = _cell_distances(grid)
    n_cells = grid * grid
    for i in order:
        if home[i] < 0:
            continue
        if not taken[home[i]]:
            cells[i] = home[i]
        elif not taken[:n_cells].all():
            d = np.where(taken[:n_cells], np.inf, distances[home[i]])
            cells[i] = int(np.argmin(d))  # argmin's first hit = lowest index among ties
        else:
            cells[i] = int(np.argmin(taken))  # first free spare colour, b²..123
        taken[cells[i]] = True
    return cells


def assign(masks, grid: int = 11, collisions: str = "nearest") -> PaletteAssignment:
    """Assign a palette colour to each of N entity masks (paper §3.2; collisions: module doc).

    masks: (N, H, W) bool (or 0/1 integers), or one (H, W) mask. grid: b, with b² ≤ 124.
    collisions: "nearest" (default, every entity distinguishable) or "strict" (paper-literal).
    """
    grid = _check_grid(grid)
    collisions = _check_collisions(collisions)
    masks = check_masks(masks)
    area, home = _areas_and_cells(masks, grid)
    empty = np.flatnonzero(area == 0)
    if len(empty):
        warnings.warn(
            f"skipping {len(empty)} empty mask(s) at indices {empty.tolist()}: they get no colour",
            UserWarning,
            stacklevel=2,
        )
    n_entities = int((area > 0).sum())
    if collisions == "nearest" and n_entities > NUM_COLORS:
        raise ValueError(
            f"{n_entities} non-empty entities cannot get distinct colours: the palette has {NUM_COLORS}"
        )
    order = np.argsort(-area, kind="stable").astype(np.int64)  # larger first, ties by index
    cells = home if collisions == "strict" else _resolve_nearest(home, order, grid)
    colors = np.zeros((len(cells), 3), dtype=np.uint8)
    colors[cells >= 0] = PALETTE[cells[cells >= 0]]
    return PaletteAssignment(cells=cells, colors=colors, paint_order=order, moved=cells != home)


def paint(masks, colors, paint_order) -> np.ndarray:
    """Paint (N, H, W) masks with (N, 3) uint8 colours in ``paint_order``: (H, W, 3) uint8, black = 0.

    Builds a label map (later entities overwrite earlier ones) and looks colours up once.
    """
    masks = check_masks(masks)
    n, h, w = masks.shape
    label = np.zeros((h, w), dtype=np.int16 if n < 32767 else np.int32)
    for i in paint_order:
        np.copyto(label, label.dtype.type(i + 1), where=masks[i])
    lut = np.concatenate([np.zeros((1, 3), np.uint8), np.asarray(colors, dtype=np.uint8)], axis=0)
    return np.take(lut, label, axis=0)


def encode(masks, grid: int = 11, collisions: str = "nearest") -> np.ndarray:
    """Ψ: entity masks (N, H, W) → colormap (H, W, 3) uint8; black (0, 0, 0) is background.

    Larger entities are painted first, smaller ones on top. See :func:`assign` for the arguments.
    """
    masks = check_masks(masks)
    assignment = assign(masks, grid, collisions)
    return paint(masks, assignment.colors, assignment.paint_order)


# -------------------------------------------------------------------------------------------- coverage
@dataclass(frozen=True)
class CoverageStats:
    """Counts over a set of images for `unigs colormap coverage` (the paper reports 97.4 %).

    images:         images seen.
    entities:       non-empty entity masks seen (empty ones are not counted).
    unique_strict:  entities whose strict (paper-literal) colour no other entity of the image shares.
    kept_nearest:   entities that keep their own cell under "nearest".
    moved_nearest:  entities that "nearest" moves to another cell or a spare colour.
    """

    images: int
    entities: int
    unique_strict: int
    kept_nearest: int
    moved_nearest: int

    @property
    def strict_coverage(self) -> float:
        """Share of entities with a colour of their own under strict (the paper's coverage ratio)."""
        return self.unique_strict / self.entities if self.entities else 1.0

    @property
    def kept_ratio(self) -> float:
        """Share of entities that keep their own cell under nearest."""
        return self.kept_nearest / self.entities if self.entities else 1.0


def coverage_stats(mask_stacks: Iterable, grid: int = 11) -> CoverageStats:
    """Coverage of the palette over images, one (N, H, W) mask stack per image (any iterable).

    Empty masks are ignored (no warning). Raises ValueError when an image has more than 124 entities.
    """
    grid = _check_grid(grid)
    images = entities = unique = kept = 0
    for stack in mask_stacks:
        area, home = _areas_and_cells(check_masks(stack), grid)
        area, home = area[area > 0], home[area > 0]
        images += 1
        entities += len(home)
        if len(home) > NUM_COLORS:
            raise ValueError(f"an image has {len(home)} entities, more than the {NUM_COLORS} colours")
        counts = np.bincount(home, minlength=grid * grid)
        unique += int((counts[home] == 1).sum())
        order = np.argsort(-area, kind="stable")
        kept += int((_resolve_nearest(home, order, grid) == home).sum())
    return CoverageStats(images, entities, unique, kept, entities - kept)
