"""Training images with entities: procedural scenes or a COCO-format dataset, at one square size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from unigs.data.coco import CocoEntities
from unigs.data.scenes import CATEGORIES, STUFF, SceneDataset


class EntitySource:
    """Images with entity masks and names at `image_size` px: procedural scenes or a COCO-format dataset."""

    def __init__(self, data: str, image_size: int, images_dir: str | None = None, num_scenes: int = 0,
                 split: str = "train"):
        """`data`: "scenes" (the first `num_scenes` procedural scenes of `split`) or a COCO instances
        JSON whose images lie in `images_dir`."""
        self.size = image_size
        if data == "scenes":
            self.items = SceneDataset(split=split, length=num_scenes, size=image_size)
            self.vocabulary = list(CATEGORIES) + list(STUFF)
        else:
            self.items = CocoEntities(data, images_dir)
            self.vocabulary = sorted(set(self.items.categories.values()))
        if len(self.items) == 0:
            raise ValueError(f"the training data {data!r} has no images with entities")

        # Items are kept in memory once made (COCO decoding and resizing is the slow part), masks
        # bit-packed (~70 kB per 128 px item), up to MAX_CACHED of them.
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, int, list[str]]] = {}

    MAX_CACHED = 20_000

    def __len__(self) -> int:
        return len(self.items)

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """`(image (S, S, 3) uint8, masks (N, S, S) bool, names)`, S = image_size."""
        if index in self._cache:
            image, packed, n, names = self._cache[index]
            masks = np.unpackbits(packed, count=n * self.size * self.size).reshape(n, self.size, self.size)
            return image, masks.astype(bool), list(names)
        item = self.items[index]
        image, masks, names = item.image, item.masks, list(item.names)
        if image.shape[:2] != (self.size, self.size):
            image, masks, names = square_resize(image, masks, names, self.size)
        if len(self._cache) < self.MAX_CACHED:
            self._cache[index] = (image, np.packbits(masks), len(masks), list(names))
        return image, masks, names


def square_resize(image: np.ndarray, masks: np.ndarray, names: list[str], size: int):
    """Centre-crop to a square and resize to `size` (image bilinear, masks nearest); drop emptied masks."""
    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    img = Image.fromarray(image[y0:y0 + s, x0:x0 + s]).resize((size, size), Image.BILINEAR)
    out = [np.asarray(Image.fromarray(m[y0:y0 + s, x0:x0 + s]).resize((size, size), Image.NEAREST))
           for m in masks.astype(np.uint8) * 255]
    keep = [i for i, m in enumerate(out) if m.any()]
    kept = np.stack([out[i] > 127 for i in keep]) if keep else np.zeros((0, size, size), bool)
    return np.asarray(img), kept, [names[i] for i in keep]
