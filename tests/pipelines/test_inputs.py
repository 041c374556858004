"""Boundary conversions of the pipelines: every accepted image/mask form, every rejected one."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from unigs.pipelines.inputs import (
    check_output_type,
    format_images,
    to_mask_batch,
    to_names_batch,
    to_rgb_batch,
)

RGB = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)


def test_images_in_every_accepted_form_agree():
    forms = [
        RGB,
        PIL.Image.fromarray(RGB),
        [PIL.Image.fromarray(RGB)],
        RGB[None],
        torch.from_numpy(RGB).permute(2, 0, 1).float() / 255.0,
        torch.from_numpy(RGB).permute(2, 0, 1)[None].float() / 255.0,
    ]
    for form in forms:
        out = to_rgb_batch(form)
        assert out.dtype == np.uint8 and out.shape == (1, 4, 6, 3)
        assert np.array_equal(out[0], RGB)


def test_pil_modes_are_converted_to_rgb():
    rgba = PIL.Image.fromarray(np.dstack([RGB, np.full((4, 6), 7, np.uint8)]), mode="RGBA")
    assert np.array_equal(to_rgb_batch(rgba)[0], RGB)
    gray = PIL.Image.fromarray(RGB[..., 0])
    assert np.array_equal(to_rgb_batch(gray)[0], np.repeat(RGB[..., :1], 3, axis=2))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 6, 4), np.uint8), r"\(H, W, 3\).*\(4, 6, 4\)"),
    (np.zeros((4, 6), np.uint8), r"\(H, W, 3\).*\(4, 6\)"),
    (np.zeros((4, 6, 3), np.float32), "uint8"),
    (torch.zeros(1, 4, 4, 6), r"\(B, 3, H, W\)"),
    (torch.full((1, 3, 4, 6), 2.0), r"\[0, 1\]"),
    (torch.full((1, 3, 4, 6), -1.0), r"\[0, 1\]"),
    (torch.zeros(1, 3, 4, 6, dtype=torch.uint8), "float"),
    ("image.png", "PIL image"),
    ([], "empty"),
    ([RGB, RGB[:2]], "same size"),
    (None, "required"),
])
def test_bad_images_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        to_rgb_batch(bad)


def test_masks_in_every_accepted_form_agree():
    want = np.zeros((4, 6), bool)
    want[1:3, 2:5] = True
    forms = [
        want,
        want.astype(np.uint8),
        want.astype(np.uint8) * 255,
        PIL.Image.fromarray(want.astype(np.uint8) * 255),
        PIL.Image.fromarray(want.astype(np.uint8) * 255).convert("RGB"),
        torch.from_numpy(want).float()[None, None],
        torch.from_numpy(want),
        [want, want],
    ]
    for form in forms:
        out = to_mask_batch(form, 2, (4, 6))
        assert out.dtype == bool and out.shape == (2, 4, 6)
        assert np.array_equal(out[0], want) and np.array_equal(out[1], want)


def test_mask_threshold_for_brush_masks():
    brush = np.array([[0, 127, 128, 255]], np.uint8)
    assert to_mask_batch(brush, 1, (1, 4))[0, 0].tolist() == [False, False, True, True]


@pytest.mark.parametrize("bad, match", [
    (np.zeros((5, 6), bool), r"mask_image is 5x6 \(HxW\) but the image is 4x6"),
    (np.zeros((4, 6, 3), bool), "1 or 2 masks"),
    (np.zeros((4, 6), np.float64), "bool or integer"),
    (torch.zeros(1, 3, 4, 6), r"\(B, 1, H, W\)"),
    ([np.zeros((4, 6), bool)] * 3, "1 or 2 masks"),
    (None, "required"),
])
def test_bad_masks_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        to_mask_batch(bad, 2, (4, 6))


def test_names_batch():
    assert to_names_batch("dog", 2) == [["dog"], ["dog"]]
    assert to_names_batch(["dog", " cat ", ""], 1) == [["dog", "cat"]]
    assert to_names_batch([["dog"], ["cat", "sky"]], 2) == [["dog"], ["cat", "sky"]]
    assert to_names_batch(None, 2) == [[], []]
    with pytest.raises(ValueError, match="3 lists of names for 2 images"):
        to_names_batch([["a"], ["b"], ["c"]], 2)
    with pytest.raises(ValueError, match="list of lists"):
        to_names_batch(["a", ["b"]], 2)


def test_format_images():
    batch = RGB[None]
    pil = format_images(batch, "pil")
    assert isinstance(pil[0], PIL.Image.Image) and np.array_equal(np.asarray(pil[0]), RGB)
    assert format_images(batch, "np") is batch
    pt = format_images(batch, "pt")
    assert pt.shape == (1, 3, 4, 6) and pt.dtype == torch.float32
    assert torch.allclose(pt[0, :, 1, 2] * 255, torch.tensor(RGB[1, 2], dtype=torch.float32))
    with pytest.raises(ValueError, match="'latent'"):
        check_output_type("latent")
