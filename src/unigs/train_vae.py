"""`unigs train-vae`: the small VAE Υ of the from-scratch model (×4 downsampling, paper Eq. 3).

UniGS encodes images, entity colormaps and controls with one VAE (§3.3). SD's VAE never saw colormaps; a
small VAE trained here sees both, half and half per batch:

* images of the training data (procedural scenes or COCO-format images, at `image_size` px);
* their palette colormaps Ψ(M) (§3.2): all entities (what the entity task predicts) or 1–`max_entities`
  of them on black (inpainting / referring). The colormap path matters most: its decoded colours must
  stay clean enough for the progressive dichotomy Φ to recover the masks.

Loss: L1 reconstruction + `kl_weight` × KL(q(z|x) ‖ N(0, I)) (a small weight, as in LDM's autoencoders).
At the end the latent scale is set to `scaling_factor = 1 / std` of held-out latents (images and colormaps
together; SD's 0.18215 came about the same way) and the VAE is written with `save_pretrained`
(safetensors) to `<output>/vae/`, then evaluated on held-out scenes: PSNR of images and colormaps, and the
mIoU of dichotomy-decoded masks after a VAE round trip.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from diffusers import AutoencoderKL
from tqdm.auto import tqdm

from unigs import checkpoint as ckpt
from unigs.codec.dichotomy import decode
from unigs.codec.palette import encode
from unigs.config import check_config_numbers, config_from_dict, parse_overrides, read_config_file
from unigs.data.scenes import SceneDataset
from unigs.data.source import EntitySource
from unigs.evaluate.metrics import best_match_scores
from unigs.models.vae import decode_latents, encode_images, small_vae_config, to_model_images


@dataclass
class VAETrainConfig:
    """Everything that changes the VAE experiment. Loaded from one YAML/JSON file."""

    data: str = "scenes"  # "scenes" or a COCO instances JSON (+ images_dir)
    images_dir: str | None = None
    num_scenes: int = 100_000
    image_size: int = 128
    crop_size: int | None = None  # train on random crops (the VAE is convolutional): 64 px is 4× cheaper
    grid: int = 11
    max_entities: int = 4
    vae: dict[str, Any] = field(default_factory=dict)  # small_vae_config overrides
    init: str | None = None  # start from this trained VAE folder (its config wins over `vae`)
    # Train the decoder only (encoder and quant_conv frozen): the latents, and so the scaling factor and any
    # UNet trained on them, stay valid while the reconstruction gets better. Needs `init`.
    decoder_only: bool = False
    batch_size: int = 16  # per process; images, then colormaps (colormap_fraction of the batch)
    colormap_fraction: float = 0.5  # 1.0 with decoder_only: a decoder for colormaps alone (same latents)
    # decoder_only: draw `pool_size` full-size examples once, encode them once with the frozen encoder, and
    # let every step sample (and crop) from that pool: a step is then the decoder alone (no scene
    # rendering, Ψ or encoder), ~2-3x cheaper on the CPU. None: fresh draws every step.
    pool_size: int | None = None
    latent_noise: float = 0.0  # pool mode: N(0, σ²) added to the raw latents, for latents a UNet predicts
    lr: float = 2e-4
    kl_weight: float = 1e-6
    sample_posterior: bool = False  # decode posterior samples (True) or the mean (see VAELoss.forward)
    steps: int = 2000
    seed: int = 0
    log_every: int = 20
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    eval_scenes: int = 64  # held-out (val split) scenes for the scale and the PSNR / mIoU report

    def __post_init__(self) -> None:
        for name in ("image_size", "batch_size", "steps", "log_every", "ckpt_every", "keep_checkpoints",
                     "eval_scenes", "num_scenes", "max_entities"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, is {getattr(self, name)}")
        if self.crop_size is not None and not 0 < self.crop_size <= self.image_size:
            raise ValueError(f"crop_size must be in [1, image_size={self.image_size}], is {self.crop_size}")
        if not 0.0 <= float(self.colormap_fraction) <= 1.0:
            raise ValueError(f"colormap_fraction must be in [0, 1], is {self.colormap_fraction}")
        if self.colormap_fraction == 0.5 and self.batch_size % 2:
            raise ValueError(f"batch_size must be even (half images, half colormaps), is {self.batch_size}")
        if self.pool_size is not None and (not self.decoder_only or int(self.pool_size) < self.batch_size):
            raise ValueError(f"pool_size needs decoder_only and at least batch_size={self.batch_size} "
                             f"examples, is {self.pool_size}")
        if float(self.latent_noise) < 0:
            raise ValueError(f"latent_noise must be >= 0, is {self.latent_noise}")
        if self.decoder_only and self.init is None:
            raise ValueError("decoder_only needs init (a trained VAE folder whose encoder stays fixed)")
        if self.init is not None and not (Path(self.init) / "config.json").is_file():
            raise FileNotFoundError(f"init must be a VAE folder with config.json; {self.init!r} is not")
        if self.data != "scenes" and not Path(self.data).is_file():
            raise FileNotFoundError(f"data must be 'scenes' or a COCO annotations JSON; "
                                    f"{self.data!r} is neither")
        check_config_numbers(self)


def entity_source(config: VAETrainConfig) -> EntitySource:
    """The training images of `config` (procedural scenes or its COCO JSON) at `image_size` px."""
    return EntitySource(config.data, config.image_size, config.images_dir, config.num_scenes)


def random_colormap(masks: np.ndarray, rng: np.random.Generator, grid: int, max_entities: int) -> np.ndarray:
    """Ψ of all entities (p = 0.5) or of 1…max_entities random ones: `(H, W, 3) uint8`, black = background."""
    n = len(masks)
    if n > 1 and rng.random() >= 0.5:
        keep = np.sort(rng.choice(n, size=int(rng.integers(1, min(n, max_entities) + 1)), replace=False))
        masks = masks[keep]
    return encode(masks, grid=grid)


def vae_batch(config: VAETrainConfig, source: EntitySource, rng: np.random.Generator) -> np.ndarray:
    """`(B, C, C, 3) uint8`: B − k images then the colormaps of k other draws (k = colormap_fraction · B),
    randomly cropped to C = crop_size (C = image_size without cropping). Colormaps are made at full size,
    then cropped, so their palette colours are those of whole-image entity positions."""
    batch = draw_pixels(config, source, rng, config.batch_size)
    c = config.crop_size or config.image_size
    if c < config.image_size:
        ys, xs = rng.integers(0, config.image_size - c + 1, size=(2, len(batch)))
        batch = np.stack([b[y:y + c, x:x + c] for b, y, x in zip(batch, ys, xs, strict=True)])
    return batch


def draw_pixels(config: VAETrainConfig, source: EntitySource, rng: np.random.Generator, n: int) -> np.ndarray:
    """`(n, S, S, 3) uint8` at S = image_size: n − k images, then k colormaps (k = colormap_fraction · n)."""
    n_colormaps = int(round(n * float(config.colormap_fraction)))
    n_images = n - n_colormaps
    images, colormaps = [], []
    while len(images) < n_images or len(colormaps) < n_colormaps:
        image, masks, _ = source.get(int(rng.integers(len(source))))
        if len(images) < n_images:
            images.append(image)
        elif len(masks):
            colormaps.append(random_colormap(masks, rng, config.grid, config.max_entities))
    return np.stack(images + colormaps)


class VAELoss(torch.nn.Module):
    """The VAE plus its loss in one `forward`, so that DDP (`accelerate launch`) sees one forward pass."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, kl_weight: float, generator: torch.Generator, sample: bool = False,
                latents: torch.Tensor | None = None):
        """`(loss, l1)`: L1 of the reconstruction + kl_weight·KL; x (B,3,H,W) in [-1,1].

        `sample=False` decodes the posterior mean. With the near-zero KL weight of a short CPU run, decoding
        samples (std ≈ 1 at initialisation) stalled the L1 at ~0.45 after 80 steps; the diffusion model only
        ever sees the mean latents (`encode_images`), so the mean is what has to reconstruct well.
        `latents` (pool mode, frozen encoder): the raw latents of x, decoded as they are; the loss is the L1.
        """
        if latents is not None:
            l1 = (self.vae.decode(latents).sample - x).abs().mean()
            return l1, l1.detach()
        posterior = self.vae.encode(x).latent_dist
        z = posterior.sample(generator=generator) if sample else posterior.mode()
        recon = self.vae.decode(z).sample
        l1 = (recon - x).abs().mean()
        kl = posterior.kl().mean() / x[0].numel()  # per pixel-channel, so kl_weight is size independent
        return l1 + kl_weight * kl, l1.detach()


