"""Φ's pixel feature p_o = RGB ‖ CIELAB (paper §3.2, "p_o ∈ R^{1×6}"), written once per backend: torch
(any device), numpy (Φ's many small internal arrays), and compiled (numba, one colour at a time, for the
region clean-up's walks).

The conversion is the one of ``skimage.color.rgb2lab`` (and of most image libraries): sRGB with the
IEC 61966-2-1 transfer curve, linear RGB → CIE XYZ with the sRGB/D65 matrix, then CIE 1976 L*a*b*
relative to the D65 white point of the 2° observer. Ranges: L* in [0, 100], a*, b* roughly in
[-128, 128] (for sRGB inputs a* ∈ [-86.2, 98.3], b* ∈ [-107.9, 94.5]).

**Scaling.** p = (R, G, B) · ``RGB_SCALE`` ‖ (L*, a*, b*) · ``LAB_SCALE``, RGB in [0, 255]: both halves
span ≈ 32 units and one palette step (64 grey levels) is 8 RGB units, so δ of Eq. 7 has one meaning for
both halves. Scales of δ: i.i.d. noise of σ = 2 / 3 grey levels gives a mean squared distance of 0.4 /
0.9; the two closest palette colours are 65 apart (squared), so an even mix of them has msd 16; the
paper's best δ = 10 (Table 9a) sits between the two.
"""

from __future__ import annotations

import numpy as np
import torch

from unigs.codec._loops import compiled

FEATURES = ("rgb+lab", "rgb", "lab")  # Table 9b: the paper's 6-d feature and its two halves
RGB_SCALE = 1.0 / 8.0  # one palette step (64 grey levels) = 8 units
LAB_SCALE = 1.0 / 3.0  # L* in [0, 100] → [0, 33], the span of the RGB half

# sRGB (D65) linear RGB → XYZ, the matrix skimage uses (``skimage.color.colorconv.xyz_from_rgb``).
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# D65 white point, 2° observer (``skimage.color.colorconv._illuminants["D65"]["2"]``).
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPSILON = 0.008856  # (6/29)^3, where the CIE cube root switches to its linear segment
_KAPPA_SLOPE = 7.787  # (29/6)^2 / 3, slope of that linear segment


def check_rgb(rgb, name: str = "rgb") -> tuple[torch.Tensor, bool]:
    """Validate ``(..., 3)`` uint8 or float-in-[0, 255] colours (numpy or torch) without copying.

    Returns the data as a tensor (numpy arrays are wrapped, not copied) and whether the input was numpy.
    Raises ``ValueError`` naming ``name`` for a wrong type, shape, dtype, NaN or out-of-range float.
    """
    is_numpy = isinstance(rgb, np.ndarray)
    if not (is_numpy or isinstance(rgb, torch.Tensor)):
        raise ValueError(f"{name} must be a numpy array or torch tensor, got {type(rgb).__name__}")
    t = torch.from_numpy(np.ascontiguousarray(rgb)) if is_numpy else rgb
    if t.ndim < 1 or t.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t, is_numpy
    if not t.is_floating_point():
        raise ValueError(f"{name} must be uint8 or float in [0, 255], got dtype {t.dtype}")
    if t.numel() and bool(torch.isnan(t).any()):
        raise ValueError(f"{name} contains NaN values")
    if t.numel() and (bool(t.min() < 0) or bool(t.max() > 255)):
        raise ValueError(
            f"float {name} must lie in [0, 255], got values in [{float(t.min()):.3g}, {float(t.max()):.3g}]"
        )
    return t, is_numpy


def _unit_float(t: torch.Tensor) -> torch.Tensor:
    """uint8 / float [0, 255] tensor → float32 (float64 kept) in [0, 1]."""
    return t.to(torch.float64 if t.dtype == torch.float64 else torch.float32) / 255.0


def rgb_to_lab(rgb):
    """CIELAB (D65, 2°) of sRGB colours.

    Args:
        rgb: ``(..., 3)`` uint8 in [0, 255] or float in [0, 255] (not [0, 1]: Φ works on colormap values),
            numpy array or torch tensor on any device.

    Returns:
        ``(..., 3)`` float32 (float64 for float64 input) ``(L*, a*, b*)``; same container type and device as
        the input. Matches ``skimage.color.rgb2lab(rgb / 255)`` to within 1e-3.
    """
    t, is_numpy = check_rgb(rgb)
    if is_numpy:  # same formulas in numpy: no tensor overhead for Φ's many small calls
        return _rgb_to_lab_numpy(rgb)
    x = _unit_float(t)
    # sRGB transfer curve → linear light.
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor(_XYZ_FROM_RGB, dtype=x.dtype, device=x.device)
    white = torch.tensor(_WHITE_D65, dtype=x.dtype, device=x.device)
    xyz = (linear @ m.T) / white
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(_EPSILON) ** (1.0 / 3.0), _KAPPA_SLOPE * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(-1)
    lab = torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-1)
    return lab.numpy() if is_numpy else lab


