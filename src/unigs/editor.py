"""What a brush editor hands over, turned into model inputs: region masks from layer alpha, one list of
names per region, the working size, and the palette shown as swatches. Pure numpy + PIL, no model.

The interactive app (`unigs.ui`) gets an editor value of `{"background", "layers", "composite"}` RGBA
arrays (Gradio's `ImageEditor`). Masks are read from each **layer's alpha**, never from the composite:
the composite mixes the brush colours with the photo, so a stroke in a colour close to the photo would
vanish, and two regions painted in one colour would merge. One layer = one region with its own names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unigs.codec.palette import PALETTE
from unigs.io import load_image

# The largest picture the app accepts (pixels). The model works at a few hundred px at most, and a
# 20000 x 20000 PNG of a few hundred KB decodes to 1.2 GB; refusing early keeps the app responsive.
MAX_PIXELS = 40_000_000
# The editor shows pictures with this long side: large enough to brush precisely, small enough to send
# to the browser quickly. Masks and images are resized to the model's working size before a run.
EDIT_SIDE = 512
# A layer pixel counts as painted from this alpha on (0–255): anti-aliased brush edges have low alpha.
ALPHA_THRESHOLD = 128
# A working-size pixel is in a region when at least this share of it is painted at editing size.
COVER_THRESHOLD = 0.5


def check_pixels(height: int, width: int, limit: int = MAX_PIXELS) -> None:
    """Raise a ValueError naming the size when `height` x `width` exceeds `limit` pixels."""
    if height < 1 or width < 1:
        raise ValueError(f"the picture is empty ({width}x{height} px)")
    if height * width > limit:
        raise ValueError(f"the picture is {width}x{height} px ({height * width / 1e6:.0f} MP); the app "
                         f"takes at most {limit / 1e6:.0f} MP — downscale it first")


def load_picture(path: str, limit: int = MAX_PIXELS) -> np.ndarray:
    """Read an uploaded picture as `(H, W, 3) uint8` RGB, refusing huge ones before decoding them.

    Raises ValueError (with the file name) for a file that is not an image, or for more than `limit`
    pixels; the size is read from the header, so a decompression bomb is never decoded.
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception as err:  # PIL raises many types for non-images (UnidentifiedImageError, OSError, ...)
        name = str(path).rsplit("/", 1)[-1]
        raise ValueError(f"cannot read {name!r} as an image ({type(err).__name__}); upload a PNG, JPEG "
                         "or WebP file") from err
    check_pixels(height, width, limit)
    return load_image(path)


def rgb_of(picture: np.ndarray, name: str = "picture") -> np.ndarray:
    """Editor picture `(H, W, 3|4) uint8` → `(H, W, 3) uint8`. Transparent pixels (an RGBA picture with
    alpha 0, e.g. an empty canvas) become black, the colormap background."""
    a = np.asarray(picture)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise ValueError(f"{name} must be an (H, W, 3|4) uint8 array, got shape {a.shape} {a.dtype}")
    if a.shape[2] == 3:
        return a
    return np.where(a[..., 3:] > 0, a[..., :3], 0).astype(np.uint8)


def layer_masks(layers: Sequence[np.ndarray | None] | None, size: tuple[int, int],
                threshold: int = ALPHA_THRESHOLD) -> np.ndarray:
    """One mask per editor layer, from its alpha channel.

    Args:
        layers: RGBA layers `(H, W, 4) uint8` (None entries, e.g. a deleted layer, give empty masks).
        size: `(H, W)` of the background; every layer must match it.
        threshold: alpha from which a pixel counts as painted.

    Returns:
        `(N, H, W) bool`, N = len(layers), in layer order (empty masks kept, so index = layer number - 1).
    """
    h, w = size
    out = np.zeros((len(layers or []), h, w), dtype=bool)
    for i, layer in enumerate(layers or []):
        if layer is None:
            continue
        a = np.asarray(layer)
        if a.ndim != 3 or a.shape[2] != 4:
            raise ValueError(f"layer {i + 1} must be RGBA (H, W, 4) to read its alpha, got shape {a.shape}")
        if a.shape[:2] != (h, w):
            raise ValueError(f"layer {i + 1} is {a.shape[1]}x{a.shape[0]} px but the picture is {w}x{h}")
        out[i] = a[..., 3] >= threshold
    return out


def parse_names(text: str | None) -> list[list[str]]:
    """Names typed one line per layer, comma-separated within a line → one list per line.

    An optional `label:` prefix ("region 1: dog, cat") is ignored; blank names are dropped but blank
    lines are kept, so that line i always speaks about layer i.

    >>> parse_names("region 1: dog, cat\\nball")
    [['dog', 'cat'], ['ball']]
    """
    lines = (text or "").strip("\n").splitlines()
    out = []
    for line in lines:
        line = line.split(":", 1)[1] if ":" in line else line
        out.append([n.strip() for n in line.split(",") if n.strip()])
    while out and not out[-1]:
        out.pop()
    return out


