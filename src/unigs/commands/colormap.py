"""`unigs colormap`: entity masks ⇄ entity colormaps (paper §3.2), and palette coverage.

    unigs colormap encode   --annotations A.json --out DIR   COCO JSON → one colormap PNG per image
    unigs colormap decode   FILE... --out DIR                colormap PNGs → COCO RLE results + overlays
    unigs colormap coverage --annotations A.json ...         share of entities with a unique colour

Heavy imports happen inside the actions so that `unigs --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unigs.checks import arg_float, arg_int, arg_seed

MAX_SIDE = 4096  # --size: the longer side; 4096² is the image pixel limit of unigs.io

COVERAGE_NOTE = """\
How this compares with the paper's 97.4 % (§3.2: the palette covers "nearly all labeled entities",
97.4 % coverage ratio across COCO, ADE20K, OpenImages and EntitySeg): the paper does not say how it
counts. Its training samples hold few entities (Table 2: up to 4 per sample), and ADE20K/EntitySeg add
large stuff regions whose centres spread over the grid. Here every entity of the whole image counts;
COCO images hold ~8 instances on average and up to dozens (crowds of people, cars, books), often with
centres in one grid cell, so strict (paper-literal: a shared colour) coverage comes out lower.
'nearest' (the default of `encode`) moves the smaller entity of a collision to the nearest free cell,
so every entity keeps a distinct colour; 'own cell' is the share that did not have to move.
`--sample 4` counts at most 4 random entities per image, closer to the paper's training samples."""


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    enc = actions.add_parser("encode", help="COCO-format annotations → one entity colormap PNG per image",
                             description="Paint each image's entity masks with the location-aware palette "
                             "(paper §3.2). Writes <out>/<image file name>.png and <out>/colormaps.json "
                             "(per image: entity names, annotation ids, colours and grid cells).")
    enc.add_argument("--annotations", required=True, type=Path,
                     help="COCO instance JSON (COCO, EntitySeg or OpenImages converted to COCO)")
    enc.add_argument("--images", type=Path, default=None,
                     help="image folder; when given, images missing from it are skipped and counted "
                     "(the colormaps themselves need only the JSON)")
    enc.add_argument("--out", required=True, type=Path, help="output folder (created)")
    _add_palette_flags(enc)
    enc.add_argument("--collisions", choices=("nearest", "strict"), default="nearest",
                     help="two entity centres in one cell: 'nearest' moves the smaller one to the nearest "
                     "free cell (default), 'strict' gives both the same colour (paper-literal)")
    enc.add_argument("--size", type=arg_int(8, MAX_SIDE), default=None,
                     help="resize so that the longer side is SIZE pixels (nearest-neighbour on the masks) "
                     f"before encoding (8..{MAX_SIDE}); default: the image's own size")

    dec = actions.add_parser("decode", help="colormap PNGs → entity masks as COCO RLE results + overlays",
                             description="Split each colormap into entity masks with the progressive "
                             "dichotomy (paper Eq. 6-7). Writes <out>/results.json (mask records in SAM's "
                             "automatic-mask-generator format that COCO.loadRes reads: category 1, RLE, "
                             "area, bbox XYWH, score = colour purity (unigs.records), 'file_name'; image_id "
                             "is the COCO id with --annotations, else the input's position 1..n), "
                             "<out>/images.json (the matching COCO 'images' table, so "
                             "COCO(images.json).loadRes(results.json) works) and <out>/<stem>_overlay.png "
                             "per input.")
    dec.add_argument("files", nargs="+", type=Path, metavar="FILE", help="colormap image(s)")
    dec.add_argument("--out", required=True, type=Path, help="output folder (created)")
    dec.add_argument("--delta", type=arg_float(0, low_open=True), default=10.0,
                     help="dichotomy stopping threshold δ (paper Table 9a: 10 is best)")
    dec.add_argument("--keep-background", action="store_true",
                     help="keep the near-black background as a mask (entity segmentation)")
    dec.add_argument("--image", type=Path, default=None,
                     help="draw the overlay on this image instead of the colormap (only with one FILE)")
    dec.add_argument("--annotations", type=Path, default=None,
                     help="COCO JSON of the images the colormaps were encoded from (`colormap encode`): each "
                     "colormap is matched to the image whose file_name has its stem, its results keep that "
                     "image's id, and masks of a colormap encoded with --size are resized back to the "
                     "image's own height x width")

    cov = actions.add_parser("coverage", help="share of entities that keep a unique colour, per grid size",
                             description="Palette coverage on a whole data set, strict vs nearest, for "
                             "each grid size. Reads masks and image sizes from the JSON only.\n\n"
                             + COVERAGE_NOTE, formatter_class=argparse.RawDescriptionHelpFormatter)
    cov.add_argument("--annotations", required=True, type=Path, nargs="+",
                     help="one or more COCO instance JSONs (counted together)")
    cov.add_argument("--images", type=Path, default=None, help="not needed; accepted and ignored")
    cov.add_argument("--grids", type=int, nargs="+", default=[8, 10, 11],
                     help="grid sizes b to compare (b² ≤ 124)")
    cov.add_argument("--include-crowd", action="store_true", help="count iscrowd=1 annotations as entities")
    cov.add_argument("--min-area", type=arg_float(0), default=1.0,
                     help="ignore annotations smaller than this (pixels)")
    cov.add_argument("--limit", type=arg_int(1), default=None,
                     help="use only the first N images of each file")
    cov.add_argument("--sample", type=arg_int(1), default=None, metavar="K",
                     help="count only K randomly drawn entities per image (closer to the paper's training "
                     "samples, which hold up to 4); default: all entities")
    cov.add_argument("--seed", type=arg_seed, default=0, help="random seed for --sample")


