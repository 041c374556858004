"""The four UniGS tasks and how each builds its conditions (paper Table 2, §3.4).

This is the one place that knows Table 2. Training samplers (`unigs.data.tasks`) and the inference
pipelines (`unigs.pipelines`) both call :func:`control_source` and :func:`prompt_for`, so the model sees at
inference exactly the conditions it was trained on.

Table 2, per task (m_c = coarse mask, 1 = region to fill; J = all ones):

=============  ===========  ======================  =======================  ==========  ==========
task           id           coarse mask m_c         control z^c (pixels)     image out   colormap out
=============  ===========  ======================  =======================  ==========  ==========
inpainting     0            Omega(M)                I_0 * (1 - m_c)          generated   generated
synthesis      1            J                       M_c (entity colormap)    generated   = control
referring      2            Omega(M)                I_0                      = control   generated
entity         3            J                       I_0                      = control   generated
=============  ===========  ======================  =======================  ==========  ==========

"= control" is the paper's ✗: that output half must reproduce its condition.
"""

from __future__ import annotations

import numpy as np

TASKS: tuple[str, ...] = ("inpainting", "synthesis", "referring", "entity")
TASK_IDS: dict[str, int] = {name: i for i, name in enumerate(TASKS)}

# Prompt templates (DESIGN.md "Tasks"); `{names}` is an English list:
# "dog", "dog and cat", "dog, cat, and sky".
PROMPT_TEMPLATES: dict[str, str] = {
    "inpainting": "inpainting: generate {names}.",
    "synthesis": "synthesis: generate {names}.",
    "referring": "referring: find {names}.",
    "entity": "panoptic: all entities.",
}

# Multi-task sampling ratios (supplementary, "One-to-Many Joint Model").
DEFAULT_TASK_RATIOS: dict[str, float] = {"inpainting": 0.3, "synthesis": 0.3, "referring": 0.2, "entity": 0.2}

# Which output halves must copy the control (Table 2's ✗): (image_copies_control, colormap_copies_control).
COPIES_CONTROL: dict[str, tuple[bool, bool]] = {
    "inpainting": (False, False),
    "synthesis": (False, True),
    "referring": (True, False),
    "entity": (True, False),
}


def check_task(task: str) -> str:
    """Return `task` if it is one of :data:`TASKS`, else raise a ValueError naming it."""
    if task not in TASK_IDS:
        raise ValueError(f"task must be one of {list(TASKS)}, is {task!r}")
    return task


def join_names(names: list[str] | tuple[str, ...]) -> str:
    """English list: ["dog"] -> "dog"; ["dog", "cat"] -> "dog and cat"; 3+ -> "dog, cat, and sky"."""
    names = [str(n).strip() for n in names]
    if len(names) <= 1:
        return names[0] if names else ""
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return ", ".join(names[:-1]) + f", and {names[-1]}"


def prompt_for(task: str, names: list[str] | tuple[str, ...] = ()) -> str:
    """The paper's prompt for `task` naming `names` (ignored for the entity task).

    >>> prompt_for("synthesis", ["dog", "ground", "sky"])
    'synthesis: generate dog, ground, and sky.'
    """
    check_task(task)
    if task != "entity" and not [n for n in names if str(n).strip()]:
        raise ValueError(f"task {task!r} needs at least one entity name, got {list(names)!r}")
    return PROMPT_TEMPLATES[task].format(names=join_names(list(names)))


def full_mask(height: int, width: int) -> np.ndarray:
    """J: the all-ones coarse mask of synthesis and entity segmentation, `(H, W) bool`."""
    return np.ones((height, width), dtype=bool)


def control_source(task: str, image: np.ndarray | None, colormap: np.ndarray | None,
                   coarse_mask: np.ndarray) -> np.ndarray:
    """The pixel-space control that the VAE encodes into z^c (Table 2, Eq. 10).

    Args:
        task: one of :data:`TASKS`.
        image: `(H, W, 3) uint8` I_0 (unused for synthesis).
        colormap: `(H, W, 3) uint8` M_c (used only for synthesis).
        coarse_mask: `(H, W) bool`, 1 = region to fill.

    Returns:
        `(H, W, 3) uint8`: I_0 ⊙ (1 − m_c) for inpainting, M_c for synthesis, I_0 otherwise.
    """
    check_task(task)
    if task == "synthesis":
        if colormap is None:
            raise ValueError("the synthesis task needs a colormap as its control")
        return colormap
    if image is None:
        raise ValueError(f"the {task} task needs an image as its control")
    if task == "inpainting":
        return (image * (~coarse_mask.astype(bool))[..., None]).astype(np.uint8)
    return image
