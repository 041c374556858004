"""COCO-format entity datasets: COCO instances, EntitySeg and OpenImages converted to COCO JSON.

One reader for all three (DESIGN.md "Data flow": annotations → entities → task sampler). An *entity* is
one annotation's binary mask plus its category name. Masks are rasterised with `pycocotools.mask`
(`frPyObjects` + `decode`, what `COCO.annToMask` does) from polygons, uncompressed RLE (`counts` list,
usual for `iscrowd`) or compressed RLE (`counts` str, usual in EntitySeg/OpenImages conversions).

Rules for bad or unusual data (all chosen once, here; the entry checks are in `unigs.data.coco_checks`):
- The file as a whole must be usable, else `ValueError` naming it: valid UTF-8 JSON, an object with an
  `images` list (`annotations` and `categories`, when present, lists too), no duplicate image or category
  id, and no annotation that points to an image or category id the file never lists.
- Bad entries are skipped and counted, and the rest of the file is used (one `UserWarning` names the first
  few): an image entry without a usable id / file_name / height / width, or larger than the pixel limit
  → `.skipped["bad_image_entry"]`; a category entry without a usable id or name → `.bad_categories`;
  an annotation with wrong types or values (segmentation not polygons of finite numbers or an RLE whose
  size is the image's and whose counts sum to H×W; area not finite >= 0; iscrowd not 0/1; unusable ids),
  or whose image or category entry was skipped → `.bad_annotations[reason]`, ids in `.bad_annotation_ids`.
- Unknown category id in an annotation → `ValueError` naming it, at construction.
- Image without entities (no annotations, or all dropped as crowd / below `min_area` / bad) → skipped and
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
  annotation id. `annotation_mask` itself raises a `ValueError` naming the annotation for anything the
  checks refuse (an RLE of another size, NaN coordinates, ...).
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

from unigs.data.coco_checks import (
    check_area,
    check_category,
    check_image_entry,
    check_iscrowd,
    check_segmentation,
    is_id,
)
from unigs.data.coco_masks import annotation_mask
from unigs.io import check_input_file, load_image

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


def _area(ann: dict, height: int, width: int) -> float:
    """The annotation's `area`, or its mask's pixel count when the JSON has none (validated first)."""
    area = check_area(ann.get("area"), ann.get("id"))
    if area is not None:
        return area
    return float(annotation_mask(ann["segmentation"], height, width, ann.get("id")).sum())


_NO_ID = object()  # stands for the ids of skipped entries that had no usable id


class _BadAnnotation(Exception):
    """One annotation the reader skips and counts: `reason` (the count key), `ann_id`, the sentence."""

    def __init__(self, reason: str, ann_id: Any, sentence: str):
        super().__init__(sentence)
        self.reason, self.ann_id, self.sentence = reason, ann_id, sentence


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
        skipped: Counter of skipped images by reason ("no_entities", "missing_image", "bad_image",
            "bad_image_entry").
        skipped_ids: reason → list of skipped image ids.
        bad_annotations: Counter of skipped annotations by reason; bad_annotation_ids: reason → ids.
        bad_categories: one sentence per skipped category entry.
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
        self.skipped: Counter = Counter()
        self.skipped_ids: dict[str, list] = {}
        self.bad_categories: list[str] = []
        self.bad_annotations: Counter = Counter()
        self.bad_annotation_ids: dict[str, list] = {}
        self._problems: list[str] = []  # the first few sentences, for the warning

        self.categories: dict[Any, str] = {}
        self._isthing: dict[Any, bool | None] = {}
        bad_cats: set = set()
        for k, cat in enumerate(data["categories"]):
            try:
                cat_id, name = check_category(cat, k)
            except ValueError as err:
                self.bad_categories.append(str(err))
                self._problems.append(str(err))
                bad_cats.add(cat.get("id") if isinstance(cat, dict) and is_id(cat.get("id")) else _NO_ID)
                continue
            if cat_id in self.categories:
                raise ValueError(f"{self.source}: category id {cat_id!r} appears twice")
            self.categories[cat_id] = name
            self._isthing[cat_id] = _isthing(cat)

        self._images: dict[Any, dict] = {}
        self._sizes: dict[Any, tuple[int, int]] = {}
        bad_images: set = set()
        for k, img in enumerate(data["images"]):
            try:
                image_id, h, w = check_image_entry(img, k)
            except ValueError as err:
                self._skip("bad_image_entry", img.get("id") if isinstance(img, dict) else None)
                self._problems.append(str(err))
                bad_images.add(img.get("id") if isinstance(img, dict) and is_id(img.get("id")) else _NO_ID)
                continue
            if image_id in self._images:
                raise ValueError(f"{self.source}: image id {image_id!r} appears twice")
            self._images[image_id] = img
            self._sizes[image_id] = (h, w)

        by_image: dict[Any, list[dict]] = {i: [] for i in self._images}
        for k, ann in enumerate(data["annotations"]):
            try:
                keep = self._check_annotation(ann, k, bad_images, bad_cats)
            except _BadAnnotation as bad:
                self.bad_annotations[bad.reason] += 1
                self.bad_annotation_ids.setdefault(bad.reason, []).append(bad.ann_id)
                self._problems.append(bad.sentence)
                continue
            if keep:
                by_image[ann["image_id"]].append(ann)

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
        if self._problems:
            counts = {"annotation(s)": sum(self.bad_annotations.values()),
                      "image entr(ies)": self.skipped["bad_image_entry"],
                      "categor(ies)": len(self.bad_categories)}
            what = ", ".join(f"{n} bad {k}" for k, n in counts.items() if n)
            warnings.warn(f"{self.source}: skipped {what}; first: " + "; ".join(self._problems[:3]),
                          UserWarning, stacklevel=2)

    def _check_annotation(self, ann: Any, index: int, bad_images: set, bad_cats: set) -> bool:
        """Whether `annotations[index]` is kept as an entity (False: crowd or below min_area). Raises
        `_BadAnnotation` for a bad entry, ValueError for one that points to an id the file never lists."""
        if not isinstance(ann, dict):
            raise _BadAnnotation("not an object", f"annotations[{index}]",
                                 f"annotations[{index}] must be an object, is {type(ann).__name__}")
        ann_id = ann.get("id") if is_id(ann.get("id")) else f"annotations[{index}]"
        image_id, cat_id = ann.get("image_id"), ann.get("category_id")
        for key, value in (("image_id", image_id), ("category_id", cat_id)):
            if not is_id(value):
                raise _BadAnnotation(f"bad {key}", ann_id,
                                     f"annotation {ann_id}: {key} must be an int or a string, is {value!r}")
        # an id the file never lists is a mismatched file, unless an entry without a usable id was skipped
        if cat_id in bad_cats or (cat_id not in self.categories and _NO_ID in bad_cats):
            raise _BadAnnotation("category entry invalid", ann_id,
                                 f"annotation {ann_id}: its category {cat_id!r} is invalid")
        if image_id in bad_images or (image_id not in self._images and _NO_ID in bad_images):
            raise _BadAnnotation("image entry invalid", ann_id,
                                 f"annotation {ann_id}: its image {image_id!r} is invalid")
        if cat_id not in self.categories:
            raise ValueError(f"{self.source}: annotation {ann_id} has unknown category id {cat_id!r}")
        if image_id not in self._images:
            raise ValueError(f"{self.source}: annotation {ann_id} points to unknown image id {image_id!r}")
        h, w = self._sizes[image_id]
        try:
            if "segmentation" not in ann:
                raise ValueError(f"annotation {ann_id} has no segmentation")
            check_segmentation(ann["segmentation"], h, w, ann_id)
            crowd = check_iscrowd(ann.get("iscrowd", 0), ann_id)
            if crowd and not self.include_crowd:
                return False
            return _area(ann, h, w) >= self.min_area
        except ValueError as err:
            raise _BadAnnotation("bad segmentation, area or iscrowd", ann_id, str(err)) from None

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
        h, w = self._sizes[img["id"]]
        masks = np.zeros((len(anns), h, w), dtype=bool)  # filled in place: one copy of the stack in memory
        for k, a in enumerate(anns):
            masks[k] = annotation_mask(a["segmentation"], h, w, a.get("id"))
        return EntitySample(
            image_id=img["id"],
            file_name=img["file_name"],
            masks=masks,
            names=[self.categories[a["category_id"]] for a in anns],
            category_ids=[a["category_id"] for a in anns],
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
        data, name = annotations, "annotations"
    else:
        path = check_input_file(annotations, "annotation file")
        name = str(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"annotation file {path} is not valid JSON: {err}") from None
        except RecursionError:
            raise ValueError(f"annotation file {path} is nested too deeply to be COCO JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{name} is not COCO instance JSON: it has no 'images' list")
    for key in ("annotations", "categories"):
        if data.get(key) is None:
            data = {**data, key: []}
        elif not isinstance(data[key], list):
            raise ValueError(f"{name}: '{key}' must be a list, is {type(data[key]).__name__}")
    return data
