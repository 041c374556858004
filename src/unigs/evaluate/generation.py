"""Generation metrics: FID, CLIP score, synthesis mask alignment, inpainting hole error (paper §4, Table 4).

Feature networks are loaded only from LOCAL files; nothing here ever downloads.

* **FID** — the Fréchet distance between Gaussians fitted to features of real and generated images:
  ``FD = |mu_r - mu_g|^2 + tr(S_r) + tr(S_g) - 2 tr((S_r S_g)^(1/2))``. The trace of the matrix square root
  is computed as ``sum sqrt(eig(S_r^(1/2) S_g S_r^(1/2)))`` — the same number as scipy's ``sqrtm``, but
  always real and stable for the singular covariances of small samples. The feature network is any
  TorchScript file (:func:`load_feature_network`), e.g. the Inception-v3 ``inception-2015-12-05.pt`` that
  clean-fid / StyleGAN2 ship. FID from few images is biased upwards; compare numbers at equal sample size.
* **CLIP score** — ``100 * max(cos(E_image, E_text), 0)`` averaged over images (torchmetrics' definition,
  the paper's CS scale), with a CLIPModel + CLIPProcessor from a local folder (``local_files_only``).
* **Mask alignment** (paper §4.3) — mIoU / recall of entity masks segmented *from the generated image*
  against the entities of the input colormap (:func:`colormap_entities`).
* **Hole error** — how far an inpainted image is from I_0 inside the coarse mask: MAE in [0, 1] and PSNR.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPModel, CLIPProcessor

from unigs.evaluate.metrics import MatchScores, best_match_scores

PSNR_CAP_DB = 100.0  # PSNR of an exact reconstruction (MSE floored at 1e-10), so averages stay finite


# --- FID -------------------------------------------------------------------------------------------------

def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean `(D,)` and covariance `(D, D)` (float64, unbiased) of `(N, D)` features; needs N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {features.shape}")
    if len(features) < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {len(features)}")
    return features.mean(0), np.atleast_2d(np.cov(features, rowvar=False))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues -> 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (module docstring); >= 0.

    Args:
        mu1, mu2: `(D,)` means.
        sigma1, sigma2: `(D, D)` symmetric PSD covariances.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = len(mu1)
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shapes do not fit: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {sigma1.shape}, "
                         f"sigma2 {sigma2.shape}")
    root1 = _sqrt_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean, 0.0))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between `(N, D)` real and `(M, D)` generated features (N, M >= 2)."""
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features must be (N, D) with equal D, got {real.shape} and "
                         f"{fake.shape}")
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


class FeatureNetwork:
    """A local TorchScript feature network, called on uint8 images.

    Calling convention, chosen by the network's signature:
    * ``forward(x, return_features=...)`` (clean-fid / StyleGAN2 Inception): x is `(B, 3, H, W) float32` in
      [0, 255] and ``return_features=True``; the network resizes internally.
    * anything else: x is `(B, 3, H, W) float32` in [0, 1]; a `(B, C, h, w)` output is averaged over space.
    """

    def __init__(self, module, batch_size: int = 16):
        self.module = module.eval()
        self.batch_size = batch_size
        try:
            names = [a.name for a in module.forward.schema.arguments]
        except (AttributeError, RuntimeError):
            names = []
        self.inception_style = "return_features" in names

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """`(N, H, W, 3) uint8` -> `(N, D) float64` features."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
        out = []
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                x = torch.from_numpy(images[start:start + self.batch_size]).permute(0, 3, 1, 2).float()
                if self.inception_style:
                    feats = self.module(x, return_features=True)
                else:
                    feats = self.module(x / 255.0)
                feats = feats.flatten(2).mean(2) if feats.ndim == 4 else feats.reshape(len(x), -1)
                out.append(feats.double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))


def load_feature_network(path: str | Path) -> FeatureNetwork:
    """Load a TorchScript feature network (`torch.jit.save` file) from a local path, on CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FID feature network {str(path)!r} does not exist (give a local TorchScript "
                                "file, e.g. inception-2015-12-05.pt)")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as err:
        raise ValueError(f"{str(path)!r} is not a TorchScript file (torch.jit.save): {err}") from err
    return FeatureNetwork(module)