def _add_palette_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", type=arg_int(1, 11), default=11,
                   help="palette grid size b (b² ≤ 124; paper: 11)")
    p.add_argument("--include-crowd", action="store_true", help="encode iscrowd=1 annotations as entities")
    p.add_argument("--min-area", type=arg_float(0), default=1.0,
                   help="drop annotations smaller than this (pixels)")
    p.add_argument("--limit", type=arg_int(1), default=None, help="process only the first N images")


def run(args: argparse.Namespace) -> int:
    return {"encode": _encode, "decode": _decode, "coverage": _coverage}[args.action](args)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")


def _resize_masks(masks, size: int):
    """(N, H, W) bool → (N, h, w) bool with max(h, w) = size, nearest neighbour."""
    import numpy as np
    from PIL import Image

    n, h, w = masks.shape
    scale = size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.zeros((n, new_h, new_w), dtype=bool)
    for i in range(n):
        out[i] = np.asarray(Image.fromarray(masks[i]).resize((new_w, new_h), Image.NEAREST))
    return out


def _output_name(file_name: str, suffix: str) -> Path:
    """Relative output path for an input file name: same sub-folders, new suffix; never escapes --out."""
    rel = Path(file_name)
    if rel.is_absolute() or ".." in rel.parts:
        rel = Path(rel.name)
    return rel.with_suffix(suffix)


def _unique_name(rel: Path, image_id, used: set[Path]) -> Path:
    """`rel`, or `<stem>-<image_id><suffix>` when another image already took it (two COCO images with one
    file name, or a.jpg and a.png): no colormap overwrites another's."""
    if rel not in used:
        return rel
    candidate, n = rel.with_name(f"{rel.stem}-{image_id}{rel.suffix}"), 1
    while candidate in used:
        n += 1
        candidate = rel.with_name(f"{rel.stem}-{image_id}-{n}{rel.suffix}")
    return candidate


