"""The core's general hooks: known-region replacement (KnownLatent), RePaint jumps, img2img `strength`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

from unigs.models.loading import SD15_SCHEDULER_CONFIG
from unigs.pipelines import core


class RecordingUNet(torch.nn.Module):
    """A 13/8 stand-in that records (noisy halves, t) and predicts ε = 0.1 · (noisy halves)."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(num_class_embeds=4)
        self.dtype = torch.float32
        self.calls = []

    def forward(self, x, t, encoder_hidden_states, class_labels=None, return_dict=False):
        self.calls.append({"x": x[:, :8].clone(), "t": t})
        return (0.1 * x[:, :8],)


def _inputs(batch=2):
    g = torch.Generator().manual_seed(0)
    control = torch.randn(batch, 4, 8, 8, generator=g)
    mask = torch.ones(batch, 1, 8, 8)
    return control, mask, torch.ones(batch, 77, 16), None


def _run(unet, scheduler=None, **kwargs):
    control, mask, cond, _ = _inputs()
    scheduler = scheduler or DDIMScheduler(**SD15_SCHEDULER_CONFIG)
    kwargs.setdefault("generator", torch.Generator().manual_seed(3))
    return core.denoise(unet, scheduler, control=control, mask_latent=mask, prompt_embeds=cond, task_id=3,
                        **kwargs), control


def _region(seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(2, 4, 8, 8, generator=g)
    cells = torch.zeros(2, 1, 8, 8)
    cells[:, :, :4] = 1.0  # the top half of the colormap latent is known
    return values, cells


def test_known_region_ends_exact_and_is_noised_at_the_first_step():
    values, cells = _region()
    known = core.KnownLatent.region("colormap", values, cells)
    noise = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(9))
    unet = RecordingUNet()
    z0, control = _run(unet, known=known, known_half="image", latents=noise, num_inference_steps=4)
    assert torch.equal(z0[:, 4:, :4], values[:, :, :4])  # known colormap cells: exactly the values
    assert not torch.allclose(z0[:, 4:, 4:], values[:, :, 4:])  # the rest was sampled
    assert torch.equal(z0[:, :4], control)  # known_half still holds the whole image half
    sched = DDIMScheduler(**SD15_SCHEDULER_CONFIG)
    sched.set_timesteps(4)
    expected = sched.add_noise(values, noise[:, 4:], sched.timesteps[:1].repeat(2))
    assert torch.allclose(unet.calls[0]["x"][:, 4:8, :4], expected[:, :, :4], atol=1e-6)
    assert torch.equal(unet.calls[0]["x"][:, 4:8, 4:], noise[:, 4:, 4:])  # unknown cells: the noise


def test_union_prefers_the_second_set():
    a = core.KnownLatent.half("image", torch.ones(1, 4, 2, 2))
    b = core.KnownLatent.region("image", torch.full((1, 4, 2, 2), 5.0), torch.tensor([[[[1.0, 0], [0, 0]]]]))
    u = a.union(b)
    assert u.mask[:, :4].eq(1).all() and u.mask[:, 4:].eq(0).all()
    assert u.values[0, 0].tolist() == [[5.0, 1.0], [1.0, 1.0]]
    with pytest.raises(ValueError, match="'depth'"):
        core.KnownLatent.half("depth", torch.ones(1, 4, 2, 2))


def test_strength_runs_the_tail_of_the_schedule_from_noised_init():
    init = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(4))
    noise = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(5))
    unet = RecordingUNet()
    _run(unet, init_latents=init, strength=0.5, latents=noise, num_inference_steps=4)
    sched = DDIMScheduler(**SD15_SCHEDULER_CONFIG)
    sched.set_timesteps(4)
    assert [int(c["t"]) for c in unet.calls] == sched.timesteps[2:].tolist()
    expected = sched.add_noise(init, noise, sched.timesteps[2:3].repeat(2))
    assert torch.allclose(unet.calls[0]["x"][:, :8], expected, atol=1e-6)


def test_strength_zero_returns_init_and_runs_nothing():
    init = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(4))
    unet = RecordingUNet()
    z0, control = _run(unet, init_latents=init, strength=0.0, known_half="colormap", num_inference_steps=4)
    assert unet.calls == []
    assert torch.equal(z0[:, :4], init[:, :4]) and torch.equal(z0[:, 4:], control)


def test_strength_works_with_a_multistep_solver():
    init = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(4))
    unet = RecordingUNet()
    sched = core.make_scheduler("dpm++", SD15_SCHEDULER_CONFIG)
    _run(unet, sched, init_latents=init, strength=0.6, num_inference_steps=5)
    assert len(unet.calls) == 3


def test_resample_jumps_repeat_every_step_but_the_last():
    values, cells = _region()
    unet = RecordingUNet()
    z0, _ = _run(unet, known=core.KnownLatent.region("colormap", values, cells), resample_jumps=2,
                 num_inference_steps=3)
    assert len(unet.calls) == 3 + 2 * 2
    assert [int(c["t"]) for c in unet.calls][:3] == [int(unet.calls[0]["t"])] * 3
    assert torch.equal(z0[:, 4:, :4], values[:, :, :4])


@pytest.mark.parametrize("kwargs, match", [
    ({"strength": 1.5, "init_latents": torch.zeros(2, 8, 8, 8)}, r"strength must be in \[0, 1\], is 1.5"),
    ({"strength": -0.1, "init_latents": torch.zeros(2, 8, 8, 8)}, r"is -0.1"),
    ({"strength": 0.5}, "needs init_latents"),
    ({"strength": 0.5, "init_latents": torch.zeros(2, 4, 8, 8)}, "init_latents must have shape"),
    ({"resample_jumps": -1}, "resample_jumps must be >= 0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _run(RecordingUNet(), num_inference_steps=2, **kwargs)


def test_jumps_refuse_multistep_solvers():
    with pytest.raises(ValueError, match="DPMSolverMultistepScheduler"):
        _run(RecordingUNet(), DPMSolverMultistepScheduler.from_config(SD15_SCHEDULER_CONFIG),
             resample_jumps=1, num_inference_steps=2)