# --- CLIP score --------------------------------------------------------------------------------------------

@dataclass
class ClipScorer:
    """A CLIPModel and its processor, loaded from a local folder by :func:`load_clip`."""

    model: object
    processor: object

    def __call__(self, images: np.ndarray, texts: list[str]) -> np.ndarray:
        """Per-image CLIP score, `(N,) float64` in [0, 100]: 100 * max(cos(image, text), 0).

        Args:
            images: `(N, H, W, 3) uint8`.
            texts: N captions (truncated to the text model's length).
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
        if len(texts) != len(images):
            raise ValueError(f"got {len(texts)} texts for {len(images)} images")
        if len(images) == 0:
            return np.zeros(0)
        inputs = self.processor(text=list(texts), images=list(images), return_tensors="pt", padding=True,
                                truncation=True)
        with torch.no_grad():
            out = self.model(**inputs)
        img = torch.nn.functional.normalize(out.image_embeds.float(), dim=-1)
        txt = torch.nn.functional.normalize(out.text_embeds.float(), dim=-1)
        return (100 * (img * txt).sum(-1).clamp(min=0)).double().numpy()


def load_clip(path: str | Path) -> ClipScorer:
    """CLIPModel + CLIPProcessor from a local folder (`save_pretrained` layout), never from the hub."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"CLIP folder {str(path)!r} has no config.json (give a local CLIPModel "
                                "folder with its tokenizer and preprocessor files)")
    model = CLIPModel.from_pretrained(str(path), local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(str(path), local_files_only=True)
    return ClipScorer(model, processor)


# --- mask alignment and hole error ------------------------------------------------------------------------

def colormap_entities(colormap: np.ndarray) -> np.ndarray:
    """The entities of an exact (not VAE-decoded) colormap: one mask per distinct non-black colour.

    Args:
        colormap: `(H, W, 3) uint8`, black = background.

    Returns:
        `(K, H, W) bool`, disjoint, ordered by colour value.
    """
    colormap = np.asarray(colormap)
    if colormap.ndim != 3 or colormap.shape[-1] != 3 or colormap.dtype != np.uint8:
        raise ValueError(f"colormap must be (H, W, 3) uint8, got {colormap.shape} {colormap.dtype}")
    rgb = colormap.astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours = np.unique(packed)
    colours = colours[colours != 0]
    return packed[None] == colours[:, None, None]


def mask_alignment(pred_masks: np.ndarray, colormap: np.ndarray) -> MatchScores:
    """Paper §4.3: masks segmented from a generated image vs the entities of its input colormap."""
    return best_match_scores(pred_masks, colormap_entities(colormap))


def hole_error(generated: np.ndarray, original: np.ndarray, hole: np.ndarray) -> tuple[float, float]:
    """Inpainting reconstruction error inside the hole: (MAE in [0, 1], PSNR in dB).

    Args:
        generated, original: `(H, W, 3) uint8` Î and I_0.
        hole: `(H, W) bool` coarse mask m_c, 1 = inpainted region.

    Returns:
        Mean absolute error over the hole's pixels and channels (intensities / 255), and
        PSNR = 10 log10(1 / MSE) on the same pixels, capped at :data:`PSNR_CAP_DB`. NaN for an empty hole.
    """
    generated, original, hole = np.asarray(generated), np.asarray(original), np.asarray(hole, bool)
    if generated.shape != original.shape or generated.ndim != 3 or generated.shape[-1] != 3:
        raise ValueError(f"generated {generated.shape} and original {original.shape} must both be (H, W, 3)")
    if hole.shape != generated.shape[:2]:
        raise ValueError(f"hole is {hole.shape} but the images are {generated.shape[:2]}")
    if not hole.any():
        return float("nan"), float("nan")
    diff = (generated[hole].astype(np.float64) - original[hole].astype(np.float64)) / 255.0
    mse = max(float((diff ** 2).mean()), 10 ** (-PSNR_CAP_DB / 10))
    return float(np.abs(diff).mean()), float(10 * np.log10(1.0 / mse))
