"""The TrainConfig dict of a tiny training run (a module, not conftest.py: several conftest modules exist)."""

TINY_UNET = {
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [32, 32],
    "layers_per_block": 1,
    "attention_head_dim": 4,
}


def tiny_config(parts: dict[str, str], **overrides) -> dict:
    """A TrainConfig dict of a few-second run: 32 px scenes, the tiny UNet, VAE and text encoder."""
    return {"image_size": 32, "num_scenes": 16, "unet": TINY_UNET, "batch_size": 2, "steps": 4,
            "log_every": 1, "ckpt_every": 2, "lr": 1e-3, "lr_warmup_steps": 2, **parts, **overrides}
