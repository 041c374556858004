"""Eq. 8 / Eq. 11 channel layout (unigs.models.layout) and Table 2's ✗ half of every pipeline."""

from __future__ import annotations

import pytest
import torch

from unigs.conditions import COPIES_CONTROL, TASKS
from unigs.models import layout
from unigs.pipelines import (
    UniGSEntityPipeline,
    UniGSGuidedInpaintPipeline,
    UniGSInpaintPipeline,
    UniGSMaskCompletionPipeline,
    UniGSPipeline,
    UniGSReferringPipeline,
    UniGSSynthesisPipeline,
    UniGSTwoStagePipeline,
)


def test_channel_counts_are_eq8_and_eq11():
    assert (layout.LATENT_CHANNELS, layout.IN_CHANNELS, layout.OUT_CHANNELS) == (4, 13, 8)
    assert layout.HALVES == {"image": slice(0, 4), "colormap": slice(4, 8)}
    assert (layout.MASK_SLICE, layout.CONTROL_SLICE) == (slice(8, 9), slice(9, 13))


def test_unet_input_order_and_split_halves_round_trip():
    g = torch.Generator().manual_seed(0)
    zi, zs, zc = (torch.randn(2, 4, 3, 5, generator=g) for _ in range(3))
    m = (torch.rand(2, 1, 3, 5, generator=g) > 0.5).float()
    x = layout.unet_input(zi, zs, m, zc)
    assert x.shape == (2, 13, 3, 5)
    image, colormap = layout.split_halves(x[:, : layout.OUT_CHANNELS])
    assert torch.equal(image, zi) and torch.equal(colormap, zs)
    assert torch.equal(x[:, layout.MASK_SLICE], m) and torch.equal(x[:, layout.CONTROL_SLICE], zc)


@pytest.mark.parametrize(("bad", "name"), [((2, 3, 3, 5), "z_image"), ((2, 4, 3), "z_image")])
def test_unet_input_names_a_wrong_shape(bad, name):
    ok = torch.zeros(2, 4, 3, 5)
    with pytest.raises(ValueError, match=name):
        layout.unet_input(torch.zeros(bad), ok, torch.zeros(2, 1, 3, 5), ok)
    with pytest.raises(ValueError, match="mask_latent"):
        layout.unet_input(ok, ok, torch.zeros(2, 4, 3, 5), ok)


def test_split_halves_refuses_other_channel_counts():
    with pytest.raises(ValueError, match=r"\(2, 13, 3, 5\)"):
        layout.split_halves(torch.zeros(2, 13, 3, 5))


def test_unet_input_is_eq8_channel_order():
    zi, zs, m, zc = (torch.full((1, c, 2, 2), float(v)) for c, v in [(4, 1), (4, 2), (1, 3), (4, 4)])
    x = layout.unet_input(zi, zs, m, zc)
    assert x.shape == (1, 13, 2, 2)
    assert x[0, :, 0, 0].tolist() == [1.0] * 4 + [2.0] * 4 + [3.0] + [4.0] * 4


def test_mask_to_latent_nearest():
    mask = torch.zeros(1, 32, 32, dtype=torch.bool)
    mask[:, :16, :] = True
    lat = layout.mask_to_latent(mask, (8, 8))
    assert lat.shape == (1, 1, 8, 8) and lat.dtype == torch.float32
    assert lat[0, 0, :4].eq(1).all() and lat[0, 0, 4:].eq(0).all()


def _table2_half(task):
    image_copies, colormap_copies = COPIES_CONTROL[task]
    return "image" if image_copies else "colormap" if colormap_copies else None


@pytest.mark.parametrize("task", TASKS)
def test_copied_half_reads_table2(task):
    assert layout.copied_half(task) == _table2_half(task)


@pytest.mark.parametrize("cls", [UniGSInpaintPipeline, UniGSSynthesisPipeline, UniGSReferringPipeline,
                                 UniGSEntityPipeline, UniGSGuidedInpaintPipeline,
                                 UniGSMaskCompletionPipeline, UniGSTwoStagePipeline])
def test_every_pipeline_pins_the_half_table2_marks(cls):
    assert cls.known_half == _table2_half(cls.task)


def test_known_half_cannot_be_written_per_pipeline():
    with pytest.raises(TypeError, match="known_half"):
        type("Odd", (UniGSPipeline,), {"task": "entity", "known_half": "colormap"})
