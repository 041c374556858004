"""One interactive run: a picture, brushed regions with their names, a task and sampler settings → the
image, the colormap, labelled masks and the files to download. The code path of `unigs ui`; the app only
moves values between widgets and this module.

Regions are run **one after another, each with its own names** (inpainting and referring): the model
takes one coarse mask and one prompt per call (Table 2), so a single call on the union of the regions
could not know which name belongs where. Inpainting feeds each region's output into the next region, so
the later regions see the earlier ones. Synthesis paints its colormap from the regions with Ψ (one
entity per region, colours by centre of mass), or takes the picture itself as a loaded colormap.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from unigs import editor
from unigs.codec import palette
from unigs.conditions import check_task
from unigs.io import masks_to_rle, save_png, write_json
from unigs.pipelines import pipeline_for_task
from unigs.pipelines.core import make_scheduler
from unigs.visualize import distinct_colors, overlay

NEEDS_REGIONS = ("inpainting", "referring")
NEEDS_NAMES = ("inpainting", "synthesis", "referring")
MAX_STEPS = 1000


@dataclass(frozen=True)
class RunSettings:
    """Sampler settings of one run: `steps` ≥ 1, `guidance` ≥ 0 (≤ 1 disables CFG), `seed`, `sampler`
    ("ddim" | "dpm++", `unigs.pipelines.core.SCHEDULERS`), Φ's `delta` (None: each pipeline's read-out,
    `UniGSPipeline.readout`)."""

    steps: int = 25
    guidance: float = 7.5
    seed: int = 0
    sampler: str = "ddim"
    delta: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be an integer in [1, {MAX_STEPS}], is {self.steps!r}")
        if not np.isfinite(self.guidance) or self.guidance < 0:
            raise ValueError(f"guidance must be a finite number >= 0, is {self.guidance!r}")
        if self.delta is not None and (not np.isfinite(self.delta) or self.delta <= 0):
            raise ValueError(f"delta must be a finite number > 0, is {self.delta!r}")


@dataclass
class Region:
    """One brushed region: `mask` `(H, W) bool` (1 = region) and the entity `names` typed for it."""

    mask: np.ndarray
    names: list[str]


@dataclass
class TaskResult:
    """What a run shows: `image` `(H, W, 3) uint8` (generated, or the input for segmentation), `colormap`
    `(H, W, 3) uint8`, `masks` `(K, H, W) bool`, one legend `label` and overlay `color` `(K, 3) uint8`
    per mask, and the COCO RLEs."""

    task: str
    image: np.ndarray
    colormap: np.ndarray
    masks: np.ndarray
    labels: list[str]
    colors: np.ndarray
    rles: list[dict] = field(default_factory=list)


class Cancelled(Exception):
    """Raised between sampler steps when the user pressed Cancel."""


class StepReporter:
    """Counts sampler steps across the calls of one run, reports them, and stops the run on request.

    Installed as a pipeline's `progress_bar` (the hook diffusers pipelines already call with the number of
    steps), so progress and cancel need no change to the pipelines. `on_step(done, total)` is called after
    every step; when `cancel` is set, the next step raises :class:`Cancelled`.
    """

    def __init__(self, total: int, on_step: Callable[[int, int], Any] | None = None,
                 cancel: threading.Event | None = None):
        self.total, self.done = int(total), 0
        self.on_step, self.cancel = on_step, cancel

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(f"cancelled after {self.done} of {self.total} steps")

    # the `DiffusionPipeline.progress_bar(iterable=None, total=None)` signature
    def __call__(self, iterable: Any = None, total: int | None = None) -> StepReporter:
        self.check()
        return self

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.on_step is not None:
            self.on_step(self.done, self.total)
        self.check()

    def close(self) -> None:
        pass


def _pipeline(components: Any, task: str, sampler: str, reporter: StepReporter | None) -> Any:
    scheduler = make_scheduler(sampler, components.scheduler.config)
    pipe = pipeline_for_task(task, dataclasses.replace(components, scheduler=scheduler))
    if reporter is not None:
        pipe.progress_bar = reporter  # instance attribute shadows DiffusionPipeline.progress_bar
    return pipe


def task_defaults(task: str) -> tuple[int, float]:
    """`(steps, guidance)` that `task`'s pipeline samples with when not told otherwise (its
    NUM_INFERENCE_STEPS and GUIDANCE_SCALE, read from its signature so the app shows what the CLI runs)."""
    import inspect

    from unigs.pipelines import PIPELINES

    params = inspect.signature(PIPELINES[check_task(task)].__call__).parameters
    return int(params["num_inference_steps"].default), float(params["guidance_scale"].default)


def size_multiple(components: Any) -> int:
    """Image sides the model accepts are multiples of this (`UniGSPipeline.size_multiple`)."""
    return _pipeline(components, "entity", "ddim", None).size_multiple


def prepare_inputs(task: str, value: dict | None, names_text: str | None, side: int,
                   multiple: int) -> tuple[np.ndarray, list[Region], list[str]]:
    """A brush editor's value and the typed names → what :func:`run_task` takes, at the working size.

    Args:
        value: `{"background": (H, W, 3|4) uint8 | None, "layers": [(H, W, 4) uint8, ...], ...}` — one
            layer per region; masks come from the layers' alpha (`unigs.editor.layer_masks`).
        names_text: one line of comma-separated names per layer (`unigs.editor.parse_names`).
        side, multiple: the model's image size and size multiple (`unigs.editor.working_size`).

    Returns:
        the picture `(h, w, 3) uint8`, one :class:`Region` per painted layer (none for the entity task),
        and all typed names in order.
    """
    check_task(task)
    background = (value or {}).get("background")
    if background is None:
        raise ValueError("there is no picture yet: upload a photo, pick a scene or start a blank canvas")
    picture = editor.rgb_of(np.asarray(background), "the picture")
    editor.check_pixels(*picture.shape[:2])
    lines = editor.parse_names(names_text)
    masks = editor.layer_masks((value or {}).get("layers"), picture.shape[:2])
    painted = masks.any(axis=(1, 2))  # (N,); N = 0 when the editor holds no layer yet
    size = editor.working_size(*picture.shape[:2], side, multiple)
    picture = editor.resize_picture(picture, size, exact=task == "synthesis")  # colormaps keep colours
    regions = []
    if task != "entity" and painted.any():
        small = editor.resize_masks(masks[painted], size)
        for i, (mask, names) in enumerate(zip(small, editor.names_for_regions(lines, painted), strict=True)):
            if not mask.any():
                raise ValueError(f"painted region {i + 1} is too thin for the model's working size "
                                 f"{size[1]}x{size[0]}: use a wider brush")
            regions.append(Region(mask, names))
    return picture, regions, [n for line in lines for n in line]


def check_request(task: str, picture: np.ndarray | None, regions: list[Region]) -> None:
    """Refuse, with a sentence for the user, a run that cannot work: no picture, no stroke where the task
    needs a region, no names where the task needs them."""
    check_task(task)
    if picture is None:
        what = "paint regions or load a colormap" if task == "synthesis" else "upload a photo or pick a scene"
        raise ValueError(f"there is no picture yet: {what}")
    if task in NEEDS_REGIONS and not regions:
        raise ValueError(f"the {task} task needs a region: brush over the picture (one layer per region)")
    if task in NEEDS_NAMES:
        for i, region in enumerate(regions):
            if not region.names:
                raise ValueError(f"region {i + 1} has no names: type at least one entity name for it")
    if task == "synthesis" and not regions and not picture.any():
        raise ValueError("the colormap is all black: paint at least one region or load a colormap")


def run_task(components: Any, task: str, picture: np.ndarray, regions: list[Region],
             settings: RunSettings, names: list[str] | None = None,
             on_step: Callable[[int, int], Any] | None = None,
             cancel: threading.Event | None = None) -> TaskResult:
    """Run `task` on `picture` `(H, W, 3) uint8` (the photo; for synthesis a colormap, used when there are
    no `regions`) at its size, which must suit the model (`unigs.editor.working_size`).

    Args:
        components: `UniGSComponents` (`unigs.models.loading.load_unigs`).
        regions: painted regions at the picture's size (inpainting/referring: run one by one; synthesis:
            one entity each; entity segmentation: ignored).
        names: names for a synthesis colormap loaded without regions.
        on_step, cancel: see :class:`StepReporter`.

    Raises:
        ValueError for unusable input (`check_request`), :class:`Cancelled` when `cancel` gets set.
    """
    check_request(task, picture, regions)
    runs = len(regions) if task in NEEDS_REGIONS else 1
    reporter = StepReporter(runs * settings.steps, on_step, cancel)
    pipe = _pipeline(components, task, settings.sampler, reporter)
    generator = torch.Generator().manual_seed(int(settings.seed))
    common = {"num_inference_steps": settings.steps, "guidance_scale": float(settings.guidance),
              "generator": generator, "delta": settings.delta, "output_type": "np"}

    if task in NEEDS_REGIONS:
        image, colormap = picture, np.zeros_like(picture)
        masks, owners = [], []
        for r, region in enumerate(regions):
            out = pipe(region.names, image, region.mask, **common)
            if task == "inpainting":
                image = out.images[0]  # the next region sees this one filled
            colormap = np.where(region.mask[..., None], out.colormaps[0], colormap)
            masks.extend(out.masks[0])
            owners.extend([r] * len(out.masks[0]))
    elif task == "synthesis":
        grid = components.meta.grid
        if regions:
            cmap = palette.encode(np.stack([r.mask for r in regions]), grid=grid)
            entity_names = [n for r in regions for n in r.names]
        else:
            cmap, entity_names = picture, list(names or [])
            if not entity_names:
                raise ValueError("type the names of the entities in the loaded colormap")
        out = pipe(entity_names, cmap, **common)
        image, colormap, masks = out.images[0], out.colormaps[0], list(out.masks[0])
        owners = owner_regions(np.asarray(masks).reshape(-1, *picture.shape[:2]), regions)
    else:
        out = pipe(picture, **common)
        image, colormap, masks = out.images[0], out.colormaps[0], list(out.masks[0])
        owners = [-1] * len(masks)

    masks = np.asarray(masks, dtype=bool).reshape(-1, *picture.shape[:2])
    return make_result(task, np.asarray(image, np.uint8), np.asarray(colormap, np.uint8), masks,
                       owners, regions, names)


def owner_regions(masks: np.ndarray, regions: list[Region]) -> list[int]:
    """For each mask `(K, H, W) bool`, the index of the region it overlaps most, or -1 for none."""
    if not regions:
        return [-1] * len(masks)
    stack = np.stack([r.mask for r in regions]).reshape(len(regions), -1).astype(np.float32)
    overlap = masks.reshape(len(masks), -1).astype(np.float32) @ stack.T  # (K, R) shared pixels
    return [int(o.argmax()) if o.max() > 0 else -1 for o in overlap]


def mask_labels(owners: list[int], regions: list[Region], names: list[str] | None = None) -> list[str]:
    """Legend labels: a mask owned by region r is called by r's names ("dog", "dog or cat"); masks
    without a region are "entity k". Repeated labels get " #2", " #3"... so every label is unique."""
    labels = []
    for k, r in enumerate(owners):
        if r >= 0 and regions[r].names:
            labels.append(" or ".join(regions[r].names))
        elif names and len(names) == 1:
            labels.append(names[0])
        else:
            labels.append(f"entity {k + 1}")
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def make_result(task: str, image: np.ndarray, colormap: np.ndarray, masks: np.ndarray, owners: list[int],
                regions: list[Region], names: list[str] | None = None) -> TaskResult:
    """Pack a run's outputs with legend labels, overlay colours and COCO RLEs."""
    return TaskResult(task=task, image=image, colormap=colormap, masks=masks,
                      labels=mask_labels(owners, regions, names), colors=distinct_colors(len(masks)),
                      rles=masks_to_rle(masks))


