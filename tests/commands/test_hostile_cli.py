"""The CLI under careless or hostile input: every expected failure is one line naming the input, exit 2,
before any compute; nothing is silently wrong (the classes of issue 15, one check each)."""

from __future__ import annotations

import json
import stat
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from tiny_models import tiny_components

from unigs.cli import main
from unigs.models.loading import save_unigs


def _png_header(width: int, height: int) -> bytes:
    """A PNG that is only its signature and header chunk: what a decompression bomb shows before decoding."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    save_unigs(tiny_components(seed=0), root / "model")
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(root / "img.png")
    (root / "huge.png").write_bytes(_png_header(20000, 20000))  # claims 400 MP in 45 bytes
    (root / "folder.png").mkdir()
    (root / "notes.txt").write_text("x")
    (root / "bad.yaml").write_text("steps: [1, 2\n")
    return root


def _one_line_error(capsys, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    assert needle in err, err
    return err


SEG = ["segment", "--image", "{r}/img.png", "--model", "{r}/model", "--steps", "1", "--quiet"]


@pytest.mark.parametrize("extra, needle", [
    (["--out", "/etc/passwd/x"], "'/etc/passwd', which is a file"),          # 1. --out under a file
    (["--out", "/dev/null"], "is a file"),                                     # 1. --out is a device
    (["--out", "{r}/notes.txt"], "is a file"),                                 # 1. --out is a file
    (["--device", "foo", "--out", "{r}/o"], "'foo'"),                          # 2. device names
    (["--size", "40000", "--out", "{r}/o"], "--size"),                         # 3. huge working size
    (["--guidance", "nan", "--out", "{r}/o"], "finite"),                       # 6. non-finite guidance
    (["--guidance", "inf", "--out", "{r}/o"], "finite"),
    (["--seed", "-1", "--out", "{r}/o"], "--seed"),                            # 11. seeds out of range
    (["--seed", "99999999999999999999999", "--out", "{r}/o"], "--seed"),
])
def test_generation_flags(files, capsys, extra, needle):
    assert main([a.format(r=files) for a in SEG + extra]) == 2
    _one_line_error(capsys, needle)


@pytest.mark.parametrize("image, needle", [("huge.png", "huge.png"), ("folder.png", "is a folder"),
                                           ("absent.png", "absent.png")])
def test_bad_image_files(files, capsys, image, needle):                       # 3., 11.
    argv = [a.format(r=files) for a in SEG] + ["--out", str(files / "o")]
    argv[2] = str(files / image)
    assert main(argv) == 2
    _one_line_error(capsys, needle)


def test_cuda_without_cuda(files, capsys):                                     # 2.
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["eval", "--model", str(files / "model"), "--device", "cuda", "--out", str(files / "e")]) == 2
    _one_line_error(capsys, "CUDA is not available")


@pytest.mark.parametrize("argv, needle", [
    (["train", "--config", "{r}/bad.yaml", "--output", "{r}/run"], "bad.yaml is not valid YAML"),   # 7.
    (["train", "--set", "steps=[1", "--output", "{r}/run"], "--set 'steps=[1'"),
    (["train-vae", "--config", "{r}/bad.yaml", "--output", "{r}/run"], "line 2"),
    (["eval", "--model", "{r}/model", "--out", "/etc/passwd/x"], "is a file"),                       # 1.
    (["colormap", "decode", "{r}/huge.png", "--out", "{r}/d"], "huge.png"),                          # 3.
])
def test_other_commands(files, capsys, argv, needle):
    assert main([a.format(r=files) for a in argv]) == 2
    _one_line_error(capsys, needle)


def _coco(root, annotations, images=None):
    images = images or [{"id": 1, "file_name": "a.jpg", "height": 16, "width": 16},
                        {"id": 2, "file_name": "a.png", "height": 16, "width": 16},
                        {"id": 3, "file_name": "a.png", "height": 16, "width": 16}]
    path = root / "ann.json"
    path.write_text(json.dumps({"images": images, "categories": [{"id": 1, "name": "cat"}],
                                "annotations": annotations}))
    return path


def test_colormaps_of_one_file_stem_do_not_overwrite_and_bad_annotations_are_counted(tmp_path, capsys):
    square = [[2, 2, 10, 2, 10, 10, 2, 10]]                                    # 9. collisions, 4. COCO
    anns = [{"id": 10 + i, "image_id": i, "category_id": 1, "area": 64.0, "segmentation": square}
            for i in (1, 2, 3)]
    anns.append({"id": 99, "image_id": 1, "category_id": 1, "area": 64.0, "segmentation": [[2, None, 3, 4]]})
    path = _coco(tmp_path, anns)
    assert main(["colormap", "encode", "--annotations", str(path), "--out", str(tmp_path / "out")]) == 0
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert len(pngs) == 3, pngs
    record = json.loads((tmp_path / "out" / "colormaps.json").read_text())
    assert sorted(r["colormap"] for r in record["images"]) == pngs
    assert record["bad_annotation_ids"] == {"bad segmentation, area or iscrowd": [99]}
    for p in (tmp_path / "out").iterdir():                                    # 10. files are 0644
        if not p.name.startswith("."):
            assert stat.S_IMODE(p.stat().st_mode) == 0o644
    assert "annotation 99" in capsys.readouterr().err


def test_coverage_of_a_file_without_entities_is_not_100_percent(tmp_path, capsys):      # 10.
    path = _coco(tmp_path, [])
    assert main(["colormap", "coverage", "--annotations", str(path)]) == 0
    out = capsys.readouterr().out
    assert "100.0" not in out and "n/a" in out
