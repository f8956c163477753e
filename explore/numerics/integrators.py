"""Time integrators for semilinear problems, and their registry.

A semilinear problem ``u' = L u + N(t, u)`` (a :class:`SemilinearProblem`) supplies its
diagonal linear operator ``L`` as an array and the nonlinear term ``N``.  Every integrator is a
factory ``(problem, *, dt=None, rtol=None, atol=None) -> stepper`` registered with
:func:`register_integrator`; a stepper has ``init(t0, y0) -> StepState`` and
``step(state, t_stop) -> StepState``.  Labs build their Selector, the CLI its help, and the
tests their parameter lists from :data:`INTEGRATORS`.

Example
-------
>>> stepper = make_integrator("etdrk4", problem, dt=1e-3)   # doctest: +SKIP
>>> state = stepper.init(0.0, u0)                           # doctest: +SKIP
>>> while state.t < t_end:                                  # doctest: +SKIP
...     state = stepper.step(state, t_end)
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

from explore.numerics.exponential import ETDRK4, AdaptiveLawsonRK, IntegratingFactorRK
from explore.numerics.rk import DEFAULT_RTOL, ExplicitRK, StepState
from explore.numerics.splitting import YOSHIDA4, YOSHIDA6, CompositionSplitting, StrangSplitting
from explore.numerics import tableaux
from explore.numerics.tableaux import DOPRI5, RK4

__all__ = [
    "SemilinearProblem",
    "Stepper",
    "IntegratorInfo",
    "INTEGRATORS",
    "register_integrator",
    "make_integrator",
    "rhs_of",
]


@runtime_checkable
class SemilinearProblem(Protocol):
    """``u' = L u + N(t, u)`` with ``L`` diagonal, stored as an array ``linear``.

    Attributes
    ----------
    linear : array
        The diagonal of ``L`` (e.g. a Fourier symbol), broadcasting against ``u``; real or
        complex.

    Methods
    -------
    nonlinear(t, u)
        The nonlinear term ``N(t, u)``.
    nonlinear_flow(u, dt)
        Optional: the exact flow of ``u' = N(u)`` over ``dt`` (needed by splitting methods).
    """

    linear: Any

    def nonlinear(self, t: float, u): ...


@runtime_checkable
class Stepper(Protocol):
    """A one-step time stepper; the caller owns the loop."""

    def init(self, t0: float, y0) -> StepState: ...

    def step(self, state: StepState, t_stop: float) -> StepState: ...


def rhs_of(problem) -> Callable:
    """The full right-hand side ``f(t, u) = L u + N(t, u)`` of a semilinear problem."""
    linear, nonlinear = problem.linear, problem.nonlinear
    return lambda t, u: linear * u + nonlinear(t, u)


@dataclass(frozen=True)
class IntegratorInfo:
    """Registry entry of one integrator.

    Attributes
    ----------
    name, order, adaptive, description
        What the lab's Selector and the CLI show.
    factory : callable
        ``factory(problem, *, dt=None, rtol=None, atol=None) -> stepper``.
    requires : tuple of str
        Problem attributes the method needs beyond ``linear`` and ``nonlinear``.
    backward_substeps : bool
        Whether the method takes sub-steps backwards in time (compositions of order > 2: Sheng and
        Suzuki showed they must). They run a dissipative linear part (diffusion) backwards, which
        amplifies the high wavenumbers: such methods suit conservative problems (the NLSE) only.
    state_copies : float
        Arrays of the state's size the stepper takes at its peak (stages, cached operators, the
        temporaries of building them), measured; what :meth:`working_bytes` scales.
    memory : callable, optional
        ``memory(state_bytes) -> bytes`` where a count does not describe it (a cache bounded in bytes).
    """

    name: str
    order: int
    adaptive: bool
    description: str
    factory: Callable
    requires: tuple[str, ...] = ()
    backward_substeps: bool = False
    state_copies: float = 10.0
    memory: Callable[[int], int] | None = None

    def supports(self, problem) -> bool:
        """Whether ``problem`` has everything this integrator needs."""
        return all(callable(getattr(problem, r, None)) for r in self.requires)

    def working_bytes(self, state_bytes: int) -> int:
        """About the most memory the stepper takes for a state of ``state_bytes`` bytes (a lab adds its own
        arrays to decide whether a run fits before it starts)."""
        if self.memory is not None:
            return int(self.memory(int(state_bytes)))
        return int(self.state_copies * state_bytes)


#: All integrators by name, in registration order.
INTEGRATORS: dict[str, IntegratorInfo] = {}


def register_integrator(name: str, *, order: int, adaptive: bool, description: str,
                        requires: tuple[str, ...] = (), backward_substeps: bool = False,
                        state_copies: float = 10.0, memory: Callable[[int], int] | None = None):
    """Decorator registering an integrator factory under ``name`` in :data:`INTEGRATORS`."""

    def deco(factory):
        if name in INTEGRATORS:
            raise ValueError(f"integrator {name!r} is already registered")
        INTEGRATORS[name] = IntegratorInfo(name, int(order), bool(adaptive), description,
                                           factory, tuple(requires), bool(backward_substeps),
                                           float(state_copies), memory)
        return factory

    return deco


def make_integrator(name: str, problem, dt: float | None = None, rtol: float | None = None,
                    atol=None):
    """Build the stepper ``name`` for ``problem``.

    Fixed-step methods need a positive ``dt`` (tolerances are ignored); adaptive methods use
    ``dt`` as the initial step if given and ``rtol`` / ``atol`` (defaults ``1e-6`` and
    ``1e-3 * rtol``).

    Raises
    ------
    ValueError
        Naming ``integrator`` for an unknown name or a problem lacking what the method needs,
        ``dt`` for a missing or non-positive step, ``rtol`` / ``atol`` for bad tolerances.
    """
    info = INTEGRATORS.get(name)
    if info is None:
        raise ValueError(
            f"integrator: unknown integrator {name!r}; choose one of {', '.join(INTEGRATORS)}"
        )
    if not info.supports(problem):
        missing = [r for r in info.requires if not callable(getattr(problem, r, None))]
        raise ValueError(
            f"integrator: {name!r} needs the problem to provide {', '.join(missing)}; "
            f"choose one of {', '.join(n for n, i in INTEGRATORS.items() if i.supports(problem))}"
        )
    if dt is not None and not (isinstance(dt, numbers.Real) and not isinstance(dt, bool) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt: must be a positive finite time step, got {dt!r}")
    if not info.adaptive and dt is None:
        raise ValueError(f"dt: the fixed-step integrator {name!r} needs a positive time step dt")
    if rtol is not None and not (math.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol: must be a positive relative tolerance, got {rtol!r}")
    # (> 0: a spectral state holds exact zeros, so a purely relative error norm would divide 0 by 0)
    if atol is not None and isinstance(atol, (int, float)) and not (math.isfinite(atol) and atol > 0):
        raise ValueError(f"atol: must be a positive absolute tolerance, got {atol!r}")
    return info.factory(problem, dt=dt, rtol=rtol, atol=atol)


def _adaptive_rk(tableau, problem, dt, rtol, atol):
    return ExplicitRK(tableau, rhs_of(problem), dt=dt,
                      rtol=DEFAULT_RTOL if rtol is None else rtol, atol=atol)


@register_integrator("dop853", order=8, adaptive=True, state_copies=30,
                     description="Dormand–Prince 8(5,3) explicit Runge–Kutta (Hairer), adaptive")
def _dop853(problem, *, dt=None, rtol=None, atol=None):
    return _adaptive_rk(tableaux.DOP853, problem, dt, rtol, atol)


@register_integrator("dopri5", order=5, adaptive=True, state_copies=18,
                     description="Dormand–Prince 5(4) explicit Runge–Kutta, adaptive")
def _dopri5(problem, *, dt=None, rtol=None, atol=None):
    return _adaptive_rk(DOPRI5, problem, dt, rtol, atol)


@register_integrator("rk4", order=4, adaptive=False, state_copies=9,
                     description="classic 4th-order Runge–Kutta on the full right-hand side, fixed dt")
def _rk4(problem, *, dt=None, rtol=None, atol=None):
    return ExplicitRK(RK4, rhs_of(problem), dt=dt)


@register_integrator("ifrk4", order=4, adaptive=False, state_copies=10,
                     description="integrating-factor RK4 (Lawson): linear part exact, fixed dt")
def _ifrk4(problem, *, dt=None, rtol=None, atol=None):
    return IntegratingFactorRK(RK4, problem, dt)


@register_integrator("if_dop853", order=8, adaptive=True,
                     memory=lambda b: AdaptiveLawsonRK.working_bytes(tableaux.DOP853, b),
                     description="integrating-factor (Lawson) DOP853: linear part exact, adaptive by the embedded "
                                 "5th/3rd-order estimate (not pinned by stiffness); steps that output times cut "
                                 "short try Lawson DOPRI5 first (half the evaluations, the same tolerance)")
def _if_dop853(problem, *, dt=None, rtol=None, atol=None):
    return AdaptiveLawsonRK(tableaux.DOP853, problem, dt=dt, rtol=DEFAULT_RTOL if rtol is None else rtol, atol=atol,
                            economy=DOPRI5)


@register_integrator("etdrk4", order=4, adaptive=False, state_copies=21,
                     description="exponential time differencing RK4 (Cox–Matthews, Kassam–Trefethen), fixed dt")
def _etdrk4(problem, *, dt=None, rtol=None, atol=None):
    return ETDRK4(problem, dt)


@register_integrator("split_step", order=2, adaptive=False, requires=("nonlinear_flow",), state_copies=8,
                     description="Strang split-step: exact linear and nonlinear flows, fixed dt")
def _split_step(problem, *, dt=None, rtol=None, atol=None):
    return StrangSplitting(problem, dt)


@register_integrator("split_step4", order=4, adaptive=False, requires=("nonlinear_flow",), backward_substeps=True,
                     state_copies=9,
                     description="4th-order split-step: Yoshida's triple jump of Strang steps, fixed dt")
def _split_step4(problem, *, dt=None, rtol=None, atol=None):
    return CompositionSplitting(problem, dt, YOSHIDA4, order=4)


@register_integrator("split_step6", order=6, adaptive=False, requires=("nonlinear_flow",), backward_substeps=True,
                     state_copies=10,
                     description="6th-order split-step: Yoshida's 7-stage composition of Strang steps, fixed dt")
def _split_step6(problem, *, dt=None, rtol=None, atol=None):
    return CompositionSplitting(problem, dt, YOSHIDA6, order=6)
