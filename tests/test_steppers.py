"""Time steppers: convergence orders across the integrator registry, adaptive control against
SciPy, array-API portability, landing on t_stop, and error handling."""
import cmath
import math

import array_api_strict
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from explore.numerics.exponential import IntegratingFactorRK
from explore.numerics.integrators import (
    INTEGRATORS,
    SemilinearProblem,
    make_integrator,
    register_integrator,
    rhs_of,
)
from explore.numerics.rk import ExplicitRK, StepController, StepSizeTooSmall, TooManySteps
from explore.numerics.tableaux import DOPRI5, RK4

K = np.arange(8.0)
U0 = (0.5 + 0.3j) * np.exp(-0.3 * K) + 0.2


class Forced:
    """Linear, non-autonomous: u' = L u + exp(i t); exact e^{Lt}u0 + (e^{it} - e^{Lt})/(i - L)."""

    def __init__(self, xp=np):
        self.xp = xp
        self.linear = xp.asarray(-0.05 * K**2 + 0.5j * K**2 - 0.2)

    def nonlinear(self, t, u):
        return cmath.exp(1j * t) + 0 * u

    def exact(self, t, u0):
        L = np.asarray(self.linear)
        return np.exp(L * t) * u0 + (np.exp(1j * t) - np.exp(L * t)) / (1j - L)


class CGL:
    """Ginzburg–Landau-like modes: u' = L u - |u|^2 u (flows do not commute); SciPy reference."""

    def __init__(self, xp=np):
        self.xp = xp
        self.linear = xp.asarray(-0.05 * K**2 + 0.5j * K**2 + 0.3)

    def nonlinear(self, t, u):
        return -(self.xp.abs(u) ** 2) * u

    def nonlinear_flow(self, u, dt):
        return u / self.xp.sqrt(1.0 + 2.0 * dt * self.xp.abs(u) ** 2)

    def exact(self, t, u0):
        return _reference(self, t, u0)


_REF = {}


def _reference(problem, t, u0):
    key = (type(problem).__name__, t)
    if key not in _REF:
        sol = solve_ivp(rhs_of(problem), (0.0, t), u0, method="DOP853", rtol=1e-13, atol=1e-14)
        _REF[key] = sol.y[:, -1]
    return _REF[key]


def _run(stepper, u0, T):
    state = stepper.init(0.0, u0)
    while state.t < T:
        state = stepper.step(state, T)
    return state


PROBLEMS = [Forced, CGL]
FIXED = [n for n, i in INTEGRATORS.items() if not i.adaptive]
ADAPTIVE = [n for n, i in INTEGRATORS.items() if i.adaptive]


def test_registry_contents():
    assert set(INTEGRATORS) >= {"dop853", "dopri5", "rk4", "ifrk4", "etdrk4", "split_step"}
    for info in INTEGRATORS.values():
        assert info.name and info.order >= 1 and info.description and callable(info.factory)
    assert isinstance(CGL(), SemilinearProblem)


@pytest.mark.parametrize("problem_cls", PROBLEMS)
@pytest.mark.parametrize("name", FIXED)
def test_fixed_step_order(name, problem_cls):
    info, problem = INTEGRATORS[name], problem_cls()
    if not info.supports(problem):
        pytest.skip(f"{name} needs {info.requires}")
    T = 2.0
    ref = problem.exact(T, U0)
    dts = T / np.array([2, 3, 4, 6, 8, 12, 16, 24, 40, 80, 160, 320], dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):  # explicit rk4 is unstable at the coarsest dts
        errs = np.array([float(np.max(np.abs(_run(make_integrator(name, problem, dt=float(dt)), U0, T).y - ref)))
                         for dt in dts])
    # the asymptotic regime: below O(1) errors, above round-off (high orders reach it early)
    fit = (errs < 1e-2) & (errs > 1e-12)
    assert fit.sum() >= 3, (name, errs)
    slope = np.polyfit(np.log(dts[fit]), np.log(errs[fit]), 1)[0]
    assert abs(slope - info.order) <= 0.3, (name, slope, errs)


