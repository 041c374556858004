"""The four task samplers of Table 2: one image with its entities → one training example.

Table 2 itself (prompt templates, task ids, which condition becomes the control, which output half copies
the control) lives in :mod:`unigs.conditions`; this module decides *which entities* an example is about
and builds the pixel-space targets for both output halves.

Sampling (§4.1, supp. "Training/inference details"): inpainting, synthesis and referring draw 1 to
``max_entities`` entities (4 at training, 3 at inference); entity segmentation uses all entities, stuff
included. Then, per task:

=============  ======  ===============  ===================  =================================
task           m_c     control          image_target         colormap_target
=============  ======  ===============  ===================  =================================
inpainting     Ω(M)    I_0 ⊙ (1 − m_c)  I_0                  Ψ(targets ∩ m_c)
synthesis      J       Ψ(targets)       I_0                  = control
referring      Ω(M)    I_0              I_0 (= control)      Ψ(positive targets ∩ m_c)
entity         J       I_0              I_0 (= control)      Ψ(all entities)
=============  ======  ===============  ===================  =================================

**Target rule (consistency between prompt and colormap).** The prompt names the *names* of the sampled
entities, so the colormap target holds every entity whose name is in the prompt and whose mask lies
≥ :data:`INSIDE_FRACTION` (50 %) inside the region m_c, clipped to m_c — if "ball" is asked and two balls
lie in the region, both are coloured, never just the sampled one. For synthesis the region is J, so every
instance of a named category is in the colormap. A sampled entity that itself falls below 50 % (a blob
corner can nibble a small one) drops out, with its name if no other target carries it. Should the
targets outnumber ``max_entities`` (crowds of one category), the draw is retried with fewer entities,
avoiding names that alone overflowed; after :data:`MAX_ATTEMPTS` the smallest target set is cut to
``max_entities`` (sampled entities first, then by inside fraction) and the example is flagged
``truncated`` (measured on coco-mini, max_entities=4: 0 % of inpainting/referring examples, ~3 % of
synthesis ones — images where every category is a crowd).

**Referring negatives (§3.4, λ = negative_prob).** As the paper puts it, "λ [is] the possibility of each
sampled entity belonging to a negative": each prompt name independently, with probability λ, is replaced
by a ``vocabulary`` name of which no entity touches the region (not a single pixel) and that is not
already in the prompt; its entities leave the target. All names negative → all-black colormap target.
If the vocabulary has no such name the entity stays positive.

**Synthesis and the un-sampled area.** The control colormap shows only the sampled categories; the rest
is black. The image target is the whole I_0, so the model still generates the un-sampled area (from the
prompt and its prior), as in the paper, whose loss (Eq. 2) covers the full latent.

**Colours.** Ψ = ``unigs.codec.palette`` with ``collisions="nearest"``: every target entity gets its own
colour, so a colormap holds at most ``max_entities`` colours (entity task: one per entity).
``entity_masks`` are the target masks *as painted* (palette paint order: larger first), non-overlapping,
so ``entity_masks[k]`` is exactly where ``colormap_target`` shows colour k.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from unigs.codec import coarse, palette
from unigs.conditions import (
    COPIES_CONTROL,
    DEFAULT_TASK_RATIOS,
    TASK_IDS,
    TASKS,
    check_task,
    control_source,
    full_mask,
    prompt_for,
)

INSIDE_FRACTION = 0.5
MAX_ATTEMPTS = 8


@dataclass
class TrainingExample:
    """One training example (Table 2 row filled in).

    task, task_id: name and `TASK_IDS[task]`. prompt: the text condition. names: the names in the prompt
    (for the entity task: every entity's name). coarse_mask: `(H, W) bool` m_c, True = region to fill.
    control, image_target, colormap_target: `(H, W, 3) uint8`. entity_masks: `(K, H, W) bool`, the
    entities coloured in colormap_target, as painted (non-overlapping). entity_names: their K names.
    negative_names: prompt names that are referring negatives (absent from the region).
    truncated: the target set was cut to max_entities (see the module docstring).
    """

    task: str
    task_id: int
    prompt: str
    names: list[str]
    coarse_mask: np.ndarray
    control: np.ndarray
    image_target: np.ndarray
    colormap_target: np.ndarray
    entity_masks: np.ndarray
    entity_names: list[str] = field(default_factory=list)
    negative_names: list[str] = field(default_factory=list)
    truncated: bool = False


class TaskMixture:
    """Draw a task per example with the multi-task ratios (supp. "One-to-Many Joint Model": .3/.3/.2/.2).

    ratios: task name → non-negative weight; missing tasks get 0. The weights must sum to 1 (±1e-6):
    a typo in a config is an error, not silently renormalised. Unknown name → ValueError naming it.
    """

    def __init__(self, ratios: Mapping[str, float] = DEFAULT_TASK_RATIOS):
        ratios = dict(ratios)
        for name, value in ratios.items():
            check_task(name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"task ratio for {name!r} must be a finite number >= 0, is {value!r}")
        total = float(sum(ratios.values()))
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"task ratios must sum to 1, they sum to {total:.6g}: {ratios}")
        self.ratios = {t: float(ratios.get(t, 0.0)) for t in TASKS}
        self.tasks = tuple(t for t in TASKS if self.ratios[t] > 0)
        self._cumulative = np.cumsum([self.ratios[t] for t in self.tasks])

    def draw(self, rng: np.random.Generator) -> str:
        """One task name, drawn with `rng` (one uniform number)."""
        k = int(np.searchsorted(self._cumulative, rng.random() * self._cumulative[-1], side="right"))
        return self.tasks[min(k, len(self.tasks) - 1)]

    def __repr__(self) -> str:
        return f"TaskMixture({self.ratios})"


def _check_inputs(image, masks, names) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate; drop empty masks. Returns image `(H, W, 3) uint8`, masks `(N, H, W) bool`, N names."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got shape {image.shape} dtype {image.dtype}")
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"masks must be (N, H, W) with (H, W) = {image.shape[:2]}, got shape {masks.shape}")
    if masks.dtype != bool:
        if not np.isin(masks, (0, 1)).all():
            raise ValueError(f"masks must be bool or 0/1, got values of dtype {masks.dtype} outside {{0, 1}}")
        masks = masks.astype(bool)
    names = [str(n).strip() for n in names]
    if len(names) != len(masks):
        raise ValueError(f"got {len(masks)} masks but {len(names)} names")
    if any(not n for n in names):
        raise ValueError(f"every entity needs a non-empty name, got {names!r}")
    keep = masks.any(axis=(1, 2))
    if not keep.any():
        raise ValueError("the image has no entities (no non-empty mask): nothing to sample")
    return image, masks[keep], [n for n, k in zip(names, keep, strict=True) if k]


def _encode(masks: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Ψ(masks) and the masks as painted: `(H, W, 3) uint8`, `(K, H, W) bool` (non-overlapping)."""
    h, w = masks.shape[1:]
    if len(masks) == 0:
        return np.zeros((h, w, 3), np.uint8), np.zeros((0, h, w), bool)
    assignment = palette.assign(masks, grid=grid)
    label = np.zeros((h, w), dtype=np.int32)
    for i in assignment.paint_order:  # the same painter's order as palette.paint
        label[masks[i]] = i + 1
    colormap = palette.paint(masks, assignment.colors, assignment.paint_order)
    return colormap, label[None] == np.arange(1, len(masks) + 1)[:, None, None]


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _draw_targets(task: str, masks: np.ndarray, names: list[str], rng: np.random.Generator,
                  max_entities: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Sample entities, the region and the target set (module docstring, "Target rule").

    Returns (region `(H, W) bool`, target indices sorted, truncated).
    """
    n, h, w = masks.shape
    area = masks.reshape(n, -1).sum(axis=1)
    k_max, best, crowded = min(max_entities, n), None, set()
    for _attempt in range(MAX_ATTEMPTS):
        pool = np.flatnonzero(~np.isin(names, sorted(crowded)))  # names that alone overflowed: avoided
        pool = pool if len(pool) else np.arange(n)
        size = int(rng.integers(1, min(k_max, len(pool)) + 1))
        chosen = pool[rng.choice(len(pool), size=size, replace=False)]
        region = full_mask(h, w) if task == "synthesis" else coarse.coarse_mask(masks[chosen], rng)
        inside = (masks & region).reshape(n, -1).sum(axis=1) / area
        ok = inside >= INSIDE_FRACTION
        named = np.isin(names, _unique([names[i] for i in chosen if ok[i]]))
        targets = np.flatnonzero(named & ok)
        if 0 < len(targets) <= max_entities:
            return region, targets, False
        if len(targets) and (best is None or len(targets) < len(best[1])):
            rank = sorted(targets, key=lambda i: (i not in chosen, -inside[i], i))
            best = (region, np.sort(np.asarray(rank[:max_entities])))
        k_max = max(1, min(k_max, len(chosen) - 1))  # too many: ask for fewer next time
        counts = Counter(names[i] for i in targets)
        crowded |= {name for name, count in counts.items() if count > max_entities}
    if best is None:  # every draw lost its entities to blob corners: the largest one, in its extended box
        i = int(np.argmax(area))
        region = full_mask(h, w) if task == "synthesis" else coarse.coarse_mask(masks[i], rng, p_blob=0.0)
        return region, np.array([i]), True
    return best[0], best[1], True


def _negatives(prompt_names: list[str], masks: np.ndarray, names: list[str], region: np.ndarray,
               rng: np.random.Generator, vocabulary: Sequence[str], negative_prob: float) -> dict[str, str]:
    """Referring negatives: {positive name → replacement absent from the region} (module docstring)."""
    touching = (masks & region).reshape(len(masks), -1).any(axis=1)
    present = {names[i].lower() for i in np.flatnonzero(touching)}
    used = {n.lower() for n in prompt_names}
    swaps: dict[str, str] = {}
    for name in prompt_names:
        if rng.random() >= negative_prob:
            continue
        candidates = [v for v in vocabulary if v.lower() not in present and v.lower() not in used]
        if candidates:
            swaps[name] = candidates[int(rng.integers(len(candidates)))]
            used.add(swaps[name].lower())
    return swaps


def sample_example(task: str, image: np.ndarray, masks: np.ndarray, names: Sequence[str],
                   rng: np.random.Generator, vocabulary: Sequence[str] | None = (), max_entities: int = 4,
                   negative_prob: float = 0.2, grid: int = 11) -> TrainingExample:
    """Build one Table-2 example of `task` from an image and its entities (see the module docstring).

    Args:
        task: one of `unigs.conditions.TASKS`.
        image: `(H, W, 3) uint8` I_0.
        masks: `(N, H, W) bool` entity masks (may overlap; empty ones are ignored); N names.
        rng: the only source of randomness (same state → same example).
        vocabulary: category names for referring negatives (e.g. all category names of the data set).
        max_entities: at most this many entities in the colormap (4 training, 3 inference; not for entity).
        negative_prob: λ, the probability that a referring prompt name is a negative.
        grid: palette grid b.

    Raises:
        ValueError: unknown task, malformed inputs, or no non-empty entity mask.
    """
    check_task(task)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, is {type(rng).__name__}")
    if isinstance(max_entities, bool) or not isinstance(max_entities, int | np.integer) or max_entities < 1:
        raise ValueError(f"max_entities must be an integer >= 1, is {max_entities!r}")
    if not 0.0 <= float(negative_prob) <= 1.0:
        raise ValueError(f"negative_prob must be a probability in [0, 1], is {negative_prob!r}")
    vocabulary = _unique([str(v).strip() for v in (vocabulary or ()) if str(v).strip()])
    image, masks, names = _check_inputs(image, masks, names)
    h, w = image.shape[:2]

    if task == "entity":  # all entities, region J (supp. "Entity segmentation")
        region, colormap_masks, target_names = full_mask(h, w), masks, names
        prompt_names, swaps, truncated = names, {}, False
    else:
        region, targets, truncated = _draw_targets(task, masks, names, rng, max_entities)
        prompt_names = _unique([names[i] for i in targets])
        swaps = {}
        if task == "referring":
            swaps = _negatives(prompt_names, masks, names, region, rng, vocabulary, float(negative_prob))
            targets = np.asarray([i for i in targets if names[i] not in swaps], dtype=int)
        colormap_masks = masks[targets] & region  # clipped to the region (a no-op for J)
        target_names = [names[i] for i in targets]

    colormap, painted = _encode(colormap_masks, grid)
    control = control_source(task, image, colormap, region)
    copies_image, copies_colormap = COPIES_CONTROL[task]  # Table 2's ✗: that half reproduces the control
    return TrainingExample(
        task=task,
        task_id=TASK_IDS[task],
        prompt=prompt_for(task, [swaps.get(n, n) for n in prompt_names]),
        names=[swaps.get(n, n) for n in prompt_names],
        coarse_mask=region,
        control=control,
        image_target=control if copies_image else image,
        colormap_target=control if copies_colormap else colormap,
        entity_masks=painted,
        entity_names=target_names,
        negative_names=[swaps[n] for n in prompt_names if n in swaps],
        truncated=truncated,
    )
