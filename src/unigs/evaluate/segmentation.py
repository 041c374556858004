"""Entity-segmentation metrics: class-agnostic AP^e (paper Table 6) and class-agnostic PQ (LDMSeg).

Both follow DESIGN.md "Metrics". All inputs are per-image stacks of binary masks, `(K, H, W) bool`.

* **AP^e** is COCO mask AP with every category folded into one ("entity") and with *non-overlapping*
  predictions (paper Table 6: "AP with a non-overlapped constraint"): before evaluation each pixel is given
  to the highest-scoring prediction that covers it (:func:`non_overlapping`). The numbers come from
  pycocotools' COCOeval on an in-memory ground truth with one category.
* **Scores.** COCO AP ranks predictions by a confidence. UniGS decodes a colormap and has none, so when
  `scores` is not given the proxy is each mask's **area fraction** of the image (:func:`area_scores`):
  the progressive dichotomy's known failure is tiny leaves and boundary slivers (paper Fig. 3), so large
  regions are the trustworthy ones. Pass real scores where a model has them.
* **PQ** (Kirillov et al., as used class-agnostically by LDMSeg): a prediction and a ground truth match
  when IoU > 0.5; PQ = SQ × RQ with SQ = mean IoU of matches and RQ = TP / (TP + FP/2 + FN/2). Sums are
  pooled over the dataset before dividing (as panopticapi does per category; here there is one category).
* **Void.** Pixels that no ground-truth entity covers are void (COCO panoptic's VOID label). In PQ, void
  pixels are left out of the union, and a prediction lying more than half in void is not a false positive
  (panopticapi's rule). In AP^e the void region is an `iscrowd` ground truth, COCO's own way to neither
  reward nor punish detections of unlabeled area. So predicting the unlabeled background is not penalised.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from unigs.evaluate.metrics import _as_masks

MATCH_IOU = 0.5  # PQ matching threshold: IoU strictly above it (unique matches for non-overlapping segments)


def _masks_like(masks: np.ndarray | list, shape: tuple[int, int], name: str) -> np.ndarray:
    """`masks` as `(K, H, W) bool`; an empty list/array becomes `(0, H, W)`."""
    if len(masks) == 0:
        return np.zeros((0, *shape), bool)
    masks = _as_masks(masks, name)
    if masks.shape[1:] != tuple(shape):
        raise ValueError(f"{name} masks are {masks.shape[1:]} but the ground truth is {tuple(shape)}")
    return masks


def _flat(masks: np.ndarray) -> np.ndarray:
    """`(K, H, W)` -> `(K, H*W)`, also for K = 0."""
    return masks.reshape(masks.shape[0], masks.shape[1] * masks.shape[2])


def area_scores(masks: np.ndarray) -> np.ndarray:
    """The score proxy used when a model gives none: each mask's area as a fraction of the image.

    Args:
        masks: `(K, H, W) bool`.

    Returns:
        `(K,) float64` in [0, 1].
    """
    masks = _as_masks(masks, "masks")
    return _flat(masks).mean(1).astype(np.float64)


def non_overlapping(masks: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """Give every pixel to the highest-scoring mask that covers it (ties: the lower index wins).

    Args:
        masks: `(K, H, W) bool`, may overlap.
        scores: `(K,)` float, higher = more confident; None = :func:`area_scores`.

    Returns:
        `(K, H, W) bool`, pairwise disjoint, each a subset of its input mask (some may become empty).
    """
    masks = _as_masks(masks, "masks")
    scores = area_scores(masks) if scores is None else np.asarray(scores, dtype=np.float64).ravel()
    if len(scores) != len(masks):
        raise ValueError(f"got {len(scores)} scores for {len(masks)} masks")
    if len(masks) == 0:
        return masks.copy()
    # Stable sort on -score: among equal scores the lower index comes first and wins the pixel.
    order = np.argsort(-scores, kind="stable")
    rank_of = np.empty(len(masks), np.int64)
    rank_of[order] = np.arange(len(masks))
    ranked = np.where(masks, rank_of[:, None, None], len(masks))  # (K, H, W): rank where covered
    winner = ranked.min(0)  # (H, W) best rank covering the pixel; K = nobody
    return masks & (rank_of[:, None, None] == winner[None])


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


@dataclass
class APResult:
    """Class-agnostic COCO mask AP (AP^e) over IoU 0.50:0.95, and at 0.50 and 0.75. NaN without gt."""

    ap: float
    ap50: float
    ap75: float

    def as_dict(self) -> dict[str, float]:
        return {"AP": self.ap, "AP50": self.ap50, "AP75": self.ap75}


def entity_ap(preds: list[np.ndarray], gts: list[np.ndarray], scores: list[np.ndarray] | None = None,
              voids: list[np.ndarray | None] | None = None) -> APResult:
    """AP^e: class-agnostic COCO mask AP with non-overlapping predictions (paper Table 6).

    Args:
        preds: per image, `(K_i, H_i, W_i) bool` predicted entity masks (may overlap; made disjoint here).
        gts: per image, `(G_i, H_i, W_i) bool` ground-truth entity masks.
        scores: per image, `(K_i,) float` confidences; None = the area-fraction proxy (module docstring).
        voids: per image, `(H_i, W_i) bool` unlabeled region or None; default: pixels no gt covers.

    Returns:
        :class:`APResult`; AP 0 when there is ground truth but no prediction, NaN when there is no gt.
    """
    if len(preds) != len(gts):
        raise ValueError(f"got predictions for {len(preds)} images but ground truth for {len(gts)}")
    if scores is not None and len(scores) != len(preds):
        raise ValueError(f"got scores for {len(scores)} images but predictions for {len(preds)}")
    if voids is not None and len(voids) != len(preds):
        raise ValueError(f"got void regions for {len(voids)} images but predictions for {len(preds)}")
    images, annotations, results = [], [], []
    for i, (pred, gt) in enumerate(zip(preds, gts, strict=True)):
        gt = _as_masks(gt, "gt")
        pred = _masks_like(pred, gt.shape[1:], "pred")
        score = area_scores(pred) if scores is None else np.asarray(scores[i], dtype=np.float64).ravel()
        pred = non_overlapping(pred, score)
        void = ~gt.any(0) if voids is None or voids[i] is None else np.asarray(voids[i], bool)
        images.append({"id": i, "height": gt.shape[1], "width": gt.shape[2]})
        regions = [(m, 0) for m in gt if m.any()] + ([(void, 1)] if void.any() and len(gt) else [])
        for mask, crowd in regions:
            rle = _rle(mask)
            x, y = np.nonzero(mask.any(0))[0], np.nonzero(mask.any(1))[0]
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": 1, "iscrowd": crowd,
                                "segmentation": rle, "area": float(mask.sum()),
                                "bbox": [float(x[0]), float(y[0]), float(x[-1] - x[0] + 1),
                                         float(y[-1] - y[0] + 1)]})
        results += [{"image_id": i, "category_id": 1, "segmentation": _rle(m), "score": float(s)}
                    for m, s in zip(pred, score, strict=True) if m.any()]
    if not any(a["iscrowd"] == 0 for a in annotations):
        return APResult(float("nan"), float("nan"), float("nan"))
    if not results:
        return APResult(0.0, 0.0, 0.0)
    coco_gt = COCO()
    coco_gt.dataset = {"images": images, "annotations": annotations,
                       "categories": [{"id": 1, "name": "entity"}]}
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress and table
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ap, ap50, ap75 = (float(v) if v >= 0 else float("nan") for v in evaluator.stats[:3])
    return APResult(ap, ap50, ap75)


@dataclass
class PQStats:
    """Pooled panoptic-quality counts. `pq`, `sq`, `rq` are NaN when there is nothing to count."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    iou_sum: float = 0.0

    def __add__(self, other: PQStats) -> PQStats:
        return PQStats(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                       self.iou_sum + other.iou_sum)

    @property
    def sq(self) -> float:
        if not (self.tp or self.fp or self.fn):
            return float("nan")
        return self.iou_sum / self.tp if self.tp else 0.0  # panopticapi: SQ = 0 without matches

    @property
    def rq(self) -> float:
        denom = self.tp + 0.5 * self.fp + 0.5 * self.fn
        return self.tp / denom if denom else float("nan")

    @property
    def pq(self) -> float:
        denom = self.tp + 0.5 * self.fp + 0.5 * self.fn
        return self.iou_sum / denom if denom else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {"PQ": self.pq, "SQ": self.sq, "RQ": self.rq, "TP": self.tp, "FP": self.fp, "FN": self.fn}