@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_error_tracks_tolerance_and_matches_scipy(name):
    problem, T = CGL(), 2.0
    ref = problem.exact(T, U0)
    method = {"dopri5": "RK45", "dop853": "DOP853"}.get(name)
    errs = []
    for tol in (1e-4, 1e-6, 1e-8):
        state = _run(make_integrator(name, problem, rtol=tol, atol=tol), U0, T)
        assert state.t == T
        err = float(np.max(np.abs(state.y - ref)))
        assert err <= 100 * tol, (tol, err)
        errs.append(err)
        if method is not None:
            sc = solve_ivp(rhs_of(problem), (0.0, T), U0, method=method, rtol=tol, atol=tol)
            assert 1 / 1.5 <= state.steps / (sc.t.size - 1) <= 1.5
            assert 1 / 1.5 <= state.nfe / sc.nfev <= 1.5
    assert errs[0] > errs[1] > errs[2]


@pytest.mark.parametrize("name", [n for n in ADAPTIVE if n in ("dopri5", "dop853")])
def test_adaptive_on_real_problem_matches_scipy(name):
    # Lotka–Volterra, a classic nonlinear test with strong step-size variation
    def lv(t, y):
        return np.array([1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]])

    tab = {"dopri5": DOPRI5}.get(name)
    if tab is None:
        from explore.numerics.tableaux import TABLEAUX

        tab = TABLEAUX[name]
    stepper = ExplicitRK(tab, lv, rtol=1e-8, atol=1e-10)
    state = _run(stepper, np.array([10.0, 5.0]), 15.0)
    sc = solve_ivp(lv, (0, 15), [10.0, 5.0], method="DOP853", rtol=1e-13, atol=1e-13)
    assert np.allclose(state.y, sc.y[:, -1], rtol=1e-5, atol=1e-8)
    mine = solve_ivp(lv, (0, 15), [10.0, 5.0], method={"dopri5": "RK45"}.get(name, "DOP853"),
                     rtol=1e-8, atol=1e-10)
    assert 1 / 1.5 <= state.steps / (mine.t.size - 1) <= 1.5


class StiffCGL(CGL):
    """The CGL modes with strong damping: |L| up to ~2450, where an explicit method's step is pinned."""

    def __init__(self, xp=np):
        self.xp = xp
        self.linear = xp.asarray(-50.0 * K**2 + 0.5j * K**2 + 0.3)


def test_lawson_dop853_steps_by_accuracy_not_by_stiffness():
    """Lawson's integrating-factor DOP853 ("Generalized Runge-Kutta processes for stable systems with large
    Lipschitz constants") takes the linear part exactly, so its adaptive step follows the nonlinear
    dynamics: on modes damped at up to 2450/unit time, explicit DOP853 needs ~800 steps to t = 2 for
    stability; the Lawson one a few dozen, with its error tracking the tolerance. Its steps fill each
    output interval evenly, so a run with many outputs uses few step sizes (whose exponentials are kept)."""
    problem, T = StiffCGL(), 2.0
    ref = solve_ivp(rhs_of(problem), (0.0, T), U0, method="DOP853", rtol=1e-13, atol=1e-14).y[:, -1]
    explicit = _run(make_integrator("dop853", problem, rtol=1e-8, atol=1e-10), U0, T)
    errors = []
    for tol in (1e-6, 1e-9):
        lawson = _run(make_integrator("if_dop853", problem, rtol=tol, atol=tol * 1e-2), U0, T)
        errors.append(float(np.max(np.abs(lawson.y - ref))))
        assert errors[-1] <= 100 * tol, (tol, errors)
    assert errors[1] < 1e-2 * errors[0]
    assert lawson.steps * 10 < explicit.steps, (lawson.steps, explicit.steps)
    stepper = make_integrator("if_dop853", problem, rtol=1e-7, atol=1e-9)
    state, sizes = stepper.init(0.0, U0), set()
    for i in range(1, 41):
        while state.t < 0.05 * i:
            new = stepper.step(state, 0.05 * i)
            sizes.add(round(new.t - state.t, 12))
            state = new
        assert state.t == 0.05 * i
    assert len(sizes) <= 6, sorted(sizes)
    assert 1 < len(stepper._cache) <= 8


