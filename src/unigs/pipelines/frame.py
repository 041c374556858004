"""The working frame: any input size in, the model's resolution inside, the input's own size out.

A UniGS model works at one resolution (the bundled model: 128 px; SD-1.5: 512 px) and its UNet needs sides
that are multiples of `size_multiple` (VAE factor × UNet downsampling). Users hand in photos of any size
and want results they can lay over those photos, so every pipeline works in a *working frame*:

1. resize the input so that it fits inside the working box (`height` × `width`, default the model's
   training size on both sides): the scale is `min(height / H, width / W)`, so the long side meets the box
   and the aspect ratio is kept (never squashed);
2. pad the bottom and right edges up to the next multiple of `size_multiple` (images: edge pixels repeated,
   so the model sees no artificial border; colormaps: black = background; coarse masks: 0 = untouched);
3. after sampling, crop the padding off and resize back to the original H × W.

Why resize-and-pad rather than tiling: the paper's entity colormap is *location aware* (§3.2, one palette
cell per grid position of the whole image), so a tile would see a different palette layout from the
image's; one global frame keeps the palette's meaning.

Resampling: images bicubic (PIL, antialiased when shrinking), colormaps nearest (palette colours stay
exact), coarse masks conservative (a working pixel belongs to the region if any part of it does), output
masks by a bilinear vote (each original pixel takes the mask with the largest bilinearly resampled
indicator, "no mask" included), so non-overlapping masks stay non-overlapping at the original size.
A frame whose sizes already match is the identity: nothing is resampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image

KINDS = ("image", "colormap", "mask")


@dataclass(frozen=True)
class WorkFrame:
    """Geometry of one working frame (all sizes in pixels, (height, width) order).

    original: the input's size `(H, W)`; resized: the content's size in the frame `(h, w)`;
    padded: the frame the model sees `(h_p, w_p)`, multiples of the pipeline's `size_multiple`.
    """

    original: tuple[int, int]
    resized: tuple[int, int]
    padded: tuple[int, int]

    @property
    def is_identity(self) -> bool:
        return self.original == self.resized == self.padded

    def describe(self) -> str:
        """`"612x480 -> 128x100 (padded 128x112)"` (W×H, as image tools print sizes)."""
        (h, w), (rh, rw), (ph, pw) = self.original, self.resized, self.padded
        pad = f" (padded {pw}x{ph})" if (ph, pw) != (rh, rw) else ""
        return f"{w}x{h} -> {rw}x{rh}{pad}"


def plan_frame(height: int, width: int, box: tuple[int, int], multiple: int) -> WorkFrame:
    """The working frame of an `height` × `width` input for a working box `(box_h, box_w)`.

    Raises ValueError naming the value when a size is not a positive integer.
    """
    for name, value in (("image height", height), ("image width", width), ("working height", box[0]),
                        ("working width", box[1]), ("size multiple", multiple)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, is {value!r}")
    scale = min(box[0] / height, box[1] / width)
    rh, rw = max(1, round(height * scale)), max(1, round(width * scale))
    ph, pw = -(-rh // multiple) * multiple, -(-rw // multiple) * multiple
    return WorkFrame((int(height), int(width)), (rh, rw), (ph, pw))


def _resize(plane: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """One `(H, W)` or `(H, W, 3)` plane → `size` = (h, w), same dtype."""
    if plane.shape[:2] == tuple(size):
        return plane
    return np.asarray(PIL.Image.fromarray(plane).resize((size[1], size[0]), resample))


def _resize_float(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(H, W)` float → `size`, bilinear (PIL mode "F": antialiased when shrinking)."""
    if plane.shape == tuple(size):
        return plane.astype(np.float32)
    img = PIL.Image.fromarray(plane.astype(np.float32))  # float32 → PIL mode "F"
    return np.asarray(img.resize((size[1], size[0]), PIL.Image.BILINEAR))


