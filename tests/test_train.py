"""`unigs train`: config checks, Eq. 8 wiring and Eq. 2 loss, exact kill-and-resume, 2-process accelerate."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from training_config import tiny_config  # the tiny_parts fixture lives in conftest.py

from unigs import checkpoint as ckpt
from unigs.config import config_from_dict, parse_overrides, read_config_file
from unigs.data.source import square_resize
from unigs.train import TrainConfig, diffusion_loss, train

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- config
def test_unknown_config_key_raises_naming_it():
    with pytest.raises(ValueError, match="learning_rate"):
        config_from_dict({"learning_rate": 1e-4, "vae": "x"}, TrainConfig)


@pytest.mark.parametrize("values, match", [
    ({"tasks": "painting", "vae": "x"}, "painting"),
    ({"task_ratios": {"inpainting": 1.0, "drawing": 1.0}, "vae": "x"}, "task_ratios"),
    ({"mixed_precision": "fp8", "vae": "x"}, "fp8"),
    ({"batch_size": 0, "vae": "x"}, "batch_size"),
    ({"prompt_drop_prob": 1.5, "vae": "x"}, "prompt_drop_prob"),
    ({"init": "scratch"}, "train-vae"),
])
def test_bad_config_values_raise(values, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**values)


def test_missing_coco_json_raises_file_not_found():
    with pytest.raises(FileNotFoundError, match="nope.json"):
        TrainConfig(data="nope.json", vae="x")


def test_config_files_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\nunet: {layers_per_block: 1}\n")
    assert read_config_file(path) == {"steps": 7, "unet": {"layers_per_block": 1}}
    assert parse_overrides(["steps=20", "tasks=synthesis", "unet={a: 1}"]) == {
        "steps": 20, "tasks": "synthesis", "unet": {"a": 1}}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["steps"])
    with pytest.raises(FileNotFoundError, match="absent.yaml"):
        read_config_file(tmp_path / "absent.yaml")


def test_yaml_scalars_get_their_field_type():
    # `--set lr=1e-3` reaches the config as the string "1e-3" (YAML 1.1 needs a dot for floats).
    config = config_from_dict(parse_overrides(["lr=1e-3", "steps=20", "vae=x"]), TrainConfig)
    assert config.lr == 1e-3 and isinstance(config.lr, float) and config.steps == 20
    with pytest.raises(ValueError, match="TrainConfig.lr"):
        config_from_dict({"lr": "fast", "vae": "x"}, TrainConfig)
    with pytest.raises(ValueError, match="TrainConfig.steps"):
        config_from_dict({"steps": 2.5, "vae": "x"}, TrainConfig)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    """Every config in configs/ is valid for its command (train, train-vae or train-mask-ae)."""
    from unigs.train_mask_ae import MaskAETrainConfig
    from unigs.train_vae import VAETrainConfig

    kind = (MaskAETrainConfig if path.name.startswith("mask_ae") else
            VAETrainConfig if path.name.startswith("vae") else TrainConfig)
    values = read_config_file(path)
    if kind is TrainConfig:  # data and weights that live on a prepared machine only (as `--dry-run` does)
        assert config_from_dict(values, kind, check_paths=False).steps > 0
        return
    try:  # keys and types are checked before __post_init__ looks for an earlier stage's output folder
        assert config_from_dict(values, kind).steps > 0
    except FileNotFoundError as error:
        assert "runs/" in str(error), error


def test_square_resize_crops_centre_and_drops_emptied_masks():
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, 2:6] = 200
    masks = np.zeros((2, 4, 8), bool)
    masks[0, :, 3] = True  # inside the centre crop (columns 2..5)
    masks[1, :, 0] = True  # cropped away
    out, kept, names = square_resize(image, masks, ["a", "b"], 2)
    assert out.shape == (2, 2, 3) and (out == 200).all()
    assert names == ["a"] and kept.shape == (1, 2, 2) and kept.dtype == bool


def test_encode_examples_matches_one_by_one_encoding():
    from tiny_models import tiny_components

    from unigs.batches import PromptCache, encode_examples
    from unigs.data.tasks import sample_example
    from unigs.models.vae import encode_images

    comps = tiny_components()
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    masks = np.zeros((2, 32, 32), bool)
    masks[0, 4:14, 4:14] = masks[1, 18:30, 16:28] = True
    examples = [sample_example(task, image, masks, ["ball", "box"], np.random.default_rng(i), ["star"])
                for i, task in enumerate(["inpainting", "synthesis", "referring", "entity"])]
    prompts = PromptCache(comps.tokenizer, comps.text_encoder, "cpu")
    batch = encode_examples(comps, examples, prompts, multitask=True)
    pairs = (("z_image", "image_target"), ("z_colormap", "colormap_target"), ("z_control", "control"))
    for name, attr in pairs:
        alone = encode_images(comps.vae, np.stack([getattr(e, attr) for e in examples]))
        assert torch.allclose(batch[name], alone, atol=1e-5), name
    assert batch["mask"].shape == (4, 1, 8, 8) and batch["text"].shape == (4, 77, 32)
    assert batch["task_ids"].tolist() == [0, 1, 2, 3]
    assert len(prompts.cache) == 4


# ------------------------------------------------------------------------------------------ the loss
class RecordingUNet(torch.nn.Module):
    """Stands in for the UNet: records its input and predicts zero noise."""

    def forward(self, x, t, encoder_hidden_states, class_labels=None):
        self.seen = (x, t, encoder_hidden_states, class_labels)
        return type("Out", (), {"sample": torch.zeros(x.shape[0], 8, *x.shape[2:])})()


def test_unet_input_is_eq8_concat_and_loss_is_mse_on_both_halves():
    from diffusers import DDPMScheduler

    b, h = 3, 4
    batch = {"z_image": torch.full((b, 4, h, h), 1.0), "z_colormap": torch.full((b, 4, h, h), -1.0),
             "mask": torch.ones(b, 1, h, h), "z_control": torch.full((b, 4, h, h), 7.0),
             "text": torch.zeros(b, 77, 8), "task_ids": torch.tensor([0, 1, 3])}
    unet = RecordingUNet()
    sched = DDPMScheduler(num_train_timesteps=1000)
    loss, li, lc = diffusion_loss(unet, sched, batch, torch.Generator().manual_seed(0))
    x, t, _, labels = unet.seen
    assert x.shape == (b, 13, h, h)
    assert torch.equal(x[:, 8:9], batch["mask"]) and torch.equal(x[:, 9:], batch["z_control"])
    assert torch.equal(labels, batch["task_ids"]) and t.shape == (b,)
    # zero prediction → loss = mean ε²; z_t = √ᾱ z0 + √(1−ᾱ) ε with ε recovered from x, per half
    a = sched.alphas_cumprod[t].view(b, 1, 1, 1)
    eps = (x[:, :8] - a.sqrt() * torch.cat([batch["z_image"], batch["z_colormap"]], 1)) / (1 - a).sqrt()
    assert torch.allclose(li, (eps[:, :4] ** 2).mean(), atol=1e-4)
    assert torch.allclose(lc, (eps[:, 4:] ** 2).mean(), atol=1e-4)
    assert torch.allclose(loss, (li + lc) / 2)


def test_zero_snr_schedule_trains_on_v_and_samples_from_pure_noise(tmp_path, tiny_parts):
    from diffusers import DDPMScheduler

    from unigs.models.loading import ZERO_SNR_SCHEDULER_CONFIG, load_unigs
    from unigs.pipelines import pipeline_for_task

    sched = DDPMScheduler.from_config(ZERO_SNR_SCHEDULER_CONFIG)
    assert float(sched.alphas_cumprod[-1]) == pytest.approx(0.0, abs=1e-12)  # x_999 is pure noise
    b, h = 2, 4
    batch = {"z_image": torch.full((b, 4, h, h), 1.0), "z_colormap": torch.full((b, 4, h, h), 2.0),
             "mask": torch.ones(b, 1, h, h), "z_control": torch.zeros(b, 4, h, h),
             "text": torch.zeros(b, 77, 8), "task_ids": None}
    unet = RecordingUNet()
    _, li, lc = diffusion_loss(unet, sched, batch, torch.Generator().manual_seed(0))
    x, t, _, _ = unet.seen
    a = sched.alphas_cumprod[t].view(b, 1, 1, 1)
    z0 = torch.cat([batch["z_image"], batch["z_colormap"]], 1)
    eps = (x[:, :8] - a.sqrt() * z0) / (1 - a).sqrt()
    v = a.sqrt() * eps - (1 - a).sqrt() * z0  # zero prediction → loss = mean v²
    assert torch.allclose(li, (v[:, :4] ** 2).mean(), atol=1e-4)
    assert torch.allclose(lc, (v[:, 4:] ** 2).mean(), atol=1e-4)

    config = config_from_dict(tiny_config(tiny_parts, steps=1, noise_schedule="zero_snr"), TrainConfig)
    out = train(config, tmp_path)
    model = load_unigs(out / "model.safetensors")
    assert model.scheduler.config.prediction_type == "v_prediction"
    assert model.scheduler.config.rescale_betas_zero_snr
    pipe = pipeline_for_task("referring", model)
    pipe.set_progress_bar_config(disable=True)
    result = pipe(["circle"], np.zeros((32, 32, 3), np.uint8), np.ones((32, 32), bool), num_inference_steps=2,
                  output_type="np", generator=torch.Generator().manual_seed(0))
    assert result.colormaps[0].shape == (32, 32, 3)
    with pytest.raises(ValueError, match="noise_schedule"):
        TrainConfig(noise_schedule="cosine")


# ------------------------------------------------------------------------------------ kill and resume
def test_resume_continues_exactly(tmp_path, tiny_parts):
    config = config_from_dict(tiny_config(tiny_parts), TrainConfig)
    straight = train(config, tmp_path / "straight")
    train(config, tmp_path / "killed", stop_after=2)  # the run "dies" right after its step-2 checkpoint
    assert ckpt.latest_checkpoint(tmp_path / "killed" / "checkpoints").name == "step-00000002"
    resumed = train(config, tmp_path / "killed", resume=True)
    a, b = ckpt.load_training_state(straight), ckpt.load_training_state(resumed)
    assert a["step"] == b["step"] == 4
    for part in ("unet", "ema"):
        for key in a[part]:
            assert torch.allclose(a[part][key], b[part][key], atol=1e-6), (part, key)
    first = ckpt.load_training_state(tmp_path / "killed" / "checkpoints" / "step-00000002")
    moved = [k for k in a["unet"] if not torch.equal(a["unet"][k], first["unet"][k])]
    assert moved, "training did not change the weights"
    with open(tmp_path / "killed" / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]

    # the inference file holds the EMA weights with everything needed to load it
    from unigs.models.loading import load_unigs

    model = load_unigs(straight / "model.safetensors")
    assert model.meta.multitask and model.meta.image_size == 32 and model.meta.step == 4
    for key, value in model.unet.state_dict().items():
        assert torch.equal(value, a["ema"][key])


def test_resume_refuses_a_different_experiment(tmp_path, tiny_parts):
    train(config_from_dict(tiny_config(tiny_parts, steps=1), TrainConfig), tmp_path)
    with pytest.raises(ValueError, match="lr"):
        train(config_from_dict(tiny_config(tiny_parts, steps=2, lr=5e-4), TrainConfig), tmp_path, resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(config_from_dict(tiny_config(tiny_parts), TrainConfig), tmp_path / "empty", resume=True)


def test_resume_may_anneal_a_constant_run_but_not_rewrite_its_past(tmp_path, tiny_parts):
    train(config_from_dict(tiny_config(tiny_parts, steps=2, lr_warmup_steps=1), TrainConfig), tmp_path)
    early = tiny_config(tiny_parts, steps=3, lr_warmup_steps=1, lr_scheduler="wsd", lr_decay_steps=3)
    with pytest.raises(ValueError, match="learning rate of step 1"):  # the decay would start at step 1
        train(config_from_dict(early, TrainConfig), tmp_path, resume=True)
    late = tiny_config(tiny_parts, steps=4, lr_warmup_steps=1, lr_scheduler="wsd", lr_decay_steps=2)
    last = train(config_from_dict(late, TrainConfig), tmp_path, resume=True)
    with open(tmp_path / "metrics.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    lr = late["lr"]
    assert lrs == pytest.approx([lr, lr, lr / 2, 0.0]) and last.name == "step-00000004"


# ---------------------------------------------------------------------------------------- 2 processes
@pytest.mark.slow  # ~3 min on a loaded 2-core machine (two torchrun workers each import torch)
def test_two_process_cpu_run_through_accelerate_launch(tmp_path, tiny_parts):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_parts, steps=2, ckpt_every=2, tasks="synthesis")))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    # On a CPU-only machine `--multi_gpu` starts 2 torchrun workers and unigs.train picks gloo (MULTI_CPU);
    # `--cpu --num_processes 2` would start a single process (accelerate wants mpirun for that).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "unigs.cli", "train", "--config", str(config), "--output", str(tmp_path / "run")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    state = ckpt.load_training_state(tmp_path / "run" / "checkpoints" / "step-00000002")
    assert state["step"] == 2 and state["config"]["tasks"] == "synthesis"
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    # each logged step saw batch_size examples on each of the 2 processes
    assert [int(r["n_synthesis"]) for r in rows] == [4, 4]


def test_cli_reports_bad_input_as_one_line(tmp_path, capsys):
    from unigs.cli import main

    assert main(["train", "--config", str(tmp_path / "absent.yaml"), "--output", str(tmp_path)]) == 2
    assert "absent.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: 3\n")
    assert main(["train-vae", "--config", str(bad), "--output", str(tmp_path)]) == 2
    assert "stepz" in capsys.readouterr().err


# ------------------------------------------------------------------- pool, loss weights, timestep tilt
POOLED = {"pool_size": 8, "pool_draws": 2, "pinned_weight": 0.0, "referring_outside_weight": 0.1,
          "entity_balance": 4.0, "timestep_power": {"referring": 4.0, "entity": 1.0}}


def test_pooled_weighted_run_resumes_exactly_and_reuses_its_pool(tmp_path, tiny_parts):
    config = config_from_dict(tiny_config(tiny_parts, **POOLED), TrainConfig)
    straight = train(config, tmp_path / "straight")
    train(config, tmp_path / "killed", stop_after=2)
    pool_file = tmp_path / "killed" / "pool.pt"
    stamp = pool_file.stat().st_mtime_ns
    resumed = train(config, tmp_path / "killed", resume=True)
    assert pool_file.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    a, b = ckpt.load_training_state(straight), ckpt.load_training_state(resumed)
    for key in a["unet"]:
        assert torch.allclose(a["unet"][key], b["unet"][key], atol=1e-6), key
    # a pool built for another experiment is not reused
    from unigs.batches import ExamplePool
    from unigs.train import POOL_KEYS

    key = {k: getattr(config, k) for k in POOL_KEYS}
    assert ExamplePool.load(pool_file, key) is not None
    assert ExamplePool.load(pool_file, {**key, "seed": 99}) is None


def test_draw_timesteps_tilts_toward_t_max():
    from unigs.train import draw_timesteps

    uniform = draw_timesteps(1000, 20000, 0.0, torch.Generator().manual_seed(0))
    tilted = draw_timesteps(1000, 20000, 1.0, torch.Generator().manual_seed(0))
    assert 0 <= int(tilted.min()) and int(tilted.max()) <= 999
    assert float(uniform.float().mean()) == pytest.approx(500, abs=15)
    assert float(tilted.float().mean()) == pytest.approx(667, abs=15)  # density ∝ t: mean 2T/3


def test_timestep_power_per_task():
    from unigs.train import draw_timesteps, timestep_powers

    powers = timestep_powers({"referring": 4.0, "entity": 4.0}, ["referring", "synthesis"] * 10000)
    assert powers.shape == (20000,) and powers[0] == 4.0 and powers[1] == 0.0  # left out: uniform
    t = draw_timesteps(1000, 20000, powers, torch.Generator().manual_seed(0)).float()
    assert float(t[0::2].mean()) == pytest.approx(833, abs=15)  # density ∝ t⁴: mean 5T/6
    assert float(t[1::2].mean()) == pytest.approx(500, abs=15)
    assert timestep_powers(1.0, ["entity"]) == 1.0  # one number: the same draw as before the mapping
    for bad in ({"refering": 4.0}, {"entity": -1.0}, {}, -1.0, float("inf"), {"entity": True}):
        with pytest.raises(ValueError, match="timestep_power"):
            TrainConfig(init="x", vae="v", check_paths=False, timestep_power=bad)
    TrainConfig(init="x", vae="v", check_paths=False, timestep_power={"referring": 4, "entity": 2.5})


def test_weighted_loss_is_the_weighted_mean_of_squared_errors():
    from diffusers import DDPMScheduler

    b, h = 2, 4
    weights = torch.zeros(b, 2, h, h)
    weights[:, 1, :2] = 1.0  # only the colormap half's top two rows count
    batch = {"z_image": torch.zeros(b, 4, h, h), "z_colormap": torch.zeros(b, 4, h, h),
             "mask": torch.ones(b, 1, h, h), "z_control": torch.zeros(b, 4, h, h),
             "text": torch.zeros(b, 77, 8), "task_ids": None, "weights": weights}
    unet = RecordingUNet()
    sched = DDPMScheduler(num_train_timesteps=1000)
    loss, _, lc = diffusion_loss(unet, sched, batch, torch.Generator().manual_seed(0))
    x = unet.seen[0]
    a = sched.alphas_cumprod[unet.seen[1]].view(b, 1, 1, 1)
    eps = x[:, 4:8] / (1 - a).sqrt()  # z0 = 0 → x_t = √(1−ᾱ) ε
    assert torch.allclose(loss, (eps[:, :, :2] ** 2).mean(), atol=1e-5)
    assert torch.allclose(lc, loss)


# ------------------------------------------------------------------ damaged checkpoints, run folders
def test_resume_falls_back_to_the_newest_intact_checkpoint_bit_exact(tmp_path, tiny_parts, capsys):
    config = config_from_dict(tiny_config(tiny_parts), TrainConfig)
    straight = train(config, tmp_path / "straight")
    train(config, tmp_path / "killed", stop_after=4)  # checkpoints at steps 2 and 4
    root = tmp_path / "killed" / "checkpoints"
    (root / "step-00000004" / ckpt.TRAINING_STATE).write_bytes(b"PK\x03\x04 truncated")  # disk lost its tail
    resumed = train(config, tmp_path / "killed", resume=True)
    out = capsys.readouterr().out
    assert "step-00000004 is damaged" in out and "resumed from" in out and "step-00000002" in out
    assert (root / "damaged-step-00000004").is_dir()  # kept aside for inspection, never resumed from
    a, b = ckpt.load_training_state(straight), ckpt.load_training_state(resumed)
    assert a["step"] == b["step"] == 4
    for part in ("unet", "ema"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)  # bit-identical
    with open(tmp_path / "killed" / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]


def test_every_checkpoint_damaged_is_one_sentence(tmp_path):
    (tmp_path / "step-00000002").mkdir()
    (tmp_path / "step-00000002" / ckpt.TRAINING_STATE).write_bytes(b"")
    with pytest.raises(ValueError, match="no intact checkpoint"):
        ckpt.load_latest_intact(tmp_path, lambda _: None)
    assert ckpt.load_latest_intact(tmp_path / "none", lambda _: None) is None


def test_a_used_run_folder_needs_resume_or_overwrite_and_fewer_steps_says_so(tmp_path, tiny_parts, capsys):
    config = config_from_dict(tiny_config(tiny_parts, steps=2), TrainConfig)
    train(config, tmp_path)
    with pytest.raises(ValueError, match="--resume.*--overwrite"):
        train(config, tmp_path)  # would mix two runs' checkpoints and metrics
    assert train(config, tmp_path, resume=True).name == "step-00000002"
    assert "nothing to train" in capsys.readouterr().out  # steps (2) <= steps done (2)
    train(config_from_dict(tiny_config(tiny_parts, steps=1, ckpt_every=1), TrainConfig), tmp_path,
          overwrite=True)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == ["step-00000001"]
    with open(tmp_path / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1]


def test_bad_numbers_and_yaml_fail_before_anything_is_written(tmp_path, tiny_parts, capsys):
    from unigs.cli import main

    run = tmp_path / "run"
    for argv, needle in [(["--set", "seed=-1"], "seed"), (["--set", "lr=nan"], "lr"),
                         (["--set", "steps=[1"], "not valid YAML")]:
        sets = [f"--set=vae={tiny_parts['vae']}"]
        assert main(["train", "--output", str(run), *sets, *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and "Traceback" not in err
    assert not run.exists() or not any(run.iterdir())  # no config.json left behind
