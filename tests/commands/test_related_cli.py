"""The related systems' commands end to end through unigs.cli.main on a tiny saved model:
`unigs synthesize --refine` (TCIG), `unigs inpaint --guided` (SPG-Net), `unigs complete-masks` (LDMSeg)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from tiny_models import tiny_components

from unigs.cli import build_parser, main
from unigs.codec import palette
from unigs.io import load_image, save_png
from unigs.models.loading import save_unigs


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_unigs(tiny_components(seed=0), tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def files(tmp_path):
    """A 32x32 scene: image.png, mask.png (coarse hole, white), colormap.png (palette of 2 entities)."""
    masks = np.zeros((2, 32, 32), dtype=bool)
    masks[0, 2:12, 2:14] = True
    masks[1, 18:30, 16:30] = True
    image = np.full((32, 32, 3), 120, np.uint8)
    image[masks[0]] = (200, 40, 40)
    image[masks[1]] = (30, 60, 210)
    coarse = np.zeros((32, 32), np.uint8)
    coarse[16:, 14:] = 255
    save_png(tmp_path / "image.png", image)
    save_png(tmp_path / "mask.png", coarse)
    save_png(tmp_path / "colormap.png", palette.encode(masks))
    return tmp_path, masks


def _common(model, out):
    return ["--model", str(model), "--steps", "2", "--seed", "0", "--quiet", "--out", str(out)]


def _help_texts(name):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub.choices[name]._actions if not isinstance(a, argparse._HelpAction)}


def test_synthesize_refine(model, files, capsys):
    tmp, _ = files
    out = tmp / "out"
    assert _help_texts("synthesize")["refine"] and _help_texts("synthesize")["refiner"]
    code = main(["synthesize", "--colormap", str(tmp / "colormap.png"), "--names", "dog,sky",
                 "--refine", "0.5", *_common(model, out)])
    assert code == 0, capsys.readouterr().err
    refined, first = load_image(out / "colormap.png"), load_image(out / "colormap.stage1.png")
    assert refined.shape == first.shape == (32, 32, 3) and not np.array_equal(refined, first)


@pytest.mark.parametrize("args, message", [
    (["--refine", "1.5"], "refine strength must be a number in [0, 1], is 1.5"),
    (["--refine", "-0.1"], "is -0.1"),
    (["--refiner", "sd"], "--refiner needs --refine S"),
])
def test_synthesize_refine_bad_input(model, files, capsys, args, message):
    tmp, _ = files
    code = main(["synthesize", "--colormap", str(tmp / "colormap.png"), "--names", "dog", *args,
                 *_common(model, tmp / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_inpaint_guided_predict_edit_inpaint(model, files, capsys):
    tmp, masks = files
    assert all(_help_texts("inpaint")[k] for k in ("guided", "colormap", "predict_only"))
    base = ["inpaint", "--image", str(tmp / "image.png"), "--mask", str(tmp / "mask.png"), "--names", "ball",
            "--guided"]
    first = tmp / "first"
    assert main([*base, "--predict-only", *_common(model, first)]) == 0, capsys.readouterr().err
    predicted = load_image(first / "image.predicted_colormap.png")
    assert predicted.shape == (32, 32, 3) and (first / "image.onestep.png").exists()
    # the user's edit: the hole holds the lower-right rectangle, anti-aliased by 10 levels
    edited = palette.encode(masks[1:]).astype(np.int16) + 10 * masks[1][..., None]
    save_png(tmp / "edited.png", np.clip(edited, 0, 255).astype(np.uint8))
    second = tmp / "second"
    assert main([*base, "--colormap", str(tmp / "edited.png"), *_common(model, second)]) == 0
    image, original = load_image(second / "image.png"), load_image(tmp / "image.png")
    hole = load_image(tmp / "mask.png").max(-1) > 127
    assert np.array_equal(image[~hole], original[~hole])
    assert np.array_equal(load_image(second / "image.colormap.png"), palette.encode(masks[1:] & hole[None]))
    assert not (second / "image.predicted_colormap.png").exists()


@pytest.mark.parametrize("extra, message", [
    (["--guided", "--colormap", "{bad}"], "not palette colours"),
    (["--colormap", "{good}"], "--colormap and --predict-only need --guided"),
    (["--guided", "--predict-only", "--colormap", "{good}"], "cannot be used with --colormap"),
])
def test_inpaint_guided_bad_input(model, files, capsys, extra, message):
    tmp, masks = files
    bad = palette.encode(masks)
    bad[20:24, 20:24] = (100, 30, 200)
    save_png(tmp / "bad.png", bad)
    extra = [e.format(bad=tmp / "bad.png", good=tmp / "colormap.png") for e in extra]
    code = main(["inpaint", "--image", str(tmp / "image.png"), "--mask", str(tmp / "mask.png"), "--names",
                 "ball", *extra, *_common(model, tmp / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_complete_masks(model, files, capsys):
    tmp, masks = files
    assert all(_help_texts("complete-masks").values())
    known = np.zeros((32, 32), np.uint8)
    known[:, :16] = 255
    full = palette.encode(masks)
    save_png(tmp / "known.png", known)
    save_png(tmp / "partial.png", np.where(known[..., None] > 0, full, 0).astype(np.uint8))
    out = tmp / "out"
    code = main(["complete-masks", "--image", str(tmp / "image.png"), "--masks", str(tmp / "partial.png"),
                 "--known", str(tmp / "known.png"), *_common(model, out)])
    assert code == 0, capsys.readouterr().err
    colormap = load_image(out / "image.colormap.png")
    assert np.array_equal(colormap[:, :16], full[:, :16]) and (out / "image.json").exists()


def test_complete_masks_refuses_a_wrong_size_known_mask(model, files, capsys):
    tmp, _ = files
    save_png(tmp / "known.png", np.full((16, 16), 255, np.uint8))
    code = main(["complete-masks", "--image", str(tmp / "image.png"), "--masks", str(tmp / "colormap.png"),
                 "--known", str(tmp / "known.png"), *_common(model, tmp / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "is 16x16 (HxW) but the image is 32x32" in err and len(err.strip().splitlines()) == 1
