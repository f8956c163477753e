r"""Noise schedules :math:`x_t = \alpha(t) x_0 + \sigma(t)\varepsilon` and the noise levels of a run.

A schedule maps its time ``t`` to :math:`(\alpha, \sigma)`, gives the derivatives (for
flow-matching velocities) and inverts the half-log-SNR :math:`\lambda = \log(\alpha/\sigma)`.
Schedule values are host NumPy (a few floats per step); the particles live on the device.

============== ============================================================ =================
name            :math:`\alpha(t), \sigma(t)`                                 t range
============== ============================================================ =================
vp_discrete     DDPM: :math:`\bar\alpha_n = \prod (1-\beta_i)`, linear β      0 … 999 (index)
vp_linear       :math:`\log\alpha = -\tfrac{\beta_1-\beta_0}{4}t^2 - \tfrac{\beta_0}{2}t`  1e-3 … 1
vp_cosine       :math:`\alpha = \cos(\tfrac{t+s}{1+s}\tfrac\pi2)/\cos(\tfrac{s}{1+s}\tfrac\pi2)`  1e-3 … 0.9946
ve              :math:`\alpha = 1, \sigma = \sigma_{min}(\sigma_{max}/\sigma_{min})^t`  0 … 1
edm             :math:`\alpha = 1, \sigma = t` (Karras et al.)               0.002 … 80
flow            rectified flow :math:`\alpha = 1 - t, \sigma = t`           1e-3 … 0.999
============== ============================================================ =================
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseSchedule", "VPDiscrete", "VPLinear", "VPCosine", "VE", "EDM", "Flow", "SCHEDULES",
           "make_schedule", "Levels", "levels", "lambda_of", "normalized"]


def lambda_of(alpha, sigma):
    """Half log-SNR :math:`\\log(\\alpha/\\sigma)` (``+inf`` at sigma = 0, ``-inf`` at alpha = 0)."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(alpha, dtype=float)) - np.log(np.asarray(sigma, dtype=float))


def normalized(lam):
    """The point ``(alpha, sigma)`` with ``alpha^2 + sigma^2 = 1`` at half-log-SNR ``lam``."""
    lam = np.asarray(lam, dtype=float)
    return np.sqrt(1 / (1 + np.exp(-2 * lam))), np.sqrt(1 / (1 + np.exp(2 * lam)))


class NoiseSchedule:
    """Base class: subclasses define ``alpha_sigma``, ``derivatives`` and ``t_from_lambda``."""

    name = "schedule"
    discrete = False
    t_min = 0.0
    t_max = 1.0

    def alpha_sigma(self, t):
        raise NotImplementedError

    def derivatives(self, t):
        """``(d alpha/dt, d sigma/dt)``."""
        raise NotImplementedError

    def lam(self, t):
        a, s = self.alpha_sigma(t)
        return lambda_of(a, s)

    def sigma_bar(self, t):
        a, s = self.alpha_sigma(t)
        return np.asarray(s) / np.asarray(a)

    def t_from_lambda(self, lam):
        raise NotImplementedError

    def t_from_sigma_bar(self, sb):
        with np.errstate(divide="ignore"):
            return self.t_from_lambda(-np.log(np.asarray(sb, dtype=float)))


