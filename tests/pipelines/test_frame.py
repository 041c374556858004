"""The working frame: any input size in, results at the input's own size, aligned pixel for pixel."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest
import torch
from pycocotools import mask as mask_utils

from unigs.pipelines import UniGSEntityPipeline, UniGSInpaintPipeline, UniGSSynthesisPipeline
from unigs.pipelines.frame import WorkFrame, masks_to_original, plan_frame, to_original, to_work


def _disks(h, w, centres, radius):
    yy, xx = np.mgrid[:h, :w]
    return np.stack([(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2 for cy, cx in centres])


def test_plan_frame_fits_the_long_side_and_pads_to_the_multiple():
    fr = plan_frame(480, 612, (128, 128), 16)
    assert fr == WorkFrame(original=(480, 612), resized=(100, 128), padded=(112, 128))
    assert fr.describe() == "612x480 -> 128x100 (padded 128x112)"
    assert plan_frame(32, 32, (32, 32), 8).is_identity
    assert plan_frame(20, 30, (64, 64), 8) == WorkFrame((20, 30), (43, 64), (48, 64))  # small inputs grow
    assert plan_frame(100, 50, (64, 128), 8).resized == (64, 32)  # the tighter side of the box decides
    with pytest.raises(ValueError, match="working height must be a positive integer, is 0"):
        plan_frame(10, 10, (0, 10), 8)


def test_to_work_pads_bottom_right_by_kind():
    fr = plan_frame(30, 40, (32, 32), 16)  # → resized (24, 32), padded (32, 32)
    image = np.full((1, 30, 40, 3), 200, np.uint8)
    coarse = np.zeros((1, 30, 40), bool)
    coarse[0, 10:20, 10:20] = True
    work_image, work_cmap, work_mask = (to_work(image, fr, "image"), to_work(image, fr, "colormap"),
                                        to_work(coarse, fr, "mask"))
    assert work_image.shape == work_cmap.shape == (1, 32, 32, 3) and work_mask.shape == (1, 32, 32)
    assert (work_image == 200).all()  # edge pixels repeated: no artificial border
    assert (work_cmap[0, 24:] == 0).all() and (work_cmap[0, :24] == 200).all()  # black = background
    assert not work_mask[0, 24:].any()
    # conservative: every original region pixel lies inside the working region
    back = to_original(work_mask, fr, "mask")
    assert (back[0] | ~coarse[0]).all()
    with pytest.raises(ValueError, match="kind must be one of"):
        to_work(image, fr, "depth")


def test_masks_round_trip_and_stay_disjoint():
    h, w = 480, 612
    centres = [(120, 150), (300, 420), (400, 100)]
    masks = _disks(h, w, centres, 70)
    fr = plan_frame(h, w, (128, 128), 16)
    s = fr.resized[0] / h  # the same disks drawn in the working frame (content top-left, padding after)
    work_masks = np.zeros((3, *fr.padded), bool)
    work_masks[:, : fr.resized[0], : fr.resized[1]] = _disks(
        *fr.resized, [((cy + 0.5) * s - 0.5, (cx + 0.5) * s - 0.5) for cy, cx in centres], 70 * s)
    back = masks_to_original(work_masks, fr)
    assert back.shape == (3, h, w) and back.sum(0).max() == 1
    ious = mask_utils.iou(
        [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in back],
        [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks], [0, 0, 0])
    assert np.diag(ious).min() > 0.95


def test_a_pipeline_returns_everything_at_the_input_size(make_pipe):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (37, 45, 3), dtype=np.uint8)
    coarse = np.zeros((37, 45), bool)
    coarse[5:30, 10:40] = True
    pipe = make_pipe(UniGSInpaintPipeline)
    out = pipe(["dog"], image, coarse, num_inference_steps=2, output_type="np",
               generator=torch.Generator().manual_seed(0))
    assert out.images.shape == out.colormaps.shape == (1, 37, 45, 3)
    assert np.array_equal(out.images[0][~coarse], image[~coarse])  # pasted back at the original size
    assert not out.colormaps[0][~coarse].any()
    assert out.masks[0].shape[1:] == (37, 45) and all(r["size"] == [37, 45] for r in out.rles[0])
    # an explicit working box changes the frame, never the output size
    big = pipe(["dog"], image, coarse, num_inference_steps=2, output_type="np", height=64, width=64)
    assert big.images.shape == (1, 37, 45, 3)


def test_synthesis_keeps_the_input_colormap_exact_at_any_size(make_pipe):
    from unigs.codec import palette

    masks = _disks(50, 70, [(15, 20), (35, 50)], 12)
    cmap = palette.encode(masks)
    out = make_pipe(UniGSSynthesisPipeline)(["ball"], cmap, num_inference_steps=2, output_type="np")
    assert out.images.shape == (1, 50, 70, 3) and np.array_equal(out.colormaps[0], cmap)
    assert {m.tobytes() for m in out.masks[0]} == {m.tobytes() for m in masks}


class EchoEntityPipeline(UniGSEntityPipeline):
    """A test double whose "model colormap" is its own working-frame input image: Φ then clusters the
    photo's colours, so its masks follow the photo's content and misalignment shows up as lost IoU."""

    def build_controls(self, coarse, images=None, colormaps=None):
        self.work_images = super().build_controls(coarse, images=images, colormaps=colormaps)
        return self.work_images

    def decode_colormap_latents(self, latents):
        return self.work_images

    def masks_from_colormaps(self, colormaps, region, delta, keep_background):
        self.work_masks = super().masks_from_colormaps(colormaps, region, delta, keep_background)
        return self.work_masks


def _photo_612x480(coco_mini):
    """A 640×480 coco-mini val photo resized to 612×480, and its largest object's polygons scaled with it."""
    data = json.loads((coco_mini / "annotations" / "instances_val2017.json").read_text())
    for info in sorted(data["images"], key=lambda i: i["id"]):
        if (info["width"], info["height"]) != (640, 480):
            continue
        anns = [a for a in data["annotations"] if a["image_id"] == info["id"] and not a["iscrowd"]
                and isinstance(a["segmentation"], list) and 0.1 < a["area"] / (640 * 480) < 0.5]
        if anns:
            ann = max(anns, key=lambda a: a["area"])
            photo = PIL.Image.open(coco_mini / "val2017" / info["file_name"]).convert("RGB")
            return np.asarray(photo.resize((612, 480), PIL.Image.BICUBIC)), ann["segmentation"]
    pytest.skip("no 640x480 coco-mini photo with a mid-sized object")


