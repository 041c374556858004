"""Boundary conversions for the UniGS pipelines: user images, masks and names → one canonical form.

Every pipeline works internally on `(B, H, W, 3) uint8` RGB images/colormaps and `(B, H, W) bool` coarse
masks (1 = region to fill, DESIGN.md "Ω"). Bad input fails here, with a sentence naming the value.

Accepted images: a PIL image (any mode; converted to RGB), an `(H, W, 3)` or `(B, H, W, 3)` uint8 numpy array,
a float torch tensor `(3, H, W)` or `(B, 3, H, W)` in [0, 1], or a list of PIL images / `(H, W, 3)` arrays.
Arrays that are not RGB (grayscale `(H, W)`, RGBA `(H, W, 4)`) are rejected rather than guessed at: a PIL
image carries its mode, an array does not.

Accepted masks: a PIL image (converted to "L"), an `(H, W)` / `(B, H, W)` bool or integer numpy array, a torch
tensor `(H, W)`, `(B, H, W)` or `(B, 1, H, W)` (bool, or float in [0, 1]), or a list of those.
Integer / PIL masks: a mask whose values are all 0 or 1 is taken as is; otherwise pixels >= 128 are "fill"
(the usual 0/255 brush mask). Float tensors: >= 0.5 is "fill".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import PIL.Image
import torch

OUTPUT_TYPES = ("pil", "np", "pt")


def _rgb_array(item: object, name: str) -> np.ndarray:
    """One image (PIL or numpy) → `(H, W, 3) uint8`."""
    if isinstance(item, PIL.Image.Image):
        return np.asarray(item.convert("RGB"), dtype=np.uint8)
    if isinstance(item, np.ndarray):
        if item.ndim != 3 or item.shape[-1] != 3:
            raise ValueError(f"{name} must be an RGB array of shape (H, W, 3), got shape {item.shape}; "
                             "convert grayscale/RGBA images to RGB first")
        if item.dtype != np.uint8:
            raise ValueError(f"{name} must be a uint8 array in [0, 255], got dtype {item.dtype}")
        return item
    raise ValueError(f"{name} must be a PIL image, a (H, W, 3) uint8 array or a float tensor, "
                     f"got {type(item).__name__}")


def to_rgb_batch(image: object, name: str = "image") -> np.ndarray:
    """Any accepted image input → `(B, H, W, 3) uint8` (see the module docstring)."""
    if image is None:
        raise ValueError(f"{name} is required")
    if isinstance(image, torch.Tensor):
        t = image.detach().to("cpu")
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"{name} tensor must be (B, 3, H, W) or (3, H, W), "
                             f"got shape {tuple(image.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} tensor must be float in [0, 1], got dtype {t.dtype}")
        lo, hi = float(t.min()), float(t.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name} tensor must be in [0, 1], got values in [{lo:.3f}, {hi:.3f}]")
        return (t.float() * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    if isinstance(image, np.ndarray) and image.ndim == 4:
        return np.stack([_rgb_array(x, name) for x in image])
    items = list(image) if isinstance(image, (list, tuple)) else [image]
    if not items:
        raise ValueError(f"{name} is an empty list")
    arrays = [_rgb_array(x, f"{name}[{i}]" if len(items) > 1 else name) for i, x in enumerate(items)]
    if len({a.shape for a in arrays}) > 1:
        raise ValueError(f"all {name} entries must have the same size, got {[a.shape[:2] for a in arrays]}")
    return np.stack(arrays)


def _mask_array(item: object, name: str) -> np.ndarray:
    """One mask → `(H, W) bool` or `(B, H, W) bool`."""
    if isinstance(item, PIL.Image.Image):
        item = np.asarray(item.convert("L"))
    if isinstance(item, torch.Tensor):
        t = item.detach().to("cpu")
        if t.ndim == 4:
            if t.shape[1] != 1:
                raise ValueError(f"{name} tensor must be (B, 1, H, W), got shape {tuple(item.shape)}")
            t = t[:, 0]
        return (t >= 0.5).numpy() if t.is_floating_point() else t.bool().numpy()
    if not isinstance(item, np.ndarray):
        raise ValueError(f"{name} must be a PIL image, a (H, W) bool/uint8 array or a tensor, "
                         f"got {type(item).__name__}")
    if item.ndim not in (2, 3):
        raise ValueError(f"{name} must be a single-channel (H, W) mask, got shape {item.shape}")
    if item.dtype == bool:
        return item
    if not np.issubdtype(item.dtype, np.integer):
        raise ValueError(f"{name} must be bool or integer, got dtype {item.dtype}")
    if item.size and item.max() <= 1 and item.min() >= 0:
        return item == 1
    return item >= 128


def to_mask_batch(mask: object, batch: int, size: tuple[int, int], name: str = "mask_image") -> np.ndarray:
    """Any accepted mask input → `(batch, H, W) bool`; one mask is shared by the whole batch.

    Raises ValueError when its size differs from the image `size` = (H, W).
    """
    if mask is None:
        raise ValueError(f"{name} is required")
    if isinstance(mask, (list, tuple)):
        masks = np.stack([_mask_array(m, f"{name}[{i}]") for i, m in enumerate(mask)])
    else:
        masks = _mask_array(mask, name)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim == 3 and len(masks) == 1:
        masks = np.repeat(masks, batch, axis=0)
    if masks.ndim != 3 or len(masks) != batch:
        raise ValueError(f"{name} must hold 1 or {batch} masks, got shape {masks.shape}")
    if masks.shape[1:] != tuple(size):
        raise ValueError(f"{name} is {masks.shape[1]}x{masks.shape[2]} (HxW) but the image is "
                         f"{size[0]}x{size[1]}; they must be the same size")
    return masks.astype(bool)


def to_names_batch(names: str | Sequence[str] | Sequence[Sequence[str]] | None, batch: int,
                   name: str = "names") -> list[list[str]]:
    """Entity names → one list per image. A string is one name; a list of strings is shared by the batch;
    a list of lists gives each image its own names. Blank names are dropped."""
    if names is None:
        return [[] for _ in range(batch)]
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if names and all(isinstance(n, (list, tuple)) for n in names):
        if len(names) != batch:
            raise ValueError(f"{name} gives {len(names)} lists of names for {batch} images")
        per_image = [list(n) for n in names]
    elif all(isinstance(n, str) for n in names):
        per_image = [list(names) for _ in range(batch)]
    else:
        raise ValueError(f"{name} must be a string, a list of strings or a list of lists, got {names!r}")
    return [[str(n).strip() for n in ns if str(n).strip()] for ns in per_image]


def check_output_type(output_type: str) -> str:
    """Return `output_type` if it is one of :data:`OUTPUT_TYPES`, else raise a ValueError naming it."""
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {list(OUTPUT_TYPES)}, is {output_type!r}")
    return output_type


def format_images(images: np.ndarray, output_type: str) -> list[PIL.Image.Image] | np.ndarray | torch.Tensor:
    """`(B, H, W, 3) uint8` → list of PIL images, the same array (`"np"`), or `(B, 3, H, W) float32` in
    [0, 1] (`"pt"`)."""
    check_output_type(output_type)
    if output_type == "pil":
        return [PIL.Image.fromarray(x) for x in images]
    if output_type == "np":
        return images
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
