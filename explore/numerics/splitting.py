"""Operator splitting for semilinear problems ``u' = L u + N(u)``."""
from __future__ import annotations

import math

import array_api_compat

from explore.numerics.exponential import DtCache
from explore.numerics.rk import StepState, as_state_array, check_t_stop, land_on

__all__ = ["StrangSplitting"]


class StrangSplitting:
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
        if dt is None or not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt: Strang splitting needs a positive step, got {dt!r}")
        self.problem = problem
        self.dt = float(dt)
        self._L = None
        self._cache = DtCache(lambda h: self._xp.exp((h / 2) * self._L))

    def init(self, t0: float, y0) -> StepState:
        y0 = as_state_array(y0)
        self._xp = array_api_compat.array_namespace(y0)
        self._L = self._xp.asarray(self.problem.linear)
        self._cache = DtCache(lambda h: self._xp.exp((h / 2) * self._L))
        return StepState(t=float(t0), y=y0, dt=self.dt)

    def step(self, state: StepState, t_stop: float) -> StepState:
        """One step of size ``dt`` (shortened to land exactly on ``t_stop``)."""
        t_stop = float(t_stop)
        check_t_stop(state.t, t_stop)
        if state.t == t_stop:
            return state
        if self._L is None:
            self._xp = array_api_compat.array_namespace(state.y)
            self._L = self._xp.asarray(self.problem.linear)
        h, t_new, _ = land_on(state.t, state.dt, t_stop)
        half = self._cache(h)
        u = half * self.problem.nonlinear_flow(half * state.y, h)
        return StepState(t=t_new, y=u, dt=state.dt, nfe=state.nfe + 1,
                         steps=state.steps + 1, rejected=state.rejected)
