"""unigs.io: image loading in every mode, PNG writing, COCO RLE round trips, atomic JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from unigs.io import load_image, masks_to_rle, rle_to_masks, save_png, write_json


def _rgb(h=6, w=4):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------- load_image
def test_load_png_rgb_exact(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (6, 4, 3)
    np.testing.assert_array_equal(out, arr)


def test_load_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(24, dtype=np.uint8).reshape(6, 4) * 10
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (6, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_load_rgba_drops_alpha_keeping_colours(tmp_path):
    rgba = np.zeros((3, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (64, 128, 192)
    rgba[..., 3] = 10  # nearly transparent: compositing would change the colour, dropping must not
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png") == np.array([64, 128, 192], np.uint8)).all()


def test_load_palette_and_cmyk(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == (6, 4, 3)
    Image.new("CMYK", (5, 3), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == (3, 5, 3)
    assert out[..., 0].min() > 200 and out[..., 1:].max() < 60


def test_load_16bit_grayscale_scaled(tmp_path):
    arr = np.array([[0, 65535], [257 * 100, 257 * 200]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = load_image(tmp_path / "d.png")
    np.testing.assert_array_equal(out[..., 0], [[0, 255], [100, 200]])


def test_load_applies_exif_orientation(tmp_path):
    arr = np.zeros((2, 4, 3), dtype=np.uint8)  # 2 rows, 4 columns
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° CW to display"
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "r.jpg").shape == (4, 2, 3)


def test_load_missing_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        load_image(tmp_path / "nope.jpg")


def test_load_garbage_and_truncated_jpeg_raise_value_error(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"this is not a jpeg at all")
    with pytest.raises(ValueError, match="bad.jpg"):
        load_image(tmp_path / "bad.jpg")
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


# --------------------------------------------------------------------------------------------- save_png
def test_save_png_creates_parents_and_round_trips(tmp_path):
    arr = _rgb()
    path = save_png(tmp_path / "x" / "y" / "a.png", arr)
    np.testing.assert_array_equal(load_image(path), arr)
    save_png(tmp_path / "m.png", np.eye(3, dtype=bool))
    assert np.asarray(Image.open(tmp_path / "m.png")).max() == 255


@pytest.mark.parametrize(
    "bad", [np.zeros((3, 3), np.float32), np.zeros((3, 3, 2), np.uint8), np.zeros(5, np.uint8)]
)
def test_save_png_rejects_bad_arrays(tmp_path, bad):
    with pytest.raises(ValueError):
        save_png(tmp_path / "a.png", bad)


# ------------------------------------------------------------------------------------------------- RLE
def test_rle_round_trip_and_json(tmp_path):
    rng = np.random.default_rng(1)
    masks = rng.random((3, 7, 5)) > 0.5
    rles = masks_to_rle(masks)
    assert len(rles) == 3 and all(isinstance(r["counts"], str) and r["size"] == [7, 5] for r in rles)
    json.dumps(rles)
    np.testing.assert_array_equal(rle_to_masks(rles), masks)
    # same as pycocotools' own decoding
    ref = mask_utils.decode([{"size": r["size"], "counts": r["counts"].encode()} for r in rles])
    np.testing.assert_array_equal(ref.transpose(2, 0, 1).astype(bool), masks)


def test_rle_known_uncompressed_counts():
    # column-major run lengths of [[0,1,1],[0,0,1]]: 0,0 | 1,0 | 1,1 → runs 2 zeros, 1 one, 1 zero, 2 ones
    expected = np.array([[0, 1, 1], [0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(rle_to_masks([{"size": [2, 3], "counts": [2, 1, 1, 2]}])[0], expected)
    np.testing.assert_array_equal(rle_to_masks(masks_to_rle(expected))[0], expected)


def test_rle_edge_cases():
    assert masks_to_rle(np.zeros((0, 4, 4), bool)) == []
    assert rle_to_masks([], height=4, width=5).shape == (0, 4, 5)
    with pytest.raises(ValueError, match="height and width"):
        rle_to_masks([])
    a, b = masks_to_rle(np.ones((1, 2, 2), bool))[0], masks_to_rle(np.ones((1, 3, 2), bool))[0]
    with pytest.raises(ValueError, match="sizes"):
        rle_to_masks([a, b])
    with pytest.raises(ValueError, match="expected"):
        rle_to_masks([a], height=3, width=2)
    with pytest.raises(ValueError, match="counts"):
        rle_to_masks([{"size": [2, 2], "counts": 5}])


# ------------------------------------------------------------------------------------------ write_json
def test_write_json_atomic_and_numpy(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_json(path, {"n": np.int64(3), "x": np.float32(0.5), "arr": np.arange(3), "ok": np.bool_(True)})
    assert json.loads(path.read_text()) == {"n": 3, "x": 0.5, "arr": [0, 1, 2], "ok": True}
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    # the failed write left the previous file intact and no temporary file behind
    assert json.loads(path.read_text())["n"] == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


# ------------------------------------------------------------------------------- hostile image files
def test_huge_image_is_refused_from_its_header(tmp_path, monkeypatch):
    import stat

    from unigs.io import load_image, write_json

    Image.new("L", (5000, 4000)).save(tmp_path / "big.png")  # 20 MP, a few KB on disk
    with pytest.raises(ValueError, match="big.png.*megapixels"):
        load_image(tmp_path / "big.png")
    monkeypatch.setenv("UNIGS_MAX_PIXELS", str(100))
    Image.new("RGB", (11, 10)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="UNIGS_MAX_PIXELS"):
        load_image(tmp_path / "small.png")
    monkeypatch.delenv("UNIGS_MAX_PIXELS")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's own DecompressionBombError, small
    Image.new("L", (50, 50)).save(tmp_path / "bomb.png")
    with pytest.raises(ValueError, match="bomb.png"):
        load_image(tmp_path / "bomb.png")
    assert stat.S_IMODE(write_json(tmp_path / "r.json", {"a": float("nan")}).stat().st_mode) == 0o644
    assert (tmp_path / "r.json").read_text().replace(" ", "").replace("\n", "") == '{"a":null}'


def test_folder_float_tiff_and_nan_tiff(tmp_path):
    from unigs.io import load_image

    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ValueError, match="dir.png is a folder"):
        load_image(tmp_path / "dir.png")
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(tmp_path / "half.tif")
    assert (load_image(tmp_path / "half.tif") == 128).all()  # [0, 1] floats are not black
    Image.fromarray(np.full((4, 4), np.nan, np.float32)).save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="nan.tif.*NaN"):
        load_image(tmp_path / "nan.tif")