def test_lawson_dop853_keeps_the_operators_of_as_many_steps_as_memory_allows(monkeypatch):
    """~86 arrays of the state's size per step size (1.4 GB at the reaction–diffusion lab's 1024²): the
    cache holds what ``LAWSON_CACHE_BYTES`` allows, at least the step in use, and the results are the same."""
    from explore.numerics import exponential

    problem, T = StiffCGL(), 1.0
    full = _run(make_integrator("if_dop853", problem, rtol=1e-7, atol=1e-9), U0, T)
    monkeypatch.setattr(exponential, "LAWSON_CACHE_BYTES", 86 * K.size * 16)  # one step size
    stepper = make_integrator("if_dop853", problem, rtol=1e-7, atol=1e-9)
    small = _run(stepper, U0, T)
    assert len(stepper._cache) == 1
    np.testing.assert_array_equal(small.y, full.y)


def test_lawson_dop853_sums_in_the_interaction_picture_as_term_by_term(monkeypatch):
    """The stages summed as one matrix-vector product over ``[y, E(-c_j) k_j]`` (NumPy, while
    ``max(-Re L) dt`` stays below ``INTERACTION_REACH``) give the term-by-term sums' steps and states to
    round-off; on the stiff modes, steps past the reach are summed term by term within the same run."""
    from explore.numerics import exponential

    def paths(stepper):
        return {ops[0] == "interaction" for ops in stepper._cache._data.values()}

    for problem, expected in ((CGL(), {True}), (StiffCGL(), {True, False})):
        monkeypatch.setattr(exponential, "INTERACTION_REACH", 500.0)
        stepper = make_integrator("if_dop853", problem, rtol=1e-9, atol=1e-11)
        fast = _run(stepper, U0, 1.0)
        assert paths(stepper) == expected
        monkeypatch.setattr(exponential, "INTERACTION_REACH", -1.0)  # term by term throughout
        slow_stepper = make_integrator("if_dop853", problem, rtol=1e-9, atol=1e-11)
        slow = _run(slow_stepper, U0, 1.0)
        assert paths(slow_stepper) == {False}
        assert (fast.steps, fast.rejected, fast.nfe) == (slow.steps, slow.rejected, slow.nfe)
        assert np.max(np.abs(fast.y - slow.y)) <= 1e-13 * np.max(np.abs(slow.y))


class DecoupledStiff(CGL):
    """CGL's modes and one purely linear mode at ``L = -decay`` (its nonlinear part exactly zero)."""

    def __init__(self, decay, xp=np):
        super().__init__(xp)
        L = np.asarray(self.linear).copy()
        L[0] = -decay
        self.linear = xp.asarray(L)

    def nonlinear(self, t, u):
        out = -(self.xp.abs(u) ** 2) * u
        return out * self.xp.asarray((K > 0).astype(float))


@pytest.mark.parametrize("xp", [np, array_api_strict])
def test_lawson_dop853_steps_past_a_decoupled_stiff_mode(xp):
    """DOP853 has stages with c_i < c_j, whose term-by-term factors exp((c_i - c_j) dt L) grow a mode
    damped at rate 1e6 past overflow once dt > ~0.01: infinity times that mode's zero nonlinear part made
    NaN stages, rejected until the step shrank (718 steps where rate 10 takes 34; an audit finding). The
    factors are capped short of overflow: the stiff mode costs no steps, and it decays as it should."""
    u0 = xp.asarray(U0)
    runs = {}
    for decay in (10.0, 1e6):
        stepper = make_integrator("if_dop853", DecoupledStiff(decay, xp), rtol=1e-9, atol=1e-11)
        runs[decay] = _run(stepper, u0, 2.0)
        assert np.all(np.isfinite(np.asarray(runs[decay].y)))
    assert runs[1e6].steps <= runs[10.0].steps + 5, (runs[1e6].steps, runs[10.0].steps)
    assert np.abs(np.asarray(runs[1e6].y)[0]) == 0.0  # (exp(-2e6): underflows)
    np.testing.assert_allclose(np.asarray(runs[1e6].y)[1:], np.asarray(runs[10.0].y)[1:], rtol=1e-8)


