"""The shared denoising core: Eq. 8 channel order, CFG branches, task ids, the pinned ✗ half, schedulers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from unigs.models.layout import HALVES
from unigs.models.loading import SD15_SCHEDULER_CONFIG
from unigs.pipelines import core


class RecordingUNet(torch.nn.Module):
    """Stands in for the 13/8 UNet: records its inputs and predicts ε = 0.1 * (its noisy halves)."""

    def __init__(self, num_class_embeds=4):
        super().__init__()
        self.config = SimpleNamespace(num_class_embeds=num_class_embeds)
        self.calls = []

    @property
    def dtype(self):
        return torch.float32

    def forward(self, x, t, encoder_hidden_states, class_labels=None, return_dict=False):
        self.calls.append({"x": x.clone(), "t": t, "states": encoder_hidden_states, "labels": class_labels})
        return (0.1 * x[:, :8],)


def _inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    control = torch.randn(batch, 4, 8, 8, generator=g)
    mask = (torch.rand(batch, 1, 8, 8, generator=g) > 0.5).float()
    cond = torch.full((batch, 77, 16), 1.0)
    uncond = torch.full((batch, 77, 16), -1.0)
    return control, mask, cond, uncond


def test_conditions_reach_the_unet_in_both_cfg_branches():
    unet = RecordingUNet()
    control, mask, cond, uncond = _inputs()
    core.denoise(unet, DDIMScheduler(**SD15_SCHEDULER_CONFIG), control=control, mask_latent=mask,
                 prompt_embeds=cond, negative_prompt_embeds=uncond, guidance_scale=3.0, task_id=2,
                 num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert len(unet.calls) == 3
    for call in unet.calls:
        x = call["x"]
        assert x.shape == (4, 13, 8, 8)  # CFG doubles the batch
        assert torch.equal(x[:2, 8:9], mask) and torch.equal(x[2:, 8:9], mask)
        assert torch.equal(x[:2, 9:], control) and torch.equal(x[2:, 9:], control)
        assert torch.equal(x[:2, :8], x[2:, :8])  # the same noisy latents in both branches
        assert call["states"][:2].eq(-1).all() and call["states"][2:].eq(1).all()  # uncond first
        assert call["labels"].tolist() == [2, 2, 2, 2]


def test_no_cfg_at_guidance_one_and_no_labels_without_task_embedding():
    unet = RecordingUNet(num_class_embeds=None)
    control, mask, cond, uncond = _inputs()
    core.denoise(unet, DDIMScheduler(**SD15_SCHEDULER_CONFIG), control=control, mask_latent=mask,
                 prompt_embeds=cond, negative_prompt_embeds=uncond, guidance_scale=1.0, task_id=2,
                 num_inference_steps=2)
    assert [c["x"].shape[0] for c in unet.calls] == [2, 2]
    assert all(c["labels"] is None for c in unet.calls)


def test_task_embedding_requires_task_id():
    control, mask, cond, _ = _inputs()
    with pytest.raises(ValueError, match="task_id"):
        core.denoise(RecordingUNet(), DDIMScheduler(**SD15_SCHEDULER_CONFIG), control=control,
                     mask_latent=mask, prompt_embeds=cond, num_inference_steps=1)


@pytest.mark.parametrize("scheduler_cls",
                         [DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler])
@pytest.mark.parametrize("known", ["image", "colormap"])
def test_known_half_is_the_noised_control_and_ends_exact(scheduler_cls, known):
    unet = RecordingUNet()
    control, mask, cond, _ = _inputs()
    scheduler = scheduler_cls.from_config(SD15_SCHEDULER_CONFIG)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(1))
    z0 = core.denoise(unet, scheduler, control=control, mask_latent=mask, prompt_embeds=cond, task_id=0,
                      num_inference_steps=4, generator=g, known_half=known)
    half = HALVES[known]
    assert torch.equal(z0[:, half], control)  # after the last step: exactly the control
    # at the first step the UNet saw the control noised to t_0 with the same noise draw (then input-scaled)
    fresh = scheduler_cls.from_config(SD15_SCHEDULER_CONFIG)
    fresh.set_timesteps(4)
    expected = fresh.add_noise(control, noise[:, half], fresh.timesteps[:1].repeat(2))
    expected = fresh.scale_model_input(expected, fresh.timesteps[0])
    assert torch.allclose(unet.calls[0]["x"][:, half], expected, atol=1e-5)


def test_seeded_and_scheduler_swap_deterministic():
    control, mask, cond, _ = _inputs()
    runs = []
    for seed in (0, 0, 1):
        for name in ("ddim", "dpm++"):
            sched = core.make_scheduler(name, SD15_SCHEDULER_CONFIG)
            runs.append(core.denoise(RecordingUNet(), sched, control=control, mask_latent=mask,
                                     prompt_embeds=cond, task_id=0, num_inference_steps=3,
                                     generator=torch.Generator().manual_seed(seed)))
    assert torch.equal(runs[0], runs[2]) and torch.equal(runs[1], runs[3])
    assert not torch.equal(runs[0], runs[4])
    assert not torch.equal(runs[0], runs[1])  # the samplers differ
    assert isinstance(core.make_scheduler("dpm++", SD15_SCHEDULER_CONFIG), DPMSolverMultistepScheduler)
    assert core.make_scheduler("dpm++", SD15_SCHEDULER_CONFIG).config.algorithm_type == "dpmsolver++"


def test_bad_arguments():
    control, mask, cond, _ = _inputs()
    sched = DDIMScheduler(**SD15_SCHEDULER_CONFIG)
    with pytest.raises(ValueError, match="'depth'"):
        core.denoise(RecordingUNet(), sched, control=control, mask_latent=mask, prompt_embeds=cond,
                     task_id=0, known_half="depth")
    with pytest.raises(ValueError, match="num_inference_steps"):
        core.denoise(RecordingUNet(), sched, control=control, mask_latent=mask, prompt_embeds=cond,
                     task_id=0, num_inference_steps=0)
    with pytest.raises(ValueError, match="latents must have shape"):
        core.denoise(RecordingUNet(), sched, control=control, mask_latent=mask, prompt_embeds=cond,
                     task_id=0, num_inference_steps=1, latents=torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="'euler'"):
        core.make_scheduler("euler", SD15_SCHEDULER_CONFIG)


def test_given_latents_replace_the_generator():
    control, mask, cond, _ = _inputs()
    noise = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(5))
    runs = [core.denoise(RecordingUNet(), DDIMScheduler(**SD15_SCHEDULER_CONFIG), control=control,
                         mask_latent=mask, prompt_embeds=cond, task_id=0, num_inference_steps=2,
                         generator=torch.Generator().manual_seed(seed), latents=noise) for seed in (0, 1)]
    assert torch.equal(runs[0], runs[1])


class BlowUpUNet(RecordingUNet):
    """Predicts finite ε until call `at`, then inf (a diverged or damaged model)."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def forward(self, x, t, encoder_hidden_states, class_labels=None, return_dict=False):
        eps = super().forward(x, t, encoder_hidden_states, class_labels)[0]
        return (eps * float("inf") if len(self.calls) > self.at else eps,)


def test_non_finite_latents_stop_the_sampler_naming_the_step():
    control, mask, cond, _ = _inputs()
    scheduler = DDIMScheduler(**SD15_SCHEDULER_CONFIG)
    with pytest.raises(ValueError, match="step 3 of 5"):
        core.denoise(BlowUpUNet(at=2), scheduler, control=control, mask_latent=mask, prompt_embeds=cond,
                     task_id=0, num_inference_steps=5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="before step 1"):
        core.denoise(RecordingUNet(), scheduler, control=control * float("nan"), mask_latent=mask,
                     prompt_embeds=cond, task_id=0, num_inference_steps=2)


def test_pipeline_refuses_non_finite_guidance(components, scene):
    from unigs.pipelines import UniGSReferringPipeline

    pipe = UniGSReferringPipeline.from_components(components)
    pipe.set_progress_bar_config(disable=True)
    image, coarse, _ = scene
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="guidance_scale"):
            pipe(["box"], image, coarse, num_inference_steps=1, guidance_scale=bad, output_type="np")
