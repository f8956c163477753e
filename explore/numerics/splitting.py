"""Operator splitting for semilinear problems ``u' = L u + N(u)``."""
from __future__ import annotations

from explore.numerics.exponential import FixedStepSemilinear

__all__ = ["StrangSplitting"]


class StrangSplitting(FixedStepSemilinear):
    """Strang splitting (split-step) for ``u' = L u + N(u)``, order 2.

    Strang, "On the construction and comparison of difference schemes": a half step of the
    exact linear flow, a full step of the exact nonlinear flow, another half linear step::

        u_new = exp(dt L / 2) Phi_N(exp(dt L / 2) u, dt)

    Symmetric, hence order 2; exact when the two flows commute.  ``Phi_N`` is the problem's
    ``nonlinear_flow(u, dt)`` (e.g. the phase rotation of the NLS equation in the split-step
    Fourier method).  Fixed step; ``exp(dt L / 2)`` is cached per ``dt``.  ``nfe`` counts
    nonlinear-flow evaluations.

    Parameters
    ----------
    problem : SemilinearProblem
        Supplies ``linear`` (array) and ``nonlinear_flow(u, dt)``.
    dt : float
        Fixed step.
    """

    order = 2

    def __init__(self, problem, dt: float):
        if not callable(getattr(problem, "nonlinear_flow", None)):
            raise ValueError(
                f"Strang splitting needs the exact nonlinear flow: {type(problem).__name__} has no "
                "method nonlinear_flow(u, dt); choose another integrator"
            )
        super().__init__(problem, dt)

    def _build(self, dt: float):
        return self._xp.exp((dt / 2) * self._L)

    def _advance(self, t: float, u, h: float, half):
        return half * self.problem.nonlinear_flow(half * u, h)
