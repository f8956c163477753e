"""Entropies of a non-negative density sampled on a grid (normalised to a discrete distribution)."""
from __future__ import annotations

import math

from array_api_compat import array_namespace


def _distribution(density):
    xp = array_namespace(density)
    return density / xp.sum(density)


def shannon_entropy(density) -> float:
    """Shannon entropy ``-sum p ln p`` of ``p = density / sum(density)`` (0 ln 0 = 0)."""
    xp = array_namespace(density)
    p = _distribution(density)
    safe = xp.where(p > 0, p, 1.0)
    return float(-xp.sum(p * xp.log(safe)))


def _power_sum_excess(p, q: float) -> float:
    """``sum p^q - sum p`` as ``sum p (exp((q - 1) ln p) - 1)``: accurate to round-off of its own size
    as ``q → 1``, where ``sum p^q - 1`` computed directly loses ~``log10(1 / |q - 1|)`` digits."""
    xp = array_namespace(p)
    safe = xp.where(p > 0, p, 1.0)
    return float(xp.sum(p * xp.expm1((q - 1) * xp.log(safe))))


def renyi_entropy(density, q: float = 2.0) -> float:
    """Rényi entropy ``ln(sum p^q) / (1 - q)``; tends to Shannon as ``q → 1`` (continuously: near 1
    the logarithm is ``log1p`` of :func:`_power_sum_excess`)."""
    if q == 1:
        return shannon_entropy(density)
    xp = array_namespace(density)
    p = _distribution(density)
    excess = _power_sum_excess(p, q)
    if abs(excess) < 0.5:
        return math.log1p(excess) / (1 - q)
    # far from 1 (large q, a spread distribution: sum p^q ≪ 1) the sum itself is the accurate one
    return float(math.log(float(xp.sum(p**q))) / (1 - q))


def tsallis_entropy(density, q: float = 2.0) -> float:
    """Tsallis entropy ``(1 - sum p^q) / (q - 1)``; tends to Shannon as ``q → 1`` (continuously: the
    numerator is :func:`_power_sum_excess`, not a difference of nearly equal numbers)."""
    if q == 1:
        return shannon_entropy(density)
    p = _distribution(density)
    return -_power_sum_excess(p, q) / (q - 1)
