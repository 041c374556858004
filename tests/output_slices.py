"""Pinned output slices, the diffusers way (`expected_slice` in diffusers' pipeline tests).

Each pipeline test runs the tiny seeded components (`tiny_models`) at a fixed seed and compares a small slice
of a generated output — the last 3×3 pixels of the last channel of the first output — with the values
pinned in the test. They are regression pins, not quality numbers: a change to a pipeline's numerics (Eq. 8
layout, guidance, sampler steps, latent decoding) moves them, and whoever makes such a change on purpose
re-pins them (the assertion message prints the new slice). Each test also checks that another seed's slice
does not pass, so a pin cannot go vacuous.
"""

from __future__ import annotations

import numpy as np

TOLERANCE = 2  # uint8 levels: outputs are quantised, so float noise across CPUs moves a value by at most ~1


def output_slice(batch) -> np.ndarray:
    """`(9,) int` — the last 3×3 pixels of the last channel of `batch[0]`, `batch` `(B, H, W, 3) uint8`."""
    return np.asarray(batch)[0, -3:, -3:, -1].astype(int).ravel()


def matches(batch, expected: list[int]) -> bool:
    return bool(np.abs(output_slice(batch) - np.asarray(expected)).max() <= TOLERANCE)


def assert_slice(batch, expected: list[int], other=None) -> None:
    """The slice of `batch` equals `expected` within TOLERANCE; the slice of `other` (another seed's
    output), when given, does not."""
    got = output_slice(batch).tolist()
    assert matches(batch, expected), f"output slice {got} != pinned {expected} (±{TOLERANCE})"
    if other is not None:
        assert not matches(other, expected), f"another seed's slice {output_slice(other).tolist()} also " \
                                             f"matches the pin {expected}: the pin cannot fail"
