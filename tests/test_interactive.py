"""unigs.interactive: editor inputs → one run of a task, with progress, cancel and output files (tiny
components, so the results are not meaningful; the mechanics are)."""

from __future__ import annotations

import json
import threading
import zipfile

import numpy as np
import pytest
from tiny_models import tiny_components

from unigs import interactive
from unigs.interactive import Region, RunSettings


@pytest.fixture(scope="module")
def components():
    return tiny_components(seed=0)


def _picture():
    image = np.full((32, 32, 3), 120, np.uint8)
    image[4:14, 4:14] = (200, 40, 40)
    return image


def _region(box, names):
    mask = np.zeros((32, 32), bool)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = True
    return Region(mask, names)


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="steps"):
        RunSettings(steps=0)
    with pytest.raises(ValueError, match="guidance"):
        RunSettings(guidance=float("nan"))


def test_prepare_inputs_from_editor_value():
    h = w = 64
    layer = np.zeros((h, w, 4), np.uint8)
    layer[8:40, 8:40, 3] = 255
    value = {"background": np.full((h, w, 4), 255, np.uint8),
             "layers": [layer, np.zeros((h, w, 4), np.uint8)]}
    picture, regions, names = interactive.prepare_inputs("inpainting", value, "dog, cat", side=32, multiple=8)
    assert picture.shape == (32, 32, 3)
    assert len(regions) == 1 and regions[0].names == ["dog", "cat"]
    assert regions[0].mask.sum() == 16 * 16 and regions[0].mask[4:20, 4:20].all()
    # the entity task ignores strokes
    assert interactive.prepare_inputs("entity", value, "", 32, 8)[1] == []
    with pytest.raises(ValueError, match="no picture yet"):
        interactive.prepare_inputs("inpainting", {"background": None, "layers": []}, "", 32, 8)
    # a picture without any layer (the editor's value before the first stroke): no regions, no crash
    no_layers = {"background": value["background"], "layers": []}
    assert interactive.prepare_inputs("inpainting", no_layers, "dog", 32, 8)[1] == []


def test_task_defaults_are_the_pipelines():
    from unigs.pipelines import inpainting, synthesis

    for task, module in (("inpainting", inpainting), ("synthesis", synthesis)):
        assert interactive.task_defaults(task) == (module.NUM_INFERENCE_STEPS, module.GUIDANCE_SCALE)
    with pytest.raises(ValueError, match="painting"):
        interactive.task_defaults("painting")


def test_check_request_messages():
    pic = _picture()
    with pytest.raises(ValueError, match="needs a region"):
        interactive.check_request("inpainting", pic, [])
    with pytest.raises(ValueError, match="region 1 has no names"):
        interactive.check_request("referring", pic, [_region((0, 8, 0, 8), [])])
    with pytest.raises(ValueError, match="all black"):
        interactive.check_request("synthesis", np.zeros_like(pic), [])
    interactive.check_request("entity", pic, [])  # needs nothing else


def test_inpainting_runs_regions_in_turn_with_progress(components):
    seen = []
    regions = [_region((0, 16, 0, 16), ["dog"]), _region((16, 32, 16, 32), ["ball", "cat"])]
    result = interactive.run_task(components, "inpainting", _picture(), regions, RunSettings(steps=2),
                                  on_step=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 2 regions x 2 steps, counted across both calls
    assert result.image.shape == (32, 32, 3) and result.colormap.shape == (32, 32, 3)
    outside = ~(regions[0].mask | regions[1].mask)
    assert (result.image[outside] == _picture()[outside]).all()  # pasted back
    assert not result.colormap[outside].any()
    assert len(result.labels) == len(result.masks) == len(result.rles) == len(result.colors)
    assert all(label.split(" #")[0] in ("dog", "ball or cat") for label in result.labels)


def test_cancel_stops_between_steps(components):
    cancel = threading.Event()

    def on_step(done, total):
        if done == 1:
            cancel.set()

    with pytest.raises(interactive.Cancelled, match="after 1 of 5 steps"):
        interactive.run_task(components, "entity", _picture(), [], RunSettings(steps=5), on_step=on_step,
                             cancel=cancel)


def test_synthesis_paints_regions_with_the_palette(components):
    from unigs.codec import palette

    regions = [_region((0, 16, 0, 32), ["sky"]), _region((20, 28, 4, 12), ["ball"])]
    result = interactive.run_task(components, "synthesis", np.zeros((32, 32, 3), np.uint8), regions,
                                  RunSettings(steps=1, sampler="dpm++"))
    expected = palette.encode(np.stack([r.mask for r in regions]), grid=11)
    assert (result.colormap == expected).all()  # the known half is the Ψ colormap of the strokes


def test_owner_and_labels():
    regions = [_region((0, 16, 0, 16), ["dog"]), _region((16, 32, 0, 32), ["sky"])]
    masks = np.zeros((3, 32, 32), bool)
    masks[0, 2:6, 2:6] = True
    masks[1, 20:30, 0:10] = True
    masks[2, 20:22, 20:22] = True
    owners = interactive.owner_regions(masks, regions)
    assert owners == [0, 1, 1]
    assert interactive.mask_labels(owners, regions) == ["dog", "sky", "sky #2"]
    assert interactive.mask_labels([-1, -1], []) == ["entity 1", "entity 2"]


def test_write_outputs(components, tmp_path):
    masks = np.zeros((2, 32, 32), bool)
    masks[0, :8] = True
    masks[1, 20:] = True
    result = interactive.make_result("entity", _picture(), _picture(), masks, [-1, -1], [])
    paths = interactive.write_outputs(result, tmp_path, image_id=7)
    records = json.loads(paths["results.json"].read_text())
    assert [r["image_id"] for r in records] == [7, 7] and records[0]["name"] == "entity 1"
    from unigs.io import rle_to_masks

    assert (rle_to_masks([r["segmentation"] for r in records]) == masks).all()
    with zipfile.ZipFile(paths["masks.zip"]) as zf:
        assert zf.namelist() == ["mask_01.png", "mask_02.png"]
    overlay = interactive.legend_overlay(result)
    assert overlay.shape[0] > 32 and overlay.shape[2] == 3  # the legend strip sits under the image
