"""`unigs eval`'s PQ (unigs.evaluate.segmentation) against panopticapi's definition.

panopticapi (cocodataset/panopticapi, `pq_compute_single_core` + `PQStat.pq_average`) is not installable
offline here, so its rules are restated below as a plain reference that works on *label maps*, as
panopticapi does (id 0 = VOID in the ground truth; one category, since the metric is class-agnostic):

* intersections come from one joint histogram of (gt id, pred id);
* union = pred area + gt area − intersection − (pred pixels on gt VOID);
* a pair matches when IoU > 0.5 (strictly), which makes matches unique;
* an unmatched prediction is a false positive unless more than half of it lies on VOID;
* PQ = Σ IoU / (TP + FP/2 + FN/2), SQ = Σ IoU / TP (0 without TP), RQ = TP / (TP + FP/2 + FN/2), with
  counts pooled over all images before dividing.

The hand-made cases below have their answers worked out by hand; the random cases compare the two.
"""

from __future__ import annotations

import numpy as np
import pytest

from unigs.evaluate.segmentation import panoptic_quality, pq_stats

VOID = 0


def reference_counts(gt_map: np.ndarray, pred_map: np.ndarray) -> tuple[int, int, int, float]:
    """panopticapi's per-image loop on label maps (gt 0 = VOID, pred 0 = no segment) → (tp, fp, fn, iou)."""
    offset = 1 << 16
    joint, counts = np.unique(gt_map.astype(np.int64) * offset + pred_map, return_counts=True)
    inter = {(int(j // offset), int(j % offset)): int(c) for j, c in zip(joint, counts, strict=True)}
    gt_ids, gt_area = np.unique(gt_map[gt_map != VOID], return_counts=True)
    pred_ids, pred_area = np.unique(pred_map[pred_map != 0], return_counts=True)
    gt_area = dict(zip(gt_ids.tolist(), gt_area.tolist(), strict=True))
    pred_area = dict(zip(pred_ids.tolist(), pred_area.tolist(), strict=True))
    tp, iou_sum, gt_hit, pred_hit = 0, 0.0, set(), set()
    for (g, p), i in inter.items():
        if g == VOID or p == 0:
            continue
        union = pred_area[p] + gt_area[g] - i - inter.get((VOID, p), 0)
        if i / union > 0.5:
            tp, iou_sum = tp + 1, iou_sum + i / union
            gt_hit.add(g)
            pred_hit.add(p)
    fn = len(set(gt_area) - gt_hit)
    fp = sum(1 for p in pred_area if p not in pred_hit and inter.get((VOID, p), 0) / pred_area[p] <= 0.5)
    return tp, fp, fn, iou_sum


def _masks(label_map: np.ndarray) -> np.ndarray:
    ids = [i for i in np.unique(label_map) if i != 0]
    return np.stack([label_map == i for i in ids]) if ids else np.zeros((0, *label_map.shape), bool)


def _ours(gt_map, pred_map):
    s = pq_stats(_masks(pred_map), _masks(gt_map), gt_map == VOID)
    return s.tp, s.fp, s.fn, s.iou_sum


def _map(h, w, boxes):
    """Label map with box k+1 at (y0, y1, x0, x1) painted in order."""
    m = np.zeros((h, w), np.int64)
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        m[y0:y1, x0:x1] = k + 1
    return m


CASES = {
    # name: (gt boxes, pred boxes, expected (tp, fp, fn, iou_sum)) on a 10x10 image
    "perfect": ([(0, 5, 0, 10), (5, 10, 0, 10)], [(0, 5, 0, 10), (5, 10, 0, 10)], (2, 0, 0, 2.0)),
    # IoU exactly 0.5 is not a match: gt 0:5 rows (50 px), pred 0:10 rows x 0:10 covers both gts → 50/100
    "iou_half_is_no_match": ([(0, 5, 0, 10), (5, 10, 0, 10)], [(0, 10, 0, 10)], (0, 1, 2, 0.0)),
    # just above 0.5: pred 1 = all but the last pixel (99 px) → 50/99 with gt 1, 49/100 with gt 2;
    # pred 2 = that last pixel alone (an FP), gt 2 unmatched (an FN)
    "iou_above_half": ([(0, 5, 0, 10), (5, 10, 0, 10)], [(0, 10, 0, 10), (9, 10, 9, 10)], (1, 1, 1, 50 / 99)),
    # gt covers rows 0:4 only (rows 4:10 void); pred covers rows 0:10 → the void part leaves the union
    "void_leaves_the_union": ([(0, 4, 0, 10)], [(0, 10, 0, 10)], (1, 0, 0, 1.0)),
    # an unmatched prediction lying 60 % on void is not a false positive ...
    "mostly_void_is_not_fp": ([(0, 4, 0, 10)], [(0, 4, 0, 10), (4, 10, 0, 4)], (1, 0, 0, 1.0)),
    # ... but one lying exactly 50 % on void is
    "half_void_is_fp": ([(0, 5, 0, 10)], [(0, 4, 0, 10), (4, 6, 0, 10)], (1, 1, 0, 40 / 50)),
    "nothing_predicted": ([(0, 5, 0, 10)], [], (0, 0, 1, 0.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_made_cases(name):
    gt_boxes, pred_boxes, expected = CASES[name]
    gt, pred = _map(10, 10, gt_boxes), _map(10, 10, pred_boxes)
    assert reference_counts(gt, pred)[:3] == expected[:3]
    assert reference_counts(gt, pred)[3] == pytest.approx(expected[3])
    tp, fp, fn, iou = _ours(gt, pred)
    assert (tp, fp, fn) == expected[:3] and iou == pytest.approx(expected[3])


def test_pooled_pq_sq_rq_follow_the_definition():
    images = [CASES["iou_above_half"], CASES["void_leaves_the_union"], CASES["half_void_is_fp"]]
    gts = [_masks(_map(10, 10, g)) for g, _, _ in images]
    preds = [_masks(_map(10, 10, p)) for _, p, _ in images]
    voids = [~g.any(0) for g in gts]
    s = panoptic_quality(preds, gts, voids)
    tp, fp, fn = 3, 2, 1
    iou = 50 / 99 + 1.0 + 40 / 50
    assert (s.tp, s.fp, s.fn) == (tp, fp, fn)
    assert s.pq == pytest.approx(iou / (tp + fp / 2 + fn / 2))
    assert s.sq == pytest.approx(iou / tp) and s.rq == pytest.approx(tp / (tp + fp / 2 + fn / 2))


@pytest.mark.parametrize("seed", range(20))
def test_random_label_maps_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    h, w = 24, 24
    gt = _map(h, w, [tuple(sorted(rng.integers(0, h, 2)) + sorted(rng.integers(0, w, 2))) for _ in range(5)])
    gt[rng.random((h, w)) < 0.05] = VOID  # scattered void pixels too
    # prediction: the gt shifted and partly relabelled, plus random boxes
    pred = np.roll(gt, shift=int(rng.integers(-3, 4)), axis=int(rng.integers(0, 2)))
    for k in range(3):
        y0, y1 = sorted(rng.integers(0, h, 2))
        x0, x1 = sorted(rng.integers(0, w, 2))
        pred[y0:y1, x0:x1] = 10 + k
    tp, fp, fn, iou = _ours(gt, pred)
    ref = reference_counts(gt, pred)
    assert (tp, fp, fn) == ref[:3] and iou == pytest.approx(ref[3])
