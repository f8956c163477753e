"""ducc0's FFTs for the NumPy fast paths (the Kelvin–Helmholtz real-to-real transforms, the
reaction–diffusion 2-D real FFTs), and the check each path runs before it trusts them.

``ducc0`` is the successor of pocketfft (SciPy's FFT from 1.18). Its batched transforms are faster
than NumPy's and SciPy 1.17's at these sizes, with the same sums rounded differently, so a fast path
compares them with the reference functions on small arrays and falls back where they disagree.
"""
from __future__ import annotations

import functools


@functools.cache
def ducc_fft():
    """The ``ducc0.fft`` module, or ``None`` where ducc0 is not installed."""
    try:
        from ducc0 import fft
    except ImportError:  # pragma: no cover - depends on what is installed
        return None
    return fft


def agrees(a, b, tol: float) -> bool:
    """``a`` equals ``b`` to within ``tol`` times the largest entry of ``b`` (``tol = 0``: bit for bit)."""
    import numpy as np

    if tol == 0:
        return bool(np.array_equal(a, b))
    return bool(np.max(np.abs(a - b)) <= tol * np.max(np.abs(b)))


__all__ = ["ducc_fft", "agrees"]
