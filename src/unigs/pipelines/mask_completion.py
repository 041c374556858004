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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigs.checks import check_number
from unigs.codec import palette
from unigs.codec.snap import DEFAULT_TOLERANCE, snap_to_palette
from unigs.pipelines import core, frame
from unigs.pipelines.base import UniGSPipeline, UniGSPipelineOutput
from unigs.pipelines.entity import GUIDANCE_SCALE
from unigs.pipelines.inputs import to_mask_batch, to_rgb_batch

# LDMSeg samples 50 DDIM steps; the entity task's own default (one step, the read-out at t = T) leaves no
# step for the known part to steer the rest.
NUM_INFERENCE_STEPS = 50


def load_partial(path: str | Path) -> np.ndarray:
    """A partial segmentation file → colormap `(H, W, 3) uint8` (PNG etc.) or masks `(K, H, W) bool` (JSON),
    at its own size, with the checks of `unigs.io` (readable file, pixel limit before decoding).

    JSON: a list of COCO RLE dicts, or of objects holding one under "segmentation" (`unigs segment`'s
    `<stem>.json`), or a dict with an "annotations" list of those.
    """
    from unigs.io import check_image_size, check_input_file, load_image, rle_to_masks

    path = Path(path)
    if path.suffix.lower() != ".json":
        return load_image(path, "partial masks")
    check_input_file(path, "partial masks file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"partial masks file {str(path)!r} is not valid JSON ({err})") from None
    items = data.get("annotations", []) if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ValueError(f"partial masks file {str(path)!r} holds no list of RLE masks")
    rles = [item.get("segmentation", item) if isinstance(item, dict) else item for item in items]
    for rle in rles:
        size = rle.get("size") if isinstance(rle, dict) else None
        if not (isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(v, int) for v in size)):
            raise ValueError(f"partial masks file {str(path)!r} holds an entry that is not a COCO RLE "
                             "(a dict with 'size' [H, W] and 'counts')")
        check_image_size(size[0], size[1], f"partial masks file {path}")
    try:
        return rle_to_masks(rles)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"partial masks file {str(path)!r} holds an unreadable RLE ({err})") from None


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
    keep_background = True
    default_num_inference_steps = NUM_INFERENCE_STEPS

    @torch.no_grad()
    def __call__(
        self,
        image: Any,
        masks: Any,
        known_mask: Any,
        num_inference_steps: int = NUM_INFERENCE_STEPS,
        guidance_scale: float = GUIDANCE_SCALE,
        num_images_per_prompt: int = 1,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        prompt: str | list[str] | None = None,
        resample_jumps: int = 0,
        tolerance: int = DEFAULT_TOLERANCE,
        delta: float = 10.0,
        output_type: str = "pil",
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> UniGSPipelineOutput:
        """Complete the segmentation `masks` of `image` outside `known_mask`.

        Args:
            image: the RGB image(s), any size (forms of `unigs.pipelines.inputs`).
            masks: the partial segmentation: a colormap `(H, W, 3) uint8` or entity masks `(K, H, W) bool`;
                for a batch of B images, a sequence of B of those (or a `(B, H, W, 3) uint8` array).
            known_mask: `(H, W)` (or `(B, H, W)`) 1 = the partial segmentation is right here (kept), 0 = to
                complete. Must have the image's size.
            resample_jumps: RePaint resampling jumps per step (DDIM only; 1 + jumps UNet calls a step).
            tolerance: max per-channel distance of a colormap pixel to its palette colour.
            Other arguments as in :class:`UniGSEntityPipeline` (working frame of `height` × `width`).

        Returns:
            colormaps: the completed colormap at the image's size (exactly the partial one on the known
            pixels); masks: Φ of it with the background kept; images: the input image.
        """
        # 1. Convert and check inputs.
        images = to_rgb_batch(image)
        batch, h, w = images.shape[:3]
        known = to_mask_batch(known_mask, batch, (h, w), name="known mask")
        check_number("resample_jumps", resample_jumps, low=0, integer=True)
        grid = self.meta.grid
        partials = [masks] if batch == 1 else list(masks)
        if len(partials) != batch:
            raise ValueError(f"masks gives {len(partials)} partial segmentations for {batch} images")
        partial = np.stack([partial_colormap(m, (h, w), grid, tolerance) for m in partials])

        # 2. The entity task in the working frame (image half = control); the hook holds the colormap
        # latent at Υ(partial) on the latent cells whose pixels are all known.
        def hold(fr: frame.WorkFrame, repeat: int) -> dict:
            cells = self.work_known_cells(known, fr, repeat)
            values = self.work_latents(partial, fr, "colormap", repeat)
            return {"known": core.KnownLatent.region("colormap", values, cells),
                    "resample_jumps": int(resample_jumps)}

        out = self.run_task(images, None, [[] for _ in range(batch)], num_inference_steps=num_inference_steps,
                            guidance_scale=guidance_scale, num_images_per_prompt=num_images_per_prompt,
                            height=height, width=width, generator=generator, latents=latents, eta=eta,
                            prompt=prompt, fix_known_half=True, delta=delta, output_type="np",
                            names_required=False, prepare=hold, callback_on_step_end=callback_on_step_end,
                            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)

        # 3. Paste the known pixels back exactly at the input's size, then Φ there (background kept): the
        # known part's masks must be the partial map's own, not their round trip through the frame.
        n = num_images_per_prompt
        known, partial = np.repeat(known, n, axis=0), np.repeat(partial, n, axis=0)
        colormaps = np.where(known[..., None], partial, out.colormaps).astype(np.uint8)
        out_masks = self.masks_from_colormaps(colormaps, None, delta, keep_background=True)
        return self.format_output(np.asarray(out.images), colormaps, out_masks, output_type)