def test_lawson_dop853_spends_fewer_evaluations_on_steps_the_outputs_cut_short():
    """Outputs every 0.05 cut DOP853's steps short on the slow CGL modes: the economy pair (Lawson DOPRI5,
    6 evaluations for 12) takes them under the same tolerance, and the error stays at the tolerance's
    level. An economy step that fails its estimate is taken by DOP853, and so is the rest of the way to
    that output (one failed try per output interval, not one per step)."""
    from explore.numerics.exponential import AdaptiveLawsonRK
    from explore.numerics.tableaux import DOP853, DOPRI5

    problem, T = CGL(), 2.0
    ref = solve_ivp(rhs_of(problem), (0.0, T), U0, method="DOP853", rtol=1e-13, atol=1e-14).y[:, -1]

    def run(economy, failing=False):
        stepper = AdaptiveLawsonRK(DOP853, problem, rtol=1e-8, atol=1e-10, economy=DOPRI5 if economy else None)
        state = stepper.init(0.0, U0)
        if failing:
            stepper._economy._trial = lambda t, y, h, f0: (y, f0, 2.0)  # (an estimate that always fails)
        for i in range(1, 41):
            while state.t < 0.05 * i:
                state = stepper.step(state, 0.05 * i)
        return state, stepper, float(np.max(np.abs(state.y - ref)))

    plain, _, plain_error = run(False)
    thrifty, stepper, error = run(True)
    assert thrifty.steps == plain.steps and stepper.economy_steps > thrifty.steps // 2
    assert thrifty.nfe < 0.75 * plain.nfe, (thrifty.nfe, plain.nfe)
    assert error <= max(10 * plain_error, 1e-8), (error, plain_error)
    failed, stepper, error = run(True, failing=True)
    assert stepper.economy_steps == 0 and failed.steps == plain.steps and error == plain_error
    assert plain.nfe < failed.nfe <= plain.nfe + 6 * 40  # (at most one failed try of 6 evaluations an output)