def _encode(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unigs.codec import palette
    from unigs.data.coco import CocoEntities
    from unigs.io import save_png, write_json
    from unigs.outputs import OutputSet

    _check_limit(args.limit)
    ds = CocoEntities(args.annotations, args.images, include_crowd=args.include_crowd,
                      min_area=args.min_area, on_error="skip")
    outputs = OutputSet(args.out)
    n = len(ds) if args.limit is None else min(args.limit, len(ds))
    records, n_entities, n_moved, used = [], 0, 0, set()
    with outputs:
        for i in tqdm(range(n), desc="encode", unit="image", disable=None):
            sample = ds[i]
            masks = sample.masks if args.size is None else _resize_masks(sample.masks, args.size)
            keep = masks.reshape(len(masks), -1).any(1)  # entities that vanished in the resize are dropped
            masks = masks[keep]
            assignment = palette.assign(masks, grid=args.grid, collisions=args.collisions)
            colormap = palette.paint(masks, assignment.colors, assignment.paint_order)
            rel = _unique_name(_output_name(sample.file_name, ".png"), sample.image_id, used)
            used.add(rel)
            save_png(outputs.path(rel), colormap)
            kept = [j for j in range(len(keep)) if keep[j]]
            entities = [{
                "ann_id": sample.ann_ids[j], "name": sample.names[j], "category_id": sample.category_ids[j],
                "isthing": sample.isthing[j], "cell": int(assignment.cells[k]),
                "color": [int(c) for c in assignment.colors[k]], "moved": bool(assignment.moved[k]),
                "area": int(masks[k].sum()),
            } for k, j in enumerate(kept)]
            n_entities += len(entities)
            n_moved += int(assignment.moved.sum())
            records.append({"image_id": sample.image_id, "file_name": sample.file_name, "colormap": str(rel),
                            "height": int(colormap.shape[0]), "width": int(colormap.shape[1]),
                            "dropped_by_resize": [sample.ann_ids[j] for j in range(len(keep)) if not keep[j]],
                            "entities": entities})
        write_json(outputs.path("colormaps.json"), {
            "annotations": str(args.annotations), "grid": args.grid, "collisions": args.collisions,
            "size": args.size,
            "palette_order": "cell i -> palette.PALETTE[i] (levels 0,64,128,192,255; r->g->b)",
            "skipped": dict(ds.skipped), "bad_annotations": dict(ds.bad_annotations),
            "bad_annotation_ids": ds.bad_annotation_ids, "images": records})
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(ds.skipped.items())) or "none"
    bad = sum(ds.bad_annotations.values())
    print(f"wrote {len(records)} colormaps ({n_entities} entities, {n_moved} moved by "
          f"'{args.collisions}') to {args.out}; skipped images: {skipped}"
          + (f"; skipped bad annotations: {bad} (ids in colormaps.json)" if bad else ""))
    return 0


def _decode(args: argparse.Namespace) -> int:
    if args.image is not None and len(args.files) != 1:
        raise ValueError(f"--image needs exactly one colormap FILE, got {len(args.files)}")
    from unigs.io import check_input_file

    for f in args.files:  # fail before any work is done
        check_input_file(f, "colormap file")
    stems = [f.stem for f in args.files]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise ValueError(f"several inputs share the file stem {dupes[0]!r}; their overlays would collide")

    from unigs.io import load_image
    from unigs.outputs import OutputSet

    background = load_image(args.image) if args.image is not None else None
    outputs = OutputSet(args.out)

    results, images = [], []
    with outputs:
        _decode_all(args, outputs, background, results, images)
    print(f"decoded {len(images)} colormap(s) into {len(results)} masks; wrote {args.out / 'results.json'}")
    return 0


def _decode_all(args, outputs, background, results: list, images: list) -> None:
    from tqdm import tqdm

    from unigs.codec.dichotomy import decode_with_colors
    from unigs.io import load_image, save_png, write_json
    from unigs.pipelines.frame import WorkFrame, masks_to_original
    from unigs.records import color_purity, mask_records
    from unigs.visualize import overlay

    coco_images = _coco_images_by_stem(args.annotations, args.files) if args.annotations else {}

    for position, path in enumerate(tqdm(args.files, desc="decode", unit="image", disable=None), start=1):
        colormap = load_image(path, "colormap")
        masks, _ = decode_with_colors(colormap, delta=args.delta, keep_background=args.keep_background)
        scores = color_purity(colormap, masks)
        info = coco_images.get(path.stem)
        image_id, height, width = position, int(colormap.shape[0]), int(colormap.shape[1])
        image_masks = masks
        if info is not None:
            image_id, height, width = info["id"], int(info["height"]), int(info["width"])
            if (height, width) != colormap.shape[:2]:  # encoded with --size: back to the image's frame
                shape = colormap.shape[:2]
                image_masks = masks_to_original(masks, WorkFrame((height, width), shape, shape))
        entries = mask_records(image_masks, scores, image_id=image_id)
        for e in entries:
            e["file_name"] = path.name
        results.extend(entries)
        images.append({"id": image_id, "file_name": info["file_name"] if info else path.name,
                       "path": str(path), "height": height, "width": width})
        under = colormap
        if background is not None:
            if background.shape != colormap.shape:
                raise ValueError(f"--image {args.image} is {background.shape[1]}x{background.shape[0]} but "
                                 f"the colormap {path} is {colormap.shape[1]}x{colormap.shape[0]}")
            under = background
        save_png(outputs.path(f"{path.stem}_overlay.png"), overlay(under, masks))
    write_json(outputs.path("results.json"), results)
    write_json(outputs.path("images.json"), {
        "images": images, "annotations": [],
        "categories": [{"id": 1, "name": "entity", "supercategory": "entity"}]})