def to_work(batch: np.ndarray, frame: WorkFrame, kind: str) -> np.ndarray:
    """Original frame → working frame.

    Args:
        batch: `(B, H, W, 3) uint8` ("image", "colormap") or `(B, H, W) bool` ("mask").
        kind: how to resample and pad (module docstring).

    Returns:
        `(B, h_p, w_p, 3) uint8` or `(B, h_p, w_p) bool`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, is {kind!r}")
    if batch.shape[1:3] != frame.original:
        raise ValueError(f"array of size {batch.shape[1:3]} does not match the frame's {frame.original}")
    if frame.is_identity:
        return batch
    if kind == "mask":
        resized = np.stack([_resize_float(m.astype(np.float32), frame.resized) > 1e-3 for m in batch])
    else:
        resample = PIL.Image.BICUBIC if kind == "image" else PIL.Image.NEAREST
        resized = np.stack([_resize(x, frame.resized, resample) for x in batch])
    pad_h, pad_w = frame.padded[0] - frame.resized[0], frame.padded[1] - frame.resized[1]
    pad = [(0, 0), (0, pad_h), (0, pad_w)] + ([(0, 0)] if resized.ndim == 4 else [])
    return np.pad(resized, pad, mode="edge" if kind == "image" else "constant")


def to_original(batch: np.ndarray, frame: WorkFrame, kind: str) -> np.ndarray:
    """Working frame → original frame: crop the padding, resize back.

    Args:
        batch: `(B, h_p, w_p, 3) uint8` ("image", "colormap") or `(B, h_p, w_p) bool` ("mask", resampled
            one by one; for a set of masks of one image use :func:`masks_to_original`).

    Returns:
        `(B, H, W, 3) uint8` or `(B, H, W) bool`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, is {kind!r}")
    if batch.shape[1:3] != frame.padded:
        raise ValueError(f"array of size {batch.shape[1:3]} does not match the working frame {frame.padded}")
    if frame.is_identity:
        return batch
    crop = batch[:, : frame.resized[0], : frame.resized[1]]
    if kind == "mask":
        return np.stack([_resize_float(m.astype(np.float32), frame.original) >= 0.5 for m in crop])
    resample = PIL.Image.BICUBIC if kind == "image" else PIL.Image.NEAREST
    return np.stack([_resize(x, frame.original, resample) for x in crop])


def masks_to_original(masks: np.ndarray, frame: WorkFrame) -> np.ndarray:
    """The masks of one image, working frame → original frame, by a bilinear vote.

    Args:
        masks: `(K, h_p, w_p) bool`, non-overlapping (Φ's masks are).

    Returns:
        `(K, H, W) bool`, non-overlapping: each original pixel belongs to the mask whose bilinearly
        resampled indicator is largest, or to none when the "no mask" indicator wins. Memory stays at two
        `(H, W)` planes whatever K is. Masks may come out empty (a sliver inside the padding).
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[1:] != frame.padded:
        raise ValueError(f"masks must be (K, {frame.padded[0]}, {frame.padded[1]}), got shape {masks.shape}")
    if frame.is_identity:
        return masks
    crop = masks[:, : frame.resized[0], : frame.resized[1]]
    best = _resize_float((~crop.any(0)).astype(np.float32), frame.original)  # the "no mask" vote
    label = np.full(frame.original, -1, dtype=np.int32)
    for k, m in enumerate(crop):
        vote = _resize_float(m.astype(np.float32), frame.original)
        win = vote > best
        best = np.where(win, vote, best)
        label[win] = k
    return label[None] == np.arange(len(masks), dtype=np.int32)[:, None, None]


def known_to_work(known: np.ndarray, frame: WorkFrame) -> np.ndarray:
    """A "known pixels" mask, original frame → working frame, strictly: a working pixel is known only when
    every original pixel it covers is (the complement of the conservative "mask" resampling); the padding
    is unknown. For regions held at known values (`core.KnownLatent`), where a pixel that also covers
    unknown ones must not be held.

    Args:
        known: `(B, H, W) bool`, 1 = known.

    Returns:
        `(B, h_p, w_p) bool`.
    """
    work = ~to_work(~np.asarray(known, dtype=bool), frame, "mask")
    work[:, frame.resized[0]:] = False
    work[:, :, frame.resized[1]:] = False
    return work