def coco_results(result: TaskResult, image_id: int = 0) -> list[dict]:
    """COCO results records (class-agnostic `category_id` 1) with the legend label as `name`."""
    return [{"image_id": image_id, "category_id": 1, "segmentation": rle, "score": 1.0, "name": label}
            for rle, label in zip(result.rles, result.labels, strict=True)]


def legend_overlay(result: TaskResult, alpha: float = 0.5) -> np.ndarray:
    """The masks over the image with a legend strip below (colour box + label per mask).

    Returns:
        `(H + legend height, max(W, legend width), 3) uint8`.
    """
    top = overlay(result.image, result.masks, result.colors, alpha=alpha)
    font = ImageFont.load_default()
    x0, y0, x1, y1 = font.getbbox("Ag")
    row = (y1 - min(y0, 0)) + 6
    entries = result.labels or ["no masks"]
    width = max(top.shape[1], 8 + max(int(font.getlength(t)) for t in entries) + row + 8)
    canvas = Image.new("RGB", (width, top.shape[0] + row * len(entries) + 4), (255, 255, 255))
    canvas.paste(Image.fromarray(top), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(entries):
        y = top.shape[0] + 2 + k * row
        if result.labels:
            draw.rectangle((4, y + 1, 4 + row - 4, y + row - 3), fill=tuple(int(c) for c in result.colors[k]),
                           outline=(0, 0, 0))
        draw.text((row + 6, y + 1), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas, dtype=np.uint8).copy()


def write_outputs(result: TaskResult, folder: str | Path, image_id: int = 0) -> dict[str, Path]:
    """Write `results.json` (COCO results), `image.png`, `colormap.png`, `overlay.png` (with legend) and
    `masks.zip` (one `mask_<k>.png` per mask, 0/255) into `folder`; returns name → path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "results.json": write_json(folder / "results.json", coco_results(result, image_id)),
        "image.png": save_png(folder / "image.png", result.image),
        "colormap.png": save_png(folder / "colormap.png", result.colormap),
        "overlay.png": save_png(folder / "overlay.png", legend_overlay(result)),
    }
    with zipfile.ZipFile(folder / "masks.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for k, mask in enumerate(result.masks):
            buf = io.BytesIO()
            Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
            zf.writestr(f"mask_{k + 1:02d}.png", buf.getvalue())
    paths["masks.zip"] = folder / "masks.zip"
    return paths
