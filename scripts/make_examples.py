"""Write the README's example inputs to examples/: a held-out procedural scene cropped to 192x150 px (an
odd, non-square size on purpose), a coarse mask around one of its objects, and its entity colormap.

    python scripts/make_examples.py    # rewrites examples/scene.png, scene_mask.png, scene_colormap.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unigs.codec import palette
from unigs.codec.coarse import coarse_mask
from unigs.data.scenes import make_scene
from unigs.io import save_png

SEED = 20_000_001  # the test split (unigs.data.scenes.SceneDataset("test")): never trained on
OUT = Path(__file__).resolve().parents[1] / "examples"

scene = make_scene(SEED, size=192)
image, masks = scene.image[:150], scene.masks[:, :150]
keep = masks.any(axis=(1, 2))
masks, names = masks[keep], [n for n, k in zip(scene.names, keep, strict=True) if k]
thing = int(np.argmax(scene.is_thing[keep]))
save_png(OUT / "scene.png", image)
save_png(OUT / "scene_mask.png", coarse_mask(masks[thing], np.random.default_rng(0)))
save_png(OUT / "scene_colormap.png", palette.encode(masks))
print(f"wrote {OUT}: 192x150 scene of {names}; the mask surrounds the {names[thing]!r}")