@pytest.mark.parametrize("name", list(INTEGRATORS))
def test_array_api_strict_matches_numpy(name):
    xs = array_api_strict
    out = {}
    for xp in (np, xs):
        problem = CGL(xp)
        stepper = make_integrator(name, problem, dt=0.05, rtol=1e-7 if INTEGRATORS[name].adaptive else None)
        state = stepper.init(0.0, xp.asarray(U0, dtype=xp.complex128))
        for _ in range(4):
            state = stepper.step(state, 1.0)
        assert state.y.dtype == xp.complex128
        assert type(state.y).__module__.split(".")[0] == xp.__name__.split(".")[0]
        out[xp] = (state.t, np.asarray(state.y) if xp is np else np.asarray(xs.asarray(state.y)), state.nfe)
    (t1, y1, n1), (t2, y2, n2) = out[np], out[xs]
    assert t1 == t2 and n1 == n2
    np.testing.assert_allclose(y2, y1, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", list(INTEGRATORS))
def test_steps_land_exactly_on_t_stop(name):
    problem = CGL()
    kw = dict(rtol=1e-6) if INTEGRATORS[name].adaptive else dict(dt=0.07)
    stepper = make_integrator(name, problem, **kw)
    state = stepper.init(0.0, U0)
    for t_stop in (0.25, 1.0, 1.7, 2.0):
        while state.t < t_stop:
            dt_before = state.dt
            new = stepper.step(state, t_stop)
            assert state.t < new.t <= t_stop
            assert new.steps == state.steps + 1
            if not INTEGRATORS[name].adaptive:
                assert new.dt == dt_before == 0.07
            state = new
        assert state.t == t_stop
    assert stepper.step(state, 2.0) is state  # already there: no step
    with pytest.raises(ValueError, match="t_stop"):
        stepper.step(state, 1.0)


def test_clipped_step_does_not_shrink_proposal():
    stepper = ExplicitRK(DOPRI5, lambda t, y: -y, rtol=1e-6)
    state = stepper.step(stepper.init(0.0, np.ones(3)), 10.0)
    proposed = state.dt
    clipped = stepper.step(state, state.t + 1e-3 * proposed)
    assert clipped.dt >= proposed


def test_fixed_step_grid_has_no_sliver_steps():
    stepper = ExplicitRK(RK4, lambda t, y: -y, dt=0.1)
    state = _run(stepper, np.ones(2), 1.0)
    assert state.steps == 10 and state.t == 1.0 and state.nfe == 40


def test_blow_up_raises_step_size_too_small():
    stepper = ExplicitRK(DOPRI5, lambda t, y: y * y, rtol=1e-6)
    with pytest.raises(StepSizeTooSmall, match="step size"):
        _run(stepper, np.array([1.0]), 2.0)


def test_non_finite_trial_is_rejected_not_accepted():
    # a huge first step overflows the trial; the stepper must shrink and carry on
    stepper = ExplicitRK(DOPRI5, lambda t, y: -(y**3), dt=1e3, rtol=1e-6)
    with np.errstate(all="ignore"):
        state = stepper.step(stepper.init(0.0, np.array([10.0])), 1e3)
    assert state.rejected >= 1 and np.all(np.isfinite(state.y)) and state.t < 1e3


def test_max_steps():
    stepper = ExplicitRK(RK4, lambda t, y: -y, dt=0.01, max_steps=5)
    with pytest.raises(TooManySteps):
        _run(stepper, np.ones(1), 1.0)


def test_controller():
    c = StepController()
    assert c.factor(0.0, 4) == 10.0
    assert c.factor(1e30, 4) == 0.2
    assert c.factor(1e-10, 4, rejected=True) == 1.0
    assert c.factor(1.0, 4) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        StepController(min_factor=2.0)


def test_integrating_factor_caches_per_dt():
    stepper = IntegratingFactorRK(RK4, Forced(), dt=0.3)
    state = _run(stepper, U0, 1.0)
    assert state.t == 1.0 and len(stepper._cache) == 2  # the regular step and the clipped last one
    _run(stepper, U0, 1.0)
    assert len(stepper._cache) == 2


@pytest.mark.parametrize("name", ["ifrk4", "etdrk4", "split_step"])
def test_exponential_methods_exact_for_linear_problems(name):
    class Linear:
        linear = np.array([-50.0, -1.0 + 20j, 0.0, 3j])

        def nonlinear(self, t, u):
            return 0 * u

        def nonlinear_flow(self, u, dt):
            return u

    state = _run(make_integrator(name, Linear(), dt=0.25), np.ones(4, dtype=complex), 2.0)
    np.testing.assert_allclose(state.y, np.exp(Linear.linear * 2.0), rtol=1e-13, atol=1e-14)


def test_make_integrator_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"integrator.*'nope'.*dop853"):
        make_integrator("nope", CGL())
    for name in FIXED:
        with pytest.raises(ValueError, match="dt"):
            make_integrator(name, CGL())
        with pytest.raises(ValueError, match="dt"):
            make_integrator(name, CGL(), dt=-0.1)
    with pytest.raises(ValueError, match="integrator.*nonlinear_flow"):
        make_integrator("split_step", Forced(), dt=0.1)
    with pytest.raises(ValueError, match="rtol"):
        make_integrator("dopri5", CGL(), rtol=-1.0)
    with pytest.raises(ValueError, match="atol"):  # (a state with exact zeros: 0/0 in a relative norm)
        make_integrator("dopri5", CGL(), rtol=1e-6, atol=0.0)
    with pytest.raises(ValueError, match="already registered"):
        register_integrator("rk4", order=4, adaptive=False, description="dup")(lambda p, **k: None)


def _phi_series(a, b, p, z, terms=25, half=False):
    """``(a(z) + e^(z or z/2) b(z)) / z^p`` by its Taylor series (exact rational coefficients)."""
    from fractions import Fraction
    from math import factorial

    c = [Fraction(0)] * (terms + p)
    for m in range(terms + p):
        c[m] += a[m] if m < len(a) else 0
        for j, bj in enumerate(b):
            if m >= j:
                c[m] += Fraction(bj) * (Fraction(1, 2) ** (m - j) if half else 1) / factorial(m - j)
    assert all(x == 0 for x in c[:p])
    return sum(complex(float(c[m + p])) * z**m for m in range(terms))


def test_etdrk4_coefficients_of_many_distinct_values_take_bounded_memory(monkeypatch):
    """The contour means hold CONTOUR_POINTS complex numbers per value; with many distinct values (two
    fields of different diffusivities) their temporaries made a run's peak 1.5× its estimate (an audit
    finding). Taken PHI_CHUNK values at a time, the same coefficients bit for bit."""
    import tracemalloc

    from explore.numerics import exponential

    L = -np.linspace(0.0, 50.0, 200_000).reshape(400, 500)  # (200 000 distinct values)

    class Linear:
        linear = L

        @staticmethod
        def nonlinear(t, u):
            return 0 * u

    def build():
        stepper = exponential.ETDRK4(Linear(), 0.1)
        stepper._bind(np.zeros(L.shape, complex))
        tracemalloc.start()
        try:
            ops = stepper._build(0.1)
            return ops, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    chunked, peak = build()
    monkeypatch.setattr(exponential, "PHI_CHUNK", L.size)  # (all at once, as before)
    whole, peak_whole = build()
    for a, b in zip(chunked, whole):
        np.testing.assert_array_equal(a, b)
    state = L.size * 16
    assert peak < 16 * state < peak_whole, (peak / state, peak_whole / state)  # (10 and 228 measured)


