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


def renyi_entropy(density, q: float = 2.0) -> float:
    """Rényi entropy ``ln(sum p^q) / (1 - q)``; tends to Shannon as ``q → 1``."""
    if q == 1:
        return shannon_entropy(density)
    xp = array_namespace(density)
    p = _distribution(density)
    return float(math.log(float(xp.sum(p**q))) / (1 - q))


def tsallis_entropy(density, q: float = 2.0) -> float:
    """Tsallis entropy ``(1 - sum p^q) / (q - 1)``; tends to Shannon as ``q → 1``."""
    if q == 1:
        return shannon_entropy(density)
    xp = array_namespace(density)
    p = _distribution(density)
    return float((1 - float(xp.sum(p**q))) / (q - 1))
