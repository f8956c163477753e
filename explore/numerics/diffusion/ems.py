r"""Empirical model statistics (EMS) of DPM-Solver-v3, computed from the exact model.

DPM-Solver-v3 (Zheng, Lu, Chen & Zhu, "DPM-Solver-v3: Improved Diffusion ODE Solver with Empirical
Model Statistics") writes the probability-flow ODE in :math:`\lambda = \log(\alpha/\sigma)` as

.. math:: \frac{dx}{d\lambda} = \Big(\frac{\dot\alpha}{\alpha} - l_\lambda\Big) x - \alpha f,\qquad
          f(x, \lambda) = \frac{\sigma\hat\varepsilon - l_\lambda x}{\alpha},

and expands, instead of :math:`f`, the better-behaved
:math:`g(\lambda) = e^{-(S_\lambda - S_s)} f - \int_s^\lambda e^{-(S_r - S_s)} b_r\,dr`
(:math:`L = \int l`, :math:`S = \int s`). The three statistics (vectors of the data's dimension, one
value per coordinate) are chosen from the model:

- :math:`l_\lambda = E[\operatorname{diag}\nabla_x(\sigma\hat\varepsilon)]`, which minimises
  :math:`E\|\nabla_x(\sigma\hat\varepsilon - l x)\|_F^2` (the linear part of the model is integrated
  exactly);
- :math:`(s_\lambda, b_\lambda)`, the least-squares fit :math:`f^{(1)} \approx s f + b` of the total
  derivative of :math:`f` along the ODE (this minimises the first-order discretisation error).

Expectations are over the noised data :math:`x_\lambda = \alpha x_0 + \sigma z`. The paper estimates
them by Monte Carlo with a trained network; here the network is exact, the Jacobian diagonal, its
λ-derivative and the derivative along the ODE are central differences of the exact model (small
dimensions: coordinate by coordinate; large ones: Rademacher probes), and the same draws
:math:`(x_0, z)` are used at every λ, so the statistics are smooth functions of λ. They are
sampled at Chebyshev–Lobatto points of the run's λ-range (doubling until the Chebyshev coefficients
have decayed to ``tol``), and :math:`L`, :math:`S` are the exact antiderivatives of the interpolants. The
solver's coefficients (integrals of :math:`e^{L+S}` against powers of λ, and the nested
:math:`b`-integral) are Gauss–Legendre quadratures of these interpolants, exact to rounding, so the
solver integrates the ODE it is given with any statistics: their accuracy changes the error
constant, not the order. ``l = 1, s = b = 0`` turns the solver into DPM-Solver++ (data prediction).

Host NumPy throughout (a few vectors per step); :func:`statistics` caches per (model, λ-range).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import chebyshev as cheb

__all__ = ["EmpiricalModelStatistics", "empirical_model_statistics", "statistics", "EXACT_DIAGONAL_DIM"]

#: up to this dimension the Jacobian diagonal is differenced coordinate by coordinate; above, probed
EXACT_DIAGONAL_DIM = 8
#: relative step of the central differences (truncation ~ 1e-6 relative and smooth in λ, rounding ~ 1e-13)
FD_STEP = 1e-3
#: relative ridge of the (s, b) least squares
RIDGE = 1e-12
#: Gauss–Legendre panels are at most this long in λ
PANEL = 0.5
_GL = np.polynomial.legendre.leggauss(16)
_CACHE: dict = {}
_CACHE_SIZE = 32


def _lobatto(m: int) -> np.ndarray:
    return np.cos(np.pi * np.arange(m + 1) / m)


def _coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients (along axis 0) of the interpolant of ``values`` at the ``m + 1``
    Chebyshev–Lobatto points :math:`\\cos(\\pi k/m)` (a discrete cosine transform)."""
    m = values.shape[0] - 1
    if m == 0:
        return values.copy()
    k = np.arange(m + 1)
    w = np.ones(m + 1)
    w[0] = w[-1] = 0.5
    c = (2.0 / m) * np.cos(np.pi * np.outer(k, k) / m) @ (w[:, None] * values)
    c[0] *= 0.5
    c[-1] *= 0.5
    return c