def test_etdrk4_coefficients_are_accurate_for_any_complex_symbol():
    """Q, f1, f2, f3 of dt L against the direct formulas in extended precision (Taylor series near 0),
    for real, imaginary and general complex dt L: near 0 (the contour means), on the unit circle at
    one of the contour's nodes (there the contour alone divided by ~0: 1e-4 relative errors, NaN on
    the node) and far out."""
    from explore.numerics.exponential import CONTOUR_POINTS, ETDRK4

    node = -cmath.exp(2j * cmath.pi * 3.5 / CONTOUR_POINTS)
    hL = np.array([node, node * (1 + 1e-4), 0.3 + 0.2j, 2 - 3j, -50 + 1j, 1e-3j, 0.45, -0.55, -3.0, -1e6,
                   0.03, -0.05, -0.03 + 0.02j,  # (where the direct formulas cancel: the contour must serve)
                   5.0, 3j, 1e4j, 0.0])

    class Linear:
        linear = hL

        @staticmethod
        def nonlinear(t, u):
            return 0 * u

    stepper = ETDRK4(Linear(), 1.0)
    stepper._bind(np.zeros(hL.shape, complex))
    _, _, Q, f1, f2x2, f3 = stepper._build(1.0)
    z = hL.astype(np.clongdouble)
    e = np.exp(z)
    with np.errstate(all="ignore"):
        exact = [((np.exp(z / 2) - 1) / z).astype(complex), ((-4 - z + e * (4 - 3 * z + z * z)) / z**3).astype(complex),
                 ((2 + z + e * (z - 2)) / z**3).astype(complex), ((-4 - 3 * z - z * z + e * (4 - z)) / z**3).astype(complex)]
    near = np.abs(hL) < 0.5  # (there the direct formulas cancel even in long double)
    w = hL[near]
    exact[0][near] = _phi_series([-1], [1], 1, w, half=True)
    exact[1][near] = _phi_series([-4, -1], [4, -3, 1], 3, w)
    exact[2][near] = _phi_series([2, 1], [-2, 1], 3, w)
    exact[3][near] = _phi_series([-4, -3, -1], [4, -1], 3, w)
    for got, want in zip((Q, f1, f2x2 / 2, f3), exact):
        assert np.all(np.abs(got - want) <= 1e-12 * np.abs(want)), np.abs(got - want) / np.abs(want)


def test_fill_step_never_exceeds_the_step_asked_for():
    """Whole steps of one size fill the interval, none longer than ``dt`` (``round`` in place of ``ceil``
    would take 0.1 for dt = 0.09 over 0.2)."""
    from explore.numerics.rk import fill_step

    assert fill_step(0.2, 0.09) == pytest.approx(0.2 / 3, rel=1e-15)
    for interval in (0.2, 1.0, 0.37, 10.0):
        for dt in (0.003, 0.01, 0.09, 0.1, 0.15, 0.2, 0.5):
            h = fill_step(interval, dt)
            n = interval / h
            assert h <= dt * (1 + 1e-12) and abs(n - round(n)) < 1e-9, (interval, dt, h)
            assert round(n) == max(1, math.ceil(interval / dt - 1e-9)), (interval, dt, h)


def test_the_starting_step_is_positive_whatever_the_tolerances():
    """Hairer's starting step divides by norms scaled by atol: at 1e-300 they overflow (h0 was 0 or NaN)."""
    y0 = np.array([1.0, 0.0, 1e-3])
    stepper = ExplicitRK(DOPRI5, lambda t, y: -y, rtol=1e-300, atol=1e-300)
    with np.errstate(over="ignore"):  # (the norms overflow, which is the case in point)
        h = stepper._initial_step(0.0, y0, -y0)
    assert math.isfinite(h) and h > 0