def pq_stats(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> PQStats:
    """Class-agnostic panoptic-quality counts of one image.

    Args:
        pred: `(K, H, W) bool` predicted segments (should be disjoint, see :func:`non_overlapping`).
        gt: `(G, H, W) bool` ground-truth segments.
        void: `(H, W) bool` unlabeled pixels; None = pixels that no gt covers.

    Returns:
        :class:`PQStats` with TP (IoU > 0.5, one-to-one), FP, FN and the IoU sum of the matches.
        Empty masks are ignored on both sides.
    """
    gt = _as_masks(gt, "gt")
    pred = _masks_like(pred, gt.shape[1:], "pred")
    void = ~gt.any(0) if void is None else np.asarray(void, bool)
    if void.shape != gt.shape[1:]:
        raise ValueError(f"void is {void.shape} but the masks are {gt.shape[1:]}")
    gt = gt[_flat(gt).any(1)]
    pred = pred[_flat(pred).any(1)]
    if len(pred) == 0 or len(gt) == 0:
        return PQStats(0, 0 if len(pred) == 0 else _count_fp(pred, void), len(gt), 0.0)
    # panopticapi: the union leaves out the prediction's void pixels.
    pred_in_void = _flat(pred & void).sum(1).astype(np.float64)
    inter = _flat(pred).astype(np.float32) @ _flat(gt).astype(np.float32).T
    union = _flat(pred).sum(1)[:, None] + _flat(gt).sum(1)[None] - inter
    iou = inter / np.maximum(union - pred_in_void[:, None], 1.0)
    # IoU > 0.5 makes matches unique for disjoint segments; greedy by IoU keeps them one-to-one otherwise.
    pairs = sorted(zip(*np.nonzero(iou > MATCH_IOU), strict=True), key=lambda pg: -iou[pg])
    used_p, used_g, iou_sum = set(), set(), 0.0
    for p, g in pairs:
        if p not in used_p and g not in used_g:
            used_p.add(p)
            used_g.add(g)
            iou_sum += float(iou[p, g])
    unmatched = np.array([p for p in range(len(pred)) if p not in used_p], np.int64)
    fp = _count_fp(pred[unmatched], void) if len(unmatched) else 0
    return PQStats(len(used_p), fp, len(gt) - len(used_g), iou_sum)


def _count_fp(pred: np.ndarray, void: np.ndarray) -> int:
    """Unmatched predictions that are not mostly (> 50 %) void."""
    area = _flat(pred).sum(1)
    in_void = _flat(pred & void).sum(1)
    return int((in_void <= 0.5 * area).sum())


def panoptic_quality(preds: list[np.ndarray], gts: list[np.ndarray],
                     voids: list[np.ndarray | None] | None = None) -> PQStats:
    """Dataset PQ/SQ/RQ: :func:`pq_stats` of every image, counts pooled before dividing."""
    if len(preds) != len(gts):
        raise ValueError(f"got predictions for {len(preds)} images but ground truth for {len(gts)}")
    voids = [None] * len(preds) if voids is None else voids
    total = PQStats()
    for pred, gt, void in zip(preds, gts, voids, strict=True):
        total = total + pq_stats(pred, gt, void)
    return total

