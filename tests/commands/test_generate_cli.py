"""`unigs inpaint | synthesize | refer | segment` end to end through unigs.cli.main on a tiny saved model."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from tiny_models import tiny_components

from unigs.cli import build_parser, main
from unigs.codec import palette
from unigs.commands import generate, model_flags
from unigs.io import load_image, rle_to_masks, save_png
from unigs.models.loading import save_unigs
from unigs.outputs import LOCK_NAME


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_unigs(tiny_components(seed=0), tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def files(tmp_path):
    """A 32x32 scene: image.png, mask.png (coarse, white = region), colormap.png (palette of 2 entities)."""
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


RECORD_KEYS = {"image_id", "category_id", "segmentation", "area", "bbox", "score"}


def _results(out, stem="image"):
    results = json.loads((out / f"{stem}.json").read_text())
    for r in results:
        assert RECORD_KEYS <= set(r) <= RECORD_KEYS | {"name"}
        assert 0.0 < r["score"] <= 1.0
    return results


def test_every_flag_has_help():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in generate.SUBCOMMANDS:
        for action in sub.choices[name]._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"unigs {name} {action.dest} has no help text"


def test_inpaint(model, files, capsys):
    folder, _ = files
    out = folder / "out"
    argv = ["inpaint", "--image", str(folder / "image.png"), "--mask", str(folder / "mask.png"),
            "--names", "dog, ball", *_common(model, out)]
    assert main(argv) == 0
    image, colormap = load_image(out / "image.png"), load_image(out / "image.colormap.png")
    assert image.shape == colormap.shape == load_image(out / "image.overlay.png").shape == (32, 32, 3)
    outside = load_image(folder / "mask.png")[..., 0] == 0
    assert np.array_equal(image[outside], load_image(folder / "image.png")[outside])  # pasted back
    results = _results(out)
    printed = capsys.readouterr().out
    assert f"{len(results)} mask(s)" in printed
    assert "32x32 -> 32x32 px (working frame), 2 ddim steps" in printed
    assert all("name" not in r for r in results)  # two names: which mask answers which is unknown
    if results:
        assert not (rle_to_masks([r["segmentation"] for r in results]) & outside).any()
    assert main([*argv, "--no-paste-back", "--out", str(folder / "raw")]) == 0
    assert not np.array_equal(load_image(folder / "raw" / "image.png"), image)


def test_synthesize_with_dpm_solver(model, files):
    folder, masks = files
    out = folder / "out"
    argv = ["synthesize", "--colormap", str(folder / "colormap.png"), "--names", "dog,ball",
            "--scheduler", "dpm++", "--guidance", "3", *_common(model, out)]
    assert main(argv) == 0
    assert np.array_equal(load_image(out / "colormap.colormap.png"), load_image(folder / "colormap.png"))
    results = _results(out, "colormap")
    got = rle_to_masks([r["segmentation"] for r in results])
    assert {m.tobytes() for m in got} == {m.tobytes() for m in masks}  # masks of the input colormap
    assert all(r["score"] == 1.0 for r in results)  # flat palette colours: pure
    assert load_image(out / "colormap.png").shape == (32, 32, 3)


def test_refer_and_segment(model, files):
    folder, _ = files
    argv = ["refer", "--image", str(folder / "image.png"), "--mask", str(folder / "mask.png"),
            "--names", "ball", *_common(model, folder / "refer")]
    assert main(argv) == 0
    assert not (folder / "refer" / "image.png").exists()  # the image is the input: not rewritten
    assert (folder / "refer" / "image.overlay.png").is_file()
    assert all(r["name"] == "ball" for r in _results(folder / "refer"))
    argv = ["segment", "--image", str(folder / "image.png"), "--image-id", "7",
            *_common(model, folder / "seg")]
    assert main(argv) == 0
    assert all(r["image_id"] == 7 for r in _results(folder / "seg"))


def test_segment_a_coco_mini_image_resized(model, coco_mini, tmp_path):
    image = sorted((coco_mini / "val2017").glob("*.jpg"))[0]
    out = tmp_path / "out"
    assert main(["segment", "--image", str(image), "--size", "32", *_common(model, out)]) == 0
    h, w = load_image(image).shape[:2]
    assert load_image(out / f"{image.stem}.colormap.png").shape == (h, w, 3)  # the photo's own size
    for r in _results(out, image.stem):
        assert r["segmentation"]["size"] == [h, w]


def test_errors_are_one_line(model, files, capsys, monkeypatch):
    folder, _ = files
    image, mask = str(folder / "image.png"), str(folder / "mask.png")
    common = _common(model, folder / "out")

    assert main(["refer", "--image", image, "--mask", mask, "--names", " , ", *common]) == 2
    assert "at least one entity name" in capsys.readouterr().err

    save_png(folder / "small.png", np.zeros((16, 32), np.uint8))
    small = str(folder / "small.png")
    assert main(["inpaint", "--image", image, "--mask", small, "--names", "dog", *common]) == 2
    assert "16x32 (HxW) but the image is 32x32" in capsys.readouterr().err

    assert main(["segment", "--image", str(folder / "missing.png"), *common]) == 2
    assert "missing.png" in capsys.readouterr().err

    assert main(["segment", "--image", image, "--size", "0", *common]) == 2
    err = capsys.readouterr().err  # the argparse type of issue 15: one line naming the flag
    assert "argument --size: must be >= 8, is 0" in err and len(err.strip().splitlines()) == 1

    assert main(["segment", "--image", image, "--model", str(folder / "nope"), "--quiet"]) == 2
    assert "nope" in capsys.readouterr().err

    monkeypatch.setattr(model_flags, "default_model_path", lambda: folder / "no-default")
    assert main(["segment", "--image", image, "--quiet", "--out", str(folder / "out")]) == 2
    err = capsys.readouterr().err
    assert "bundled default model" in err and "--model" in err and len(err.strip().splitlines()) == 1


def test_two_inputs_into_one_out_keep_both_and_files_are_0644(model, files):
    folder, _ = files
    save_png(folder / "other.png", load_image(folder / "image.png")[::-1])
    out = folder / "shared"
    for stem in ("image", "other"):
        assert main(["segment", "--image", str(folder / f"{stem}.png"), *_common(model, out)]) == 0
    # the one other file is the folder lock of unigs.outputs (no staging folder is left behind)
    written = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
    assert written == sorted(f"{s}{suffix}" for s in ("image", "other")
                             for suffix in (".colormap.png", ".overlay.png", ".json"))
    for name in written:
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def test_odd_size_input_binary_masks_at_its_size(model, files):
    folder, _ = files
    save_png(folder / "odd.png", np.random.default_rng(0).integers(0, 255, (37, 45, 3), dtype=np.uint8))
    out = folder / "odd"
    assert main(["segment", "--image", str(folder / "odd.png"), "--output-mode", "binary_mask",
                 *_common(model, out)]) == 0
    records = json.loads((out / "odd.json").read_text())
    assert records and load_image(out / "odd.colormap.png").shape == (37, 45, 3)
    masks = np.array([r["segmentation"] for r in records], dtype=bool)
    assert masks.shape == (len(records), 37, 45)
    assert [r["area"] for r in records] == [int(m.sum()) for m in masks]


def test_an_output_never_overwrites_an_input(model, files, capsys):
    folder, _ = files
    argv = ["synthesize", "--colormap", str(folder / "colormap.png"), "--names", "dog",
            *_common(model, folder)]
    assert main(argv) == 2
    assert "would overwrite an input" in capsys.readouterr().err


def test_a_widened_sd_model_says_its_masks_are_meaningless(files, tmp_path, capsys):
    from tiny_models import tiny_sd_inpaint_components, write_sd_folder

    folder, _ = files
    sd = write_sd_folder(tiny_sd_inpaint_components(seed=0), tmp_path / "sd")
    argv = ["segment", "--image", str(folder / "image.png"), *_common(sd, folder / "sd-out")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "warning: this model's colormap output channels are all zero" in printed
    assert "untrained colormap head: meaningless" in printed


def test_every_command_with_model_takes_config_dir():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    with_model = [n for n, p in sub.choices.items() if any(a.dest == "model" for a in p._actions)]
    assert {"inpaint", "synthesize", "refer", "segment", "eval", "demo"} <= set(with_model)
    for name in with_model:
        assert any(a.dest == "config_dir" for a in sub.choices[name]._actions), name


def test_single_file_sd_checkpoint_with_config_dir(files, tmp_path, capsys):
    from tiny_models import tiny_sd_inpaint_components, write_original_sd_checkpoint, write_sd_folder

    folder, _ = files
    sd = tiny_sd_inpaint_components(seed=0, clip=True)
    ckpt = write_original_sd_checkpoint(sd, tmp_path / "sd-inpainting.safetensors")
    config_dir = write_sd_folder(sd, tmp_path / "config")
    argv = ["refer", "--image", str(folder / "image.png"), "--mask", str(folder / "mask.png"),
            "--names", "dog", *_common(ckpt, folder / "single")]
    assert main(argv) == 2
    assert "config_dir" in capsys.readouterr().err  # the single file alone is not enough
    assert main([*argv, "--config-dir", str(config_dir)]) == 0
    assert (folder / "single" / "image.json").is_file()


def test_unigs_help_description_is_whole_sentences(capsys):
    assert main([]) == 2
    text = " ".join(capsys.readouterr().out.split())
    assert "inpaints, synthesises images from entity colormaps, and segments" in text
    assert "`unigs COMMAND --help` describes each command." in text