def _panels(a: float, b: float, length: float | None = None):
    """Composite Gauss–Legendre nodes and weights on [a, b] (any order of a, b), with panels at most
    :data:`PANEL` long in λ when [a, b] stands for an interval of ``length`` (default: its own)."""
    n = max(1, int(math.ceil(abs(b - a if length is None else length) / PANEL)))
    edges = np.linspace(a, b, n + 1)
    x, w = _GL
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    return (mid[:, None] + half[:, None] * x).ravel(), (half[:, None] * w).ravel()


@dataclass(frozen=True, eq=False)
class EmpiricalModelStatistics:
    """The statistics :math:`l, s, b` (Chebyshev series on ``[lo, hi]`` in λ, one column per data
    coordinate) and the antiderivatives :math:`L, S` (zero at ``lo``)."""

    lo: float
    hi: float
    coef: dict
    _memo: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_values(cls, lo: float, hi: float, l, s, b) -> EmpiricalModelStatistics:
        """From values at the Chebyshev–Lobatto points ``lo + (hi - lo)(1 + cos(pi k/m))/2``
        (arrays ``(m + 1, d)``)."""
        half = 0.5 * (hi - lo)
        coef = {name: _coefficients(np.asarray(v, dtype=float)) for name, v in (("l", l), ("s", s), ("b", b))}
        for name, big in (("l", "L"), ("s", "S")):
            coef[big] = cheb.chebint(coef[name], 1, lbnd=-1, scl=half, axis=0)
        return cls(float(lo), float(hi), coef)

    @classmethod
    def constant(cls, dim: int, lo: float, hi: float, l: float = 1.0, s: float = 0.0, b: float = 0.0):
        """Constant statistics (``l = 1, s = b = 0``: DPM-Solver++; ``l = s = b = 0``: the noise
        prediction integrated without exponential weight)."""
        one = np.ones((2, dim))
        return cls.from_values(lo, hi, l * one, s * one, b * one)

    @property
    def dim(self) -> int:
        return self.coef["l"].shape[1]

    def _u(self, lam):
        return np.clip((2 * np.asarray(lam, dtype=float) - (self.lo + self.hi)) / (self.hi - self.lo), -1, 1)

    def value(self, name: str, lam) -> np.ndarray:
        """Statistic ``name`` (l, s, b, L, S) at ``lam``: shape ``(d,) + lam.shape``."""
        return cheb.chebval(self._u(lam), self.coef[name])

    def l(self, lam):  # noqa: E743 - the paper's name
        return self.value("l", lam)

    def _b_integral(self, lam_s: float, ends) -> np.ndarray:
        r""":math:`\int_{\lambda_s}^{e} e^{-(S_r - S_s)} b_r\,dr` for each end ``e``; shape ``(d, len(ends))``."""
        ends = np.asarray(ends, dtype=float)
        tau, w = _panels(0.0, 1.0, float(np.max(np.abs(ends - lam_s))))
        r = lam_s + (ends - lam_s)[:, None] * tau[None, :]  # (E, Q)
        vals = np.exp(-(self.value("S", r) - self.value("S", lam_s)[:, None, None])) * self.value("b", r)
        return np.sum(vals * w, axis=-1) * (ends - lam_s)

    def shift(self, lam_s: float, lam_j: float):
        """``(e^{-(S_j - S_s)}, b-integral from lam_s to lam_j)``: the map from f to g at ``lam_j``."""
        key = ("shift", lam_s, lam_j)
        if key not in self._memo:
            e = np.exp(-(self.value("S", lam_j) - self.value("S", lam_s)))
            self._memo[key] = (e, self._b_integral(lam_s, [lam_j])[:, 0])
        return self._memo[key]

    def step(self, lam_s: float, lam_t: float, n: int):
        r"""Coefficients of one step from ``lam_s`` to ``lam_t`` with ``n`` derivatives of g:
        ``(e^{-(L_t - L_s)}, [c_0 .. c_n], c_b)`` with
        :math:`c_k = \int_s^t e^{(L+S)_\lambda - (L+S)_s} (\lambda - \lambda_s)^k/k!\,d\lambda` and
        :math:`c_b = \int_s^t e^{(L+S)_\lambda - (L+S)_s} \int_s^\lambda e^{-(S_r - S_s)} b_r\,dr\,d\lambda`."""
        key = ("step", lam_s, lam_t, n)
        if key not in self._memo:
            pts, w = _panels(lam_s, lam_t)
            ls0 = self.value("L", lam_s) + self.value("S", lam_s)
            weight = np.exp(self.value("L", pts) + self.value("S", pts) - ls0[:, None]) * w
            c = [np.sum(weight * ((pts - lam_s) ** k / math.factorial(k)), axis=-1) for k in range(n + 1)]
            cb = np.sum(weight * self._b_integral(lam_s, pts), axis=-1)
            e_l = np.exp(-(self.value("L", lam_t) - self.value("L", lam_s)))
            self._memo[key] = (e_l, c, cb)
        return self._memo[key]


