"""benchmarks/ceiling.py's palette helpers: the spread order, recolouring an exact Ψ map."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from unigs.codec import palette

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ceiling.py"


@pytest.fixture(scope="module")
def ceiling():
    spec = importlib.util.spec_from_file_location("ceiling_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("grid", [3, 7, 11])
def test_spread_palette_reorders_and_separates_neighbours(ceiling, grid):
    table = ceiling.spread_palette(grid)
    assert table.dtype == np.uint8 and table.shape == palette.PALETTE.shape
    assert sorted(map(tuple, table)) == sorted(map(tuple, palette.PALETTE))  # the same colours, reordered
    spread_min, spread_mean = ceiling.neighbour_distance(table, grid)
    paper_min, paper_mean = ceiling.neighbour_distance(palette.PALETTE, grid)
    assert spread_min > paper_min and spread_mean > paper_mean
    assert np.array_equal(ceiling.spread_palette(grid), table)  # deterministic


def test_recolor_keeps_cells_and_background(ceiling):
    masks = np.zeros((2, 16, 16), bool)
    masks[0, :8] = True
    masks[1, 10:, 10:] = True
    cmap = palette.encode(masks, grid=7)
    assert np.array_equal(ceiling.recolor(cmap, palette.PALETTE), cmap)  # the paper's order: unchanged
    table = ceiling.spread_palette(7)
    out = ceiling.recolor(cmap, table)
    cells = palette.assign(masks, grid=7).cells
    assert (out[:8] == table[cells[0]]).all() and (out[10:, 10:] == table[cells[1]]).all()
    assert not out[8:10].any()  # background stays black
    with pytest.raises(ValueError, match="exact"):
        ceiling.recolor(cmap + 1, table)