def names_for_regions(lines: list[list[str]], painted: np.ndarray) -> list[list[str]]:
    """The names of each painted layer.

    Args:
        lines: `parse_names` output, line i = layer i.
        painted: `(N,) bool`, which layers hold a stroke.

    Returns:
        one list of names per painted layer. With one painted layer, all typed names belong to it (so a
        user who paints on layer 2 and types one line is not punished for it).

    Raises:
        ValueError naming the layer that has a stroke but no names.
    """
    painted_idx = [int(i) for i in np.flatnonzero(painted)]
    if len(painted_idx) == 1:
        names = [n for line in lines for n in line]
        if not names:
            raise ValueError("type at least one entity name (e.g. \"dog\") for the painted region")
        return [names]
    out = []
    for i in painted_idx:
        if i >= len(lines) or not lines[i]:
            raise ValueError(f"layer {i + 1} has a stroke but no names: type one line of names per layer "
                             f"(line {i + 1} for layer {i + 1})")
        out.append(lines[i])
    return out


def working_size(height: int, width: int, side: int, multiple: int) -> tuple[int, int]:
    """The model's working size for a `height` x `width` picture: the long side becomes `side`, the
    aspect ratio is kept, and both sides are rounded to a multiple of `multiple` (at least one)."""
    if min(height, width, side, multiple) < 1:
        raise ValueError(f"sizes must be positive, got {height}x{width}, side {side}, multiple {multiple}")
    scale = side / max(height, width)

    def fit(n: int) -> int:
        return max(multiple, int(round(n * scale / multiple)) * multiple)

    return fit(height), fit(width)


def resize_picture(picture: np.ndarray, size: tuple[int, int], exact: bool = False) -> np.ndarray:
    """`(H, W, 3) uint8` → `(h, w, 3) uint8` at `size` = (h, w): bicubic for photos, nearest with
    `exact=True` (colormaps keep their palette colours)."""
    if picture.shape[:2] == tuple(size):
        return picture
    resample = Image.NEAREST if exact else Image.BICUBIC
    return np.asarray(Image.fromarray(picture).resize((size[1], size[0]), resample), dtype=np.uint8)


def resize_masks(masks: np.ndarray, size: tuple[int, int], cover: float = COVER_THRESHOLD) -> np.ndarray:
    """`(N, H, W) bool` → `(N, h, w) bool`: a target pixel is set when at least `cover` of its area is
    painted (box averaging), so a thin stroke neither vanishes nor swells when the size changes a lot."""
    masks = np.asarray(masks, dtype=bool)
    if masks.shape[1:] == tuple(size):
        return masks.copy()
    out = np.zeros((len(masks), *size), dtype=bool)
    for i, m in enumerate(masks):
        area = Image.fromarray(m.astype(np.float32)).resize((size[1], size[0]), Image.BOX)
        out[i] = np.asarray(area) >= cover - 1e-6
    return out


def palette_swatches(grid: int = 11, cell_px: int = 28) -> np.ndarray:
    """The location-aware palette Ψ drawn as the grid it is defined on: cell `row * grid + col` filled
    with `PALETTE[cell]` and labelled with its index, so a user sees which colour an entity centred in
    that cell gets (`unigs.codec.palette`).

    Returns:
        `(grid * cell_px, grid * cell_px, 3) uint8`.
    """
    if not 1 <= grid * grid <= len(PALETTE):
        raise ValueError(f"grid must satisfy 1 <= grid and grid * grid <= {len(PALETTE)}, is {grid}")
    if cell_px < 8:
        raise ValueError(f"cell_px must be >= 8 to hold a label, is {cell_px}")
    canvas = Image.new("RGB", (grid * cell_px, grid * cell_px))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for cell in range(grid * grid):
        r, c = divmod(cell, grid)
        color = tuple(int(v) for v in PALETTE[cell])
        box = (c * cell_px, r * cell_px, (c + 1) * cell_px - 1, (r + 1) * cell_px - 1)
        draw.rectangle(box, fill=color, outline=(255, 255, 255))
        # dark ink on light swatches, light ink on dark ones (Rec. 601 luma)
        ink = (0, 0, 0) if 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] > 128 else (255, 255, 255)
        draw.text((box[0] + 2, box[1] + 1), str(cell), fill=ink, font=font)
    return np.asarray(canvas, dtype=np.uint8).copy()


def hex_color(color: Sequence[int]) -> str:
    """(r, g, b) in 0..255 → "#rrggbb"."""
    r, g, b = (int(v) for v in color)
    return f"#{r:02x}{g:02x}{b:02x}"
