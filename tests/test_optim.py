"""unigs.optim: LR schedules, min-SNR weights, AdamW settings, speed switches (defaults = the old trainer)."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from unigs.optim import (
    apply_speed_switches,
    build_lr_scheduler,
    build_optimizer,
    first_schedule_change,
    lr_factor,
    min_snr_weights,
    set_step_lr,
)
from unigs.train_config import TrainConfig


def config(**values) -> TrainConfig:
    return TrainConfig(vae="x", **values)


def test_constant_schedule_is_the_old_warm_up_formula():
    # before lr_scheduler existed: LambdaLR(lambda s: min(1.0, (s + 1) / max(1, warmup)))
    for warmup in (0, 1, 7, 100):
        for s in range(0, 300, 3):
            assert lr_factor(s, warmup, 300, "constant") == min(1.0, (s + 1) / max(1, warmup))


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_decaying_schedules_warm_up_then_fall_to_zero(kind):
    f = [lr_factor(s, 10, 110, kind) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[9:], f[10:], strict=False))  # non-increasing after warm-up
    assert f[-1] == pytest.approx(0.0, abs=1e-12)
    mid = f[59]  # half-way through the decay
    assert mid == pytest.approx(0.5 if kind == "linear" else 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_lr_scheduler_drives_the_optimizer_and_resumes_from_its_state():
    cfg = config(lr=1.0, lr_warmup_steps=2, steps=6, lr_scheduler="cosine")
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer(params, cfg)
    sched = build_lr_scheduler(opt, cfg)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == [pytest.approx(lr_factor(s, 2, 6, "cosine")) for s in range(4)]
    opt2 = build_optimizer(params, cfg)
    sched2 = build_lr_scheduler(opt2, cfg)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_adam_keys_reach_adamw_and_8bit_without_bitsandbytes_is_one_clear_error(monkeypatch):
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))],
                          config(adam_beta1=0.8, adam_beta2=0.95, adam_epsilon=1e-6, weight_decay=0.0))
    group = opt.param_groups[0]
    assert group["betas"] == (0.8, 0.95) and group["eps"] == 1e-6 and group["weight_decay"] == 0.0
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="bitsandbytes"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], config(use_8bit_adam=True))


def test_min_snr_weights_for_epsilon_and_v():
    alphas = torch.tensor([0.99, 0.5, 0.01, 0.0], dtype=torch.float64)
    t = torch.arange(4)
    snr = torch.tensor([99.0, 1.0, 1 / 99, 0.0])
    eps = min_snr_weights(alphas, t, 5.0, "epsilon")
    assert torch.allclose(eps, torch.tensor([5 / 99, 1.0, 1.0, 1.0]), atol=1e-6)
    v = min_snr_weights(alphas, t, 5.0, "v_prediction")
    assert torch.allclose(v, torch.minimum(snr, torch.tensor(5.0)) / (snr + 1), atol=1e-6)
    assert float(v[-1]) == 0.0  # zero terminal SNR: t = T carries no loss under min-SNR (docstring)
    with pytest.raises(ValueError, match="sample"):
        min_snr_weights(alphas, t, 5.0, "sample")


def test_snr_gamma_scales_each_examples_error():
    from diffusers import DDPMScheduler

    from unigs.train import diffusion_loss

    class Zero(torch.nn.Module):
        def forward(self, x, t, encoder_hidden_states, class_labels=None):
            self.x, self.t = x, t
            return type("Out", (), {"sample": torch.zeros(x.shape[0], 8, *x.shape[2:])})()

    b, h = 4, 2
    batch = {"z_image": torch.zeros(b, 4, h, h), "z_colormap": torch.zeros(b, 4, h, h),
             "mask": torch.ones(b, 1, h, h), "z_control": torch.zeros(b, 4, h, h),
             "text": torch.zeros(b, 77, 8), "task_ids": None}
    sched = DDPMScheduler(num_train_timesteps=1000)
    unet = Zero()
    loss = diffusion_loss(unet, sched, batch, torch.Generator().manual_seed(0), snr_gamma=0.05)[0]
    # z_0 = 0 and a zero prediction: x_t = √(1−ᾱ) ε, and the loss is the w-weighted mean of ε²
    a = sched.alphas_cumprod[unet.t].view(b, 1, 1, 1)
    eps = unet.x[:, :8] / (1 - a).sqrt()
    w = min_snr_weights(sched.alphas_cumprod, unet.t, 0.05, "epsilon")
    assert torch.allclose(loss, (w.view(b, 1, 1, 1) * eps ** 2).mean(), atol=1e-5)
    assert not torch.allclose(loss, (eps ** 2).mean(), atol=1e-5)


def test_speed_switches_on_a_tiny_unet():
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
    from tiny_models import tiny_components

    unet = tiny_components().unet
    apply_speed_switches(unet, config())  # defaults: nothing changes
    assert not unet.is_gradient_checkpointing
    assert all(isinstance(p, AttnProcessor2_0) for p in unet.attn_processors.values())
    apply_speed_switches(unet, config(gradient_checkpointing=True, attention="eager"))
    assert unet.is_gradient_checkpointing
    assert all(isinstance(p, AttnProcessor) for p in unet.attn_processors.values())
    with pytest.raises(ValueError, match="flash"):
        config(attention="flash")
    with pytest.raises(ValueError, match="lr_scheduler"):
        config(lr_scheduler="step")
    with pytest.raises(ValueError, match="report_to"):
        config(report_to="mlflow")


def test_wsd_is_constant_then_decays_linearly_over_its_last_steps():
    f = [lr_factor(s, 10, 100, "wsd", decay_steps=20) for s in range(100)]
    assert f[9:80] == [1.0] * 71  # stable
    assert f[80] == pytest.approx(19 / 20) and f[-1] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(f[79:], f[80:], strict=False))


def test_a_resume_may_change_the_schedule_only_for_steps_not_taken():
    constant = config(steps=20000, lr_warmup_steps=100)
    anneal = config(steps=5000, lr_scheduler="wsd", lr_decay_steps=1500, lr_warmup_steps=100)
    assert first_schedule_change(constant, anneal, 3500) is None  # decay starts at step 3500
    assert first_schedule_change(constant, anneal, 3600) == 3500
    saved = {"steps": 20000, "lr_scheduler": "constant", "lr_warmup_steps": 100}  # before lr_decay_steps
    assert first_schedule_change(saved, anneal, 3000) is None
    cosine = config(steps=1000, lr_scheduler="cosine")
    longer = config(steps=2000, lr_scheduler="cosine")
    assert first_schedule_change(cosine, longer, 500) == 100  # no silent rescaling of a decay


def test_set_step_lr_gives_a_resumed_optimizer_the_new_schedules_rate():
    old, new = config(lr=1.0, lr_warmup_steps=2, steps=10), config(lr=1.0, lr_warmup_steps=2, steps=10,
                                                                    lr_scheduler="wsd", lr_decay_steps=5)
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer(params, old)
    sched = build_lr_scheduler(opt, old)
    for _ in range(6):
        opt.step()
        sched.step()
    opt2 = build_optimizer(params, new)
    sched2 = build_lr_scheduler(opt2, new)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == 1.0  # what the old constant schedule gave step 6
    set_step_lr(opt2, sched2, 6)
    expected = lr_factor(6, 2, 10, "wsd", 5)
    assert opt2.param_groups[0]["lr"] == pytest.approx(expected) == sched2.get_last_lr()[0]
    opt2.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(lr_factor(7, 2, 10, "wsd", 5))
