"""scripts/plot_metrics.py: the loss curve of a run as a PNG and a Markdown table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "plot_metrics.py"
spec = importlib.util.spec_from_file_location("plot_metrics", SCRIPT)
plot_metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_metrics)


def write_csv(path: Path, rows: int) -> Path:
    lines = ["step,loss,loss_image,loss_colormap,lr,steps_per_s"]
    lines += [f"{20 * i},{1 / i},{2 / i},{0.5 / i},1e-4,0.5" for i in range(1, rows + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_moving_average_is_a_trailing_mean():
    np.testing.assert_allclose(plot_metrics.moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])


def test_table_bins_steps_and_plot_draws_each_curve(tmp_path):
    metrics = plot_metrics.read_metrics(write_csv(tmp_path / "metrics.csv", 6))  # steps 20..120
    rows = plot_metrics.table(metrics, every=60).splitlines()
    assert rows[2].startswith("| 1–60 | 0.6111 | 1.2222 | 0.3056 |")  # mean of 1, 1/2, 1/3
    assert rows[3].startswith("| 61–120 |") and len(rows) == 4
    img = np.asarray(plot_metrics.plot(metrics, smooth=1))
    for colour in plot_metrics.CURVES.values():
        assert (img == colour).all(-1).sum() > 50, colour  # each curve is on the canvas


def test_an_empty_log_is_one_sentence(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,loss\n")
    with pytest.raises(ValueError, match="no logged rows"):
        plot_metrics.read_metrics(tmp_path / "metrics.csv")