class LatentPool:
    """Pool mode (`pool_size`, decoder_only): full-size examples and their raw posterior-mean latents
    `(N, 4, S/f, S/f)` from the frozen encoder, made once; :meth:`batch` samples and crops from them."""

    def __init__(self, vae, config: VAETrainConfig, source: EntitySource, chunk: int = 64):
        from unigs.models.vae import latent_factor, to_model_images

        self.factor = latent_factor(vae)
        crop = config.crop_size or config.image_size
        if crop % self.factor:
            raise ValueError(f"crop_size must be a multiple of the VAE factor {self.factor}, is {crop}")
        self.cells, self.config = crop // self.factor, config
        rng = np.random.default_rng([config.seed, 7919])  # apart from the per-step streams
        self.pixels = draw_pixels(config, source, rng, int(config.pool_size))
        param = next(vae.parameters())
        with torch.no_grad():
            self.latents = torch.cat([
                vae.encode(to_model_images(self.pixels[i:i + chunk]).to(param.device)).latent_dist.mode()
                for i in range(0, len(self.pixels), chunk)]).float().cpu()

    def batch(self, rng: np.random.Generator, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(x, z)`: batch_size random pool members, cropped alike: pixels `(B, 3, C, C)` in [-1, 1] and
        latents `(B, 4, C/f, C/f)` (+ `latent_noise` · N(0, 1))."""
        from unigs.models.vae import to_model_images

        b, c, f = self.config.batch_size, self.cells, self.factor
        index = rng.integers(len(self.pixels), size=b)
        ys, xs = rng.integers(0, self.latents.shape[-1] - c + 1, size=(2, b))
        z = torch.stack([self.latents[i, :, y:y + c, x:x + c] for i, y, x in zip(index, ys, xs, strict=True)])
        x = np.stack([self.pixels[i, y * f:(y + c) * f, x * f:(x + c) * f]
                      for i, y, x in zip(index, ys, xs, strict=True)])
        if self.config.latent_noise:
            z = z + float(self.config.latent_noise) * torch.randn(z.shape, generator=generator)
        return to_model_images(x), z


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 arrays in dB (peak 255); inf if identical."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


@torch.no_grad()
def evaluate_vae(vae, config: VAETrainConfig) -> dict[str, float]:
    """Report on `eval_scenes` held-out scenes: latent std, PSNR (images, colormaps), dichotomy mIoU."""
    scenes = SceneDataset(split="val", length=config.eval_scenes, size=config.image_size)
    images = np.stack([s.image for s in scenes])
    colormaps = np.stack([encode(s.masks, grid=config.grid) for s in scenes])
    out: dict[str, Any] = {"eval_scenes": len(scenes)}
    latents, recon = [], {}
    for name, pixels in (("image", images), ("colormap", colormaps)):
        parts = []
        for i in range(0, len(pixels), 16):
            z = encode_images(vae, pixels[i:i + 16])
            latents.append(z.float().cpu())
            parts.append(decode_latents(vae, z))
        recon[name] = np.concatenate(parts)
        out[f"psnr_{name}"] = float(np.mean([psnr(a, b) for a, b in zip(pixels, recon[name], strict=True)]))
    out["latent_std"] = float(torch.cat(latents).std())
    scores = [best_match_scores(decode(cm), s.masks) for cm, s in zip(recon["colormap"], scenes, strict=True)]
    out["dichotomy_miou"] = float(np.mean([s.miou for s in scores]))
    out["dichotomy_recall"] = float(np.mean([s.recall for s in scores]))
    return out


def train_vae(config: VAETrainConfig, output_dir: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Train, set the scaling factor, save `<output_dir>/vae/`, evaluate; returns the evaluation dict.
    A folder holding an earlier run is refused unless `overwrite` (`checkpoint.prepare_run_folder`)."""
    output_dir = Path(output_dir)
    # fp32: the VAE is small, and bf16 is ~9× slower on CPU. cpu=True without CUDA: see unigs.train.
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")
    main = accelerator.is_main_process
    if main:
        ckpt.prepare_run_folder(output_dir, resume=False, overwrite=overwrite)
    accelerator.wait_for_everyone()
    source = entity_source(config)
    torch.manual_seed(config.seed)
    if config.init is not None:
        vae = AutoencoderKL.from_pretrained(config.init)
    else:
        vae = AutoencoderKL(**small_vae_config(**{"sample_size": config.image_size, **config.vae}))
    if config.decoder_only:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=config.lr)
    pool = LatentPool(vae, config, source) if config.pool_size is not None else None
    model, optimizer = accelerator.prepare(VAELoss(vae), optimizer)
    bar = tqdm(total=config.steps, disable=not main, desc="unigs train-vae", dynamic_ncols=True)
    t0, l1_sum = time.perf_counter(), 0.0
    log_rows = []
    for step in range(config.steps):
        rng = np.random.default_rng([config.seed, step, accelerator.process_index])
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        if pool is None:
            x, z = to_model_images(vae_batch(config, source, rng)).to(accelerator.device), None
        else:
            x, z = (t.to(accelerator.device) for t in pool.batch(rng, generator))
        loss, l1 = model(x, config.kl_weight, generator, config.sample_posterior, latents=z)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        l1_sum += float(l1)
        bar.update(1)
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            rate = done / (time.perf_counter() - t0)
            log_rows.append({"step": done, "l1": l1_sum / config.log_every, "steps_per_s": rate})
            bar.set_postfix(l1=f"{l1_sum / config.log_every:.4f}", steps_s=f"{rate:.2f}")
            l1_sum = 0.0
        if main and (done % config.ckpt_every == 0 or done == config.steps):
            ckpt.save_checkpoint(output_dir / "checkpoints", done,
                                 lambda folder: vae.save_pretrained(folder / "vae", safe_serialization=True),
                                 keep=config.keep_checkpoints)
    bar.close()
    accelerator.wait_for_everyone()
    result: dict[str, Any] = {}
    if main:
        vae.eval()
        kept_scale = vae.config.scaling_factor  # decoder_only: the latents, hence their scale, are unchanged
        vae.register_to_config(scaling_factor=1.0)
        report = evaluate_vae(vae, config)  # at scaling_factor 1: latent_std is the raw std
        scale = kept_scale if config.decoder_only else 1.0 / report["latent_std"]
        vae.register_to_config(scaling_factor=scale)
        final, tmp = output_dir / "vae", output_dir / ".tmp-vae"
        shutil.rmtree(tmp, ignore_errors=True)
        vae.save_pretrained(tmp, safe_serialization=True)
        shutil.rmtree(final, ignore_errors=True)
        tmp.replace(final)
        result = {"scaling_factor": vae.config.scaling_factor, **report, "config": asdict(config),
                  "log": log_rows}
        ckpt.atomic_write(output_dir / "vae_report.json",
                          lambda p: p.write_text(json.dumps(result, indent=2) + "\n"))
    accelerator.end_training()
    return result


def run(config_file: str | Path | None, output_dir: str | Path, overrides: list[str] | None = None,
        overwrite: bool = False) -> int:
    """`unigs train-vae` (flags in `unigs.commands.train`): the config file, `--set KEY=VALUE` overrides on
    top, then train into `output_dir` and print the report."""
    values = {**read_config_file(config_file), **parse_overrides(overrides)}
    config = config_from_dict(values, VAETrainConfig)
    result = train_vae(config, output_dir, overwrite=overwrite)
    if result:
        keys = ("scaling_factor", "psnr_image", "psnr_colormap", "dichotomy_miou")
        print(" ".join(f"{k}={result[k]:.4g}" if isinstance(result[k], float) else f"{k}={result[k]}"
                       for k in keys))
        print(f"VAE written to {Path(output_dir) / 'vae'}")
    return 0