def _gt_rle(polygons, sx, sy, h, w):
    """pycocotools' rasterisation of `polygons` scaled by (sx, sy) into an h × w frame."""
    scaled = [[c * (sx if i % 2 == 0 else sy) for i, c in enumerate(p)] for p in polygons]
    return mask_utils.merge(mask_utils.frPyObjects(scaled, h, w))


def test_612x480_photo_masks_match_ground_truth_as_in_the_working_frame(components, coco_mini):
    photo, polygons = _photo_612x480(coco_mini)
    pipe = EchoEntityPipeline.from_components(components)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(photo, num_inference_steps=1, output_type="np", height=128, width=128,
               generator=torch.Generator().manual_seed(0))
    masks = out.masks[0]
    assert masks.shape[1:] == (480, 612) and len(masks) >= 2
    assert all(r["size"] == [480, 612] for r in out.rles[0])

    # IoU with ground truth at the photo's size (polygons scaled 640→612 in x) ...
    gt = _gt_rle(polygons, 612 / 640, 1.0, 480, 612)
    iou_original = mask_utils.iou(out.rles[0], [gt], [0]).max()
    # ... and in the working frame, where Φ ran (content 128x100, padding cropped off)
    fr = pipe.working_frame(480, 612, 128, 128)
    rh, rw = fr.resized
    work = [np.asfortranarray(m[:rh, :rw].astype(np.uint8)) for m in pipe.work_masks[0]]
    gt_work = _gt_rle(polygons, rw / 640, rh / 480, rh, rw)
    iou_working = mask_utils.iou([mask_utils.encode(m) for m in work], [gt_work], [0]).max()
    # the check is sensitive: the same masks 30 px (5 %) to the right lose clearly more than the tolerance
    shifted = [mask_utils.encode(np.asfortranarray(np.roll(m, 30, 1).astype(np.uint8))) for m in masks]
    assert iou_working - mask_utils.iou(shifted, [gt], [0]).max() > 0.02
    assert abs(iou_original - iou_working) < 0.01, (iou_original, iou_working)
