"""Image and annotation I/O: read any image as RGB uint8, write PNGs, COCO RLE, atomic JSON.

Every function fails at the boundary with a sentence naming the file or value (STYLE.md §10):
a missing file is a `FileNotFoundError`, an unreadable/corrupt/truncated one a `ValueError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pycocotools import mask as mask_utils

PathLike = str | os.PathLike


def load_image(path: PathLike) -> np.ndarray:
    """Read an image file as RGB.

    The EXIF orientation is applied (`ImageOps.exif_transpose`), so the array is the image as viewers
    show it. Modes are converted: L/LA/P/CMYK/YCbCr → RGB; RGBA/LA → RGB by **dropping** alpha (not
    compositing), so that colormap colours stay exact; 16-bit and float grayscale are scaled to 0..255.

    Args:
        path: image file (any format PIL reads: JPEG, PNG, WebP, ...).

    Returns:
        `(H, W, 3) uint8` in [0, 255].

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not an image, or is corrupt or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated JPEG raises here, not later
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.max(initial=0) > 255:
            arr = arr * (255.0 / 65535.0)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when converting palette+transparency straight to RGB
    return np.array(img.convert("RGB"), dtype=np.uint8)


def save_png(path: PathLike, array: np.ndarray) -> Path:
    """Write an array as a PNG, creating parent folders.

    Args:
        path: output file.
        array: `(H, W)` or `(H, W, 3|4)`, dtype uint8, or bool (written as 0/255 grayscale).

    Returns:
        The path written.
    """
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise ValueError(f"save_png needs uint8 or bool pixels, got dtype {array.dtype} for {path}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"save_png needs an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")
    return path


def masks_to_rle(masks: np.ndarray) -> list[dict]:
    """Encode binary masks as COCO compressed RLE.

    Args:
        masks: `(N, H, W)` bool (a single `(H, W)` mask is accepted as N=1).

    Returns:
        N dicts `{"size": [H, W], "counts": str}`; `counts` is decoded to `str` so the list is
        JSON-serialisable (pycocotools accepts str counts back).
    """
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    if len(masks) == 0:
        return []
    # pycocotools wants (H, W, N) uint8 in Fortran (column-major) order.
    fortran = np.asfortranarray(masks.astype(bool).transpose(1, 2, 0).astype(np.uint8))
    rles = mask_utils.encode(fortran)
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def rle_to_masks(rles: list[dict], height: int | None = None, width: int | None = None) -> np.ndarray:
    """Decode COCO RLEs (compressed `counts` str/bytes, or uncompressed `counts` list) to masks.

    Args:
        rles: list of `{"size": [H, W], "counts": ...}`, all of one size.
        height, width: needed only when `rles` is empty (to shape the `(0, H, W)` result); when given
            otherwise they must match every RLE's size.

    Returns:
        `(N, H, W)` bool.
    """
    rles = list(rles)
    if not rles:
        if height is None or width is None:
            raise ValueError("rle_to_masks got no RLEs: pass height and width to shape the empty result")
        return np.zeros((0, int(height), int(width)), dtype=bool)
    objs = []
    for i, rle in enumerate(rles):
        if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
            raise ValueError(f"RLE {i} must be a dict with 'size' and 'counts', got {str(rle)[:80]}")
        h, w = (int(v) for v in rle["size"])
        if (height is not None and h != height) or (width is not None and w != width):
            raise ValueError(f"RLE {i} has size {[h, w]}, expected {[height, width]}")
        counts = rle["counts"]
        if isinstance(counts, list):  # uncompressed RLE → compressed
            objs.append(mask_utils.frPyObjects(rle, h, w))
        elif isinstance(counts, (str, bytes)):
            raw = counts.encode("ascii") if isinstance(counts, str) else counts
            objs.append({"size": [h, w], "counts": raw})
        else:
            raise ValueError(f"RLE {i} counts must be str, bytes or list, got {type(counts).__name__}")
    sizes = {tuple(o["size"]) for o in objs}
    if len(sizes) > 1:
        raise ValueError(f"RLEs have different sizes {sorted(sizes)}; decode them separately")
    decoded = mask_utils.decode(objs)  # (H, W, N) uint8
    return np.ascontiguousarray(decoded.transpose(2, 0, 1)).astype(bool)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, bytes):
        return obj.decode("ascii")
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON-serialisable")


def write_json(path: PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write JSON atomically: to a temporary file in the same folder, then `os.replace`.

    A reader never sees a half-written file, even if the process dies mid-write. numpy scalars and
    arrays, bytes and paths are converted. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be read by others
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=indent, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
