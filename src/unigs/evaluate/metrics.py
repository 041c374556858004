"""Mask metrics with the fixed definitions of DESIGN.md ("Metrics"). Pure numpy.

Referring mIoU: mean over ground-truth entities of the IoU with the best-matching predicted mask.
Recall: share of ground-truth entities whose best IoU >= 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_masks(masks: np.ndarray, name: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"{name} must be (N, H, W) bool masks, got shape {masks.shape}")
    return masks.astype(bool, copy=False)


def _packed(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) bool → (N, ⌈H·W / 64⌉) uint64 bit planes (zero padding), for popcount intersections."""
    bits = np.packbits(masks.reshape(len(masks), masks.shape[1] * masks.shape[2]), axis=1)
    pad = -bits.shape[1] % 8
    if pad:
        bits = np.pad(bits, ((0, 0), (0, pad)))
    return bits.view(np.uint64)


def iou_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of every predicted mask with every ground-truth mask.

    Args:
        pred: `(P, H, W) bool`.
        gt: `(G, H, W) bool`, same H, W.

    Returns:
        `(P, G) float64` in [0, 1]; a pair of two empty masks has IoU 0.
    """
    pred, gt = _as_masks(pred, "pred"), _as_masks(gt, "gt")
    if pred.shape[1:] != gt.shape[1:]:
        raise ValueError(f"pred masks are {pred.shape[1:]} but gt masks are {gt.shape[1:]}")
    # Pixel counts by popcount on packed bits (64 pixels a word), one predicted mask at a time so that the
    # temporary stays (G, words); integer counts, then the same float32 arithmetic as a float matmul.
    p, g = _packed(pred), _packed(gt)
    inter = np.zeros((len(p), len(g)), np.float32)
    for i, row in enumerate(p):
        inter[i] = np.bitwise_count(row & g).sum(1)
    area_p = np.bitwise_count(p).sum(1).astype(np.float32)
    area_g = np.bitwise_count(g).sum(1).astype(np.float32)
    union = area_p[:, None] + area_g[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0).astype(np.float64)


@dataclass
class MatchScores:
    """Per-ground-truth best IoU plus the two summary numbers."""

    best_iou: np.ndarray  # (G,) float64
    miou: float
    recall: float


def best_match_scores(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> MatchScores:
    """mIoU and recall of `pred` against `gt` (DESIGN.md definitions).

    With no ground truth the scores are NaN (nothing to average); with no prediction every gt scores 0.
    """
    gt = _as_masks(gt, "gt")
    if len(gt) == 0:
        return MatchScores(np.zeros(0), float("nan"), float("nan"))
    pred = _as_masks(pred, "pred") if len(pred) else np.zeros((0, *gt.shape[1:]), bool)
    best = iou_matrix(pred, gt).max(0) if len(pred) else np.zeros(len(gt))
    return MatchScores(best, float(best.mean()), float((best >= threshold).mean()))


def pool_match_scores(per_image: list[MatchScores], threshold: float = 0.5) -> MatchScores:
    """Dataset-level mIoU and recall: pool the per-entity best IoUs of all images, then average.

    This is the DESIGN.md definition ("mean over ground-truth entities") applied to a whole dataset:
    every ground-truth entity weighs the same, so an image with three entities counts three times as much
    as an image with one. It is *not* the mean of per-image means. Images with no ground truth add nothing.

    Args:
        per_image: the :func:`best_match_scores` result of each image.
        threshold: IoU at which an entity counts as recalled (DESIGN.md: 0.5).

    Returns:
        `MatchScores` whose `best_iou` is the `(sum G_i,) float64` concatenation; NaN scores if it is empty.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], is {threshold}")
    best = [np.asarray(s.best_iou, dtype=np.float64).ravel() for s in per_image]
    best = np.concatenate(best) if best else np.zeros(0)
    if len(best) == 0:
        return MatchScores(best, float("nan"), float("nan"))
    return MatchScores(best, float(best.mean()), float((best >= threshold).mean()))
