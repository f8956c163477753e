"""Exponential integrators for semilinear problems ``u' = L u + N(t, u)``.

``L`` is a diagonal linear operator stored as an array (e.g. a Fourier symbol, possibly
complex); its stiffness is handled exactly by exponentials ``exp(dt L)``, which depend on
``dt`` only and are cached per ``dt``.  Both steppers share the ``init`` / ``step(state,
t_stop)`` interface and :class:`~explore.numerics.rk.StepState` of
:class:`~explore.numerics.rk.ExplicitRK`; ``nfe`` counts evaluations of ``N``.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import array_api_compat
from array_api_compat import is_numpy_namespace

from explore.numerics.rk import (
    _EPS, ATOL_PER_RTOL, DEFAULT_RTOL, StepController, StepSizeTooSmall, StepState, TooManySteps,
    as_state_array, check_t_stop, first_step_guess, land_on, scaled_rms,
)
from explore.numerics.tableaux import ButcherTableau

__all__ = ["IntegratingFactorRK", "AdaptiveLawsonRK", "ETDRK4", "DtCache", "FixedStepSemilinear"]

#: Number of ``dt`` values whose operators are kept (the regular step and a clipped last one).
CACHE_SIZE = 4
#: Contour points for the phi-function coefficients (Kassam & Trefethen).
CONTOUR_POINTS = 32
#: memory the operators of the cached step sizes of :class:`AdaptiveLawsonRK` may take (DOP853: ~86 arrays
#: of the state's size per step size; 6 MB at the reaction–diffusion lab's 64², 1.4 GB at 1024²)
LAWSON_CACHE_BYTES = 2**30
#: the most step sizes whose operators :class:`AdaptiveLawsonRK` keeps (fewer where the bytes above run out)
LAWSON_CACHE_SIZE = 8
#: :class:`AdaptiveLawsonRK` sums its stages in the interaction picture (one matrix-vector product a
#: stage) while ``max(-Re L) dt`` stays below this: its factors ``exp(c dt |L|)`` then stay far from
#: overflow (e^500 ~ 1e217); above it, term by term with the factors ``exp((c_i - c_j) dt L)``, bounded
#: where the nodes increase (elsewhere see ``GROWTH_CAP``)
INTERACTION_REACH = 500.0
#: the term-by-term factors ``exp((c_i - c_j) dt L)`` with ``c_i < c_j`` (DOP853 has four such pairs) grow
#: the dissipative modes; their exponents are capped here, short of overflow: an infinite factor times a
#: mode whose nonlinear part is zero made a NaN stage, and the step was rejected until it shrank
#: (471 steps instead of 8 with a decoupled mode at L = -1e6, ``test_steppers``). Where the factor really is this large,
#: the error estimate rejects the step as before.
GROWTH_CAP = 700.0
#: :class:`AdaptiveLawsonRK` tries its economy pair on a step whose size is at most this fraction of what
#: its own controller allows (a step the output times cut short)
ECONOMY_RATIO = 3.0
#: values of the symbol whose ETDRK4 coefficients are made at once (the contour's temporaries: ~10 arrays of
#: ``CONTOUR_POINTS`` complex numbers per value, ~20 MB at this size)
PHI_CHUNK = 4096
#: the contour means are used where ``|dt L|`` is below this (the unit circle then stays ≥ 0.5 from 0);
#: the direct formulas above it (their cancellation there costs < 1e-13)
CONTOUR_BELOW = 0.5


class DtCache:
    """Tiny LRU cache of dt-dependent operators, keyed by ``dt``. When full, the oldest entry goes before a
    new one is built, so the cache never holds ``size + 1`` entries' arrays at once."""

    def __init__(self, build, size: int = CACHE_SIZE):
        self._build = build
        self._size = size
        self._data: OrderedDict[float, object] = OrderedDict()

    def __call__(self, dt: float):
        dt = float(dt)
        if dt in self._data:
            self._data.move_to_end(dt)
            return self._data[dt]
        while len(self._data) >= self._size:
            self._data.popitem(last=False)
        value = self._build(dt)
        self._data[dt] = value
        return value

    def __len__(self):
        return len(self._data)


def _fixed_dt(dt) -> float:
    if dt is None or not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt: a fixed-step exponential integrator needs a positive step, got {dt!r}")
    return float(dt)


def _linear(problem, y):
    xp = array_api_compat.array_namespace(y)
    return xp, xp.asarray(problem.linear)


