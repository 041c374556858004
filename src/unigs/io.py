"""Image and annotation I/O: read any image as RGB uint8, write PNGs, COCO RLE, atomic files.

This is the boundary for image files (photos, masks, colormaps): every function fails with a sentence
naming the file or value (STYLE.md §10): a missing file is a `FileNotFoundError`; a folder, an unreadable,
corrupt, truncated or oversized file a `ValueError`. Files are written atomically (a temporary file in the
same folder, then `os.replace`) with permissions 0644.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils

PathLike = str | os.PathLike

# Largest image (width × height) any command reads or makes: 4096 × 4096 = 16.8 megapixels. Larger
# inputs (a 380 KB PNG can claim 20000 × 20000 px) are refused before their pixels are decoded, so that
# no input allocates without bound. Raise it with the environment variable UNIGS_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 4096 * 4096
FILE_MODE = 0o644


def max_pixels() -> int:
    """The pixel limit: `$UNIGS_MAX_PIXELS` when set (a positive integer), else `DEFAULT_MAX_PIXELS`."""
    text = os.environ.get("UNIGS_MAX_PIXELS")
    if text is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"UNIGS_MAX_PIXELS must be a positive integer, is {text!r}")
    return value


def check_image_size(height: int, width: int, what: str) -> None:
    """Refuse an image of `height` × `width` px above :func:`max_pixels` (`what` names it)."""
    limit = max_pixels()
    if height * width > limit:
        raise ValueError(f"{what} is {width}x{height} px = {height * width / 1e6:.1f} megapixels, more than "
                         f"the limit of {limit / 1e6:.1f} (set UNIGS_MAX_PIXELS to raise it)")


def check_input_file(path: PathLike, what: str = "file") -> Path:
    """`path` as a `Path` if it is a readable regular file.

    Raises:
        FileNotFoundError: nothing is there. ValueError: a folder, a device/pipe, or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{what} {path} cannot be read (permission denied)")
    return path


def load_image(path: PathLike, what: str = "image") -> np.ndarray:
    """Read an image file as RGB.

    The EXIF orientation is applied (`ImageOps.exif_transpose`), so the array is the image as viewers
    show it. Modes are converted: L/LA/P/CMYK/YCbCr → RGB; RGBA/LA → RGB by **dropping** alpha (not
    compositing), so that colormap colours stay exact; 16-bit grayscale is scaled to 0..255; float
    grayscale (TIFF mode F) in [0, 1] is scaled by 255, in (1, 255] taken as is, beyond by 255/65535.
    Images above :func:`max_pixels` are refused from their header, before decoding.

    Args:
        path: image file (any format PIL reads: JPEG, PNG, WebP, TIFF, ...).
        what: how the file is named in error messages ("image", "mask", "colormap").

    Returns:
        `(H, W, 3) uint8` in [0, 255].

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a folder, not an image, corrupt or truncated, too large, or NaN/inf pixel values.
    """
    path = check_input_file(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_image_size(img.size[1], img.size[0], f"{what} {path}")
                img.load()  # decode now: a truncated JPEG raises here, not later
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img, f"{what} {path}")
    except Image.DecompressionBombError as err:
        raise ValueError(f"{what} {path} is too large to decode: {err}") from None
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"cannot read {what} {path}: {err}") from err
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 — any decoder failure on a user's file is bad input
        raise ValueError(f"cannot read {what} {path}: {err}") from err


def _to_rgb(img: Image.Image, what: str) -> np.ndarray:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} holds NaN or infinite pixel values")
        top = arr.max(initial=0)
        if img.mode == "F" and top <= 1.0:
            arr = arr * 255.0  # a float image in [0, 1] (the usual convention), not a black one
        elif top > 255:
            arr = arr * (255.0 / 65535.0)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when converting palette+transparency straight to RGB
    return np.array(img.convert("RGB"), dtype=np.uint8)


def save_png(path: PathLike, array: np.ndarray) -> Path:
    """Write an array as a PNG, atomically (:func:`atomic_write`), creating parent folders.

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
    image = Image.fromarray(array)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


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


def atomic_write(path: PathLike, write: Callable[[Path], None], fsync: bool = False) -> Path:
    """Write one file atomically: `write(tmp)` fills a fresh temporary file in the same folder, which is
    then given mode 0644 and moved into place with `os.replace`.

    A reader never sees a half-written file, even if the process dies mid-write, and two processes writing
    the same path leave one complete version. `fsync=True` flushes the data to disk first (checkpoints).
    Parent folders are created. If `write` raises, the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600: results are for other users and tools to read
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write JSON atomically (:func:`atomic_write`, mode 0644).

    numpy scalars and arrays, bytes and paths are converted; NaN/inf are written as `null` (strict JSON
    readers refuse `NaN`). Parent folders are created.
    """
    text = json.dumps(_finite(obj), indent=indent, default=_json_default, allow_nan=False)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _finite(obj: Any) -> Any:
    """`obj` with non-finite floats replaced by None (recursively through dicts, lists and tuples)."""
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
        return _finite(obj.tolist())
    return obj