def _central(fn, h: float):
    """Central difference ``(f(h) - f(-h)) / (2h)`` (truncation ~ h^2 relative, smooth in λ)."""
    return (fn(h) - fn(-h)) / (2 * h)


def _moments(model, x0, z, probes, lam: float, scale: float) -> np.ndarray:
    """Raw statistics at one λ, in the EDM variables ``x_bar = x/alpha``, ``sigma_bar = e^{-λ}`` (the
    exact model is called as ``model(x_bar, 1, sigma_bar)``, the samples are ``x_bar = x0 +
    sigma_bar z``): ``l`` (the mean Jacobian diagonal of ``A = sigma_bar eps``), its λ-derivative
    ``l'`` (along the same draws), the means of ``f = A - l x_bar``, ``F = E + l A`` and ``x_bar``,
    and var(f), cov(F, f), cov(x_bar, f), where ``E = dA/dλ`` along the ODE (``f' = F - l' x_bar``).
    Returns an array ``(8, d)``."""
    n, d = x0.shape

    def diag(tau):
        """Mean of sigma_bar * diag(d eps / d x_bar) at λ + tau (central differences)."""
        sb = math.exp(-(lam + tau))
        xb = x0 + sb * z
        dx = FD_STEP * math.sqrt(scale + sb * sb)
        if probes is None:
            out = np.empty(d)
            for j in range(d):
                unit = np.zeros(d)
                unit[j] = 1.0
                out[j] = np.mean(_central(lambda t: np.asarray(model(xb + t * unit, 1.0, sb)[0])[:, j], dx))
            return sb * out
        return sb * np.mean(probes * _central(lambda t: np.asarray(model(xb + t * probes, 1.0, sb)[0]), dx), axis=0)

    sb = math.exp(-lam)
    xb = x0 + sb * z
    a = sb * np.asarray(model(xb, 1.0, sb)[0])
    plus, minus = diag(FD_STEP), diag(-FD_STEP)
    l, dl = 0.5 * (plus + minus), (plus - minus) / (2 * FD_STEP)

    def along(t):
        s = math.exp(-(lam + t))
        return s * np.asarray(model(xb - t * a, 1.0, s)[0])

    f = a - l * xb
    big_f = _central(along, FD_STEP) + l * a
    cf, cbig, cx = f - f.mean(0), big_f - big_f.mean(0), xb - xb.mean(0)
    return np.stack([l, dl, f.mean(0), big_f.mean(0), xb.mean(0), np.mean(cf * cf, 0), np.mean(cbig * cf, 0),
                     np.mean(cx * cf, 0)])


