"""`unigs colormap encode|decode|coverage` through unigs.cli.main, on coco-mini and hand-made inputs."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from unigs.cli import build_parser, main
from unigs.codec import palette
from unigs.io import load_image, save_png

TABLE_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+) %\s+([\d.]+) %\s+([\d.]+) %$")


def _val(coco_mini):
    return coco_mini / "annotations" / "instances_val2017.json", coco_mini / "val2017"


def test_every_flag_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    colormap = sub.choices["colormap"]
    actions = next(a for a in colormap._actions if isinstance(a, argparse._SubParsersAction))
    assert set(actions.choices) == {"encode", "decode", "coverage"}
    for name, p in actions.choices.items():
        for action in p._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"colormap {name} {action.dest} has no help text"


# ---------------------------------------------------------------------------------------------- encode
def test_encode_coco_mini(coco_mini, tmp_path, capsys):
    ann, images = _val(coco_mini)
    out = tmp_path / "cm"
    assert main(["colormap", "encode", "--annotations", str(ann), "--images", str(images),
                 "--out", str(out), "--limit", "3"]) == 0
    listing = json.loads((out / "colormaps.json").read_text())
    assert len(listing["images"]) == 3 and listing["grid"] == 11 and listing["collisions"] == "nearest"
    ref = COCO(str(ann))
    for rec in listing["images"]:
        cm = load_image(out / rec["colormap"])
        info = ref.imgs[rec["image_id"]]
        assert cm.shape == (info["height"], info["width"], 3)
        assert rec["colormap"] == info["file_name"].rsplit(".", 1)[0] + ".png"
        colors = [tuple(e["color"]) for e in rec["entities"]]
        assert len(set(colors)) == len(colors)  # nearest: every entity distinguishable
        for e in rec["entities"]:
            assert tuple(palette.PALETTE[e["cell"]]) == tuple(e["color"])
            assert ref.cats[ref.anns[e["ann_id"]]["category_id"]]["name"] == e["name"]
        # every colour in the PNG is black or one of the listed entity colours
        present = {tuple(c) for c in np.unique(cm.reshape(-1, 3), axis=0)}
        assert present <= set(colors) | {(0, 0, 0)}
    assert "wrote 3 colormaps" in capsys.readouterr().out


def test_encode_resize_and_strict(coco_mini, tmp_path):
    ann, images = _val(coco_mini)
    out = tmp_path / "cm"
    assert main(["colormap", "encode", "--annotations", str(ann), "--out", str(out), "--limit", "2",
                 "--size", "96", "--collisions", "strict", "--grid", "8"]) == 0
    listing = json.loads((out / "colormaps.json").read_text())
    for rec in listing["images"]:
        assert max(rec["height"], rec["width"]) == 96
        assert load_image(out / rec["colormap"]).shape == (rec["height"], rec["width"], 3)
        assert all(0 <= e["cell"] < 64 and not e["moved"] for e in rec["entities"])


# ---------------------------------------------------------------------------------------------- decode
def _two_box_colormap() -> tuple[np.ndarray, np.ndarray]:
    masks = np.zeros((2, 48, 64), bool)
    masks[0, 4:20, 4:30] = True
    masks[1, 26:44, 34:60] = True
    return palette.encode(masks), masks


def test_decode_hand_made_colormap(tmp_path):
    cm, masks = _two_box_colormap()
    save_png(tmp_path / "in" / "boxes.png", cm)
    photo = np.full(cm.shape, 90, np.uint8)
    save_png(tmp_path / "in" / "photo.png", photo)
    out = tmp_path / "dec"
    assert main(["colormap", "decode", str(tmp_path / "in" / "boxes.png"), "--out", str(out),
                 "--image", str(tmp_path / "in" / "photo.png")]) == 0
    gt = COCO(str(out / "images.json"))
    dt = gt.loadRes(str(out / "results.json"))
    assert len(dt.anns) == 2
    decoded = np.stack([dt.annToMask(a).astype(bool) for a in dt.anns.values()])
    for m in masks:  # each box comes back exactly
        assert any((d == m).all() for d in decoded)
    assert all(a["file_name"] == "boxes.png" for a in dt.anns.values())
    ov = load_image(out / "boxes_overlay.png")
    assert ov.shape == cm.shape and (ov[0, 0] == 90).all()  # drawn over --image, background untouched


def test_encode_then_decode_coco_mini(coco_mini, tmp_path):
    ann, images = _val(coco_mini)
    enc = tmp_path / "cm"
    assert main(["colormap", "encode", "--annotations", str(ann), "--out", str(enc), "--limit", "2",
                 "--size", "128"]) == 0
    files = sorted(str(p) for p in enc.glob("*.png"))
    dec = tmp_path / "dec"
    assert main(["colormap", "decode", *files, "--out", str(dec)]) == 0
    gt = COCO(str(dec / "images.json"))
    dt = gt.loadRes(str(dec / "results.json"))  # valid COCO results
    assert len(gt.imgs) == 2 and len(dt.anns) > 0
    assert {a["image_id"] for a in dt.anns.values()} <= {1, 2}
    for p in files:
        assert (dec / (p.rsplit("/", 1)[1][:-4] + "_overlay.png")).is_file()


def test_decode_with_annotations_keeps_coco_ids_and_the_image_size(coco_mini, tmp_path):
    from pycocotools.cocoeval import COCOeval

    ann, _ = _val(coco_mini)
    enc, dec = tmp_path / "cm", tmp_path / "dec"
    assert main(["colormap", "encode", "--annotations", str(ann), "--out", str(enc), "--limit", "2",
                 "--size", "128"]) == 0
    files = sorted(str(p) for p in enc.glob("*.png"))
    assert main(["colormap", "decode", *files, "--out", str(dec), "--annotations", str(ann)]) == 0
    gt = COCO(str(ann))
    results = json.loads((dec / "results.json").read_text())
    ids = {r["image_id"] for r in results}
    assert len(ids) == 2 and ids <= set(gt.imgs)  # the real COCO ids, not 1..n
    for r in results:
        info = gt.imgs[r["image_id"]]
        assert r["segmentation"]["size"] == [info["height"], info["width"]]  # back at the photo's size
        assert 0.0 < r["score"] <= 1.0
    # scored against the real annotations: the codec round trip (at 128 px) must find the objects
    evaluator = COCOeval(gt, gt.loadRes(results), "segm")
    evaluator.params.imgIds, evaluator.params.useCats = sorted(ids), 0
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[1] > 0.3  # AP@0.5; 0 if the masks were left at 128 px
    save_png(tmp_path / "stranger.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["colormap", "decode", str(tmp_path / "stranger.png"), "--out", str(dec),
                 "--annotations", str(ann)]) == 2


# -------------------------------------------------------------------------------------------- coverage
def test_coverage_table(coco_mini, capsys):
    ann, _ = _val(coco_mini)
    assert main(["colormap", "coverage", "--annotations", str(ann), "--grids", "4", "11",
                 "--limit", "10"]) == 0
    text = capsys.readouterr().out
    assert "10 images" in text and "97.4" in text
    matches = [m for m in map(TABLE_ROW.match, text.splitlines()) if m]
    rows = {int(m[1]): [float(v) for v in m.groups()[2:]] for m in matches}
    assert set(rows) == {4, 11}
    assert rows[4][0] < rows[11][0] <= 100.0  # strict: a coarser grid has more collisions
    assert rows[11][1] == 100.0  # nearest: all distinct
    assert rows[11][0] <= rows[11][2] <= 100.0  # the larger entity of a collision keeps its cell


def test_coverage_one_sampled_entity_is_always_unique(coco_mini, capsys):
    ann, _ = _val(coco_mini)
    assert main(["colormap", "coverage", "--annotations", str(ann), "--grids", "2", "--limit", "5",
                 "--sample", "1"]) == 0
    row = next(m for m in map(TABLE_ROW.match, capsys.readouterr().out.splitlines()) if m)
    # one entity per image cannot collide, even on a 2 x 2 grid
    assert row[1] == "2" and float(row[3]) == 100.0


# ------------------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["encode", "--annotations", "{tmp}/nope.json", "--out", "{tmp}/o"], "nope.json"),
        (["encode", "--annotations", "{ann}", "--images", "{tmp}/noimg", "--out", "{tmp}/o"], "noimg"),
        (["encode", "--annotations", "{ann}", "--out", "{tmp}/o", "--grid", "12"], "12"),
        (["encode", "--annotations", "{ann}", "--out", "{tmp}/o", "--limit", "0"], "--limit"),
        (["encode", "--annotations", "{ann}", "--out", "{tmp}/o", "--size", "2"], "--size"),
        (["decode", "{tmp}/missing.png", "--out", "{tmp}/o"], "missing.png"),
        (["decode", "{tmp}/a.png", "{tmp}/b.png", "--out", "{tmp}/o", "--image", "{tmp}/a.png"], "--image"),
        (["decode", "{tmp}/a.png", "--out", "{tmp}/o", "--delta", "0"], "--delta"),
        (["decode", "{tmp}/a.png", "{tmp}/sub/a.png", "--out", "{tmp}/o"], "stem"),
        (["coverage", "--annotations", "{tmp}/nope.json"], "nope.json"),
        (["coverage", "--annotations", "{ann}", "--grids", "0"], "grid 0"),
    ],
)
def test_bad_inputs_one_line_error(coco_mini, tmp_path, capsys, argv, needle):
    ann, _ = _val(coco_mini)
    (tmp_path / "sub").mkdir()
    for name in ("a.png", "b.png", "sub/a.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    argv = [a.format(tmp=tmp_path, ann=ann) for a in argv]
    assert main(["colormap", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unigs colormap: error:") and needle in err and "\n" not in err
