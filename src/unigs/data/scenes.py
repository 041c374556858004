"""Procedural scenes with exact entity masks and names.

The dataset for tests, for the CPU-trained default model (128×128 px) and for small reproductions: every
image is painted from a label map, so the returned masks are exactly the rendered pixels, with no
annotation noise. A scene is

* **stuff** — two or three horizontal bands with textured appearance and named after what they show
  (:data:`STUFF`: "sky" over a wavy "grass" horizon, "wall" over "floor", ...). Together they cover the
  image, so entity segmentation (Table 2, last row) has a label for every pixel;
* **things** — 1–6 shapes of :data:`CATEGORIES` ("ball", "star", ...; one-word names the MiniLM text
  encoder knows), painted in painter's order (later = on top). A scene draws its things from only 1–4
  categories, so several instances of one category are common: that is what the location-aware palette
  (§3.2) has to tell apart. Each category has a hue range and a texture; with probability
  :data:`SHARED_COLOR_PROB` an instance takes a colour shared across categories (white, grey, dark, or
  another category's hue), so that a model must look at the shape, not only the colour.

Masks are the *visible* masks: non-overlapping, their union is the whole image. A thing whose visible
area is below ``min_visible`` (default 0.5 % of the image) is removed before painting (removing a thing
only uncovers the ones below it, so every survivor stays above the threshold); a stuff band below it is
merged into its neighbour band. No anti-aliasing: hard edges keep masks and pixels exactly aligned.
Shapes and textures scale with ``size``; a seed gives the same layout at any size (up to the pixel-counted
visibility threshold, which can drop a barely visible thing at one size and keep it at another).

Seeds per split (:class:`SceneDataset`): train ``[0, 10^7)``, val ``[10^7, 2·10^7)``, test
``[2·10^7, 3·10^7)`` — item ``i`` of a split is ``make_scene(offset + i)``.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CATEGORIES: tuple[str, ...] = ("ball", "box", "triangle", "star", "ring", "cross", "heart", "moon")
STUFF: tuple[str, ...] = ("sky", "grass", "sand", "water", "wall", "floor")

# Colour tendency per name: (hue range, saturation range, value range), HSV in [0, 1].
_STYLE: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "ball": ((-0.03, 0.03), (0.70, 0.95), (0.75, 0.95)),      # red
    "box": ((0.06, 0.10), (0.45, 0.70), (0.55, 0.75)),        # cardboard brown
    "triangle": ((0.28, 0.38), (0.60, 0.90), (0.55, 0.85)),   # green
    "star": ((0.13, 0.17), (0.75, 1.00), (0.90, 1.00)),       # yellow
    "ring": ((0.48, 0.55), (0.60, 0.90), (0.70, 0.90)),       # cyan
    "cross": ((0.62, 0.70), (0.60, 0.90), (0.60, 0.85)),      # blue
    "heart": ((0.88, 0.95), (0.50, 0.80), (0.85, 1.00)),      # pink
    "moon": ((0.11, 0.16), (0.10, 0.30), (0.85, 1.00)),       # pale cream
    "sky": ((0.55, 0.62), (0.30, 0.60), (0.85, 1.00)),
    "grass": ((0.22, 0.32), (0.50, 0.80), (0.45, 0.70)),
    "sand": ((0.10, 0.13), (0.25, 0.45), (0.80, 0.95)),
    "water": ((0.53, 0.60), (0.60, 0.85), (0.50, 0.75)),
    "wall": ((0.00, 0.07), (0.35, 0.60), (0.55, 0.80)),
    "floor": ((0.06, 0.10), (0.40, 0.65), (0.40, 0.65)),
}
SHARED_COLOR_PROB = 0.25
_SHARED_HSV = ((0.0, 0.0, 0.95), (0.0, 0.0, 0.55), (0.0, 0.0, 0.22))  # white, grey, dark

# Background layouts: bands from top to bottom; each band below the first has a top boundary
# y(x) = y0 + amp·sin(2π·freq·x + phase) + slope·(x − ½) in image units, drawn from these ranges.
_LAYOUTS: dict[str, tuple[tuple[str, tuple[float, float], float, float], ...]] = {
    # name: ((band name, y0 range, max amp, max slope), ...)
    "field": (("sky", (0, 0), 0, 0), ("grass", (0.35, 0.60), 0.06, 0.10)),
    "beach": (("sky", (0, 0), 0, 0), ("water", (0.28, 0.42), 0.01, 0.0), ("sand", (0.62, 0.78), 0.04, 0.1)),
    "room": (("wall", (0, 0), 0, 0), ("floor", (0.45, 0.65), 0.0, 0.25)),
    "desert": (("sky", (0, 0), 0, 0), ("sand", (0.40, 0.60), 0.10, 0.0)),
}

MIN_VISIBLE = 0.005
_RADIUS = (0.08, 0.17)  # thing radius as a fraction of the image side
SPLIT_SEED_OFFSETS: dict[str, int] = {"train": 0, "val": 10_000_000, "test": 20_000_000}
SPLIT_SEED_SPAN = 10_000_000


@dataclass(frozen=True)
class Entity:
    """One entity of a layout (geometry in image-side units, colour RGB in [0, 1])."""

    name: str
    is_thing: bool
    color: tuple[float, float, float]
    texture_seed: int
    # things: centre, radius, rotation (radians); stuff: top boundary (y0, amp, freq, phase, slope)
    geometry: tuple[float, ...]


@dataclass
class SceneLayout:
    """Entities (stuff bands top to bottom, then things in painter's order) and the label map."""

    size: int
    entities: list[Entity]
    label: np.ndarray  # (H, W) int64, label[y, x] = index into entities


@dataclass
class Scene:
    """A rendered scene.

    image: `(H, W, 3) uint8`; masks: `(N, H, W) bool`, visible masks, non-overlapping, union = image;
    names: N names from STUFF/CATEGORIES; is_thing: `(N,) bool`. Stuff first, then things bottom to top.
    """

    image: np.ndarray
    masks: np.ndarray
    names: list[str]
    is_thing: np.ndarray


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates `(x, y)` in image units [0, 1], each `(size, size) float64`, read-only."""
    c = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(c, c)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _local(e: Entity, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in the thing's rotated frame, in units of its radius."""
    cx, cy, r, a = e.geometry
    dx, dy = (x - cx) / r, (y - cy) / r
    return np.cos(a) * dx + np.sin(a) * dy, -np.sin(a) * dx + np.cos(a) * dy


def _inside(category: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of local points (u, v) (radius units, y down) in the unit shape of `category`."""
    rho = np.hypot(u, v)
    if category == "ball":
        return rho <= 1.0
    if category == "box":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if category == "triangle":  # equilateral, apex up, circumradius 1: three half-planes at distance ½
        return (v <= 0.5) & (-0.866 * u - 0.5 * v <= 0.5) & (0.866 * u - 0.5 * v <= 0.5)
    if category == "star":  # five points, inner radius 0.45; fold the angle into one half-spike
        phi = np.abs(np.mod(np.arctan2(v, u) + np.pi / 2 + np.pi / 5, 2 * np.pi / 5) - np.pi / 5)
        qx, qy = rho * np.cos(phi), rho * np.sin(phi)
        dx, dy = 0.45 * np.cos(np.pi / 5) - 1.0, 0.45 * np.sin(np.pi / 5)
        return dx * qy - dy * (qx - 1.0) >= 0
    if category == "ring":
        return (rho >= 0.55) & (rho <= 1.0)
    if category == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if category == "heart":  # (X² + Y² − 1)³ − X²Y³ ≤ 0, y flipped to point up
        X, Y = 1.15 * u, -1.15 * v + 0.2
        return (X**2 + Y**2 - 1) ** 3 - X**2 * Y**3 <= 0
    if category == "moon":  # a disc minus an offset disc
        return (rho <= 1.0) & ((u - 0.42) ** 2 + (v + 0.22) ** 2 > 0.85**2)
    raise ValueError(f"category must be one of {list(CATEGORIES)}, is {category!r}")


def shape_mask(e: Entity, size: int) -> np.ndarray:
    """Full (unoccluded) region of entity `e` at `size`×`size` px, `(size, size) bool`."""
    x, y = _grid(size)
    if e.is_thing:  # evaluate only inside the bounding square (every unit shape fits in radius 1.15)
        cx, cy, r = e.geometry[:3]
        box = np.array([cy - 1.15 * r, cy + 1.15 * r, cx - 1.15 * r, cx + 1.15 * r]) * size
        i0, i1, j0, j1 = np.clip(np.rint(box) + [-1, 1, -1, 1], 0, size).astype(int)
        mask = np.zeros((size, size), dtype=bool)
        mask[i0:i1, j0:j1] = _inside(e.name, *_local(e, x[i0:i1, j0:j1], y[i0:i1, j0:j1]))
        return mask
    y0, amp, freq, phase, slope = e.geometry
    return y >= y0 + amp * np.sin(2 * np.pi * freq * x + phase) + slope * (x - 0.5)


def _noise_field(seed: int, size: int, cell: float) -> np.ndarray:
    """Smooth value noise in [0, 1] on the `size`×`size` pixel grid, lattice step `cell` (image units).

    Separable smoothstep interpolation of a random lattice: rows first, then columns (two gathers; no
    BLAS call, whose threads stall on a shared CPU).
    """
    n = int(np.ceil(1.0 / cell)) + 2
    table = np.random.default_rng(seed).random((n, n))
    g = np.clip((np.arange(size) + 0.5) / size / cell, 0, n - 1.001)
    j = g.astype(int)
    f = g - j
    f = f * f * (3 - 2 * f)  # smoothstep: no creases at lattice lines
    rows = table[j] * (1 - f)[:, None] + table[j + 1] * f[:, None]  # (size, n)
    return rows[:, j] * (1 - f) + rows[:, j + 1] * f


def _appearance(e: Entity, idx: np.ndarray, size: int) -> np.ndarray:
    """Colour of entity `e` at flat pixel indices `idx` (1-D int): `(n, 3) float` in [0, 255] (unclipped)."""
    x, y = (c.ravel()[idx] for c in _grid(size))

    def noise(seed: int, cell: float) -> np.ndarray:
        return _noise_field(seed, size, cell).ravel()[idx]

    base = np.asarray(e.color, dtype=np.float64)
    white = np.zeros_like(x)  # mix toward white (highlights, clouds, mortar)
    s = e.texture_seed
    if e.is_thing:
        u, v = _local(e, x, y)
        shade = np.ones_like(x)
        if e.name in ("ball", "heart"):  # light from the top left, specular spot
            d = np.hypot(u + 0.4, v + 0.4)
            shade = np.clip(1.15 - 0.4 * d, 0.45, 1.15)
            white = 0.6 * np.clip(1 - d / 0.35, 0, 1)
        elif e.name == "box":  # bevelled edges
            edge = np.maximum(np.abs(u), np.abs(v)) > 0.64
            shade = np.where(edge, np.where(u + v > 0, 0.7, 1.15), 1.0)
        elif e.name == "triangle":
            shade = 0.7 + 0.25 * (v + 1)
        elif e.name == "star":
            shade = 1.15 - 0.35 * np.hypot(u, v)
        elif e.name == "ring":
            shade = 0.85 + 0.25 * np.cos(np.arctan2(v, u) + np.pi / 4)
        elif e.name == "cross":
            shade = np.where(np.sin(9 * (u + v)) > 0, 1.0, 0.82)
        elif e.name == "moon":  # craters
            shade = 0.75 + 0.4 * noise(s, e.geometry[2] / 3)
    else:
        n = noise(s, 1 / 6)
        if e.name == "sky":  # lighter toward the horizon, clouds
            shade = 0.9 + 0.25 * y
            cloud = 0.6 * n + 0.4 * noise(s + 1, 1 / 12)
            white = 0.85 * np.clip((cloud - 0.55) * 4, 0, 1)
        elif e.name == "grass":  # blotches plus blades (fine vertical streaks)
            shade = 0.7 + 0.35 * n + 0.12 * np.sin(size * x * 1.7 + 6 * noise(s + 1, 1 / 20))
        elif e.name == "sand":
            shade = 0.85 + 0.2 * n + 0.12 * (noise(s + 1, 1.5 / size) - 0.5)
        elif e.name == "water":  # horizontal ripples
            shade = 0.85 + 0.15 * np.sin(2 * np.pi * 14 * y + 5 * n)
            white = 0.35 * np.clip((np.sin(2 * np.pi * 14 * y + 5 * n) - 0.85) * 6, 0, 1)
        elif e.name == "wall":  # bricks with light mortar, one shade per brick
            h = 1 / 10
            row = np.floor(y / h)
            xo = x + (row % 2) * h
            col = np.floor(xo / (2 * h))
            jitter = np.random.default_rng(s).random(64)[((row * 7 + col * 13) % 64).astype(int)]
            mortar = (np.mod(y, h) < 0.14 * h) | (np.mod(xo, 2 * h) < 0.07 * h)
            shade = np.where(mortar, 1.0, 0.8 + 0.3 * jitter)
            white = np.where(mortar, 0.7, 0.0)
        else:  # floor: planks with seams and grain
            h = 1 / 14
            row = np.floor(y / h)
            jitter = np.random.default_rng(s).random(64)[(row % 64).astype(int)]
            seam = np.mod(y, h) < 0.12 * h
            grain = 0.07 * np.sin(size * x * 0.35 + row * 7 + 4 * n)
            shade = np.where(seam, 0.45, 0.8 + 0.3 * jitter + grain)
    rgb = base[None, :] * shade[:, None]
    rgb = rgb * (1 - white[:, None]) + white[:, None]
    return 255.0 * rgb


def _quantize(rgb: np.ndarray) -> np.ndarray:
    """float32 colours → uint8, rounding half up."""
    return np.clip(rgb + np.float32(0.5), 0, 255).astype(np.uint8)


def render_entity(e: Entity, size: int) -> np.ndarray:
    """Entity `e` alone on the whole frame as `paint` draws it without grain, `(size, size, 3) uint8`."""
    return _quantize(_appearance(e, np.arange(size * size), size).astype(np.float32)).reshape(size, size, 3)


def _color(name: str, rng: np.random.Generator, shared_prob: float) -> tuple[float, float, float]:
    style = _STYLE[name]
    if rng.random() < shared_prob:
        k = rng.integers(len(_SHARED_HSV) + 1)
        if k < len(_SHARED_HSV):
            return colorsys.hsv_to_rgb(*_SHARED_HSV[k])
        style = _STYLE[CATEGORIES[rng.integers(len(CATEGORIES))]]
    h, s, v = (rng.uniform(*r) for r in style)
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def _sample_stuff(rng: np.random.Generator) -> list[Entity]:
    layout = _LAYOUTS[list(_LAYOUTS)[rng.integers(len(_LAYOUTS))]]
    bands = []
    for k, (name, y0, amp, slope) in enumerate(layout):
        geometry = (-np.inf, 0.0, 0.0, 0.0, 0.0)
        if k > 0:
            geometry = (rng.uniform(*y0), rng.uniform(0.3, 1.0) * amp, rng.uniform(0.5, 2.5),
                        rng.uniform(0, 2 * np.pi), rng.uniform(-slope, slope))
        bands.append(Entity(name, False, _color(name, rng, 0.0), int(rng.integers(2**31)), geometry))
    return bands


def _sample_things(rng: np.random.Generator, count: int) -> list[Entity]:
    if count == 0:
        return []
    categories = rng.choice(len(CATEGORIES), size=rng.integers(1, min(count, 4) + 1), replace=False)
    shrink = 1.0 if count <= 3 else 0.85  # crowded scenes get smaller shapes
    things = []
    for _ in range(count):
        name = CATEGORIES[rng.choice(categories)]
        r = rng.uniform(*_RADIUS) * shrink
        cx, cy = rng.uniform(0.5 * r, 1 - 0.5 * r, size=2)
        angle = rng.uniform(-0.5, 0.5) if name in ("triangle", "star", "heart") else rng.uniform(0, 2 * np.pi)
        things.append(Entity(name, True, _color(name, rng, SHARED_COLOR_PROB), int(rng.integers(2**31)),
                             (cx, cy, r, angle)))
    return things


def _paint_labels(regions: list[np.ndarray]) -> np.ndarray:
    """Painter's order: later regions cover earlier ones; region 0 must cover the whole image."""
    label = np.zeros(regions[0].shape, dtype=np.int64)
    for k, region in enumerate(regions[1:], start=1):
        label[region] = k
    return label


def layout_scene(seed: int, size: int = 128, min_objects: int = 1, max_objects: int = 6,
                 min_visible: float = MIN_VISIBLE) -> SceneLayout:
    """Sample the entities of scene `seed` and their visible label map (see the module docstring)."""
    if int(size) < 16:
        raise ValueError(f"size must be >= 16 px, is {size}")
    if not 0 <= min_objects <= max_objects:
        raise ValueError(f"need 0 <= min_objects <= max_objects, got {min_objects} and {max_objects}")
    if not 0.0 <= min_visible < 0.5:
        raise ValueError(f"min_visible must be a fraction in [0, 0.5), is {min_visible}")
    rng = np.random.default_rng(int(seed))
    stuff = _sample_stuff(rng)
    stuff_regions = [shape_mask(e, size) for e in stuff]
    stuff_regions[0][:] = True
    min_px = min_visible * size * size
    for _attempt in range(100):
        things = _sample_things(rng, int(rng.integers(min_objects, max_objects + 1)))
        thing_regions = [shape_mask(e, size) for e in things]
        while True:  # drop things hidden below the threshold; dropping only uncovers the others
            label = _paint_labels(stuff_regions + thing_regions)
            area = np.bincount(label.ravel(), minlength=len(stuff) + len(things))[len(stuff):]
            if not len(area) or area.min() >= min_px:
                break
            keep = area >= min_px
            things = [e for e, k in zip(things, keep, strict=True) if k]
            thing_regions = [m for m, k in zip(thing_regions, keep, strict=True) if k]
        if len(things) >= min_objects:
            break
    else:
        raise RuntimeError(f"scene {seed}: could not place {min_objects} visible objects at size {size}")
    # A stuff band hidden below the threshold is merged into the band above it (the first one below,
    # for the top band), so the stuff still covers everything that no thing covers.
    area = np.bincount(label.ravel(), minlength=len(stuff) + len(things))
    gone = [k for k in range(len(stuff)) if area[k] < min_px]
    if gone and len(gone) < len(stuff):
        alive = [k for k in range(len(stuff)) if k not in gone]
        remap = np.arange(len(stuff) + len(things))
        for k in range(len(stuff)):
            above = [a for a in alive if a <= k]
            remap[k] = alive.index(above[-1] if above else alive[0])
        remap[len(stuff):] = np.arange(len(things)) + len(alive)
        label, stuff = remap[label], [stuff[k] for k in alive]
    return SceneLayout(size=int(size), entities=stuff + things, label=label)


def paint(layout: SceneLayout, grain: float = 2.5, seed: int = 0) -> Scene:
    """Render a layout: each pixel takes the appearance of its label's entity, plus grain (std `grain`)."""
    size, n = layout.size, len(layout.entities)
    flat = layout.label.ravel()
    order = np.argsort(flat, kind="stable")  # pixels grouped by entity, one pass instead of N masks
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=n))])
    image = np.empty((size * size, 3), dtype=np.float32)
    for k, e in enumerate(layout.entities):
        idx = order[bounds[k]:bounds[k + 1]]
        image[idx] = _appearance(e, idx, size)
    if grain > 0:  # uniform sensor grain with standard deviation `grain` (cheaper than Gaussian)
        noise = np.random.default_rng([int(seed), 1]).random(image.shape, dtype=np.float32) - np.float32(0.5)
        image += np.float32(grain * np.sqrt(12.0)) * noise
    masks = layout.label[None] == np.arange(n)[:, None, None]
    return Scene(image=_quantize(image).reshape(size, size, 3), masks=masks,
                 names=[e.name for e in layout.entities],
                 is_thing=np.array([e.is_thing for e in layout.entities], dtype=bool))


