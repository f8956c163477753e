"""One engine for explicit Runge–Kutta methods, fixed-step or adaptive.

The caller owns the loop::

    stepper = ExplicitRK(DOPRI5, rhs, rtol=1e-8, atol=1e-10)
    state = stepper.init(0.0, y0)
    while state.t < t_end:
        state = stepper.step(state, t_end)

Everything is array-API code (NumPy, CuPy, ``array_api_strict``); real or complex states.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import array_api_compat

from explore.numerics.tableaux import ButcherTableau

__all__ = [
    "StepState",
    "StepController",
    "ExplicitRK",
    "StepSizeTooSmall",
    "TooManySteps",
    "DEFAULT_RTOL",
    "fill_step",
    "land_on",
    "as_state_array",
]

#: Relative tolerance used by adaptive steppers when none is given.
DEFAULT_RTOL = 1e-6
#: Absolute tolerance is ``ATOL_PER_RTOL * rtol`` when not given.
ATOL_PER_RTOL = 1e-3
#: A step within this relative distance of ``t_stop`` lands exactly on it.
LANDING_SLACK = 1e-9
_EPS = 2.220446049250313e-16


class StepSizeTooSmall(RuntimeError):
    """The adaptive step size underflowed (finite-time blow-up, or an explicit method on a
    problem far too stiff for it)."""


class TooManySteps(RuntimeError):
    """A stepper took more than its ``max_steps`` accepted steps."""


@dataclass(frozen=True)
class StepState:
    """State of a one-step time stepper after an accepted step.

    Attributes
    ----------
    t : float
        Current time.
    y : array
        Current solution (any shape; real or complex).
    dt : float
        Next proposed step size (positive).  Steps clipped to land on ``t_stop`` do not
        shrink it.
    nfe : int
        Cumulative number of right-hand side (or nonlinear term) evaluations.
    steps : int
        Accepted steps so far.
    rejected : int
        Rejected trial steps so far.
    f : array or None
        ``f(t, y)`` when known (FSAL methods), reused as the first stage of the next step.
    """

    t: float
    y: Any
    dt: float
    nfe: int = 0
    steps: int = 0
    rejected: int = 0
    f: Any = None


@dataclass(frozen=True)
class StepController:
    """Elementary (I-) step-size controller.

    The new step is ``dt * factor`` with ``factor = safety * err**(-1 / (q + 1))`` clipped to
    ``[min_factor, max_factor]``, ``err`` the scaled error norm and ``q`` the order of the error
    estimator; after a rejection the step may not grow (Hairer, Nørsett & Wanner,
    "Solving Ordinary Differential Equations I", II.4).
    """

    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0

    def __post_init__(self):
        if not 0.0 < self.safety <= 1.0:
            raise ValueError(f"safety must lie in (0, 1], got {self.safety!r}")
        if not 0.0 < self.min_factor < 1.0 < self.max_factor:
            raise ValueError(
                f"need 0 < min_factor < 1 < max_factor, got {self.min_factor!r}, {self.max_factor!r}"
            )

    def factor(self, error_norm: float, error_order: int, *, rejected: bool = False) -> float:
        """Step-size factor for a scaled error norm (``<= 1`` means acceptable).

        Parameters
        ----------
        error_norm : float
            Scaled error norm of the trial step.
        error_order : int
            Order ``q`` of the error estimator.
        rejected : bool
            Whether a trial of the current step was already rejected (then the factor is
            capped at 1).
        """
        if not math.isfinite(error_norm):
            return self.min_factor
        if error_norm == 0.0:
            f = self.max_factor
        else:
            f = self.safety * error_norm ** (-1.0 / (error_order + 1))
            f = min(self.max_factor, max(self.min_factor, f))
        if rejected:
            f = min(f, 1.0)
        return f


def as_state_array(y0):
    """``y0`` as an inexact array of its own namespace (integers become float64)."""
    xp = array_api_compat.array_namespace(y0)
    y0 = xp.asarray(y0)
    if not xp.isdtype(y0.dtype, ("real floating", "complex floating")):
        y0 = xp.astype(y0, xp.float64)
    return y0


def fill_step(interval: float, dt: float) -> float:
    """The step of at most ``dt`` that fills ``interval`` with whole steps, all of one size
    (``interval / ceil(interval / dt)``): a run's frames are reached without a clipped last step, and a
    step-size study measures one step size."""
    return interval / max(1, math.ceil(interval / dt - 1e-9))


def land_on(t: float, dt: float, t_stop: float) -> tuple[float, float, bool]:
    """The step actually taken from ``t`` towards ``t_stop`` with proposed size ``dt``.

    Returns ``(h, t_new, clipped)``: a step that would reach or pass ``t_stop`` (within a
    relative slack of ``LANDING_SLACK``) is shortened to land exactly on ``t_stop``.
    """
    remaining = t_stop - t
    if remaining <= dt * (1.0 + LANDING_SLACK):
        return remaining, float(t_stop), remaining < dt
    return dt, t + dt, False


def check_t_stop(t: float, t_stop: float) -> None:
    if not t_stop >= t:
        raise ValueError(f"t_stop={t_stop!r} lies before the current time t={t!r}; steppers go forward")


def scaled_rms(y0, rtol: float, atol):
    """``v -> sqrt(mean(|v| / (atol + rtol |y0|))²)``: the norm of a starting-step estimate (a Python float)."""
    xp = array_api_compat.array_namespace(y0)
    scale = atol + rtol * xp.abs(y0)
    n = math.prod(y0.shape) or 1

    def rms(v) -> float:
        a = xp.abs(v) / scale
        return float(xp.sqrt(xp.sum(a * a) / n))

    return rms


def first_step_guess(d0: float, d1: float) -> float:
    """The first guess of Hairer's starting step from the scaled norms of ``y0`` (``d0``) and of its
    derivative (``d1``): ``0.01 d0 / d1``, or 1e-6 where either is tiny or the ratio is not finite (norms
    that overflowed: a tolerance near 1e-300)."""
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    return h0 if h0 > 0 and math.isfinite(h0) else 1e-6


def _combine(y, h: float, coeffs, ks):
    """``y + h * sum_j coeffs[j] * ks[j]``, skipping zero coefficients."""
    acc = y
    for cj, kj in zip(coeffs, ks):
        if cj != 0.0:
            acc = acc + (h * cj) * kj
    return acc


def _weighted(coeffs, ks):
    acc = None
    for cj, kj in zip(coeffs, ks):
        if cj != 0.0:
            acc = cj * kj if acc is None else acc + cj * kj
    return acc


class ExplicitRK:
    """Explicit Runge–Kutta method given by its Butcher tableau, fixed-step or adaptive.

    Adaptive mode (the tableau has error weights ``e`` and ``rtol`` is given, or ``dt`` is not)
    uses the embedded estimate ``dt * sum_i e_i k_i`` measured in the RMS norm scaled by
    ``atol + rtol * max(|y|, |y_new|)`` and a :class:`StepController`; for DOP853 (weights
    ``e3``) it uses Hairer's combined 5th/3rd-order estimator.  Fixed-step mode (no ``e``, or
    ``dt`` given and ``rtol`` not) makes no host synchronisation at all.

    Parameters
    ----------
    tableau : ButcherTableau
        The method.
    rhs : callable
        ``rhs(t, y) -> array`` of the same shape as ``y``.
    dt : float, optional
        Fixed step, or the initial step in adaptive mode (default: Hairer's initial-step
        algorithm from "Solving Ordinary Differential Equations I").
    rtol, atol : float, optional
        Tolerances of adaptive mode (``atol`` may be an array broadcasting against ``y``).
        Defaults: ``rtol = DEFAULT_RTOL``, ``atol = 1e-3 * rtol``.
    controller : StepController
        Step-size controller constants.
    max_steps : int
        Accepted steps after which :class:`TooManySteps` is raised.
    """

    def __init__(
        self,
        tableau: ButcherTableau,
        rhs: Callable,
        *,
        dt: float | None = None,
        rtol: float | None = None,
        atol=None,
        controller: StepController = StepController(),
        max_steps: int = 10_000_000,
    ):
        self.tableau = tableau
        self.rhs = rhs
        self.controller = controller
        self.max_steps = int(max_steps)
        self.adaptive = tableau.e is not None and not (dt is not None and rtol is None)
        if dt is not None and not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive finite step, got {dt!r}")
        if not self.adaptive and dt is None:
            raise ValueError(
                f"dt: the fixed-step method {tableau.name!r} needs a positive step dt"
            )
        if self.adaptive:
            rtol = DEFAULT_RTOL if rtol is None else float(rtol)
            if not rtol > 0:
                raise ValueError(f"rtol must be positive, got {rtol!r}")
            if atol is None:
                atol = ATOL_PER_RTOL * rtol
        self.dt = None if dt is None else float(dt)
        self.rtol = rtol
        self.atol = atol

    # -- public interface -------------------------------------------------------------------
    @property
    def order(self) -> int:
        return self.tableau.order

    def init(self, t0: float, y0) -> StepState:
        """Initial state at ``(t0, y0)``; in adaptive mode chooses the first step if needed."""
        y0 = as_state_array(y0)
        t0 = float(t0)
        if self.adaptive and self.dt is None:
            f0 = self.rhs(t0, y0)
            dt = self._initial_step(t0, y0, f0)
            return StepState(t=t0, y=y0, dt=dt, nfe=2, f=f0)
        return StepState(t=t0, y=y0, dt=self.dt)

    def step(self, state: StepState, t_stop: float) -> StepState:
        """Advance by exactly one accepted step, never past ``t_stop`` (landing exactly on it).

        Raises
        ------
        StepSizeTooSmall
            Adaptive mode: the step size underflowed (``dt < 10 eps max(|t|, 1)``), e.g. on
            a solution that blows up in finite time.
        TooManySteps
            More than ``max_steps`` accepted steps.
        """
        t_stop = float(t_stop)
        check_t_stop(state.t, t_stop)
        if state.t == t_stop:
            return state
        if state.steps >= self.max_steps:
            raise TooManySteps(
                f"{self.tableau.name}: more than max_steps={self.max_steps} steps at t={state.t!r}"
            )
        if self.adaptive:
            return self._adaptive_step(state, t_stop)
        h, t_new, _ = land_on(state.t, state.dt, t_stop)
        f0, nfe = state.f, state.nfe
        if f0 is None:
            f0, nfe = self.rhs(state.t, state.y), nfe + 1
        ks, y_new, f_new, n = self._trial(state.t, state.y, h, f0)
        return StepState(t=t_new, y=y_new, dt=state.dt, nfe=nfe + n, steps=state.steps + 1,
                         rejected=state.rejected, f=f_new)

    # -- internals --------------------------------------------------------------------------
    def _trial(self, t, y, h, f0):
        """Stages of one trial step: ``(ks, y_new, f_new, nfe)`` (``f_new`` only if FSAL)."""
        tab = self.tableau
        ks = [f0]
        for i in range(1, tab.stages):
            yi = _combine(y, h, tab.a[i][:i], ks)
            ks.append(self.rhs(t + tab.c[i] * h, yi))
        y_new = _combine(y, h, tab.b, ks)
        nfe = tab.stages - 1
        f_new = None
        if tab.fsal:
            f_new = self.rhs(t + h, y_new)
            nfe += 1
        return ks, y_new, f_new, nfe

    def _scale(self, xp, y, y_new):
        return self.atol + self.rtol * xp.maximum(xp.abs(y), xp.abs(y_new))

    def error_norm(self, y, y_new, ks, f_new, h: float) -> float:
        """Scaled error norm of a trial step (a Python float; ``<= 1`` is acceptable).

        Non-finite when the trial step produced non-finite values.
        """
        xp = array_api_compat.array_namespace(y_new)
        tab = self.tableau
        kk = list(ks) + [f_new]
        scale = self._scale(xp, y, y_new)
        n = math.prod(y_new.shape) or 1
        err = _weighted(tab.e, kk)
        if tab.e3 is None:
            e = xp.abs(err) / scale
            norm = abs(h) * xp.sqrt(xp.sum(e * e) / n)
        else:
            # Hairer's DOP853 estimator: |h| |err5|^2 / sqrt((|err5|^2 + 0.01 |err3|^2) n)
            e5 = xp.abs(err) / scale
            e3 = xp.abs(_weighted(tab.e3, kk)) / scale
            e5sq = xp.sum(e5 * e5)
            denom = e5sq + 0.01 * xp.sum(e3 * e3)
            safe = xp.where(denom > 0, denom, xp.ones_like(denom))
            norm = abs(h) * e5sq / xp.sqrt(safe * n)
        # one host sync; 0 * max|y_new| turns an overflowed state into a non-finite norm
        return float(norm + 0.0 * xp.max(xp.abs(y_new)))

    def _adaptive_step(self, state: StepState, t_stop: float) -> StepState:
        tab, ctrl = self.tableau, self.controller
        q = tab.error_order
        t, y = state.t, state.y
        f0, nfe = state.f, state.nfe
        if f0 is None:
            f0, nfe = self.rhs(t, y), nfe + 1
        h_prop = state.dt
        rejected = state.rejected
        rejected_here = False
        nonfinite = False
        while True:
            if h_prop < 10.0 * _EPS * max(abs(t), 1.0):
                why = (
                    "the error estimate stayed non-finite" if nonfinite
                    else "the error estimate could not be met"
                )
                raise StepSizeTooSmall(
                    f"{tab.name}: step size underflowed to dt={h_prop:.3g} at t={t!r} ({why}); the "
                    "solution probably blows up in finite time, or the problem is too stiff for an "
                    "explicit method at rtol/atol — loosen the tolerances, stop earlier, or use an "
                    "exponential integrator"
                )
            h, t_new, clipped = land_on(t, h_prop, t_stop)
            ks, y_new, f_new, n = self._trial(t, y, h, f0)
            nfe += n
            err = self.error_norm(y, y_new, ks, f_new, h)
            if math.isfinite(err) and err <= 1.0:
                dt_next = h * ctrl.factor(err, q, rejected=rejected_here)
                if clipped and not rejected_here:
                    dt_next = max(dt_next, h_prop)
                return StepState(t=t_new, y=y_new, dt=dt_next, nfe=nfe, steps=state.steps + 1,
                                 rejected=rejected, f=f_new)
            nonfinite = not math.isfinite(err)
            rejected += 1
            rejected_here = True
            h_prop = h * ctrl.factor(err, q, rejected=True)

    def _initial_step(self, t0: float, y0, f0) -> float:
        """Hairer's starting step ("Solving Ordinary Differential Equations I", II.4)."""
        rms = scaled_rms(y0, self.rtol, self.atol)
        d0, d1 = rms(y0), rms(f0)
        h0 = first_step_guess(d0, d1)
        f1 = self.rhs(t0 + h0, y0 + h0 * f0)
        d2 = rms(f1 - f0) / h0
        p = self.tableau.order
        if not math.isfinite(d2) or not math.isfinite(d1):
            return h0
        if max(d1, d2) <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (1.0 / (p + 1))
        h = min(100.0 * h0, h1)
        return h if h > 0 and math.isfinite(h) else h0
