r"""Diagnostics of samplers: distribution distances, stability regions, per-frequency power.

Array-API code where it touches particles; stability regions are host NumPy (small matrices).
"""
from __future__ import annotations

import array_api_compat
import numpy as np

__all__ = ["sliced_wasserstein", "energy_distance", "ab_coefficients", "ghvb_coefficients", "stability_radius",
           "stability_boundary", "stable_interval", "radial_power",
           "rk_stability_boundary", "MOMENTUM_KINDS"]

#: momentum schemes of the stability analysis: heavy ball on Adams–Bashforth (``plms_hb``), GHVB
MOMENTUM_KINDS = ("hb", "ghvb")


def sliced_wasserstein(x, y, n_projections: int = 64, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between two equal-size point clouds ``(n, d)``: the RMS over
    random unit directions of the 1-D W2 distance of the projections (sorted matching)."""
    xp = array_api_compat.array_namespace(x)
    if x.shape != y.shape:
        raise ValueError(f"sliced_wasserstein: clouds must have equal shapes, got {x.shape} and {y.shape}")
    d = x.shape[1]
    dirs = np.random.default_rng(seed).standard_normal((d, n_projections))
    dirs = xp.asarray(dirs / np.linalg.norm(dirs, axis=0, keepdims=True), dtype=x.dtype)
    # one projection per row, sorted along contiguous rows (a stable sort of the columns of (n, k) was ~10x slower)
    px = xp.sort(xp.matmul(xp.matrix_transpose(dirs), xp.matrix_transpose(x)), axis=-1, stable=False)
    py = xp.sort(xp.matmul(xp.matrix_transpose(dirs), xp.matrix_transpose(y)), axis=-1, stable=False)
    return float(xp.sqrt(xp.mean((px - py) ** 2)))


def energy_distance(x, y) -> float:
    """Energy distance :math:`2E|X-Y| - E|X-X'| - E|Y-Y'|` (V-statistics) of two clouds ``(n, d)``."""
    xp = array_api_compat.array_namespace(x)

    def mean_dist(a, b):
        diff = a[:, None, :] - b[None, :, :]
        return xp.mean(xp.sqrt(xp.sum(diff * diff, axis=-1)))

    return float(2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y))


def ab_coefficients(order: int) -> np.ndarray:
    """Adams–Bashforth weights ``b_0 .. b_{k-1}`` (newest first) of order ``k``."""
    from explore.numerics.diffusion.samplers import _AB

    return np.array(_AB[order])


def _step_means(order: int, lo: float, hi: float) -> np.ndarray:
    """Means over [lo, hi] of the Lagrange basis on the nodes 0, -1, ..., -(order - 1) (newest first)."""
    nodes = -np.arange(order, dtype=float)
    out = []
    for j in range(order):
        basis = np.poly1d([1.0])
        for m in range(order):
            if m != j:
                basis = basis * np.poly1d([1.0, -nodes[m]]) / (nodes[j] - nodes[m])
        anti = np.polyint(basis)
        out.append((anti(hi) - anti(lo)) / (hi - lo))
    return np.array(out)


def ghvb_coefficients(order: int, beta: float) -> np.ndarray:
    r"""GHVB weights :math:`\beta c_j` on uniform steps (newest first): the Adams–Bashforth weights
    (mean of the interpolant over the next step) minus (1 - beta) times the mean of the same
    interpolant over the previous step. ``beta = 1``: Adams–Bashforth; order 2:
    :math:`((2+\beta), -(2-\beta))/2`; order 3: :math:`(18+5\beta, -(24-8\beta), 6-\beta)/12`
    (Wizadwongsa et al., "Diffusion Sampling with Momentum for Mitigating Divergence Artifacts")."""
    return _step_means(order, 0.0, 1.0) - (1.0 - beta) * _step_means(order, -1.0, 0.0)


def _drive(order: int, beta: float, kind: str) -> np.ndarray:
    """Weights of the model outputs in the momentum update ``w_n = (1 - beta) w_{n-1} + sum_j d_j f_{n-j}``."""
    if kind == "hb":
        return beta * ab_coefficients(order)
    if kind == "ghvb":
        return ghvb_coefficients(order, beta)
    raise ValueError(f"kind: unknown momentum scheme {kind!r}; known: {', '.join(MOMENTUM_KINDS)}")


def _companions(z: np.ndarray, order: int, beta: float, kind: str = "hb") -> np.ndarray:
    """Amplification matrices (stacked over ``z``) of a momentum multistep method on y' = mu y, z = h mu.

    State (y_n, w_{n-1}, g_1, ..., g_{k-1}) with w = h v and g_j = z y_{n-j}:
    w_n = (1 - beta) w_{n-1} + sum_j d_j g_j (g_0 = z y_n), y_{n+1} = y_n + w_n, with d the heavy-ball
    weights beta * AB_order (``kind="hb"``) or the GHVB weights (``kind="ghvb"``).
    """
    b = _drive(order, beta, kind)
    k = order
    n = k + 1
    z = np.asarray(z, dtype=complex).reshape(-1)
    m = np.zeros((z.size, n, n), dtype=complex)
    row = np.zeros((z.size, n), dtype=complex)
    row[:, 0] = b[0] * z
    row[:, 1] = 1 - beta
    for j in range(1, k):
        row[:, 1 + j] = b[j]
    m[:, 0] = row
    m[:, 0, 0] += 1.0
    m[:, 1] = row
    if k > 1:
        m[:, 2, 0] = z
        for j in range(2, k):
            m[:, 1 + j, j] = 1.0
    return m


def stability_radius(z, order: int = 1, beta: float = 1.0, kind: str = "hb") -> np.ndarray:
    """Spectral radius of momentum AB_order at ``z``: heavy ball (``kind="hb"``; beta = 1: plain AB,
    the PLMS multistep) or GHVB (``kind="ghvb"``; beta = 1: plain AB too)."""
    z = np.asarray(z, dtype=complex)
    eig = np.linalg.eigvals(_companions(z, order, beta, kind))
    return np.max(np.abs(eig), axis=-1).reshape(z.shape)


def stability_boundary(order: int = 1, beta: float = 1.0, extent: float = 3.0, n: int = 121, kind: str = "hb"):
    """Points on the boundary of the stability region {z : radius <= 1} on an ``n x n`` grid over
    ``[-extent, extent/3] x [-extent/1.5, extent/1.5]``; returns ``(re, im)`` host arrays."""
    re = np.linspace(-extent, extent / 3, n)
    im = np.linspace(-extent / 1.5, extent / 1.5, n)
    zz = re[None, :] + 1j * im[:, None]
    stable = stability_radius(zz, order, beta, kind) <= 1 + 1e-9
    edge = np.zeros_like(stable)
    edge[1:-1, 1:-1] = stable[1:-1, 1:-1] & ~(stable[:-2, 1:-1] & stable[2:, 1:-1]
                                              & stable[1:-1, :-2] & stable[1:-1, 2:])
    return zz.real[edge], zz.imag[edge]


def stable_interval(order: int = 1, beta: float = 1.0, kind: str = "hb") -> float:
    """Length of the real stability interval [-L, 0] (bisection on the spectral radius from 0 out to
    the first unstable point)."""
    lo, hi = 0.0, 50.0
    if stability_radius(np.array([-hi]), order, beta, kind)[0] <= 1:
        return hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if stability_radius(np.array([-mid]), order, beta, kind)[0] <= 1 + 1e-12:
            lo = mid
        else:
            hi = mid
    return lo


def radial_power(images, size: int):
    """Radially averaged power spectrum of host images flattened as ``(n, size*size)``; returns
    ``(k, power)`` host arrays (integer shells k = 0 .. size/2)."""
    fields = np.asarray(images, dtype=float).reshape(-1, size, size)

    p = np.mean(np.abs(np.fft.fft2(fields)) ** 2, axis=0) / size**2
    k = np.fft.fftfreq(size) * size
    kr = np.rint(np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)).astype(int)
    shells = np.arange(size // 2 + 1)
    power = np.array([p[kr == s].mean() for s in shells])
    return shells.astype(float), power



def rk_stability_boundary(order: int, n: int = 400):
    """Boundary of the stability region of a p-stage explicit RK method of order p <= 4 (the
    truncated exponential :math:`R(z) = \\sum_{k \\le p} z^k/k!`), traced as the level set
    ``|R(z)| = 1``; returns ``(re, im)`` host arrays."""
    import math as _m

    coeffs = [1 / _m.factorial(k) for k in range(order + 1)]
    pts = []
    for th in np.linspace(0, 2 * np.pi, n, endpoint=False):
        # roots of R(z) = e^{i th}: the boundary locus
        c = np.array(coeffs[::-1], dtype=complex)
        c[-1] -= np.exp(1j * th)
        for z in np.roots(c):
            r = np.abs(np.polyval(np.array(coeffs[::-1]), z + 1e-7 * np.array([1, -1, 1j, -1j])))
            if np.any(r > 1) and np.any(r < 1):
                pts.append(z)
    pts = np.array(pts) if pts else np.zeros(0, dtype=complex)
    return pts.real, pts.imag