def _begin_step(stepper, state: StepState, t_stop) -> float:
    """``t_stop`` as a float, checked against the state's time; a stepper made without ``init`` (a resumed
    run) is bound to the state's namespace here."""
    t_stop = float(t_stop)
    check_t_stop(state.t, t_stop)
    if stepper._xp is None:
        stepper._bind(state.y)
    return t_stop


class FixedStepSemilinear:
    """Shared loop of the fixed-step steppers for ``u' = L u + N(t, u)``.

    Subclasses define ``_build(dt)`` (the dt-dependent operators, cached per ``dt`` in the
    state's namespace) and ``_advance(t, u, h, ops) -> u_new``; this class owns ``init``,
    landing exactly on ``t_stop`` and the bookkeeping of :class:`StepState`.
    """

    #: evaluations of the nonlinear part per step
    nfe_per_step = 1

    def __init__(self, problem, dt: float):
        self.problem = problem
        self.dt = _fixed_dt(dt)
        self._xp = None
        self._L = None
        self._cache = DtCache(self._build)

    def _bind(self, y) -> None:
        self._xp, self._L = _linear(self.problem, y)
        self._complex_state = self._xp.isdtype(y.dtype, "complex floating")
        self._cache = DtCache(self._build)  # operators belong to this namespace / device

    def _like_state(self, a):
        """A real operator cast to a complex state's dtype: on NumPy a complex × complex product is
        ~1.5–2× faster than real × complex, and the values are the same."""
        xp = self._xp
        if self._complex_state and not xp.isdtype(a.dtype, "complex floating"):
            return xp.astype(a, xp.complex128)
        return a

    def init(self, t0: float, y0) -> StepState:
        y0 = as_state_array(y0)
        self._bind(y0)
        return StepState(t=float(t0), y=y0, dt=self.dt)

    def step(self, state: StepState, t_stop: float) -> StepState:
        """One step of size ``dt`` (shortened to land exactly on ``t_stop``)."""
        t_stop = _begin_step(self, state, t_stop)
        if state.t == t_stop:
            return state
        h, t_new, _ = land_on(state.t, state.dt, t_stop)
        y_new = self._advance(state.t, state.y, h, self._cache(h))
        return StepState(t=t_new, y=y_new, dt=state.dt, nfe=state.nfe + self.nfe_per_step,
                         steps=state.steps + 1, rejected=state.rejected)

    def _build(self, dt: float):  # pragma: no cover - abstract
        raise NotImplementedError

    def _advance(self, t: float, u, h: float, ops):  # pragma: no cover - abstract
        raise NotImplementedError


class IntegratingFactorRK(FixedStepSemilinear):
    """Integrating-factor (Lawson) Runge–Kutta method for ``u' = L u + N(t, u)``.

    Lawson's "Generalized Runge-Kutta processes for stable systems with large Lipschitz
    constants": the explicit RK method ``tableau`` is applied to ``v = exp(-t L) u`` (the
    interaction picture), which removes the stiff linear part.  Written back in ``u`` with the
    frame reset at each step start::

        U_i     = E(c_i) u_n + dt sum_j a_ij E(c_i - c_j) N(t_n + c_j dt, U_j)
        u_{n+1} = E(1) u_n   + dt sum_j b_j  E(1 - c_j)   N(t_n + c_j dt, U_j)

    with ``E(x) = exp(x dt L)``.  Order = the tableau's order (IF-RK4 with the classic RK4:
    order 4); exact for ``N = 0``.  Fixed step ``dt``; the exponentials are cached per ``dt``.

    Parameters
    ----------
    tableau : ButcherTableau
        Explicit RK method (its error weights, if any, are ignored).
    problem : SemilinearProblem
        Supplies ``linear`` (array) and ``nonlinear(t, u)``.
    dt : float
        Fixed step.
    """

    def __init__(self, tableau: ButcherTableau, problem, dt: float):
        self.tableau = tableau
        self.order = tableau.order
        self.nfe_per_step = tableau.stages
        super().__init__(problem, dt)

    def _build(self, dt: float) -> dict[float, object]:
        xp, L = self._xp, self._L
        tab = self.tableau
        shifts = {c for c in tab.c} | {1.0 - c for c in tab.c}
        for i in range(tab.stages):
            for j in range(i):
                if tab.a[i][j] != 0.0:
                    shifts.add(tab.c[i] - tab.c[j])
        return {x: xp.exp((x * dt) * L) for x in shifts}

    def _advance(self, t: float, u, h: float, E):
        tab, N = self.tableau, self.problem.nonlinear
        ks = []
        for i in range(tab.stages):
            ci = tab.c[i]
            Ui = u if ci == 0.0 else E[ci] * u
            for j in range(i):
                aij = tab.a[i][j]
                if aij != 0.0:
                    Ui = Ui + (h * aij) * (E[ci - tab.c[j]] * ks[j])
            ks.append(N(t + ci * h, Ui))
        y_new = E[1.0] * u
        for j in range(tab.stages):
            if tab.b[j] != 0.0:
                y_new = y_new + (h * tab.b[j]) * (E[1.0 - tab.c[j]] * ks[j])
        return y_new


