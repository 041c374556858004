"""Which sampler, step count and guidance each task needs: `unigs eval` per setting on held-out test scenes.

Settings (issue 16): the one-step read-out (DDIM with 1 trailing step: at zero terminal SNR that is
x̂_0 = −v̂ at t = T), DDIM 200 / 50 / 20 and DPM-Solver++ 25 / 15 / 10, each at guidance 1 and at the
pipeline's default guidance (where that differs). Every row uses the same scenes, coarse masks, prompts and
seeds (`unigs.evaluate.runner`). The last block names, per task, the cheapest setting (fewest UNet
evaluations) whose every metric is within `--tolerance` of the best value of that metric — the rule the
pipelines' defaults follow.

    .venv/bin/python benchmarks/sampling.py --limit 16
    .venv/bin/python benchmarks/sampling.py --limit 8 --settings ddim:1,ddim:20 --tasks referring
"""

from __future__ import annotations

import argparse
import inspect
import time

import torch

from unigs.evaluate.runner import EvalConfig, evaluate
from unigs.models.loading import default_model_path, load_unigs
from unigs.pipelines import PIPELINES
from unigs.pipelines.core import make_scheduler

SETTINGS = "ddim:1,ddim:200,ddim:50,ddim:20,dpm++:25,dpm++:15,dpm++:10"
METRICS = {  # what decides, per task (higher is better for all)
    "inpainting": ("mIoU", "recall", "hole_PSNR"),
    "synthesis": ("mIoU", "recall"),
    "referring": ("mIoU", "recall"),
    "entity": ("mIoU", "recall", "AP", "PQ"),
}
PSNR_TOLERANCE_DB = 0.5  # hole PSNR is in dB, not in [0, 1]


def default_guidance(task: str) -> float:
    return float(inspect.signature(PIPELINES[task].__call__).parameters["guidance_scale"].default)


def unet_calls(task: str, steps: int, guidance: float) -> int:
    """UNet evaluations per example: classifier-free guidance doubles the batch; synthesis is scored
    through the model's own entity segmentation, which runs the same sampler at guidance 1."""
    calls = steps * (2 if guidance > 1 else 1)
    return calls + steps if task == "synthesis" else calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="UniGS model (default: the bundled one)")
    parser.add_argument("--limit", type=int, default=16, help="held-out test scenes per task")
    parser.add_argument("--tasks", default="referring,entity,inpainting,synthesis")
    parser.add_argument("--settings", default=SETTINGS, help="sampler:steps,... (ddim, dpm++)")
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load_unigs(args.model or default_model_path())
    ddim_config = dict(model.scheduler.config)
    tasks = args.tasks.split(",")
    settings = [(s.split(":")[0], int(s.split(":")[1])) for s in args.settings.split(",")]
    print(f"model {args.model or default_model_path()} | {args.limit} test scenes | seed {args.seed} | "
          f"torch threads {torch.get_num_threads()}")
    rows: dict[str, list[dict]] = {t: [] for t in tasks}
    for task in tasks:
        guidances = sorted({1.0, default_guidance(task)})
        for sampler, steps in settings:
            for guidance in guidances:
                model.scheduler = make_scheduler(sampler, ddim_config)
                config = EvalConfig(tasks=(task,), split="test", limit=args.limit, steps=steps,
                                    seed=args.seed, guidance_scale=guidance)
                start = time.perf_counter()
                result = evaluate(model, config, progress=False)
                row = {"sampler": sampler, "steps": steps, "guidance": guidance,
                       "calls": unet_calls(task, steps, guidance), "s": time.perf_counter() - start,
                       **{k: result.metrics[task].get(k, float("nan")) for k in
                          (*METRICS[task], "mIoU_things", "mIoU_stuff")}}
                rows[task].append(row)
                shown = " ".join(f"{k}={row[k]:.3f}" for k in (*METRICS[task], "mIoU_things", "mIoU_stuff"))
                print(f"{task:<10} {sampler:<5} {steps:>3} steps  g={guidance:<4} {shown}  "
                      f"({row['calls']} UNet calls/example, {row['s']:.0f} s)", flush=True)
    print("\ncheapest setting within tolerance of the best, per task")
    for task, task_rows in rows.items():
        best = {m: max(r[m] for r in task_rows) for m in METRICS[task]}

        def close(r, best=best, task=task):
            return all(r[m] >= best[m] - (PSNR_TOLERANCE_DB if m == "hole_PSNR" else args.tolerance)
                       for m in METRICS[task])

        near = [r for r in task_rows if close(r)] or task_rows  # none near on every metric: cheapest of all
        pick = min(near, key=lambda r: (r["calls"], -r["mIoU"]))
        print(f"{task:<10} {pick['sampler']} {pick['steps']} steps, guidance {pick['guidance']} "
              f"({pick['calls']} UNet calls/example); best: "
              + ", ".join(f"{m} {v:.3f}" for m, v in best.items()))


if __name__ == "__main__":
    main()