def _coco_images_by_stem(annotations: Path, files: list[Path]) -> dict[str, dict]:
    """COCO `images` entries of `annotations` keyed by file stem, for the stems of `files` (each must match
    exactly one image)."""
    import json

    if not annotations.is_file():
        raise FileNotFoundError(f"annotations file not found: {annotations}")
    try:
        table = json.loads(annotations.read_text(encoding="utf-8"))["images"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"cannot read the COCO 'images' table of {annotations}: {err}") from err
    by_stem: dict[str, list[dict]] = {}
    for info in table:
        by_stem.setdefault(Path(str(info.get("file_name", ""))).stem, []).append(info)
    out = {}
    for f in files:
        found = by_stem.get(f.stem, [])
        if len(found) != 1:
            raise ValueError(f"colormap {f} matches {len(found)} images named {f.stem}.* in {annotations}; "
                             "expected exactly one")
        out[f.stem] = found[0]
    return out


def _coverage(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from unigs.codec import palette
    from unigs.data.coco import CocoEntities

    _check_limit(args.limit)
    if args.sample is not None and args.sample < 1:
        raise ValueError(f"--sample must be >= 1, got {args.sample}")
    rng = np.random.default_rng(args.seed)
    for g in args.grids:
        if g < 1 or g * g > len(palette.PALETTE):
            raise ValueError(f"grid {g} is invalid: need 1 <= b and b² <= {len(palette.PALETTE)}")
    datasets = [CocoEntities(a, None, include_crowd=args.include_crowd, min_area=args.min_area)
                for a in args.annotations]
    bad = sum(sum(ds.bad_annotations.values()) for ds in datasets)
    totals = {g: [0, 0, 0, 0] for g in args.grids}  # images, entities, unique strict, kept nearest
    work = [(ds, i) for ds in datasets for i in range(min(len(ds), args.limit or len(ds)))]
    for ds, i in tqdm(work, desc="coverage", unit="image", disable=None):
        masks = ds[i].masks
        if args.sample is not None and len(masks) > args.sample:
            masks = masks[np.sort(rng.choice(len(masks), size=args.sample, replace=False))]
        for g in args.grids:
            s = palette.coverage_stats([masks], grid=g)
            for k, v in enumerate((s.images, s.entities, s.unique_strict, s.kept_nearest)):
                totals[g][k] += v
    n_images, n_entities = totals[args.grids[0]][:2]
    crowd = "crowd included" if args.include_crowd else "crowd excluded"
    if args.sample is not None:
        crowd += f", at most {args.sample} random entities per image, seed {args.seed}"
    print(f"palette coverage: {n_images} images, {n_entities} entities ({crowd}) from "
          + ", ".join(a.name for a in args.annotations)
          + (f"; {bad} bad annotation(s) skipped" if bad else ""))
    if n_entities == 0:
        # a share of nothing is undefined, not 100 %
        print("no entities to count: coverage is undefined (n/a); check --min-area, --include-crowd and "
              "the annotations")
        return 0
    print(f"{'grid':>4}  {'cells':>5}  {'strict unique':>13}  {'nearest unique':>14}  "
          f"{'nearest own cell':>16}")
    for g in args.grids:
        _, ent, uniq, kept = totals[g]
        share = [100.0 * x / ent for x in (uniq, ent, kept)]
        # nearest gives every entity a colour of its own (at most 124 entities per image is checked).
        print(f"{g:>4}  {g * g:>5}  {share[0]:>11.1f} %  {share[1]:>12.1f} %  {share[2]:>14.1f} %")
    print()
    print(COVERAGE_NOTE)
    sys.stdout.flush()
    return 0
