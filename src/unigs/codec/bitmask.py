"""Bit-mask codec (LDMSeg, seed 002): entity masks ↔ instance ids ↔ 7 binary bit planes.

The second way to make masks "latent-ready", beside the colormap Ψ/Φ (palette.py / dichotomy.py). LDMSeg
writes every pixel's instance id in binary and lets a small autoencoder (`unigs.models.mask_ae`) map the
bit planes to 4-channel latents; this module is the pure, exact part of that:

    masks (N, H, W) bool ──encode──▶ bits (7, H, W) float32 in {−1, +1} ──decode──▶ masks (K, H, W) bool

* **Ids.** Pixel id 0 = no entity (background / void); entity ``i`` (0-based, in the given order) gets id
  ``i + 1`` unless ``ids`` says otherwise, so 7 bits hold at most :data:`MAX_INSTANCES` = 127 entities.
  Training draws random distinct ids (``random_ids``) so that the autoencoder sees every code, as LDMSeg
  does; the codec itself is deterministic.
* **Overlaps.** Larger entities are written first and smaller ones on top (ties: lower index first), the
  palette's painting order, so a small object lying on a large one stays visible.
* **Bits.** Plane ``b`` holds bit ``b`` of the id (least significant first), as ``+1`` (set) or ``−1``
  (clear): zero-centred, like an image in [−1, 1] in front of a VAE. :func:`decode` thresholds at 0, so it
  reads clean planes, autoencoder outputs in [−1, 1] and logits alike.
* **Decode** returns one mask per id present, ordered by id, background dropped (``keep_background=False``,
  as Φ drops black) or kept as the first mask.
"""

from __future__ import annotations

import numpy as np

from unigs.codec.palette import check_masks

NUM_BITS: int = 7
MAX_INSTANCES: int = 2**NUM_BITS - 1  # id 0 is the background
_WEIGHTS = (1 << np.arange(NUM_BITS, dtype=np.int64))  # bit b of an id ↔ plane b


def _check_ids(ids, n: int) -> np.ndarray:
    """`ids` as (n,) int64 of distinct values in [1, MAX_INSTANCES]; None → 1..n."""
    if ids is None:
        return np.arange(1, n + 1, dtype=np.int64)
    ids = np.asarray(ids)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be {n} integers (one per mask), got shape {ids.shape} dtype {ids.dtype}")
    if n and (ids.min() < 1 or ids.max() > MAX_INSTANCES or len(np.unique(ids)) != n):
        raise ValueError(f"ids must be distinct integers in [1, {MAX_INSTANCES}], got {ids.tolist()}")
    return ids.astype(np.int64)


def id_map(masks, ids=None) -> np.ndarray:
    """`(H, W) int64` instance-id map of `(N, H, W)` masks (bool or 0/1; a `(H, W)` mask is N = 1).

    Pixels no mask covers are 0; overlaps go to the smaller entity (written last). More than
    :data:`MAX_INSTANCES` masks → ValueError (7 bits cannot tell them apart).
    """
    masks = check_masks(masks)
    if len(masks) > MAX_INSTANCES:
        raise ValueError(f"the bit-mask codec holds at most {MAX_INSTANCES} entities ({NUM_BITS} bits, "
                         f"id 0 = background), got {len(masks)} masks")
    ids = _check_ids(ids, len(masks))
    out = np.zeros(masks.shape[1:], np.int64)
    areas = masks.reshape(len(masks), -1).sum(1)
    for i in np.argsort(-areas, kind="stable"):  # largest first, smaller on top
        out[masks[i]] = ids[i]
    return out


def random_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """`(n,) int64`: n distinct random ids in [1, MAX_INSTANCES] (training: every code gets seen)."""
    if not 0 <= n <= MAX_INSTANCES:
        raise ValueError(f"n must be in [0, {MAX_INSTANCES}], is {n}")
    return rng.choice(np.arange(1, MAX_INSTANCES + 1), size=n, replace=False).astype(np.int64)


def ids_to_bits(ids: np.ndarray) -> np.ndarray:
    """`(H, W)` or `(B, H, W)` integer ids in [0, 127] → `(…, 7, H, W) float32` planes in {−1, +1}."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() > MAX_INSTANCES):
        raise ValueError(f"ids must be in [0, {MAX_INSTANCES}], got values in [{ids.min()}, {ids.max()}]")
    bits = (ids[..., None, :, :] >> np.arange(NUM_BITS).reshape(NUM_BITS, 1, 1)) & 1
    return bits.astype(np.float32) * 2.0 - 1.0


def bits_to_ids(bits) -> np.ndarray:
    """`(…, 7, H, W)` planes (±1, [−1, 1] outputs or logits; > 0 = set) → `(…, H, W) int64` ids."""
    bits = np.asarray(bits)
    if bits.ndim < 3 or bits.shape[-3] != NUM_BITS:
        raise ValueError(f"bits must have shape (..., {NUM_BITS}, H, W), got shape {bits.shape}")
    if not np.issubdtype(bits.dtype, np.number) or np.issubdtype(bits.dtype, np.complexfloating):
        raise ValueError(f"bits must be real numbers, got dtype {bits.dtype}")
    set_ = (bits > 0).astype(np.int64)
    return np.tensordot(np.moveaxis(set_, -3, -1), _WEIGHTS, axes=1)


def masks_from_ids(ids: np.ndarray, keep_background: bool = False) -> np.ndarray:
    """`(H, W)` id map → `(K, H, W) bool`, one mask per id present, ordered by id (0 first if kept)."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be one (H, W) map, got shape {ids.shape}")
    present = np.unique(ids)
    if not keep_background:
        present = present[present != 0]
    return ids[None] == present[:, None, None]


def encode(masks, ids=None) -> np.ndarray:
    """Masks `(N, H, W)` → bit planes `(7, H, W) float32` in {−1, +1} (the autoencoder's input)."""
    return ids_to_bits(id_map(masks, ids))


def decode(bits, keep_background: bool = False) -> np.ndarray:
    """Bit planes `(7, H, W)` (exact, reconstructed or logits) → masks `(K, H, W) bool`, ordered by id."""
    bits = np.asarray(bits)
    if bits.ndim != 3:
        raise ValueError(f"bits must have shape ({NUM_BITS}, H, W) for one map, got shape {bits.shape}")
    return masks_from_ids(bits_to_ids(bits), keep_background=keep_background)
