"""unigs.train_parts and unigs.plan: frozen parts referenced in checkpoints, --resume PATH, the dry run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from training_config import tiny_config

from unigs import checkpoint as ckpt
from unigs.config import config_from_dict
from unigs.train_config import TrainConfig
from unigs.train_parts import (
    EMA_UNET_FILE,
    INFERENCE_FILE,
    checkpoint_bytes,
    load_checkpoint_model,
    part_sizes,
    resume_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]


def fake_run(root: Path, steps: list[int]) -> Path:
    for s in steps:
        ckpt.save_checkpoint(root, s, lambda tmp, s=s: ckpt.save_training_state(tmp, {"step": s}))
    return root


def test_resume_picks_the_newest_or_the_chosen_checkpoint(tmp_path):
    root = fake_run(tmp_path / "checkpoints", [2, 4, 6])
    assert resume_checkpoint(True, root).name == "step-00000006"
    chosen = resume_checkpoint(root / "step-00000002", root)
    assert chosen.name == "step-00000002"
    # the newer ones are kept, aside, so they are neither "the newest" nor pruned by keep_checkpoints
    assert [p.name for p in ckpt.list_checkpoints(root)] == ["step-00000002"]
    aside = [p for p in root.iterdir() if p.name.startswith("abandoned-")]
    assert len(aside) == 1
    assert sorted(p.name for p in aside[0].iterdir()) == ["step-00000004", "step-00000006"]
    other = fake_run(tmp_path / "other" / "checkpoints", [3])  # a checkpoint of another run: nothing moves
    assert resume_checkpoint(other / "step-00000003", root).name == "step-00000003"
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        resume_checkpoint(tmp_path, root)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resume_checkpoint(True, tmp_path / "empty")


def test_reference_checkpoint_tensorboard_and_validation_sheet_of_a_run(tmp_path, tiny_parts):
    from unigs.train import train

    values = tiny_config(tiny_parts, steps=1, checkpoint_frozen="reference", validate_every=1,
                         validation_images=1, validation_steps=2, report_to="tensorboard")
    out = train(config_from_dict(values, TrainConfig), tmp_path)
    assert list((tmp_path / "unigs").glob("events.out.tfevents.*"))  # accelerate's TensorBoard tracker
    assert (tmp_path / "metrics.csv").is_file()  # the CSV log is kept
    assert (out / EMA_UNET_FILE).is_file() and not (out / INFERENCE_FILE).exists()
    assert (tmp_path / "validation" / "step-00000001.png").is_file()
    model = load_checkpoint_model(out)
    state = ckpt.load_training_state(out)
    for key, value in model.unet.state_dict().items():
        assert torch.equal(value, state["ema"][key]), key
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(tiny_parts["vae"])
    for key, value in model.vae.state_dict().items():
        assert torch.equal(value, vae.state_dict()[key]), key
    assert model.meta.step == 1 and model.meta.image_size == 32


def test_sd15_checkpoint_size_estimate():
    config = config_from_dict({"init": "weights/sd-inpainting", "image_size": 512}, TrainConfig,
                              check_paths=False)
    sizes = part_sizes(config)  # SD-1.5's UNet config on the meta device: no weights needed
    assert sizes["unet"] == 859_558_408 + 4 * 1280  # count_parameters of the real UNet + task embedding
    copy = checkpoint_bytes(config, sizes)
    assert copy["training_state"] == sizes["unet"] * 16 and copy["frozen_copies"] > 0.8e9
    ref = config_from_dict({"init": "x", "checkpoint_frozen": "reference"}, TrainConfig, check_paths=False)
    ref = checkpoint_bytes(ref, sizes)
    assert "frozen_copies" not in ref and ref["total"] == copy["total"] - copy["frozen_copies"]


def test_dry_run_of_the_sd15_recipe_exits_0_without_weights_or_data(tmp_path, capsys):
    from unigs.cli import main

    recipe = str(REPO / "configs" / "sd15-coco.yaml")
    code = main(["train", "--config", recipe, "--output", str(tmp_path / "x"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "init: weights/stable-diffusion-inpainting" in out and "missing on this machine" in out
    assert "instances_train2017.json" in out and "complete True" in out
    assert "effective batch: 16 per process × 1 accumulation" in out and "on 8 processes: 128" in out
    assert "steps: 90000" in out and "one checkpoint ≈" in out
    assert not (tmp_path / "x").exists()  # nothing written
    bad = tmp_path / "bad.yaml"
    bad.write_text("init: x\nlr_scheduler: step\n")
    assert main(["train", "--config", str(bad), "--output", str(tmp_path), "--dry-run"]) == 2
    assert "lr_scheduler" in capsys.readouterr().err


def test_validation_sheet_of_the_four_tasks(tmp_path, tiny_parts):
    from PIL import Image
    from tiny_models import tiny_components

    from unigs.validation import validation_examples, validation_sheet

    config = TrainConfig(**tiny_config(tiny_parts, validate_every=1, validation_images=1))
    examples = validation_examples(config)
    assert [e.task for e in examples] == ["inpainting", "synthesis", "referring", "entity"]
    again = validation_examples(config)  # fixed: the same examples at every validation
    for a, b in zip(examples, again, strict=True):
        assert a.prompt == b.prompt and np.array_equal(a.control, b.control)
    components = tiny_components()
    components.meta = dataclasses.replace(components.meta, image_size=32)
    path = validation_sheet(components, examples, tmp_path / "v" / "step-1.png", steps=2)
    sheet = np.asarray(Image.open(path))
    assert sheet.ndim == 3 and sheet.shape[0] > 4 * 32 and sheet.shape[1] > 4 * 32  # 4 rows × 4 tiles


# ------------------------------------------------------------------------------- the bar (issue 11)
def launch(config: Path, output: Path, *extra: str) -> None:
    """`accelerate launch` of unigs.train on 2 CPU processes (flags: test_train's 2-process test)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "unigs.cli", "train", "--config", str(config), "--output", str(output), *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_two_workers_checkpointing_min_snr_resume_bit_identical(tmp_path, tiny_parts,
                                                                              coco_mini):
    """coco-mini, 2 processes × 2 loader workers, gradient checkpointing, min-SNR, crop/flip: resuming from
    the step-2 checkpoint (into another folder) ends bit-identical to the uninterrupted 4-step run."""
    import yaml

    values = tiny_config(tiny_parts, steps=4, ckpt_every=2, num_workers=2, gradient_checkpointing=True,
                         snr_gamma=5.0, lr_scheduler="cosine", crop_min_scale=0.7, random_flip=True,
                         data=str(coco_mini / "annotations" / "instances_train2017.json"),
                         images_dir=str(coco_mini / "train2017"))
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(values))
    launch(config, tmp_path / "straight")
    launch(config, tmp_path / "resumed", "--resume", str(tmp_path / "straight/checkpoints/step-00000002"))
    a = ckpt.load_training_state(tmp_path / "straight/checkpoints/step-00000004")
    b = ckpt.load_training_state(tmp_path / "resumed/checkpoints/step-00000004")
    first = ckpt.load_training_state(tmp_path / "straight/checkpoints/step-00000002")
    assert a["step"] == b["step"] == 4
    assert any(not torch.equal(a["unet"][k], first["unet"][k]) for k in a["unet"]), "weights did not move"
    for part in ("unet", "ema"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
