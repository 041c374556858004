"""AP^e and class-agnostic PQ on hand-made masks with known answers."""

import numpy as np
import pytest

from unigs.evaluate.segmentation import (
    APResult,
    PQStats,
    area_scores,
    entity_ap,
    non_overlapping,
    panoptic_quality,
    pq_stats,
)


def _boxes(*boxes, size=20):
    """(N, size, size) bool masks from (y0, y1, x0, x1) boxes."""
    out = np.zeros((len(boxes), size, size), bool)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        out[i, y0:y1, x0:x1] = True
    return out


GT = _boxes((0, 10, 0, 20), (10, 20, 0, 20))  # two halves, covering the image


# --- non-overlapping -------------------------------------------------------------------------------------

def test_non_overlapping_gives_each_pixel_to_the_best_score():
    masks = _boxes((0, 10, 0, 10), (5, 15, 5, 15))
    out = non_overlapping(masks, np.array([0.2, 0.9]))
    assert out[1].sum() == 100 and out[0].sum() == 75  # the 5x5 overlap goes to mask 1
    assert not (out[0] & out[1]).any()
    out = non_overlapping(masks, np.array([0.5, 0.5]))  # tie: lower index wins
    assert out[0].sum() == 100 and out[1].sum() == 75


def test_non_overlapping_default_scores_are_area_and_bad_lengths_fail():
    masks = _boxes((0, 4, 0, 4), (0, 10, 0, 10))
    np.testing.assert_allclose(area_scores(masks), [16 / 400, 100 / 400])
    out = non_overlapping(masks)
    assert out[0].sum() == 0 and out[1].sum() == 100
    with pytest.raises(ValueError, match="2 masks"):
        non_overlapping(masks, np.ones(3))
    assert non_overlapping(np.zeros((0, 4, 4), bool)).shape == (0, 4, 4)


# --- PQ ----------------------------------------------------------------------------------------------------

def test_pq_perfect_is_one():
    s = pq_stats(GT, GT)
    assert (s.tp, s.fp, s.fn) == (2, 0, 0)
    assert s.pq == pytest.approx(1.0) and s.sq == pytest.approx(1.0) and s.rq == pytest.approx(1.0)


def test_pq_one_missed_of_two():
    s = pq_stats(GT[:1], GT)
    assert (s.tp, s.fp, s.fn) == (1, 0, 1)
    assert s.rq == pytest.approx(2 / 3) and s.sq == pytest.approx(1.0) and s.pq == pytest.approx(2 / 3)


def test_pq_partial_match_and_false_positive():
    # pred 0 = rows 0..13: IoU with gt 0 = 200 / 260 (matched). pred 1 = rows 15..20: IoU with gt 1 = 0.5,
    # not > 0.5, so pred 1 is a FP and gt 1 a FN.
    pred = _boxes((0, 13, 0, 20), (15, 20, 0, 20))
    s = pq_stats(pred, GT)
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)
    assert s.sq == pytest.approx(200 / 260)
    assert s.pq == pytest.approx((200 / 260) / 2)


def test_pq_void_is_neither_rewarded_nor_punished():
    gt = _boxes((0, 10, 0, 20))  # bottom half unlabeled -> void
    background = _boxes((10, 20, 0, 20))
    s = pq_stats(np.concatenate([gt, background]), gt)
    assert (s.tp, s.fp, s.fn) == (1, 0, 0)
    # a prediction spilling into void: its void pixels leave the union, so it still scores IoU 1
    s = pq_stats(_boxes((0, 14, 0, 20)), gt)
    assert s.tp == 1 and s.sq == pytest.approx(1.0)


def test_pq_pools_counts_over_images_and_handles_empty():
    total = panoptic_quality([GT, GT[:1]], [GT, GT])
    assert (total.tp, total.fp, total.fn) == (3, 0, 1)
    assert total.rq == pytest.approx(3 / 3.5)
    empty = pq_stats(np.zeros((0, 20, 20), bool), GT)
    assert (empty.tp, empty.fn, empty.pq, empty.sq) == (0, 2, 0.0, 0.0)
    assert np.isnan(PQStats().pq)
    with pytest.raises(ValueError, match="predictions for 1 images"):
        panoptic_quality([GT], [GT, GT])
    with pytest.raises(ValueError, match="void"):
        pq_stats(GT, GT, void=np.zeros((3, 3), bool))


# --- AP^e --------------------------------------------------------------------------------------------------

def test_ap_perfect_is_one_and_none_is_zero():
    r = entity_ap([GT, GT], [GT, GT])
    assert isinstance(r, APResult)
    assert r.ap == pytest.approx(1.0) and r.ap50 == pytest.approx(1.0) and r.ap75 == pytest.approx(1.0)
    r = entity_ap([np.zeros((0, 20, 20), bool)], [GT])
    assert r.as_dict() == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    assert np.isnan(entity_ap([GT], [np.zeros((0, 20, 20), bool)]).ap)


def test_ap_one_of_two_found_at_iou_between_thresholds():
    # gt 0 found with IoU 0.575 (counts for IoU thresholds 0.50 and 0.55 only), gt 1 missed.
    pred = _boxes((0, 5, 0, 20))
    pred[0, 5, 0:15] = True  # 115 pixels inside the 200 of gt 0 -> IoU 0.575
    r = entity_ap([pred], [GT])
    # recall 0.5 with precision 1 at IoU 0.50 and 0.55 -> 101-point AP = 51/101 there, 0 above.
    assert r.ap50 == pytest.approx(51 / 101)
    assert r.ap75 == pytest.approx(0.0)
    assert r.ap == pytest.approx(2 * (51 / 101) / 10)


def test_ap_makes_predictions_non_overlapping_first():
    # a low-score duplicate of gt 0 stretched over gt 1 loses the overlap and ends up exactly gt 1
    pred = np.stack([GT[0], np.ones((20, 20), bool)])
    r = entity_ap([pred], [GT], scores=[np.array([0.9, 0.1])])
    assert r.ap == pytest.approx(1.0)


def test_ap_ignores_void_predictions_and_bad_input():
    gt = _boxes((0, 10, 0, 20))
    background = _boxes((10, 20, 0, 20))
    r = entity_ap([np.concatenate([background, gt])], [gt], scores=[np.array([0.9, 0.1])])
    assert r.ap == pytest.approx(1.0)  # the top-ranked void prediction is not a false positive
    with pytest.raises(ValueError, match="2 images"):
        entity_ap([GT, GT], [GT])
    with pytest.raises(ValueError, match="pred masks"):
        entity_ap([np.zeros((1, 5, 5), bool)], [GT])