def make_scene(seed: int, size: int = 128, min_objects: int = 1, max_objects: int = 6,
               grain: float = 2.5) -> Scene:
    """Scene number `seed` at `size`×`size` px; deterministic in (seed, size, min/max_objects)."""
    return paint(layout_scene(seed, size, min_objects, max_objects), grain=grain, seed=seed)


class SceneDataset(Sequence):
    """`length` scenes of one split; item i is `make_scene(SPLIT_SEED_OFFSETS[split] + i, size)`."""

    def __init__(self, split: str = "train", length: int = 1000, size: int = 128,
                 min_objects: int = 1, max_objects: int = 6):
        if split not in SPLIT_SEED_OFFSETS:
            raise ValueError(f"split must be one of {list(SPLIT_SEED_OFFSETS)}, is {split!r}")
        if not 0 < int(length) <= SPLIT_SEED_SPAN:
            raise ValueError(f"length must be in [1, {SPLIT_SEED_SPAN}], is {length}")
        self.split, self.length, self.size = split, int(length), int(size)
        self.min_objects, self.max_objects = min_objects, max_objects

    def __len__(self) -> int:
        return self.length

    def seed_of(self, index: int) -> int:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} scenes")
        return SPLIT_SEED_OFFSETS[self.split] + index % self.length

    def __getitem__(self, index: int) -> Scene:  # type: ignore[override]
        return make_scene(self.seed_of(index), self.size, self.min_objects, self.max_objects)
