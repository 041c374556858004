"""Φ's settings: one frozen :class:`DichotomyConfig`, every constant named with the reason for its value.

:func:`unigs.codec.dichotomy.decode` builds one from its keyword arguments (``decode(cmap, delta=20)``),
so the config is also the list of what ``decode`` accepts. Units: colours in grey levels [0, 255];
feature distances in the scaled units of :mod:`unigs.codec.color` (one palette step = 8 RGB units).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from unigs.codec.color import FEATURES, LAB_SCALE, RGB_SCALE

# The region clean-up's stages, in the order decode() runs them (unigs.codec.cleanup); an ablation drops
# one from DichotomyConfig.stages.
STAGES = ("tiny", "touching", "darker", "apart", "midpoint", "holes")


@dataclass(frozen=True)
class DichotomyConfig:
    """Everything Φ reads. Defaults are the shipped decoder (codec benchmark, docs/results.md)."""

    # ---- Eq. 6–7 (paper §3.2) ------------------------------------------------------------------
    delta: float = 10.0  # Eq. 7 bound on a leaf's mean squared distance; the paper's best (Table 9a)
    features: str = "rgb+lab"  # the paper's 6-d p_o; "rgb" / "lab" are Table 9b's halves
    # Small-mode guard: a region is also split while ≥ min_area of its weight lies farther than
    # √(far_factor·δ) from its mean; Eq. 7 alone averages a 1 % entity away (it adds 0.6 to the msd).
    far_factor: float = 4.0
    max_leaves: int = 256  # cap on the leaf count: a pathological map cannot explode the tree
    # ---- what takes part -----------------------------------------------------------------------
    min_area: int = 24  # flat px a leaf needs to be kept, and the size of a "tiny" region (A); ≈ 1.5 cells
    # A VAE round trip turns edges into ramps ≈ 2 latent cells wide; a 4×4 cell whose colour changes by
    # ≥ edge_threshold grey levels over 8 px (a ramp of 3 levels per pixel) is boundary, not entity.
    edge_threshold: float = 24.0
    background_level: float = 32.0  # every channel below: near-black = background (half a palette step)
    bin_size: int = 8  # grey levels per histogram bin: error ≤ 4 levels, far below the palette step (64)
    max_clean_colors: int = 256  # ≤ this many exact colours, none sharing a bin: a painted map, no VAE
    # ---- region clean-up (decoded maps; unigs.codec.cleanup) -------------------------------------
    regions: bool = True  # False: the colour leaves are the entities (the paper's plain Eq. 6–7)
    stages: tuple[str, ...] = STAGES  # clean-up stages that run (ablations drop one)
    merge_factor: float = 2.0  # regions closer than merge_factor·δ (squared) are one entity (B1–B3)
    midpoint_steps: int = 3  # fixed-point steps for an entity's core colour (stage C)
    tiny_rounds: int = 8  # rounds of stage A; a speck chain longer than this is left as it is
    # Work scale: a decoded map whose short side is ≥ 2·work_size runs Φ on a copy box-averaged by
    # ⌊short / work_size⌋ (the colour of a latent round trip varies at the latent scale, 8 px for SD),
    # then is refined back per pixel at the boundaries. None: always full resolution.
    work_size: int | None = 128
    # ---- output --------------------------------------------------------------------------------
    keep_background: bool = False  # keep the near-black entity (entity segmentation) or drop it
    snap_to_palette: bool = False  # merge entities that snap to one palette colour, report that colour
    rgb_scale: float = RGB_SCALE  # feature scales (unigs.codec.color): fixed, named here for the loops
    lab_scale: float = LAB_SCALE

    def __post_init__(self):
        finite = lambda v: isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)  # noqa: E731
        if not finite(self.delta) or not self.delta > 0:
            raise ValueError(f"delta must be a finite number > 0 (Eq. 7 threshold), got {self.delta!r}")
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {list(FEATURES)}, got {self.features!r}")
        if not isinstance(self.min_area, int | np.integer) or self.min_area < 1:
            raise ValueError(f"min_area must be an integer >= 1 (pixels), got {self.min_area!r}")
        if self.bin_size not in (1, 2, 4, 8, 16):
            raise ValueError(f"bin_size must be one of 1, 2, 4, 8, 16 grey levels, got {self.bin_size!r}")
        if not finite(self.edge_threshold) or not self.edge_threshold > 0:
            raise ValueError(
                f"edge_threshold must be a number > 0 (grey levels), got {self.edge_threshold!r}")
        ws = self.work_size
        if ws is not None and (not isinstance(ws, int | np.integer) or isinstance(ws, bool) or ws < 1):
            raise ValueError(f"work_size must be an integer >= 1 (pixels) or None, got {ws!r}")
        unknown = [s for s in self.stages if s not in STAGES]
        if isinstance(self.stages, str) or unknown:
            raise ValueError(f"stages must be a tuple of names from {list(STAGES)}, got {self.stages!r}")
        for name in ("far_factor", "merge_factor"):
            if not finite(getattr(self, name)) or not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        for name in ("max_leaves", "max_clean_colors", "midpoint_steps", "tiny_rounds"):
            if not isinstance(getattr(self, name), int | np.integer) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        object.__setattr__(self, "min_area", int(self.min_area))
        object.__setattr__(self, "stages", tuple(self.stages))

    @classmethod
    def from_kwargs(cls, **kwargs) -> DichotomyConfig:
        """The config of ``decode(..., **kwargs)``; an unknown keyword raises ``TypeError`` naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown decode argument(s) {unknown}; known: {sorted(names)}")
        return cls(**kwargs)

    def runs(self, stage: str) -> bool:
        """Whether clean-up ``stage`` (one of ``STAGES``) runs."""
        return stage in self.stages

    @property
    def tau(self) -> float:
        """Merge bound of the clean-up, in squared feature units (B1–B3)."""
        return self.merge_factor * self.delta

    @property
    def bits(self) -> int:
        """Bits per channel left after quantising to ``bin_size`` grey levels."""
        return 8 - (self.bin_size.bit_length() - 1)

    def replace(self, **changes) -> DichotomyConfig:
        return dataclasses.replace(self, **changes)
