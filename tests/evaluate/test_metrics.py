"""Referring mIoU / recall: per image and pooled over a data set (mean over gt entities)."""

import numpy as np
import pytest

from unigs.evaluate.metrics import best_match_scores, iou_matrix, pool_match_scores


def _box(y0, y1, x0, x1, size=10):
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_iou_matrix_known_values():
    a, b = _box(0, 10, 0, 5), _box(0, 10, 0, 10)
    np.testing.assert_allclose(iou_matrix(np.stack([a, b]), np.stack([b])), [[0.5], [1.0]])
    with pytest.raises(ValueError, match="gt masks"):
        iou_matrix(a, np.zeros((1, 4, 4), bool))


def test_best_match_scores():
    gt = np.stack([_box(0, 5, 0, 10), _box(5, 10, 0, 10)])
    s = best_match_scores(np.stack([_box(0, 5, 0, 10), _box(5, 10, 0, 3)]), gt)
    np.testing.assert_allclose(s.best_iou, [1.0, 0.3])
    assert s.miou == pytest.approx(0.65) and s.recall == pytest.approx(0.5)
    empty = best_match_scores(np.zeros((0, 10, 10), bool), gt)
    assert empty.miou == 0.0 and empty.recall == 0.0


def test_pool_is_mean_over_entities_not_over_images():
    one = best_match_scores(_box(0, 10, 0, 10), _box(0, 10, 0, 10))  # 1 entity, IoU 1
    gt = np.stack([_box(0, 5, 0, 10), _box(5, 10, 0, 10), _box(0, 10, 0, 1)])
    three = best_match_scores(np.zeros((0, 10, 10), bool), gt)  # 3 entities, IoU 0
    pooled = pool_match_scores([one, three])
    assert pooled.miou == pytest.approx(0.25)  # (1 + 0 + 0 + 0) / 4, not (1 + 0) / 2
    assert pooled.recall == pytest.approx(0.25)
    assert len(pooled.best_iou) == 4


def test_pool_empty_and_bad_threshold():
    nothing = best_match_scores(np.zeros((0, 4, 4), bool), np.zeros((0, 4, 4), bool))
    assert np.isnan(pool_match_scores([]).miou) and np.isnan(pool_match_scores([nothing]).recall)
    with pytest.raises(ValueError, match="1.5"):
        pool_match_scores([nothing], threshold=1.5)
