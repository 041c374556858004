"""benchmarks/inpainting_bound.py: the centred-shape IoU that bounds inpainting's thing masks."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "inpainting_bound.py"


@pytest.fixture(scope="module")
def bound():
    spec = importlib.util.spec_from_file_location("inpainting_bound", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_centred_shape_iou(bound):
    hole = np.zeros((32, 32), bool)
    hole[4:20, 4:20] = True
    hole[26:30, 26:30] = True  # another part of the hole, elsewhere
    thing = np.zeros_like(hole)
    thing[10:14, 10:14] = True  # at the centre of its part
    assert bound.centred_shape_iou(thing, hole) == pytest.approx(1.0)
    corner = np.zeros_like(hole)
    corner[4:8, 4:8] = True  # in a corner: moved 6 px, no overlap left
    assert bound.centred_shape_iou(corner, hole) == pytest.approx(0.0)
    near = np.zeros_like(hole)
    near[10:14, 11:15] = True  # 1 px off: IoU 12 / 20
    assert bound.centred_shape_iou(near, hole) == pytest.approx(12 / 20)
    with pytest.raises(ValueError, match="hole"):
        bound.centred_shape_iou(thing, np.zeros_like(hole))