def _rgb_to_lab_numpy(rgb: np.ndarray) -> np.ndarray:
    """:func:`rgb_to_lab` for a checked numpy array (float32, float64 for float64 input)."""
    dtype = np.float64 if rgb.dtype == np.float64 else np.float32
    x = rgb.astype(dtype) / dtype(255.0)
    linear = np.where(x > 0.04045, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)
    xyz = (linear @ np.asarray(_XYZ_FROM_RGB, dtype).T) / np.asarray(_WHITE_D65, dtype)
    f = np.where(xyz > _EPSILON, np.cbrt(np.maximum(xyz, _EPSILON)), _KAPPA_SLOPE * xyz + 16.0 / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), -1).astype(dtype, copy=False)


_M = np.array(_XYZ_FROM_RGB, np.float64)
_WHITE = np.array(_WHITE_D65, np.float64)


@compiled
def _linear(v):
    x = v / 255.0  # the sRGB transfer curve → linear light
    return ((max(x, 0.04045) + 0.055) / 1.055) ** 2.4 if x > 0.04045 else x / 12.92


@compiled
def _cube(t):
    return np.cbrt(max(t, _EPSILON)) if t > _EPSILON else _KAPPA_SLOPE * t + 16.0 / 116.0


@compiled
def lab_of(r, g, b):
    """One float64 sRGB colour in [0, 255] → (L*, a*, b*), the formulas of :func:`rgb_to_lab` (compiled)."""
    lr, lg, lb = _linear(r), _linear(g), _linear(b)
    fx = _cube((lr * _M[0, 0] + lg * _M[0, 1] + lb * _M[0, 2]) / _WHITE[0])  # XYZ / white → f
    fy = _cube((lr * _M[1, 0] + lg * _M[1, 1] + lb * _M[1, 2]) / _WHITE[1])
    fz = _cube((lr * _M[2, 0] + lg * _M[2, 1] + lb * _M[2, 2]) / _WHITE[2])
    return 116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)


# ------------------------------------------------------------------------------------ pixel features
def pixel_features(rgb, features: str = "rgb+lab"):
    """Φ's pixel feature p_o (§3.2), scaled as in the module docstring.

    Args:
        rgb: ``(..., 3)`` uint8 or float in [0, 255], numpy array or torch tensor (any device).
        features: ``"rgb+lab"`` (6-d, the paper's choice), ``"rgb"`` or ``"lab"`` (3-d; Table 9b).

    Returns:
        ``(..., D)`` float32 (float64 for float64 input), same container type and device as ``rgb``.
    """
    if features not in FEATURES:
        raise ValueError(f"features must be one of {list(FEATURES)}, got {features!r}")
    t, is_numpy = check_rgb(rgb)
    if is_numpy:  # numpy in: numpy throughout
        return features_np(rgb.astype(np.float64 if rgb.dtype == np.float64 else np.float32), features)
    x = _unit_float(t)
    parts = [x * (255.0 * RGB_SCALE)] if "rgb" in features else []
    if "lab" in features:
        parts.append(rgb_to_lab(x * 255.0) * LAB_SCALE)
    return torch.cat(parts, dim=-1)


def features_np(x: np.ndarray, features: str) -> np.ndarray:
    """:func:`pixel_features` of checked float numpy colours in [0, 255], same float dtype (no checks:
    Φ calls it on many small internal arrays)."""
    parts = [x * x.dtype.type(RGB_SCALE)] if "rgb" in features else []
    if "lab" in features:
        parts.append(_rgb_to_lab_numpy(x) * x.dtype.type(LAB_SCALE))
    return np.concatenate(parts, -1)


@compiled
def feature_row(col, out, use_rgb, use_lab, rgb_scale, lab_scale):
    """One float64 colour (3,) in [0, 255] → its Φ feature (RGB part first) written into ``out`` (D,)."""
    j = 0
    if use_rgb:
        for c in range(3):
            out[c] = col[c] * rgb_scale
        j = 3
    if use_lab:
        lab_l, lab_a, lab_b = lab_of(col[0], col[1], col[2])
        out[j], out[j + 1], out[j + 2] = lab_l * lab_scale, lab_a * lab_scale, lab_b * lab_scale


@compiled
def feature_rows(col, use_rgb, use_lab, rgb_scale, lab_scale):
    """(n, 3) float64 colours in [0, 255] → (n, D) Φ features (RGB part first), float64."""
    out = np.empty((col.shape[0], 3 * use_rgb + 3 * use_lab))
    for i in range(col.shape[0]):
        feature_row(col[i], out[i], use_rgb, use_lab, rgb_scale, lab_scale)
    return out
