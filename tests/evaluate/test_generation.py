"""FID math on known Gaussians, feature/CLIP loading from local files, mask alignment, hole error."""

import numpy as np
import pytest
import torch

from unigs.evaluate.generation import (
    PSNR_CAP_DB,
    colormap_entities,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    hole_error,
    load_clip,
    load_feature_network,
    mask_alignment,
)

# --- Fréchet distance ----------------------------------------------------------------------------------


def test_frechet_identical_is_zero_and_mean_shift_is_squared_distance():
    sigma = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_distance(np.zeros(2), sigma, np.zeros(2), sigma) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(np.zeros(2), sigma, np.array([3.0, 4.0]), sigma) == pytest.approx(25.0)


def test_frechet_diagonal_covariances_closed_form():
    # diagonal: sum_k (s1_k + s2_k - 2 sqrt(s1_k s2_k)) = sum_k (sqrt s1_k - sqrt s2_k)^2
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1.0 + ((1 - 2) ** 2 + (2 - 1) ** 2 + 0)
    got = frechet_distance(np.zeros(3), np.diag(s1), np.array([1.0, 0, 0]), np.diag(s2))
    assert got == pytest.approx(expected)


def test_frechet_matches_scipy_sqrtm_on_random_spd():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + np.eye(5), b @ b.T + np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    reference = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(mu1, s1, mu2[:3], s2)


def test_fid_from_samples_of_known_gaussians():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(20000, 2))
    fake = rng.normal(loc=[1.0, 0.0], scale=[1.0, 2.0], size=(20000, 2))
    # |mu|^2 = 1, covariance term (1 - 2)^2 = 1
    assert fid_from_features(real, fake) == pytest.approx(2.0, abs=0.1)
    mu, sigma = feature_statistics(real)
    assert mu.shape == (2,) and sigma.shape == (2, 2)
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(real[:1])
    with pytest.raises(ValueError, match="equal D"):
        fid_from_features(real, fake[:, :1])


# --- feature network from a local TorchScript file ----------------------------------------------------------


class _Pool(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x  # (B, 3, H, W) -> pooled to (B, 3) by the wrapper: the mean colour in [0, 1]


class _InceptionLike(torch.nn.Module):
    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return x.mean((2, 3)) if return_features else torch.zeros(len(x), 1)


def test_feature_network_conventions(tmp_path):
    images = np.full((3, 8, 8, 3), 51, np.uint8)
    torch.jit.save(torch.jit.script(_Pool()), str(tmp_path / "pool.pt"))
    np.testing.assert_allclose(load_feature_network(tmp_path / "pool.pt")(images), 0.2, rtol=1e-6)
    torch.jit.save(torch.jit.script(_InceptionLike()), str(tmp_path / "incep.pt"))
    net = load_feature_network(tmp_path / "incep.pt")
    assert net.inception_style
    np.testing.assert_allclose(net(images), 51.0, rtol=1e-6)  # fed [0, 255] with return_features=True
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_feature_network(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="TorchScript"):
        load_feature_network(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="uint8"):
        net(images.astype(np.float32))


# --- CLIP score with a tiny random CLIPModel ------------------------------------------------------------


def test_clip_score_matches_a_manual_cosine(tiny_clip):
    scorer = load_clip(tiny_clip)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 20, 20, 3), dtype=np.uint8)
    texts = ["a red dog.", "sky and ground"]
    scores = scorer(images, texts)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 100))
    inputs = scorer.processor(text=texts, images=list(images), return_tensors="pt", padding=True)
    with torch.no_grad():
        out = scorer.model(**inputs)
    cos = torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds).numpy()
    np.testing.assert_allclose(scores, 100 * np.clip(cos, 0, None), atol=1e-4)
    np.testing.assert_allclose(scorer(images, texts), scores)  # deterministic
    with pytest.raises(ValueError, match="1 texts"):
        scorer(images, texts[:1])


def test_load_clip_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_clip(tmp_path / "nothing")


# --- mask alignment and hole error ----------------------------------------------------------------------


def test_colormap_entities_and_alignment():
    cm = np.zeros((4, 4, 3), np.uint8)
    cm[:2, :2] = (64, 0, 0)
    cm[2:, :] = (0, 128, 255)
    ents = colormap_entities(cm)
    assert ents.shape == (2, 4, 4) and ents.sum() == 12 and not ents[:, :2, 2:].any()
    perfect = mask_alignment(ents[::-1], cm)
    assert perfect.miou == pytest.approx(1.0) and perfect.recall == pytest.approx(1.0)
    half = mask_alignment(ents[1:], cm)
    assert half.miou == pytest.approx(0.5) and half.recall == pytest.approx(0.5)
    with pytest.raises(ValueError, match="uint8"):
        colormap_entities(cm.astype(np.float32))


def test_hole_error_known_values():
    original = np.zeros((4, 4, 3), np.uint8)
    generated = original.copy()
    generated[:2] = 51  # error 0.2 everywhere in the top half
    hole = np.zeros((4, 4), bool)
    hole[:2] = True
    mae, psnr = hole_error(generated, original, hole)
    assert mae == pytest.approx(0.2) and psnr == pytest.approx(10 * np.log10(1 / 0.04))
    mae, psnr = hole_error(generated, original, ~hole)  # outside the change: exact
    assert mae == 0.0 and psnr == pytest.approx(PSNR_CAP_DB)
    assert np.isnan(hole_error(generated, original, np.zeros((4, 4), bool))[0])
    with pytest.raises(ValueError, match="hole"):
        hole_error(generated, original, hole[:2])
