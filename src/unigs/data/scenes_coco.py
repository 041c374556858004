"""Procedural scenes written as a COCO dataset on disk, so that every COCO reader (`CocoEntities`,
`unigs eval --data`, pycocotools) reads them like any other set."""

from __future__ import annotations

from pathlib import Path

from pycocotools import mask as mask_utils

from unigs.data.scenes import CATEGORIES, STUFF, SceneDataset
from unigs.io import masks_to_rle, save_png, write_json


def save_scenes_as_coco(dataset: SceneDataset, out_dir: str | Path) -> Path:
    """Write `out_dir/images/<seed>.png` and `out_dir/annotations.json` (COCO instances, RLE masks).

    Every entity (stuff included) is one annotation, `iscrowd` 0, so that `unigs.data.coco.CocoEntities`
    reads scenes like any COCO set and `unigs eval` finds ground truth for entity segmentation.
    Categories are CATEGORIES then STUFF, ids from 1, with COCO-panoptic's `isthing` flag; the image id
    is seed + 1 (unique across splits). Returns the JSON path.
    """
    out_dir = Path(out_dir)
    names = list(CATEGORIES) + list(STUFF)
    categories = [{"id": i + 1, "name": n, "supercategory": "shape" if n in CATEGORIES else "stuff",
                   "isthing": int(n in CATEGORIES)} for i, n in enumerate(names)]
    images, annotations = [], []
    for index in range(len(dataset)):
        seed = dataset.seed_of(index)
        scene = dataset[index]
        file_name = f"{seed:08d}.png"
        save_png(out_dir / "images" / file_name, scene.image)
        h, w = scene.image.shape[:2]
        images.append({"id": seed + 1, "file_name": file_name, "height": h, "width": w})
        for rle, name in zip(masks_to_rle(scene.masks), scene.names, strict=True):
            coded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
            annotations.append({
                "id": len(annotations) + 1, "image_id": seed + 1, "category_id": names.index(name) + 1,
                "segmentation": rle, "area": float(mask_utils.area(coded)),
                "bbox": [float(v) for v in mask_utils.toBbox(coded)], "iscrowd": 0})
    description = f"unigs procedural scenes, split {dataset.split}, {dataset.size} px"
    return write_json(out_dir / "annotations.json", {
        "info": {"description": description}, "images": images, "annotations": annotations,
        "categories": categories}, indent=None)
