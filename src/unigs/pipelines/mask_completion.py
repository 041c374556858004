"""LDMSeg's mask inpainting (seed 002) inside UniGS: complete a partial entity segmentation.

The entity task (Table 2, row 4; LDMSeg's task) generates the colormap half from the image. For
completion, the colormap latent of the *known* region is held at Υ(partial colormap) noised to the current
timestep after every step — the core's known-region replacement (RePaint-style; `resample_jumps` adds
RePaint's resampling), the same mechanism that pins the image half to the control. Only the rest of the
colormap is sampled, so the model's answer there has to agree with the known part at their border.

A latent cell counts as known only when all of its pixels are (`core.known_cells`): a cell straddling the
border also encodes hidden pixels (black in the partial map), and holding it would paste that black into
the result. After decoding, the known pixels are pasted back exactly, then Φ runs with the background kept
(entity task). LDMSeg's released code has no mask inpainting; this follows its paper's description.

Inputs of the partial segmentation: a colormap `(H, W, 3) uint8` (near-palette colours snapped, others
refused: `unigs.codec.snap`), or entity masks `(K, H, W) bool` (painted by Ψ), or a file: a PNG colormap or
a COCO-style JSON list of RLEs / results (:func:`load_partial`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigs.codec import palette
from unigs.codec.snap import DEFAULT_TOLERANCE, snap_to_palette
from unigs.conditions import full_mask
from unigs.pipelines import core
from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.inputs import to_mask_batch, to_rgb_batch


def load_partial(path: str | Path, size: int | None = None) -> np.ndarray:
    """A partial segmentation file → colormap `(H, W, 3) uint8` (PNG etc.) or masks `(K, H, W) bool` (JSON).

    JSON: a list of COCO RLE dicts, or of objects holding one under "segmentation" (`unigs segment`'s
    results.json), or a dict with an "annotations" list of those. `size`: resize to size × size first
    (nearest neighbour, so colours and masks stay exact).
    """
    import PIL.Image

    from unigs.io import load_image, rle_to_masks

    def resized(a: np.ndarray) -> np.ndarray:
        if size is None:
            return a
        return np.asarray(PIL.Image.fromarray(a).resize((size, size), PIL.Image.NEAREST))

    path = Path(path)
    if path.suffix.lower() != ".json":
        return resized(load_image(path))
    if not path.exists():
        raise FileNotFoundError(f"partial masks file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"partial masks file {str(path)!r} is not valid JSON ({err.msg})") from None
    items = data.get("annotations", []) if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ValueError(f"partial masks file {str(path)!r} holds no list of RLE masks")
    rles = [item.get("segmentation", item) if isinstance(item, dict) else item for item in items]
    masks = rle_to_masks(rles)
    return masks if size is None else np.stack([resized(m) for m in masks]).astype(bool)


def partial_colormap(partial: Any, size: tuple[int, int], grid: int = 11,
                     tolerance: int = DEFAULT_TOLERANCE) -> np.ndarray:
    """A partial segmentation (colormap or masks, module docstring) → palette colormap `(H, W, 3) uint8`."""
    if isinstance(partial, torch.Tensor):
        partial = partial.detach().cpu().numpy()
    partial = np.asarray(partial)
    if partial.ndim == 3 and partial.shape[-1] == 3 and partial.dtype == np.uint8:
        colormap = snap_to_palette(partial, tolerance, name="partial colormap")
    elif partial.ndim == 3 and partial.dtype == bool or (partial.ndim == 3 and partial.shape[0] == 0):
        partial = partial.astype(bool)
        colormap = palette.encode(partial, grid=grid) if partial.any() else \
            np.zeros((*partial.shape[1:], 3), np.uint8)
    else:
        raise ValueError(f"masks must be a colormap (H, W, 3) uint8 or entity masks (K, H, W) bool, got "
                         f"shape {partial.shape} dtype {partial.dtype}")
    if colormap.shape[:2] != tuple(size):
        raise ValueError(f"the partial masks are {colormap.shape[0]}x{colormap.shape[1]} (HxW) but the image "
                         f"is {size[0]}x{size[1]}; they must be the same size")
    return colormap


class UniGSMaskCompletionPipeline(UniGSPipeline):
    """Image + partial entity segmentation + known-region mask → the completed segmentation (module doc).

    >>> pipe = UniGSMaskCompletionPipeline.from_components(load_unigs("model"))       # doctest: +SKIP
    >>> out = pipe(image, partial_colormap, known_mask, num_inference_steps=50)      # doctest: +SKIP
    >>> out.colormaps[0], out.masks[0]                                                # doctest: +SKIP
    """

    task = "entity"
    known_half = "image"

    @torch.no_grad()
    def __call__(
        self,
        image: Any,
        masks: Any,
        known_mask: Any,
        num_inference_steps: int = 200,
        guidance_scale: float = 1.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        prompt: str | list[str] | None = None,
        resample_jumps: int = 0,
        tolerance: int = DEFAULT_TOLERANCE,
        delta: float = 10.0,
        output_type: str = "pil",
    ) -> UniGSPipelineOutput:
        """Complete the segmentation `masks` of `image` outside `known_mask`.

        Args:
            image: the RGB image(s) (forms of `unigs.pipelines.inputs`).
            masks: the partial segmentation: a colormap `(H, W, 3) uint8` or entity masks `(K, H, W) bool`;
                for a batch of B images, a sequence of B of those (or a `(B, H, W, 3) uint8` array).
            known_mask: `(H, W)` (or `(B, H, W)`) 1 = the partial segmentation is right here (kept), 0 = to
                complete. Must have the image's size.
            resample_jumps: RePaint resampling jumps per step (DDIM only; 1 + jumps UNet calls a step).
            tolerance: max per-channel distance of a colormap pixel to its palette colour.
            Other arguments as in :class:`UniGSEntityPipeline`.

        Returns:
            colormaps: the completed colormap (exactly the partial one on the known pixels); masks: Φ of it
            with the background kept; images: the input image.
        """
        # 1. Convert and check inputs.
        images = to_rgb_batch(image)
        batch, h, w = images.shape[:3]
        known = to_mask_batch(known_mask, batch, (h, w), name="known mask")
        grid = int(self.meta.get("grid", 11))
        partials = [masks] if batch == 1 else list(masks)
        if len(partials) != batch:
            raise ValueError(f"masks gives {len(partials)} partial segmentations for {batch} images")
        partial = np.stack([partial_colormap(m, (h, w), grid, tolerance) for m in partials])
        self.check_inputs(images, num_inference_steps, guidance_scale, output_type)

        # 2. Table-2 conditions of the entity task; the colormap half held at Υ(partial) on known cells.
        coarse = np.stack([full_mask(h, w)] * batch)
        controls = self.build_controls(coarse, images=images)
        prompts = self.build_prompts(prompt, [[] for _ in range(batch)])
        cells = core.known_cells(torch.from_numpy(known).to(self._execution_device),
                                 (h // self.vae_scale_factor, w // self.vae_scale_factor))
        held = core.KnownLatent.region("colormap", self.encode_pixels(partial), cells)

        # 3. Denoise (image half = control, known colormap cells = partial).
        z0 = self.generate(prompts, controls, coarse, num_inference_steps=num_inference_steps,
                           guidance_scale=guidance_scale, generator=generator, latents=latents, eta=eta,
                           fix_known_half=True, known=held, resample_jumps=resample_jumps)

        # 4. Decode, paste the known pixels back exactly, Φ with the background kept.
        colormaps = self.decode_latents(z0[:, 4:])
        colormaps = np.where(known[..., None], partial, colormaps).astype(np.uint8)
        out_masks = self.masks_from_colormaps(colormaps, None, delta, keep_background=True)
        return self.format_output(images, colormaps, out_masks, output_type)
