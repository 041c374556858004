"""The loss curve of a `unigs train` run: a PNG drawn from its metrics.csv, and a Markdown table.

    python scripts/plot_metrics.py runs/finetune/metrics.csv --png docs/loss.png --every 400

The curves are the weighted training loss and its two halves (image ‖ colormap), each a moving average over
`--smooth` logged rows; the learning rate is drawn below them (its unit on the right). No plotting library
is needed (PIL only). The table prints the mean of every `--every` steps, the form docs/results.md keeps.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CURVES = {"loss": (20, 20, 20), "loss_image": (40, 110, 200), "loss_colormap": (210, 80, 40)}
LR_COLOUR = (120, 170, 90)
SIZE, MARGIN = (720, 400), (60, 20, 70, 40)  # width, height; left, top, right, bottom


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv → column name → float array (one row per logged step)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no logged rows yet")
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` values (shorter at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (sums[idx] - sums[lo]) / (idx - lo)


def plot(metrics: dict[str, np.ndarray], smooth: int) -> Image.Image:
    """The curves of `metrics` as an RGB image of SIZE."""
    img = Image.new("RGB", SIZE, "white")
    draw, font = ImageDraw.Draw(img), ImageFont.load_default()
    left, top, right, bottom = MARGIN
    w, h = SIZE[0] - left - right, SIZE[1] - top - bottom
    steps = metrics["step"]
    curves = {k: moving_average(metrics[k], smooth) for k in CURVES if k in metrics}
    lo, hi = min(c.min() for c in curves.values()), max(c.max() for c in curves.values())
    lo, hi = lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9)

    def xy(step: np.ndarray, value: np.ndarray, vmin: float, vmax: float) -> list[tuple[float, float]]:
        x = left + (step - steps[0]) / max(steps[-1] - steps[0], 1) * w
        y = top + (1 - (value - vmin) / (vmax - vmin)) * h
        return list(zip(x.tolist(), y.tolist(), strict=True))

    draw.rectangle([left, top, left + w, top + h], outline=(160, 160, 160))
    for frac in np.linspace(0, 1, 5):
        y = top + (1 - frac) * h
        draw.text((4, y - 6), f"{lo + frac * (hi - lo):.3f}", fill=(60, 60, 60), font=font)
        x = left + frac * w
        draw.text((x - 12, top + h + 6), f"{steps[0] + frac * (steps[-1] - steps[0]):.0f}", fill=(60, 60, 60),
                  font=font)
    if "lr" in metrics and metrics["lr"].max() > 0:
        lr_max = metrics["lr"].max()
        draw.line(xy(steps, metrics["lr"], 0.0, lr_max * 1.05), fill=LR_COLOUR, width=1)
        draw.text((left + w + 4, top), f"lr {lr_max:.0e}", fill=LR_COLOUR, font=font)
    for i, (name, values) in enumerate(curves.items()):
        draw.line(xy(steps, values, lo, hi), fill=CURVES[name], width=2)
        draw.text((left + 8 + 110 * i, top + 4), name, fill=CURVES[name], font=font)
    draw.text((left + w // 2 - 12, SIZE[1] - 14), "step", fill=(60, 60, 60), font=font)
    return img


def table(metrics: dict[str, np.ndarray], every: int) -> str:
    """Markdown rows: the mean loss (and halves, lr) of each `every`-step bin."""
    bins = np.ceil(metrics["step"] / every).astype(int)
    lines = ["| steps | loss | image half | colormap half | lr |", "|---|---|---|---|---|"]
    for b in np.unique(bins):
        sel = bins == b
        means = [metrics[k][sel].mean() for k in ("loss", "loss_image", "loss_colormap")]
        lines.append(f"| {(b - 1) * every + 1}–{b * every} | " + " | ".join(f"{m:.4f}" for m in means)
                     + f" | {metrics['lr'][sel].mean():.1e} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("metrics", type=Path, help="metrics.csv of a unigs train run")
    parser.add_argument("--png", type=Path, default=None, help="write the plot here")
    parser.add_argument("--every", type=int, default=400, help="table bin in steps (default 400)")
    parser.add_argument("--smooth", type=int, default=10, help="moving-average window in logged rows")
    args = parser.parse_args()
    metrics = read_metrics(args.metrics)
    print(table(metrics, args.every))
    if args.png is not None:
        plot(metrics, args.smooth).save(args.png, optimize=True)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