class AdaptiveLawsonRK:
    """Lawson's integrating-factor Runge–Kutta method with the tableau's embedded error estimate: adaptive.

    In the interaction picture ``v = exp(-t L) u`` the method is the tableau's own explicit RK method (see
    :class:`IntegratingFactorRK`), so its embedded pair measures the local error of ``v``; written back in
    ``u`` the estimate is ``dt Σ_j e_j E(1 - c_j) k_j`` with ``k_j = N(U_j)``, scaled and controlled as in
    :class:`~explore.numerics.rk.ExplicitRK` (Hairer's 5th/3rd-order estimator for DOP853). The stiff linear
    part is exact, so the step follows the accuracy of the nonlinear dynamics only: no stability limit
    from ``L`` (an explicit method's step is pinned at ``~3/max|L|``).

    The exponentials ``E(x) = exp(x dt L)`` and the stage weights ``dt a_ij E(c_i - c_j)`` depend on
    ``dt``; so that few step sizes occur, steps fill the distance ``D`` to ``t_stop`` evenly
    (``dt = D/m``, ``D`` taken at the first step towards that ``t_stop``: a lab's output interval). A
    rejection multiplies ``m`` by an integer, so whole steps still land on ``t_stop``, and so does a
    proposal below half the step; the step grows (a new ``m`` for the rest of the way) when the controller
    allows twice the current one. The operators of the last ``cache_size`` step sizes are kept, as many
    as ``LAWSON_CACHE_BYTES`` holds.

    On NumPy a stage's sum is one matrix-vector product in the interaction picture (the stages scaled by
    ``E(-c_j)``, see :meth:`_build_interaction`): ~22 operators a step size instead of ~86, and the
    reaction–diffusion lab's pattern_decay steps ~20 % faster. Where ``max(-Re L) dt`` exceeds
    ``INTERACTION_REACH`` (the factors ``E(-c_j)`` would approach overflow) and on other backends the
    sums are taken term by term.

    Output times can cut the steps far below what the controller allows (snapshots every 0.1 where
    DOP853 would step 0.4): so many stages buy accuracy nobody asked for. With an ``economy`` pair
    (DOPRI5's 6 evaluations for DOP853's 12) such a step, at most ``1 / ECONOMY_RATIO`` of the allowed
    one, is tried with the cheaper pair under the same tolerance and its own error estimate; the main
    pair's proposal stands, and if the economy step fails its estimate the main pair takes it, and the
    rest of the way to that output time. On the interaction-picture path only.

    Parameters
    ----------
    tableau : ButcherTableau
        An explicit method with error weights ``e`` (and ``e3`` for Hairer's estimator).
    problem : SemilinearProblem
        Supplies ``linear`` (array) and ``nonlinear(t, u)``.
    dt : float, optional
        Initial step proposal (default: ``0.01 ‖u‖/‖N(u)‖`` in the scaled norm).
    rtol, atol : float, optional
        Tolerances (defaults ``DEFAULT_RTOL`` and ``1e-3 rtol``).
    economy : ButcherTableau, optional
        A cheaper embedded pair for the steps the output times cut short (above).
    """

    def __init__(self, tableau: ButcherTableau, problem, *, dt: float | None = None, rtol: float | None = None,
                 atol=None, controller: StepController = StepController(), cache_size: int = LAWSON_CACHE_SIZE,
                 max_steps: int = 10_000_000, economy: ButcherTableau | None = None):
        if tableau.e is None:
            raise ValueError(f"integrator: {tableau.name!r} has no embedded error estimate")
        self.tableau, self.problem, self.controller = tableau, problem, controller
        self.order = tableau.order
        self.rtol = DEFAULT_RTOL if rtol is None else float(rtol)
        self.atol = ATOL_PER_RTOL * self.rtol if atol is None else atol
        self.dt = None if dt is None else float(dt)
        self.max_steps = int(max_steps)
        self._cache_size = int(cache_size)
        self._cache = DtCache(self._build, size=self._cache_size)
        self._arrays_per_step = self.arrays_per_step(tableau)
        self._xp = None
        self._target = None  # the t_stop the current filling was made for, its step and steps left
        self._h = 0.0
        self._left = 0
        self._decay = None  # max(-Re L) where the interaction-picture sums apply (see _bind)
        self._norm = self._error_norm  # the error norm of the state's backend (see _bind)
        self._stack = None  # their stack [y, K_0, ..., K_s]
        self._economy = None if economy is None else AdaptiveLawsonRK(
            economy, problem, rtol=self.rtol, atol=self.atol, controller=controller, cache_size=2, max_steps=max_steps)
        self._economy_off = None  # the t_stop towards which the economy pair failed (not tried again)
        self.economy_steps = 0  # steps the economy pair took

    @staticmethod
    def arrays_per_step(tableau: ButcherTableau) -> int:
        """Arrays of the state's size that the operators of one step size take (DOP853: 86)."""
        nonzero = lambda w: sum(x != 0.0 for x in w)  # noqa: E731
        return (1 + nonzero(tableau.c) + sum(nonzero(row) for row in tableau.a) + nonzero(tableau.b)
                + nonzero(tableau.e) + (0 if tableau.e3 is None else nonzero(tableau.e3)))

    @staticmethod
    def cached_step_sizes(per_step_bytes: int, cache_size: int = LAWSON_CACHE_SIZE) -> int:
        """How many step sizes' operators are kept: as many as ``LAWSON_CACHE_BYTES`` holds, at least the
        one in use, at most ``cache_size``."""
        return max(1, min(cache_size, LAWSON_CACHE_BYTES // max(per_step_bytes, 1)))

    @classmethod
    def working_bytes(cls, tableau: ButcherTableau, state_bytes: int, cache_size: int = LAWSON_CACHE_SIZE) -> int:
        """Most memory the stepper takes for a (complex) state of ``state_bytes``: the operators of its cached
        step sizes (a new one is built after the oldest goes), the exponentials a build makes on the way,
        the stages and their sums (measured: ~30 states besides the stages). Summed term by term, the
        larger of its two ways: the interaction picture's operators are ~4× fewer."""
        per_step = cls.arrays_per_step(tableau) * state_bytes
        return cls.cached_step_sizes(per_step, cache_size) * per_step + (tableau.stages + 30) * state_bytes

    def _bind(self, y) -> None:
        self._xp, L = _linear(self.problem, y)
        complex_state = self._xp.isdtype(y.dtype, "complex floating")
        self._L = self._xp.astype(L, self._xp.complex128) if complex_state and not self._xp.isdtype(
            L.dtype, "complex floating") else L
        # the interaction-picture sums: NumPy, a complex128 state with L of its shape (a real view of
        # a stack of stages is then one BLAS matrix-vector product away from a stage's sum)
        self._norm = self._error_norm_numpy if is_numpy_namespace(self._xp) else self._error_norm
        self._decay = None
        if (is_numpy_namespace(self._xp) and y.dtype == self._xp.complex128
                and tuple(self._L.shape) == tuple(y.shape)):
            self._decay = float(self._xp.max(-self._xp.real(self._L))) if self._L.size else 0.0
        per_step = self._arrays_per_step * math.prod(self._L.shape) * (
            16 if self._xp.isdtype(self._L.dtype, "complex floating") else 8)
        self._cache = DtCache(self._build, size=self.cached_step_sizes(per_step, self._cache_size))
        if self._economy is not None:
            self._economy._bind(y)

    def _interacting(self, h: float) -> bool:
        """Whether the step ``h`` is summed in the interaction picture (its factors stay finite)."""
        return self._decay is not None and self._decay * h <= INTERACTION_REACH

    def _build(self, h: float):
        """The operators of the step ``h``: :meth:`_build_interaction`'s where they stay finite, else
        :meth:`_build_terms`'."""
        return self._build_interaction(h) if self._interacting(h) else self._build_terms(h)

    def _build_interaction(self, h: float):
        """The step ``h`` in the interaction picture ``v = E(-θ) u`` (``θ`` the fraction of the step):
        with ``K_j = E(-c_j) k_j`` every stage is ``U_i = E(c_i) (y + h Σ_j a_ij K_j)`` and the new state
        and the error ``E(1) (y + h Σ_j b_j K_j)`` and ``E(1) h Σ_j e_j K_j``: sums with scalar weights,
        one matrix-vector product each over the stack ``[y, K_0, K_1, ...]``. Returns the weight rows
        (``a`` with a leading 1 for ``y``; ``b``; ``e``, ``e3`` with a leading 0) and the factors ``E(c)``
        and ``E(-c)`` by node. Rounding matches the term-by-term sums (each term is formed, then scaled
        back, with a relative error of round-off)."""
        import numpy as np

        xp, L, tab = self._xp, self._L, self.tableau
        n, c = tab.stages, tab.c
        nodes = sorted({float(x) for x in c if x != 0.0} | {1.0})
        forward = {x: xp.exp((x * h) * L) for x in nodes}
        backward = {x: xp.exp((-x * h) * L) for x in nodes}
        rows = [np.array([1.0] + [h * w for w in tab.a[i][:i]]) for i in range(n)]

        def last(w):  # weights of the rows [y, K_0, ..., K_n] (K_n: of N(u_new), c = 1)
            if len(w) > n + 1:
                raise ValueError(f"integrator: {tab.name!r} has {len(w)} weights for {n} stages")
            return np.array([0.0] + [h * x for x in w] + [0.0] * (n + 1 - len(w)))

        b = last(tab.b)
        b[0] = 1.0
        e3 = None if tab.e3 is None else last(tab.e3)
        return "interaction", rows, b, last(tab.e), e3, forward, backward

    def _build_terms(self, h: float):
        """The operators of the step ``h``: ``E(c_i)``; ``(j, h a_ij E(c_i − c_j))`` for the nonzero ``a_ij``;
        ``E(1)``; and ``(j, h w_j E(1 − c_j))`` for the nonzero weights ``w`` = ``b``, ``e`` (and ``e3``), where
        ``j = stages`` is ``N(u_new)`` (c = 1). (Lists of arrays: summing them one by one is ~1.6× faster
        here than a product of stacked arrays summed over the stages.)"""
        xp, L, tab = self._xp, self._L, self.tableau
        exps: dict[float, object] = {}

        def E(x: float):
            if x not in exps:
                z = (x * h) * L
                if x < 0:  # (a growth of the dissipative modes: capped short of overflow)
                    re = xp.real(z) if xp.isdtype(z.dtype, "complex floating") else z
                    z = xp.where(re > GROWTH_CAP, z - (re - GROWTH_CAP), z)
                exps[x] = xp.exp(z)
            return exps[x]

        n, c = tab.stages, tab.c
        ends = [1.0 - cj for cj in c] + [0.0]

        def terms(coefficients, shifts):
            return [(j, (h * w) * E(x)) for j, (w, x) in enumerate(zip(coefficients, shifts)) if w != 0.0]

        start = [None if ci == 0.0 else E(ci) for ci in c]
        stages = [terms(tab.a[i][:i], [c[i] - c[j] for j in range(i)]) for i in range(n)]
        e3 = None if tab.e3 is None else terms(tab.e3, ends)
        return start, stages, E(1.0), terms(tab.b, ends), terms(tab.e, ends), e3

    def init(self, t0: float, y0) -> StepState:
        y0 = as_state_array(y0)
        self._bind(y0)
        self._target = None
        f0 = self.problem.nonlinear(float(t0), y0)
        dt = self.dt
        if dt is None:  # (the first guess of Hairer's starting step, with N for the derivative)
            rms = scaled_rms(y0, self.rtol, self.atol)
            dt = first_step_guess(rms(y0), rms(f0))
        return StepState(t=float(t0), y=y0, dt=dt, nfe=1, f=f0)

    def step(self, state: StepState, t_stop: float) -> StepState:
        """Advance by one accepted step towards ``t_stop`` (whole steps land on it exactly)."""
        t_stop = _begin_step(self, state, t_stop)
        if state.t == t_stop:
            return state
        if state.steps >= self.max_steps:
            raise TooManySteps(f"{self.tableau.name}: more than max_steps={self.max_steps} steps at t={state.t!r}")
        t, y, nfe, rejected = state.t, state.y, state.nfe, state.rejected
        f0 = state.f
        if f0 is None:
            f0, nfe = self.problem.nonlinear(t, y), nfe + 1
        if self._target != t_stop or state.dt >= 2.0 * self._h or self._left < 1:
            self._fill(t_stop - t, state.dt, t_stop)
        elif state.dt < 0.5 * self._h:  # the controller asks for much less: split the remaining steps
            self._split(self._h / state.dt)  # (a little less: the step passed at this size, try it again)
        q, rejected_here = self.tableau.error_order, False
        while True:
            h = self._h
            if h < 10.0 * _EPS * max(abs(t), 1.0):
                raise StepSizeTooSmall(
                    f"{self.tableau.name} (Lawson): step size underflowed to dt={h:.3g} at t={t!r}; the solution "
                    "probably blows up, or the tolerances are near round-off: loosen rtol/atol")
            if (self._economy is not None and not rejected_here and self._economy_off != t_stop
                    and ECONOMY_RATIO * h <= state.dt and self._interacting(h)):  # (the estimate holds there)
                y_new, f_new, err = self._economy._trial(t, y, h, f0)
                nfe += self._economy.tableau.stages
                if math.isfinite(err) and err <= 1.0:  # (the main pair's proposal stands)
                    self._left -= 1
                    self.economy_steps += 1
                    return StepState(t=t_stop if self._left == 0 else t + h, y=y_new, dt=state.dt, nfe=nfe,
                                     steps=state.steps + 1, rejected=rejected, f=f_new)
                self._economy_off = t_stop  # the main pair takes this step, and the rest to t_stop
            y_new, f_new, err = self._trial(t, y, h, f0)
            nfe += self.tableau.stages
            if math.isfinite(err) and err <= 1.0:
                self._left -= 1
                t_new = t_stop if self._left == 0 else t + h
                proposal = h * self.controller.factor(err, q, rejected=rejected_here)
                return StepState(t=t_new, y=y_new, dt=proposal, nfe=nfe, steps=state.steps + 1,
                                 rejected=rejected, f=f_new)
            rejected += 1
            rejected_here = True
            shrink = self.controller.factor(err, q, rejected=True) if math.isfinite(err) else 0.2
            self._split(max(2.0, 1.0 / shrink))

    def _split(self, ratio: float) -> None:
        """Each remaining step into ``ceil(ratio)`` equal ones (they still land on the target)."""
        r = math.ceil(ratio * (1.0 - 1e-12))
        self._h /= r
        self._left *= r

    def _fill(self, distance: float, proposal: float, t_stop: float) -> None:
        """Steps of ``distance / m`` with ``m`` the fewest whose size is at most ``proposal``."""
        m = max(1, math.ceil(distance / proposal * (1.0 - 1e-12)))
        self._target, self._left = t_stop, m
        self._h = float(f"{distance / m:.13g}")  # (the same size for every interval of the same length)

    def _trial(self, t: float, y, h: float, f0):
        """``(u_new, N(u_new), error norm)`` of one trial step (the norm: a Python float, ``<= 1`` accepts)."""
        operators = self._cache(h)
        trial = self._trial_interaction if operators[0] == "interaction" else self._trial_terms
        y_new, f_new, err5, err3 = trial(t, y, h, f0, operators)
        return y_new, f_new, self._norm(y, y_new, err5, err3)

    def _trial_interaction(self, t: float, y, h: float, f0, operators):
        """The stages of :meth:`_build_interaction`: a stage's sum is one product of its weights with a
        real view of the stack ``[y, K_0, ...]`` (~5× less memory traffic than term by term)."""
        _, rows, b, e5, e3, forward, backward = operators
        xp, tab, N = self._xp, self.tableau, self.problem.nonlinear
        n, shape = tab.stages, y.shape
        stack = self._stack
        if stack is None or stack.shape[1:] != shape:
            stack = self._stack = xp.empty((n + 2, *shape), dtype=xp.complex128)
        flat = stack.reshape(n + 2, -1).view(xp.float64)
        stack[0] = y
        stack[1] = f0

        def summed(weights, m):
            return (weights[:m] @ flat[:m]).view(xp.complex128).reshape(shape)

        for i in range(1, n):
            ci = float(tab.c[i])
            u = summed(rows[i], i + 1)
            if ci != 0.0:
                u *= forward[ci]
            k = N(t + ci * h, u)
            if ci != 0.0:
                xp.multiply(backward[ci], k, out=stack[i + 1])
            else:
                stack[i + 1] = k
        y_new = summed(b, n + 1)
        y_new *= forward[1.0]
        f_new = N(t + h, y_new)
        xp.multiply(backward[1.0], f_new, out=stack[n + 1])
        err5 = summed(e5, n + 2)
        err5 *= forward[1.0]
        err3 = None
        if e3 is not None:
            err3 = summed(e3, n + 2)
            err3 *= forward[1.0]
        return y_new, f_new, err5, err3

    def _trial_terms(self, t: float, y, h: float, f0, operators):
        """The stages of :meth:`_build_terms`, summed term by term with the factors ``E(c_i - c_j)``."""
        xp, tab, N = self._xp, self.tableau, self.problem.nonlinear
        start, stages, e1, b, e5, e3 = operators

        def combine(u, terms, ks):  # u + Σ w k_j: a new array, then summed into in place
            fresh = False
            for j, w in terms:
                if fresh:
                    u += w * ks[j]
                else:
                    u, fresh = (w * ks[j] if u is None else u + w * ks[j]), True
            return u

        ks = [f0]
        for i in range(1, tab.stages):
            ks.append(N(t + tab.c[i] * h, combine(y if start[i] is None else start[i] * y, stages[i], ks)))
        y_new = combine(e1 * y, b, ks)
        f_new = N(t + h, y_new)
        ks.append(f_new)
        return y_new, f_new, combine(None, e5, ks), None if e3 is None else combine(None, e3, ks)

    def _error_norm(self, y, y_new, err5, err3) -> float:
        """The scaled norm of the error estimates (Hairer's 5th/3rd-order one with ``err3``)."""
        xp = self._xp
        scale = self.atol + self.rtol * xp.maximum(xp.abs(y), xp.abs(y_new))
        size = math.prod(y.shape) or 1
        err5 = xp.abs(err5) / scale
        e5sq = xp.sum(err5 * err5)
        if err3 is None:
            norm = xp.sqrt(e5sq / size)
        else:  # Hairer's DOP853 estimator: |err5|² / sqrt((|err5|² + 0.01 |err3|²) n)
            err3 = xp.abs(err3) / scale
            denom = e5sq + 0.01 * xp.sum(err3 * err3)
            norm = e5sq / xp.sqrt(xp.where(denom > 0, denom, xp.ones_like(denom)) * size)
        # one host sync; 0 * max|u_new| turns an overflowed state into a non-finite norm
        return float(norm + 0.0 * xp.max(xp.abs(y_new)))

    def _error_norm_numpy(self, y, y_new, err5, err3) -> float:
        """:meth:`_error_norm` on NumPy in fewer passes: in place, the squares summed by dot products
        (~0.1 s of the 3 s of RD's pattern_decay at equal accuracy)."""
        import numpy as np

        a_new = np.abs(y_new)
        scale = np.maximum(np.abs(y), a_new)
        scale *= self.rtol
        scale += self.atol
        size = scale.size or 1
        a5 = np.abs(err5).ravel()
        a5 /= scale.ravel()
        e5sq = float(a5 @ a5)
        if err3 is None:
            norm = math.sqrt(e5sq / size)
        else:  # Hairer's DOP853 estimator, as in _error_norm
            a3 = np.abs(err3).ravel()
            a3 /= scale.ravel()
            denom = e5sq + 0.01 * float(a3 @ a3)
            norm = e5sq / math.sqrt((denom if denom > 0 else 1.0) * size)
        return norm + 0.0 * float(a_new.max())  # (non-finite where the state overflowed)


class ETDRK4(FixedStepSemilinear):
    """Fourth-order exponential time differencing Runge–Kutta method (ETDRK4).

    Cox & Matthews, "Exponential time differencing for stiff systems", for
    ``u' = L u + N(t, u)``::

        a = E2 u + Q N(t, u)
        b = E2 u + Q N(t + dt/2, a)
        c = E2 a + Q (2 N(t + dt/2, b) - N(t, u))
        u_new = E u + f1 N(t, u) + 2 f2 (N(t + dt/2, a) + N(t + dt/2, b)) + f3 N(t + dt, c)

    with ``E = exp(dt L)``, ``E2 = exp(dt L / 2)``.  The phi-function coefficients ``Q, f1,
    f2, f3`` are evaluated where ``|dt L| < 0.5`` by the contour-integral method of Kassam &
    Trefethen, "Fourth-order time-stepping for stiff PDEs": the mean over ``M = 32`` points on a
    unit circle around each ``dt L``, which avoids the cancellation of the direct formulas there;
    elsewhere by the direct formulas.  Complex ``L`` works (the full circle is used; the real part
    is taken only when ``L`` is real).
    Order 4; exact for ``N = 0``.  Fixed step; coefficients cached per ``dt``.

    Parameters
    ----------
    problem : SemilinearProblem
        Supplies ``linear`` (array) and ``nonlinear(t, u)``.
    dt : float
        Fixed step.
    """

    order = 4
    nfe_per_step = 4

    def _build(self, dt: float):
        xp, L = self._xp, self._L
        real = not xp.isdtype(L.dtype, "complex floating")
        # A real symbol repeats its values (|k|² on a grid, the same symbol for several fields): the
        # contour means are taken once per distinct value and gathered back (identical numbers).
        values, where = (xp.unique_inverse(L) if real and hasattr(xp, "unique_inverse") else (L, None))
        coeffs = self._phi_coefficients(dt, values, real)
        if where is not None:
            coeffs = [xp.reshape(xp.take(c, xp.reshape(where, (-1,))), L.shape) for c in coeffs]
        Q, f1, f2, f3 = (self._like_state(c) for c in coeffs)
        E = self._like_state(xp.exp(dt * L))
        E2 = self._like_state(xp.exp((dt / 2) * L))
        return E, E2, Q, f1, 2.0 * f2, f3

    def _phi_coefficients(self, dt: float, L, real: bool):
        """``Q, f1, f2, f3`` of ``dt L``: by the contour means (Kassam & Trefethen) where ``|dt L|`` is
        below ``CONTOUR_BELOW``, where the direct formulas cancel; by the direct formulas elsewhere.

        (The contour alone fails where ``dt L`` comes near one of its nodes' negatives on the unit circle,
        ``z = 0`` in a denominator: never for real or imaginary ``L``, whose values keep ≥ sin(π/M) away,
        but for a general complex symbol it gave NaN on a node and 1e-4 relative errors 1e-4 from it.)

        Taken ``PHI_CHUNK`` values at a time: the contour's temporaries hold ``CONTOUR_POINTS`` complex
        numbers per value, and with many distinct values (fields of different diffusivities) they made
        the run's peak memory 1.5× the integrator's estimate.
        """
        xp = self._xp
        flat = xp.reshape(L, (-1,))
        n = flat.shape[0]
        parts = [self._phi_chunk(dt, flat[i:min(i + PHI_CHUNK, n)], real) for i in range(0, max(n, 1), PHI_CHUNK)]
        return tuple(xp.reshape(parts[0][j] if len(parts) == 1 else xp.concat([p[j] for p in parts]), L.shape)
                     for j in range(4))

    def _phi_chunk(self, dt: float, L, real: bool):
        """:meth:`_phi_coefficients` of a 1-D array of values."""
        xp = self._xp
        M = CONTOUR_POINTS
        hL = dt * (xp.astype(L, xp.complex128) if real else L)
        small = xp.abs(hL) < CONTOUR_BELOW
        roots = [complex(math.cos(2 * math.pi * (j + 0.5) / M), math.sin(2 * math.pi * (j + 0.5) / M))
                 for j in range(M)]
        r = xp.asarray(roots, dtype=hL.dtype)
        # (each branch is evaluated where the other is used too, at a harmless point: no 0/0)
        z = xp.expand_dims(xp.where(small, hL, 0.0), axis=-1) + r
        w = xp.where(small, 1.0, hL)

        def phis(z, e, mean):
            z2, z3 = z * z, z * z * z
            return (mean((xp.exp(z / 2) - 1.0) / z),
                    mean((-4.0 - z + e * (4.0 - 3.0 * z + z2)) / z3),
                    mean((2.0 + z + e * (z - 2.0)) / z3),
                    mean((-4.0 - 3.0 * z - z2 + e * (4.0 - z)) / z3))

        contour = phis(z, xp.exp(z), lambda v: xp.sum(v, axis=-1) / M)
        direct = phis(w, xp.exp(w), lambda v: v)
        out = [dt * xp.where(small, c, d) for c, d in zip(contour, direct)]
        return tuple(xp.real(c) for c in out) if real else tuple(out)

    def _advance(self, t: float, u, h: float, ops):
        E, E2, Q, f1, f2x2, f3 = ops
        N = self.problem.nonlinear
        # in-place updates only on arrays made here (the N(...) results may belong to the problem)
        Nu = N(t, u)
        E2u = E2 * u
        a = Q * Nu
        a += E2u
        Na = N(t + h / 2, a)
        b = Q * Na
        b += E2u
        Nb = N(t + h / 2, b)
        c = 2.0 * Nb
        c -= Nu
        c *= Q
        a *= E2
        c += a
        Nc = N(t + h, c)
        out = E * u
        out += f1 * Nu
        s = Na + Nb
        s *= f2x2
        out += s
        out += f3 * Nc
        return out