def _fit_s_b(mom: np.ndarray):
    """Per coordinate least squares of ``f' = F - l' x_bar`` on ``f`` (nodes along axis 0); a ridge
    far below the spread of ``f`` handles an ``f`` constant in x (a Gaussian: s = 0)."""
    _, dl, mf, mbig, mx, var, cov_big, cov_x = (mom[:, k] for k in range(8))
    ridge = RIDGE * (var + mf * mf + np.mean(var + mf * mf)) + 1e-300
    s = (cov_big - dl * cov_x) / (var + ridge)
    b = (mbig - dl * mx) - s * mf
    return s, b


def _converged(c: np.ndarray, tol: float) -> bool:
    scale = np.max(np.abs(c), axis=0)
    tail = np.max(np.abs(c[-4:]), axis=0)
    return bool(np.all(tail <= tol * scale + 1e-14))


def empirical_model_statistics(model, data, lam_lo: float, lam_hi: float, *, samples: int | None = None,
                               seed: int = 0, tol: float = 1e-3, max_degree: int = 256) -> EmpiricalModelStatistics:
    """EMS of ``model`` on ``[lam_lo, lam_hi]``, expectations over the noised ``data`` (a
    :class:`~.targets.GaussianMixture`): ``samples`` draws (default 2048 up to
    :data:`EXACT_DIAGONAL_DIM` dimensions, else 256 with one Rademacher probe each)."""
    lo, hi = float(min(lam_lo, lam_hi)), float(max(lam_lo, lam_hi))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"dpm_solver_v3: statistics need a finite log-SNR range, got [{lo}, {hi}]")
    if hi - lo < 1e-9:
        hi = lo + 1e-9
    d = data.dim
    n = samples or (2048 if d <= EXACT_DIAGONAL_DIM else 256)
    rng = np.random.default_rng(seed)
    x0, z = data.sample(n, rng), rng.standard_normal((n, d))
    probes = None if d <= EXACT_DIAGONAL_DIM else rng.choice([-1.0, 1.0], size=(n, d))
    scale = float(np.min(data.eigenvalues))
    done: dict = {}  # index on the finest grid -> moments
    m = 32
    while True:
        idx = (np.arange(m + 1) * (max_degree // m)).tolist()
        lams = lo + 0.5 * (hi - lo) * (1 + _lobatto(m))
        for k, lam in zip(idx, lams):
            if k not in done:
                done[k] = _moments(model, x0, z, probes, float(lam), scale)
        mom = np.stack([done[k] for k in idx])  # (m + 1, 8, d)
        l = mom[:, 0]
        s, b = _fit_s_b(mom)
        if m >= max_degree or all(_converged(_coefficients(v), tol) for v in (l, s, b)):
            return EmpiricalModelStatistics.from_values(lo, hi, l, s, b)
        m *= 2


def _fingerprint(model):
    """A key for the cache: the mixture's fingerprint for its own ``predict`` (or itself), a
    ``fingerprint`` attribute (guided models), else None (no caching)."""
    owner = getattr(model, "__self__", model)
    fp = getattr(owner, "fingerprint", None)
    if fp is None:
        return None
    return fp() if callable(fp) else fp


def statistics(model, data, lam_lo: float, lam_hi: float, **options) -> EmpiricalModelStatistics:
    """:func:`empirical_model_statistics`, cached per (model, data, λ-range, options)."""
    fp = _fingerprint(model)
    key = None if fp is None else (fp, data.fingerprint(), round(float(lam_lo), 9), round(float(lam_hi), 9),
                                   tuple(sorted(options.items())))
    if key is not None and key in _CACHE:
        return _CACHE[key]
    ems = empirical_model_statistics(model, data, lam_lo, lam_hi, **options)
    if key is not None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = ems
    return ems