class VPDiscrete(NoiseSchedule):
    """DDPM's discrete variance-preserving schedule (``alphas_cumprod`` of common libraries).

    Continuous ``t`` interpolates :math:`\\log\\bar\\alpha` linearly between the integers; ``t = -1``
    is the clean level :math:`\\bar\\alpha = 1` (libraries' ``set_alpha_to_one``). Its derivatives
    are those of that line inside an interval and, at an integer (where every level of a discrete run
    sits, and the line has a kink), the mean of the two sides: the centred difference of the samples
    of the smooth :math:`\\log\\bar\\alpha` they come from. (One side alone, the interval above,
    which a step down never crosses, left ``fm_euler`` and ``fm_heun`` with a bias that did not shrink
    with more steps.)
    """

    name = "vp_discrete"
    discrete = True

    def __init__(self, beta_start=1e-4, beta_end=0.02, n=1000, kind="linear", alphas_cumprod=None):
        if alphas_cumprod is None:
            if kind == "linear":
                betas = np.linspace(beta_start, beta_end, n)
            elif kind == "scaled_linear":
                betas = np.linspace(beta_start**0.5, beta_end**0.5, n) ** 2
            else:
                raise ValueError(f"kind: unknown beta schedule {kind!r}")
            alphas_cumprod = np.cumprod(1.0 - betas)
        self.alphas_cumprod = np.asarray(alphas_cumprod, dtype=float)
        self.n = self.alphas_cumprod.size
        self.t_min, self.t_max = 0.0, float(self.n - 1)
        self._t = np.arange(-1, self.n, dtype=float)
        self._log_ac = np.concatenate([[0.0], np.log(self.alphas_cumprod)])
        self._lam = 0.5 * (self._log_ac[1:] - np.log1p(-self.alphas_cumprod))
        slopes = np.diff(self._log_ac)  # of log alpha_bar on [k - 1, k], k = 0 .. n - 1
        self._slopes = slopes
        self._knot_slopes = np.concatenate([slopes[:1], 0.5 * (slopes[:-1] + slopes[1:]), slopes[-1:]])

    def alpha_sigma(self, t):
        log_ac = np.interp(np.asarray(t, dtype=float), self._t, self._log_ac)
        return np.exp(0.5 * log_ac), np.sqrt(-np.expm1(log_ac))

    def derivatives(self, t):
        t = np.asarray(t, dtype=float)
        inside = np.interp(np.floor(t) + 0.5, self._t[:-1] + 0.5, self._slopes)
        slope = np.where(t == np.floor(t), np.interp(t, self._t, self._knot_slopes), inside)
        a, s = self.alpha_sigma(t)
        return 0.5 * a * slope, -0.5 * a * a * slope / np.where(s > 0, s, np.inf)

    def t_from_lambda(self, lam):
        # log alpha_bar = -log(1 + e^{-2 lam}) is piecewise linear in t: invert it exactly
        log_ac = -np.logaddexp(0.0, -2 * np.asarray(lam, dtype=float))
        return np.interp(-log_ac, -self._log_ac, self._t)


class VPLinear(NoiseSchedule):
    """Continuous VP schedule with linear :math:`\\beta(t) = \\beta_0 + t(\\beta_1 - \\beta_0)` (score SDE)."""

    name = "vp_linear"

    def __init__(self, beta_0=0.1, beta_1=20.0, t_min=1e-3):
        self.b0, self.b1, self.t_min, self.t_max = beta_0, beta_1, t_min, 1.0

    def _log_alpha(self, t):
        t = np.asarray(t, dtype=float)
        return -0.25 * (self.b1 - self.b0) * t * t - 0.5 * self.b0 * t

    def alpha_sigma(self, t):
        la = self._log_alpha(t)
        return np.exp(la), np.sqrt(-np.expm1(2 * la))

    def derivatives(self, t):
        t = np.asarray(t, dtype=float)
        a, s = self.alpha_sigma(t)
        dla = -0.5 * (self.b1 - self.b0) * t - 0.5 * self.b0
        return a * dla, -a * a * dla / np.where(s > 0, s, np.inf)

    def t_from_lambda(self, lam):
        big_l = np.logaddexp(0.0, -2 * np.asarray(lam, dtype=float))  # = -2 log alpha
        d = self.b1 - self.b0
        return 2 * big_l / (np.sqrt(self.b0**2 + 2 * d * big_l) + self.b0)


class VPCosine(NoiseSchedule):
    """Cosine VP schedule (Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models")."""

    name = "vp_cosine"

    def __init__(self, s=0.008, t_min=1e-3, t_max=0.9946):
        self.s, self.t_min, self.t_max = s, t_min, t_max
        self._c0 = math.log(math.cos(math.pi / 2 * s / (1 + s)))

    def alpha_sigma(self, t):
        t = np.asarray(t, dtype=float)
        la = np.log(np.cos(np.pi / 2 * (t + self.s) / (1 + self.s))) - self._c0
        return np.exp(la), np.sqrt(-np.expm1(2 * la))

    def derivatives(self, t):
        t = np.asarray(t, dtype=float)
        a, s = self.alpha_sigma(t)
        w = np.pi / 2 / (1 + self.s)
        dla = -w * np.tan(w * (t + self.s))
        return a * dla, -a * a * dla / np.where(s > 0, s, np.inf)

    def t_from_lambda(self, lam):
        la = -0.5 * np.logaddexp(0.0, -2 * np.asarray(lam, dtype=float))
        return 2 * (1 + self.s) / np.pi * np.arccos(np.clip(np.exp(la + self._c0), -1, 1)) - self.s


