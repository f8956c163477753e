r"""Reference solutions of the probability-flow ODE, by a tight adaptive integrator.

In the scale-free coordinates :math:`\tilde x = x/\sqrt{\alpha^2+\sigma^2}`,
:math:`\theta = \operatorname{atan2}(\sigma, \alpha)` every schedule's PF-ODE becomes the same
"trigonometric flow"

.. math:: \frac{d\tilde x}{d\theta} = -\sin\theta\,\hat x_0 + \cos\theta\,\hat\varepsilon,

evaluated with the model at :math:`(\tilde x, \cos\theta, \sin\theta)`. It is smooth on the whole
closed interval :math:`\theta \in [0, \pi/2]` (pure noise to clean data) for any mixture with positive
definite covariances, so the endpoint from the same starting noise is solved by DOP853
(:class:`explore.numerics.rk.ExplicitRK`) to ``rtol``, at any final level including sigma = 0.
"""
from __future__ import annotations

import math

import numpy as np

from explore.numerics.rk import ExplicitRK
from explore.numerics.tableaux import DOP853

__all__ = ["pf_ode", "theta_of", "quantile_map_1d"]


def theta_of(alpha: float, sigma: float) -> float:
    return math.atan2(float(sigma), float(alpha))


def pf_ode(model, x, start: tuple[float, float], stops, *, rtol: float = 1e-10, atol: float = 1e-10):
    """Integrate the PF-ODE from level ``start = (alpha, sigma)`` through the levels ``stops``.

    Parameters
    ----------
    model : callable
        ``model(x, alpha, sigma) -> (eps_hat, x0_hat)``.
    x : array (n, d)
        State at the starting level (any array-API namespace).
    stops : sequence of (alpha, sigma)
        Levels of decreasing noise at which to report the state.

    Returns
    -------
    list of arrays, one per stop, and the number of model evaluations.
    """
    a0, s0 = start
    r0 = math.hypot(a0, s0)
    th0 = theta_of(a0, s0)
    y = x / r0

    def rhs(u, y):
        th = th0 - u
        c, s = math.cos(th), math.sin(th)
        eps, x0 = model(y, c, s)
        return math.sin(th) * x0 - math.cos(th) * eps  # d/du = -d/dtheta

    stepper = ExplicitRK(DOP853, rhs, rtol=rtol, atol=atol)
    state = stepper.init(0.0, y)
    out = []
    for a, s in stops:
        u_stop = th0 - theta_of(a, s)
        if u_stop < -1e-14:
            raise ValueError("pf_ode: the stops must have decreasing noise")
        while state.t < u_stop:
            state = stepper.step(state, max(u_stop, state.t))
        out.append(state.y * math.hypot(a, s))
    return out, state.nfe


def quantile_map_1d(target, x, start: tuple[float, float], stop: tuple[float, float]) -> np.ndarray:
    """The exact PF-ODE map of a 1-D mixture: the monotone transport :math:`F_{stop}^{-1}\\circ F_{start}`
    between the two noised marginals (host NumPy; bisection to machine precision)."""
    from scipy.special import ndtr

    w, mu, var = target.weights, target.means[:, 0], target.eigenvalues[:, 0]

    def cdf(z, a, s):
        sd = np.sqrt(a * a * var + s * s)
        return np.sum(w * ndtr((np.asarray(z)[..., None] - a * mu) / sd), axis=-1)

    u = cdf(np.asarray(x, dtype=float).reshape(-1), *start)
    a, s = stop
    sd_max = float(np.sqrt(a * a * var.max() + s * s))
    lo = np.full(u.shape, a * mu.min() - 40 * sd_max)
    hi = np.full(u.shape, a * mu.max() + 40 * sd_max)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = cdf(mid, a, s) < u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        if np.all(hi - lo <= 1e-15 * np.maximum(1, np.abs(mid))):
            break
    return 0.5 * (lo + hi)
