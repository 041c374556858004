"""Training batches on the latent grid: Table-2 examples → latents, text states and loss weights.

`unigs.train` turns every batch of :class:`~unigs.data.tasks.TrainingExample` into the tensors of one
diffusion step here (:func:`encode_examples`). Everything in such a batch comes from frozen parts (VAE,
text encoder) and from the data, so a whole pool of examples can be encoded once and reused
(:class:`ExamplePool`): on the CPU this removes the VAE from the training step (~30 % of it at 128 px)
and the data work (scene rendering, Ω, Ψ, Table-2 sampling) with it.

**Loss weights** (:func:`loss_weights`, one `(2, h, w)` map per example, image half ‖ colormap half).
Eq. 2 weighs every latent cell of both halves alike. Inference does not look at them alike, so a weight
map spends the loss where inference reads (all weights 1 reproduces Eq. 2 exactly):

* ``pinned_weight`` — the ✗ half of Table 2 (synthesis' colormap, referring's and entity's image) is
  replaced by the noised control at every sampling step (`unigs.pipelines.core`), so what the model
  predicts there is never used;
* ``referring_outside_weight`` — referring's colormap is cut to m_c at inference; outside the coarse mask
  dilated by one latent cell the target is black background. A small non-zero weight keeps the
  prediction there black, so that the sampler's input stays in the training distribution;
* ``entity_balance`` — mIoU and AP average over entities, not pixels: a target entity covering a fraction
  ``a`` of the image gets pixel weight ``clip(sqrt(BALANCE_AREA / a), 1, entity_balance)``, so a small
  thing counts about as much as a sky band (1 = off).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from unigs.checkpoint import atomic_write
from unigs.conditions import COPIES_CONTROL
from unigs.models.layout import mask_to_latent
from unigs.models.text import encode_prompt
from unigs.models.vae import encode_images

ENCODE_CHUNK = 16  # images per VAE call
BALANCE_AREA = 0.25  # entities larger than this image fraction keep weight 1 (stuff bands: 0.2–0.6)


@dataclass(frozen=True)
class LossWeighting:
    """How the loss is spread over the two output halves (module docstring); all 1.0 = plain Eq. 2."""

    pinned_weight: float = 1.0
    referring_outside_weight: float = 1.0
    entity_balance: float = 1.0

    @property
    def uniform(self) -> bool:
        return self.pinned_weight == self.referring_outside_weight == self.entity_balance == 1.0


class PromptCache:
    """Prompt → text-encoder states (77, D); the text encoder is frozen, so each string is encoded once."""

    def __init__(self, tokenizer, text_encoder, device, max_items: int = 1024):
        self.tokenizer, self.text_encoder = tokenizer, text_encoder
        self.device, self.max_items = device, max_items
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        """`(B, 77, D)` float states of `prompts`."""
        missing = sorted(set(prompts) - set(self.cache))
        if len(self.cache) + len(missing) > self.max_items:
            self.cache.clear()  # bounded memory; re-encoding is cheap
            missing = sorted(set(prompts))
        for p in missing:  # one at a time: a prompt's states never depend on its batch-mates (exact resume)
            self.cache[p] = encode_prompt(self.tokenizer, self.text_encoder, [p], self.device)[0]
        return torch.stack([self.cache[p] for p in prompts])


def entity_weight_map(entity_masks: np.ndarray, max_weight: float) -> np.ndarray:
    """`(H, W) float32` pixel weights: 1 on background, `clip(sqrt(BALANCE_AREA / a), 1, max_weight)` on a
    target entity covering the image fraction `a` (`entity_masks`: `(K, H, W) bool`, non-overlapping)."""
    h, w = entity_masks.shape[1:]
    weights = np.ones((h, w), np.float32)
    if max_weight == 1.0 or len(entity_masks) == 0:
        return weights
    area = entity_masks.reshape(len(entity_masks), -1).mean(axis=1)
    per_entity = np.clip(np.sqrt(BALANCE_AREA / np.maximum(area, 1e-6)), 1.0, max_weight)
    for mask, value in zip(entity_masks, per_entity, strict=True):
        weights[mask] = value
    return weights


def loss_weights(examples: Sequence[Any], latent_size: tuple[int, int],
                 weighting: LossWeighting) -> torch.Tensor:
    """`(B, 2, h, w) float32` loss weights of image half ‖ colormap half per example (module docstring).

    Pixel maps are averaged over each latent cell; the dilated coarse mask is "any pixel of the cell in m_c"
    grown by one cell.
    """
    h, w = latent_size
    out = torch.ones((len(examples), 2, h, w))
    for b, e in enumerate(examples):
        copies = COPIES_CONTROL[e.task]
        if copies[0]:
            out[b, 0] = weighting.pinned_weight
        if copies[1]:
            out[b, 1] = weighting.pinned_weight
            continue
        pixels = torch.from_numpy(entity_weight_map(e.entity_masks, weighting.entity_balance))
        cells = F.adaptive_avg_pool2d(pixels[None, None], (h, w))[0, 0]
        if e.task == "referring":
            region = torch.from_numpy(np.asarray(e.coarse_mask, np.float32))[None, None]
            region = F.max_pool2d(F.adaptive_max_pool2d(region, (h, w)), 3, stride=1, padding=1)[0, 0]
            cells = torch.where(region > 0, cells, cells * weighting.referring_outside_weight)
        out[b, 1] = cells
    return out


@torch.no_grad()
def encode_examples(components, examples: list, prompts: PromptCache, multitask: bool,
                    weighting: LossWeighting = LossWeighting()) -> dict[str, Any]:
    """Latents and conditions of a batch (§3.3): z^i, z^s, z^c (B, 4, h, w), m_c (B, 1, h, w) float in {0, 1},
    text states (B, 77, D), task ids (B,) long (None for a single-task model), loss weights (B, 2, h, w)."""
    # Identical pixel arrays are encoded once: the control equals a target for referring/entity (I_0) and
    # synthesis (M_c), and a pool's draws from one scene share I_0 (and the entity colormap).
    pixels: list[np.ndarray] = []
    seen: dict[bytes, int] = {}
    slots = []
    for e in examples:
        row = []
        for array in (e.image_target, e.colormap_target, e.control):
            key = array.tobytes() + repr(array.shape).encode()
            if key not in seen:
                seen[key] = len(pixels)
                pixels.append(array)
            row.append(seen[key])
        slots.append(row)
    stacked = np.stack(pixels)  # small VAE batches are faster per image on the CPU
    z = torch.cat([encode_images(components.vae, stacked[i:i + ENCODE_CHUNK]).float()
                   for i in range(0, len(stacked), ENCODE_CHUNK)])
    z_image, z_colormap, z_control = (z[[s[k] for s in slots]] for k in range(3))
    device = z.device
    latent_size = tuple(z.shape[-2:])
    masks = torch.from_numpy(np.stack([e.coarse_mask for e in examples])).to(device)
    return {
        "z_image": z_image, "z_colormap": z_colormap, "z_control": z_control,
        "mask": mask_to_latent(masks, latent_size),
        "text": prompts([e.prompt for e in examples]).float(),
        "task_ids": torch.tensor([e.task_id for e in examples], device=device) if multitask else None,
        "tasks": [e.task for e in examples],
        # None = uniform: the loss is then exactly Eq. 2's mean over both halves
        "weights": None if weighting.uniform else loss_weights(examples, latent_size, weighting).to(device),
    }


# ------------------------------------------------------------------------------------------------- pool
POOL_FORMAT = 1
_LATENTS = ("z_image", "z_colormap", "z_control")


class ExamplePool:
    """A fixed set of pre-encoded training examples (module docstring); batches are drawn from it by index.

    Stored compactly: latents and weights fp16, m_c bool, the prompt of each example as an index into the
    unique prompts, whose states are kept once (fp16). The empty prompt (CFG's unconditional branch) is
    always among them, so a batch can drop prompts after the draw.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], prompts: list[str], tasks: list[str], key: dict):
        self.tensors, self.prompts, self.tasks, self.key = tensors, prompts, tasks, key
        self.empty = prompts.index("")

    def __len__(self) -> int:
        return len(self.tasks)

    @classmethod
    def build(cls, make_examples, count: int, components, multitask: bool, weighting: LossWeighting,
              key: dict, chunk: int = 64, progress: bool = True) -> ExamplePool:
        """Encode `count` examples; `make_examples(start, stop)` returns the examples of those indices."""
        device = next(components.vae.parameters()).device
        prompts = PromptCache(components.tokenizer, components.text_encoder, device, max_items=10**9)
        parts: dict[str, list[torch.Tensor]] = {}
        names: list[str] = []
        tasks: list[str] = []
        with tqdm(total=count, desc="encode example pool", disable=not progress) as bar:
            for start in range(0, count, chunk):
                examples = make_examples(start, min(count, start + chunk))
                batch = encode_examples(components, examples, prompts, multitask, weighting)
                if batch["weights"] is None:
                    batch["weights"] = loss_weights(examples, tuple(batch["mask"].shape[-2:]), weighting)
                for name in (*_LATENTS, "weights"):
                    parts.setdefault(name, []).append(batch[name].half().cpu())
                parts.setdefault("mask", []).append(batch["mask"].bool().cpu())
                parts.setdefault("task_ids", []).append(torch.tensor([e.task_id for e in examples]))
                names += [e.prompt for e in examples]
                tasks += batch["tasks"]
                bar.update(len(examples))
        unique = sorted(set(names) | {""})
        index = {p: i for i, p in enumerate(unique)}
        prompts([""])
        tensors = {name: torch.cat(chunks) for name, chunks in parts.items()}
        tensors["prompt_ids"] = torch.tensor([index[p] for p in names])
        tensors["text"] = torch.stack([prompts.cache[p] for p in unique]).half().cpu()
        return cls(tensors, unique, tasks, key)

    def save(self, path: str | Path) -> None:
        data = {"format": POOL_FORMAT, "key": self.key, "prompts": self.prompts, "tasks": self.tasks,
                "tensors": self.tensors}
        atomic_write(Path(path), lambda tmp: torch.save(data, tmp))

    @classmethod
    def load(cls, path: str | Path, key: dict) -> ExamplePool | None:
        """The pool saved at `path` if it was built with the same `key`, else None."""
        path = Path(path)
        if not path.is_file():
            return None
        data = torch.load(path, weights_only=True)
        if data.get("format") != POOL_FORMAT or data.get("key") != key:
            return None
        return cls(data["tensors"], list(data["prompts"]), list(data["tasks"]), key)

    def batch(self, index: np.ndarray, drop_prompt: np.ndarray, multitask: bool, device) -> dict[str, Any]:
        """The examples `index` as `encode_examples` returns them; `drop_prompt[k]` uses "" for example k."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        prompt_ids = torch.where(torch.as_tensor(np.asarray(drop_prompt, bool)), self.empty,
                                 self.tensors["prompt_ids"][idx])
        out: dict[str, Any] = {name: self.tensors[name][idx].float().to(device)
                               for name in (*_LATENTS, "weights")}
        out["mask"] = self.tensors["mask"][idx].float().to(device)
        out["text"] = self.tensors["text"][prompt_ids].float().to(device)
        out["task_ids"] = self.tensors["task_ids"][idx].long().to(device) if multitask else None
        out["tasks"] = [self.tasks[i] for i in idx.tolist()]
        return out
