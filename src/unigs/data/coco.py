"""COCO-format entity datasets: COCO instances, EntitySeg and OpenImages converted to COCO JSON.

One reader for all three (DESIGN.md "Data flow": annotations → entities → task sampler). An *entity* is
one annotation's binary mask plus its category name. Masks are rasterised with `pycocotools.mask`
(`frPyObjects` + `decode`, what `COCO.annToMask` does) from polygons, uncompressed RLE (`counts` list,
usual for `iscrowd`) or compressed RLE (`counts` str, usual in EntitySeg/OpenImages conversions).

Rules for bad or unusual data (all chosen once, here):
- Unknown category id in an annotation → `ValueError` naming it, at construction.
- Image without entities (no annotations, or all dropped as crowd / below `min_area`) → skipped and
  counted in `.skipped["no_entities"]`, never a crash (OpenImages conversions have many).
- Missing image file (only checked when `images_dir` is given): `on_error="raise"` → `FileNotFoundError`
  naming it at construction; `on_error="skip"` → dropped at construction, counted in
  `.skipped["missing_image"]`.
- Corrupt/truncated image, or one whose size differs from the JSON: images are decoded lazily (on
  first access of `sample.image`, then cached), so this surfaces as `ValueError` naming the file on
  access. With `on_error="skip"`, *iterating* the dataset loads each image up front and skips such
  samples, counting them in `.skipped["bad_image"]`; plain indexing never renumbers, so `ds[i].image`
  still raises.
- Polygon coordinates outside the image: clipped to [0, W] × [0, H] with a `UserWarning` naming the
  annotation id. An RLE whose size differs from the image's → `ValueError` naming the annotation id.
- Polygons with fewer than 3 points are ignored (pycocotools would read 4 numbers as a box).

Stuff/thing: EntitySeg categories may carry `isthing` (0/1) or `type` ("thing"/"stuff"); it is kept
in `EntitySample.isthing` (None where the JSON does not say).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from unigs.io import load_image, masks_to_rle

ON_ERROR = ("raise", "skip")


class EntitySample:
    """One image's entities.

    Attributes:
        image_id: the JSON image id (int for COCO, may be str in OpenImages conversions).
        file_name: as in the JSON (relative to the images folder).
        masks: `(N, H, W) bool`, one per entity, N >= 1 for dataset samples, in annotation order.
        names: N category names. category_ids: N ints. ann_ids: N annotation ids.
        isthing: N of True/False/None (None where the categories do not say).
        image: `(H, W, 3) uint8`, read from `image_path` on first access and cached; `ValueError`
            if the sample has no image (dataset built without `images_dir`) or the file is bad.
    """

    def __init__(
        self,
        image_id: Any,
        file_name: str,
        masks: np.ndarray,
        names: list[str],
        category_ids: list[int],
        image: np.ndarray | None = None,
        *,
        ann_ids: list[Any] | None = None,
        isthing: list[bool | None] | None = None,
        image_path: str | os.PathLike | None = None,
    ):
        self.image_id = image_id
        self.file_name = file_name
        self.masks = masks
        self.names = list(names)
        self.category_ids = list(category_ids)
        self.ann_ids = list(ann_ids) if ann_ids is not None else [None] * len(self.names)
        self.isthing = list(isthing) if isthing is not None else [None] * len(self.names)
        self.image_path = Path(image_path) if image_path is not None else None
        self._image = image
        n = len(masks)
        if not (len(self.names) == len(self.category_ids) == len(self.ann_ids) == len(self.isthing) == n):
            raise ValueError(f"image {image_id}: {n} masks but {len(self.names)} names / "
                             f"{len(self.category_ids)} category ids / {len(self.ann_ids)} ann ids")

    @property
    def height(self) -> int:
        return int(self.masks.shape[1])

    @property
    def width(self) -> int:
        return int(self.masks.shape[2])

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            if self.image_path is None:
                raise ValueError(f"image {self.image_id} ({self.file_name}) has no image: "
                                 "the dataset was built without images_dir")
            img = load_image(self.image_path)
            if img.shape[:2] != (self.height, self.width):
                raise ValueError(f"image {self.image_path} is {img.shape[1]}x{img.shape[0]} but the "
                                 f"annotations say {self.width}x{self.height}")
            self._image = img
        return self._image

    def __repr__(self) -> str:
        return (f"EntitySample(image_id={self.image_id!r}, file_name={self.file_name!r}, "
                f"masks={tuple(self.masks.shape)}, names={self.names})")


def _isthing(cat: dict) -> bool | None:
    if "isthing" in cat:
        return bool(cat["isthing"])
    if "is_thing" in cat:
        return bool(cat["is_thing"])
    kind = cat.get("type", cat.get("category_type"))
    if isinstance(kind, str) and kind.lower() in ("thing", "stuff"):
        return kind.lower() == "thing"
    return None


def annotation_mask(segmentation: Any, height: int, width: int, ann_id: Any = None) -> np.ndarray:
    """Rasterise one COCO `segmentation` (polygons, uncompressed RLE or compressed RLE).

    Polygon points outside [0, W] × [0, H] are clipped with a `UserWarning` naming `ann_id`.

    Returns:
        `(H, W) bool`.
    """
    if isinstance(segmentation, list):
        polys = []
        clipped = False
        for poly in segmentation:
            p = np.asarray(poly, dtype=np.float64).reshape(-1)
            if p.size < 6 or p.size % 2:
                continue  # degenerate: fewer than 3 points
            xs, ys = p[0::2], p[1::2]
            if xs.min() < 0 or ys.min() < 0 or xs.max() > width or ys.max() > height:
                clipped = True
                p = p.copy()
                p[0::2] = np.clip(xs, 0, width)
                p[1::2] = np.clip(ys, 0, height)
            polys.append(p.tolist())
        if clipped:
            warnings.warn(f"annotation {ann_id}: polygon points outside the {width}x{height} image were "
                          "clipped", UserWarning, stacklevel=2)
        if not polys:
            return np.zeros((height, width), dtype=bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        size = [int(v) for v in segmentation["size"]]
        if size != [height, width]:
            raise ValueError(f"annotation {ann_id}: RLE size {size} does not match the image size "
                             f"{[height, width]}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise ValueError(f"annotation {ann_id}: segmentation must be polygons or an RLE dict, "
                         f"got {type(segmentation).__name__}")
    return mask_utils.decode(rle).astype(bool)


def _area(ann: dict, height: int, width: int) -> float:
    if "area" in ann:
        return float(ann["area"])
    return float(annotation_mask(ann["segmentation"], height, width, ann.get("id")).sum())


class CocoEntities(Sequence):
    """A sequence of `EntitySample`, one per image that has at least one entity.

    Args:
        annotations: path to a COCO instance JSON, or the loaded dict.
        images_dir: folder the JSON's `file_name`s are relative to; None = no images (masks only,
            e.g. for colormaps and palette coverage; nothing on disk is checked).
        include_crowd: keep `iscrowd=1` annotations as entities (default: drop them).
        min_area: drop annotations whose `area` (pixels; computed from the mask when the JSON has no
            `area`) is below this. The default 1 drops empty annotations.
        on_error: "raise" or "skip" for missing/corrupt image files (see the module docstring).

    Attributes:
        skipped: Counter of skipped images by reason ("no_entities", "missing_image", "bad_image").
        skipped_ids: reason → list of skipped image ids.
        categories: category id → name.
    """

    def __init__(
        self,
        annotations: str | os.PathLike | dict,
        images_dir: str | os.PathLike | None = None,
        include_crowd: bool = False,
        min_area: float = 1.0,
        on_error: str = "raise",
    ):
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.include_crowd = include_crowd
        self.min_area = float(min_area)
        self.images_dir = Path(images_dir) if images_dir is not None else None
        if self.images_dir is not None and not self.images_dir.is_dir():
            raise FileNotFoundError(f"images folder not found: {self.images_dir}")
        data = _load_json(annotations)
        self.source = str(annotations) if not isinstance(annotations, dict) else "<dict>"

        cats = data.get("categories", [])
        self.categories: dict[int, str] = {c["id"]: str(c["name"]) for c in cats}
        self._isthing = {c["id"]: _isthing(c) for c in cats}

        self._images: dict[Any, dict] = {}
        for img in data["images"]:
            missing = [k for k in ("id", "file_name", "height", "width") if k not in img]
            if missing:
                raise ValueError(f"{self.source}: image entry {str(img)[:80]} lacks {missing}")
            if img["id"] in self._images:
                raise ValueError(f"{self.source}: image id {img['id']!r} appears twice")
            self._images[img["id"]] = img

        by_image: dict[Any, list[dict]] = {i: [] for i in self._images}
        for ann in data.get("annotations", []):
            ann_id = ann.get("id")
            if ann.get("category_id") not in self.categories:
                raise ValueError(f"{self.source}: annotation {ann_id} has unknown category id "
                                 f"{ann.get('category_id')!r}")
            if ann.get("image_id") not in self._images:
                raise ValueError(f"{self.source}: annotation {ann_id} points to unknown image id "
                                 f"{ann.get('image_id')!r}")
            if "segmentation" not in ann:
                raise ValueError(f"{self.source}: annotation {ann_id} has no segmentation")
            if ann.get("iscrowd", 0) and not include_crowd:
                continue
            img = self._images[ann["image_id"]]
            if _area(ann, int(img["height"]), int(img["width"])) < self.min_area:
                continue
            by_image[ann["image_id"]].append(ann)

        self.skipped: Counter = Counter()
        self.skipped_ids: dict[str, list] = {}
        self._index: list[tuple[dict, list[dict]]] = []
        for image_id, anns in by_image.items():
            img = self._images[image_id]
            if not anns:
                self._skip("no_entities", image_id)
                continue
            if self.images_dir is not None and not (self.images_dir / img["file_name"]).is_file():
                if on_error == "raise":
                    raise FileNotFoundError(f"image file not found: {self.images_dir / img['file_name']} "
                                            f"(image id {image_id})")
                self._skip("missing_image", image_id)
                continue
            self._index.append((img, anns))

    def _skip(self, reason: str, image_id: Any) -> None:
        self.skipped[reason] += 1
        self.skipped_ids.setdefault(reason, []).append(image_id)

    @property
    def stuff_names(self) -> list[str]:
        """Names of the categories the JSON marks as stuff (`isthing: 0` or type "stuff")."""
        return sorted({self.categories[c] for c, thing in self._isthing.items() if thing is False})

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, index: int) -> EntitySample:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        img, anns = self._index[index]
        h, w = int(img["height"]), int(img["width"])
        masks = np.stack([annotation_mask(a["segmentation"], h, w, a.get("id")) for a in anns])
        return EntitySample(
            image_id=img["id"],
            file_name=img["file_name"],
            masks=masks,
            names=[self.categories[a["category_id"]] for a in anns],
            category_ids=[int(a["category_id"]) for a in anns],
            ann_ids=[a.get("id") for a in anns],
            isthing=[self._isthing[a["category_id"]] for a in anns],
            image_path=None if self.images_dir is None else self.images_dir / img["file_name"],
        )

    def __iter__(self) -> Iterator[EntitySample]:
        for i in range(len(self)):
            sample = self[i]
            if self.on_error == "skip" and sample.image_path is not None:
                try:
                    sample.image  # noqa: B018 — load now so a bad file can be skipped and counted
                except ValueError:
                    self._skip("bad_image", sample.image_id)
                    continue
            yield sample

    def image_info(self, index: int) -> dict:
        """The JSON `images` entry of sample `index` (no mask decoding)."""
        return self._images[self._index[index][0]["id"]]

    def annotations_of(self, index: int) -> list[dict]:
        """The JSON annotations kept for sample `index` (no mask decoding)."""
        return list(self._index[index][1])


def _load_json(annotations: str | os.PathLike | dict) -> dict:
    if isinstance(annotations, dict):
        data = annotations
    else:
        path = Path(annotations)
        if not path.is_file():
            raise FileNotFoundError(f"annotation file not found: {path}")
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"annotation file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or "images" not in data:
        raise ValueError(f"{annotations if not isinstance(annotations, dict) else 'annotations'} is not "
                         "COCO instance JSON: it has no 'images' list")
    return data


def results_json(
    image_id: Any,
    masks: np.ndarray,
    scores: Sequence[float] | np.ndarray | None = None,
    category_id: int | Sequence[int] = 1,
) -> list[dict]:
    """COCO result entries (what `COCO.loadRes` reads) for one image's predicted masks.

    Empty masks are left out: they cannot match anything and have no box.

    Args:
        image_id: the image id the entries refer to.
        masks: `(N, H, W)` bool.
        scores: N confidences in [0, 1]; default 1.0 each.
        category_id: one id for all (class-agnostic evaluation uses 1) or N ids.

    Returns:
        list of `{"image_id", "category_id", "segmentation": RLE (counts str), "bbox": [x, y, w, h],
        "area", "score"}`.
    """
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
    n = len(masks)
    scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != n:
        raise ValueError(f"got {len(scores)} scores for {n} masks")
    cat_ids = [category_id] * n if np.isscalar(category_id) else list(category_id)
    if len(cat_ids) != n:
        raise ValueError(f"got {len(cat_ids)} category ids for {n} masks")
    out = []
    for rle, score, cat in zip(masks_to_rle(masks), scores, cat_ids, strict=True):
        coco_rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        area = float(mask_utils.area(coco_rle))
        if area == 0:
            continue
        out.append({
            "image_id": image_id,
            "category_id": int(cat),
            "segmentation": rle,
            "bbox": [float(v) for v in mask_utils.toBbox(coco_rle)],
            "area": area,
            "score": float(score),
        })
    return out
