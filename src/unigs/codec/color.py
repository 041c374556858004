"""sRGB → CIELAB in torch, the colour space half of Φ's pixel feature (paper §3.2, "p_o ∈ R^{1×6}").

The conversion is the one of ``skimage.color.rgb2lab`` (and of most image libraries): sRGB with the
IEC 61966-2-1 transfer curve, linear RGB → CIE XYZ with the sRGB/D65 matrix, then CIE 1976 L*a*b*
relative to the D65 white point of the 2° observer. Ranges: L* in [0, 100], a*, b* roughly in
[-128, 128] (for sRGB inputs a* ∈ [-86.2, 98.3], b* ∈ [-107.9, 94.5]).

Written with plain torch ops so that Φ's batched path runs on any device; numpy in → numpy out. The same
formulas, compiled for one colour (:func:`lab_of`), serve Φ's compiled region merging.
"""

from __future__ import annotations

import numpy as np
import torch

from unigs.codec.kernels import compiled

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
