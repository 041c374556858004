"""unigs.train_parts and unigs.plan: frozen parts referenced in checkpoints, --resume PATH, the dry run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from unigs import checkpoint as ckpt
from unigs.config import config_from_dict
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


def test_reference_checkpoint_holds_only_the_ema_unet_and_loads_whole(tmp_path, tiny_parts):
    from unigs.train import train

    out = train(config_from_dict(tiny_config(tiny_parts, steps=1, checkpoint_frozen="reference")), tmp_path)
    assert (out / EMA_UNET_FILE).is_file() and not (out / INFERENCE_FILE).exists()
    model = load_checkpoint_model(out)
    state = ckpt.load_training_state(out)
    for key, value in model.unet.state_dict().items():
        assert torch.equal(value, state["ema"][key]), key
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(tiny_parts["vae"])
    for key, value in model.vae.state_dict().items():
        assert torch.equal(value, vae.state_dict()[key]), key
    assert model.meta["step"] == 1 and model.meta["image_size"] == 32


def test_sd15_checkpoint_size_estimate():
    config = config_from_dict({"init": "weights/sd-inpainting", "image_size": 512}, check_paths=False)
    sizes = part_sizes(config)  # SD-1.5's UNet config on the meta device: no weights needed
    assert sizes["unet"] == 859_558_408 + 4 * 1280  # count_parameters of the real UNet + task embedding
    copy = checkpoint_bytes(config, sizes)
    assert copy["training_state"] == sizes["unet"] * 16 and copy["frozen_copies"] > 0.8e9
    ref = config_from_dict({"init": "x", "checkpoint_frozen": "reference"}, check_paths=False)
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
