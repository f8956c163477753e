"""Operator splitting for semilinear problems ``u' = L u + N(u)``."""
from __future__ import annotations

from explore.numerics.exponential import FixedStepSemilinear

__all__ = ["CompositionSplitting", "StrangSplitting", "YOSHIDA4", "YOSHIDA6"]


#: Yoshida's triple jump, "Construction of higher order symplectic integrators" (order 4)
_CBRT2 = 2.0 ** (1.0 / 3.0)
YOSHIDA4 = (1.0 / (2.0 - _CBRT2), -_CBRT2 / (2.0 - _CBRT2), 1.0 / (2.0 - _CBRT2))
#: Yoshida's 7-stage composition of order 6 ("solution A" of the same paper)
_W = (-1.17767998417887, 0.235573213359357, 0.784513610477560)
YOSHIDA6 = (_W[2], _W[1], _W[0], 1.0 - 2.0 * sum(_W), _W[0], _W[1], _W[2])


class CompositionSplitting(FixedStepSemilinear):
    """Split-step method as a symmetric composition of Strang steps, for ``u' = L u + N(u)``.

    A step of size ``dt`` is the product of Strang steps of sizes ``gamma_i dt``; adjacent
    half-steps of the exact linear flow are merged, so ``m`` sub-steps cost ``m`` nonlinear
    flows and ``m + 1`` linear flows.  ``gammas = (1,)`` is Strang splitting (order 2); Yoshida's
    triple jump (``YOSHIDA4``) gives order 4 and his 7-stage composition (``YOSHIDA6``) order 6
    (Yoshida, "Construction of higher order symplectic integrators"). Orders above 2 need sub-steps
    backwards in time (Sheng; Suzuki), which suit a conservative linear part (the NLSE's ``-ik²/2``)
    but not a dissipative one: diffusion run backwards by ``0.18 dt`` (order 4) or ``0.47 dt``
    (order 6) amplifies the high wavenumbers, and a λ–ω run at ``N = 256``, ``dt = 0.2`` ends in NaN
    (the reaction–diffusion lab refuses them).  Every sub-flow is exact, so
    the method keeps whatever the two flows keep (the NLSE's mass, to round-off).  Fixed step; the
    linear exponentials are cached per ``dt``.  ``nfe`` counts nonlinear-flow evaluations.

    Parameters
    ----------
    problem : SemilinearProblem
        Supplies ``linear`` (array) and ``nonlinear_flow(u, dt)``.
    dt : float
        Fixed step.
    gammas : tuple of float
        Sub-step weights, summing to 1 (symmetric for even order).
    order : int
        Order of the composition.
    """

    def __init__(self, problem, dt: float, gammas: tuple[float, ...] = (1.0,), order: int = 2):
        if not callable(getattr(problem, "nonlinear_flow", None)):
            raise ValueError(
                f"split-step needs the exact nonlinear flow: {type(problem).__name__} has no "
                "method nonlinear_flow(u, dt); choose another integrator"
            )
        if abs(sum(gammas) - 1.0) > 1e-12:
            raise ValueError(f"composition weights must sum to 1, got {sum(gammas)!r}")
        self.gammas, self.order = tuple(float(g) for g in gammas), order
        m = len(self.gammas)
        #: weights of the linear flows between the nonlinear ones (merged half-steps)
        self.linear_weights = tuple(
            [self.gammas[0] / 2] + [(self.gammas[i] + self.gammas[i + 1]) / 2 for i in range(m - 1)]
            + [self.gammas[-1] / 2]
        )
        self.nfe_per_step = m
        super().__init__(problem, dt)

    def _build(self, dt: float):
        xp, L = self._xp, self._L
        return {w: xp.exp((w * dt) * L) for w in set(self.linear_weights)}

    def _advance(self, t: float, u, h: float, E):
        w = self.linear_weights
        u = E[w[0]] * u
        for i, g in enumerate(self.gammas):
            u = E[w[i + 1]] * self.problem.nonlinear_flow(u, g * h)
        return u


class StrangSplitting(CompositionSplitting):
    """Strang splitting (split-step) for ``u' = L u + N(u)``, order 2.

    Strang, "On the construction and comparison of difference schemes": a half step of the
    exact linear flow, a full step of the exact nonlinear flow, another half linear step::

        u_new = exp(dt L / 2) Phi_N(exp(dt L / 2) u, dt)

    Symmetric, hence order 2; exact when the two flows commute.
    """

    def __init__(self, problem, dt: float):
        super().__init__(problem, dt, gammas=(1.0,), order=2)