class VE(NoiseSchedule):
    """Variance exploding: :math:`\\alpha = 1`, geometric :math:`\\sigma` (Song et al., "Score-Based
    Generative Modeling through Stochastic Differential Equations")."""

    name = "ve"

    def __init__(self, sigma_min=0.01, sigma_max=50.0):
        self.smin, self.smax, self.t_min, self.t_max = sigma_min, sigma_max, 0.0, 1.0

    def alpha_sigma(self, t):
        t = np.asarray(t, dtype=float)
        return np.ones_like(t), self.smin * (self.smax / self.smin) ** t

    def derivatives(self, t):
        a, s = self.alpha_sigma(t)
        return np.zeros_like(a), s * math.log(self.smax / self.smin)

    def t_from_lambda(self, lam):
        return np.log(np.exp(-np.asarray(lam, dtype=float)) / self.smin) / math.log(self.smax / self.smin)


class EDM(NoiseSchedule):
    """EDM / Karras et al. ("Elucidating the Design Space of Diffusion-Based Generative Models"):
    :math:`\\alpha = 1, \\sigma = t`."""

    name = "edm"

    def __init__(self, sigma_min=0.002, sigma_max=80.0):
        self.t_min, self.t_max = sigma_min, sigma_max

    def alpha_sigma(self, t):
        t = np.asarray(t, dtype=float)
        return np.ones_like(t), t

    def derivatives(self, t):
        t = np.asarray(t, dtype=float)
        return np.zeros_like(t), np.ones_like(t)

    def t_from_lambda(self, lam):
        return np.exp(-np.asarray(lam, dtype=float))


class Flow(NoiseSchedule):
    """Rectified flow / flow matching with the linear path :math:`\\alpha = 1 - t, \\sigma = t`."""

    name = "flow"

    def __init__(self, t_min=1e-3, t_max=0.999):
        self.t_min, self.t_max = t_min, t_max

    def alpha_sigma(self, t):
        t = np.asarray(t, dtype=float)
        return 1.0 - t, t

    def derivatives(self, t):
        t = np.asarray(t, dtype=float)
        return -np.ones_like(t), np.ones_like(t)

    def t_from_lambda(self, lam):
        return 1.0 / (1.0 + np.exp(np.asarray(lam, dtype=float)))


SCHEDULES = {
    "vp_discrete": VPDiscrete,
    "vp_linear": VPLinear,
    "vp_cosine": VPCosine,
    "ve": VE,
    "edm": EDM,
    "flow": Flow,
}


def make_schedule(name: str, **kwargs) -> NoiseSchedule:
    try:
        return SCHEDULES[name](**kwargs)
    except KeyError:
        raise ValueError(f"schedule: unknown noise schedule {name!r}; known: {', '.join(SCHEDULES)}") from None


@dataclass(frozen=True)
class Levels:
    """The noise levels a sampler visits, noisiest first (host float arrays of equal length).

    ``t`` is NaN at a final clean level (``alpha = 1, sigma = 0``).
    """

    t: np.ndarray
    alpha: np.ndarray
    sigma: np.ndarray
    schedule: NoiseSchedule | None = None

    @property
    def lam(self) -> np.ndarray:
        return lambda_of(self.alpha, self.sigma)

    @property
    def sigma_bar(self) -> np.ndarray:
        return self.sigma / self.alpha

    @property
    def steps(self) -> int:
        return self.t.size - 1

    def at(self, i: int) -> tuple[float, float]:
        return float(self.alpha[i]), float(self.sigma[i])


def levels(schedule: NoiseSchedule, ts, denoise: bool = False) -> Levels:
    """Noise levels at times ``ts`` (decreasing), plus a final clean level if ``denoise``."""
    ts = np.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.size < 2:
        raise ValueError("timesteps: need at least two time points (steps >= 1)")
    if np.any(np.diff(ts) >= 0):
        raise ValueError("timesteps: the time points must decrease strictly")
    a, s = schedule.alpha_sigma(ts)
    a, s = np.asarray(a, dtype=float), np.asarray(s, dtype=float)
    if denoise and s[-1] > 0:
        ts, a, s = np.append(ts, np.nan), np.append(a, 1.0), np.append(s, 0.0)
    return Levels(ts, a, s, schedule)
