"""Φ's compiled loops (numba), private: the passes whose numpy form is a dozen array sweeps or a Python
loop over regions. Callers above (:mod:`unigs.codec.histogram`, :mod:`unigs.codec.leaves`,
:mod:`unigs.codec.cleanup`, :mod:`unigs.codec.workscale`) validate and type the inputs and pass
C-contiguous numpy arrays; the rules are stated there, each loop here is one of them written as a loop.

* :mod:`.pixels` — per-pixel passes: histogram codes, flat cells, box mean, refinement, components, masks.
* :mod:`.rows` — Eq. 6–7 on weighted rows: 2-means, the dichotomy, merge-back, blend residuals.
* :mod:`.groups` — the region clean-up's graph walks, one per stage.

The machine code is cached beside the source (or in numba's per-user cache when that folder is
read-only), so only the first call on a machine compiles (about a minute for all of them on 2 cores).
"""

from __future__ import annotations

from numba import njit


def compiled(fn):
    """numba's ``njit`` with the machine code cached on disk; where no cache folder is writable (numba
    then refuses ``cache=True``), compiled once per process instead."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)
