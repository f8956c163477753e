"""The reaction–diffusion lab: exact diffusion of a Fourier mode, exact uniform λ–ω dynamics,
temporal orders on the 2-D problem, rotation period converging in N, array_api_strict, presets,
regimes, netCDF streaming, checkpoint/resume and clear errors."""
from __future__ import annotations

import math
import shlex
from collections import deque

import array_api_compat
import array_api_strict
import numpy as np
import pytest

from explore.core import SolverDiverged
from explore.labs.reaction_diffusion import REGIMES, ReactionDiffusionLab
from explore.numerics import reaction_diffusion as rd
from explore.numerics.integrators import INTEGRATORS, make_integrator

NP = array_api_compat.array_namespace(np.zeros(1))
FIXED = [n for n, info in INTEGRATORS.items() if not info.adaptive]


def integrate(problem, y0, t_end, name, dt=None, rtol=1e-11, atol=1e-13):
    info = INTEGRATORS[name]
    stepper = make_integrator(name, problem, dt=None if info.adaptive else dt, rtol=rtol, atol=atol)
    state = stepper.init(0.0, y0)
    while state.t < t_end:
        state = stepper.step(state, t_end)
    return state.y


def final_fields(ds) -> np.ndarray:
    return np.stack([ds.u_final.values, ds.v_final.values])


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("name", [n for n, i in INTEGRATORS.items() if "nonlinear_flow" not in i.requires])
def test_single_fourier_mode_decays_at_the_exact_diffusion_rate(name):
    """Gray–Scott with F = k = 0 and one field zero is pure diffusion: û(t) = û(0) exp(−d|k|²t)."""
    L, N, t_end = 2 * math.pi, 16, 0.5
    grid = rd.spectral_grid(L, N, NP)
    problem = rd.GrayScottProblem(grid, 0.3, 0.7, 0.0, 0.0)
    x, y = np.meshgrid(np.asarray(grid.x[1]).ravel(), np.asarray(grid.x[0]).ravel())
    kx, ky = 3, -2
    mode = np.cos(kx * x + ky * y)
    for field, d in ((0, 0.3), (1, 0.7)):
        w0 = np.zeros((2, N, N))
        w0[field] = mode
        y_end = integrate(problem, rd.rfft2(w0), t_end, name, dt=0.05)
        w = rd.irfft2(y_end, N)
        exact = mode * math.exp(-d * (kx**2 + ky**2) * t_end)
        tol = 1e-13 if not INTEGRATORS[name].adaptive and name != "rk4" else 1e-8
        if name == "rk4":  # explicit on the linear part: 4th-order error only
            tol = 1e-4
        assert np.max(np.abs(w[field] - exact)) <= tol, name
        assert np.max(np.abs(w[1 - field])) == 0.0


@pytest.mark.parametrize("name", list(INTEGRATORS))
def test_uniform_lambda_omega_state_follows_the_exact_solution(name):
    """A uniform A e^{iθ} relaxes onto |w| = 1 and turns at −β: closed form in uniform_lambda_omega."""
    N, beta, a0, th0, t_end = 8, 0.7, 0.3, 0.4, 2.0
    grid = rd.spectral_grid(5.0, N, NP)
    problem = rd.LambdaOmegaProblem(grid, 0.1, 0.2, beta)
    w0 = np.stack([np.full((N, N), a0 * math.cos(th0)), np.full((N, N), a0 * math.sin(th0))])
    w = rd.irfft2(integrate(problem, rd.rfft2(w0), t_end, name, dt=0.01), N)
    u, v = rd.uniform_lambda_omega(t_end, a0, th0, beta)
    tol = 1e-12 if name == "split_step" else 1e-8  # splitting is exact when diffusion does nothing
    np.testing.assert_allclose(w[0], u, atol=tol)
    np.testing.assert_allclose(w[1], v, atol=tol)
    assert abs(math.hypot(u, v) ** 2 - 1 / (1 + (1 / a0**2 - 1) * math.exp(-2 * t_end))) < 1e-15


def test_lambda_omega_flow_is_the_reaction_flow():
    """d/dt of the exact pointwise flow at t = 0 is the λ–ω reaction; the flow composes."""
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=50), rng.normal(size=50)
    h = 1e-6
    up, vp = rd.lambda_omega_flow(u, v, 0.8, h)
    um, vm = rd.lambda_omega_flow(u, v, 0.8, -h)
    f, g = rd.lambda_omega_reaction(u, v, 0.8)
    np.testing.assert_allclose((up - um) / (2 * h), f, atol=1e-6)
    np.testing.assert_allclose((vp - vm) / (2 * h), g, atol=1e-6)
    u2, v2 = rd.lambda_omega_flow(*rd.lambda_omega_flow(u, v, 0.8, 0.3), 0.8, 0.2)
    u1, v1 = rd.lambda_omega_flow(u, v, 0.8, 0.5)
    np.testing.assert_allclose(u2, u1, atol=1e-13)
    np.testing.assert_allclose(v2, v1, atol=1e-13)


# ------------------------------------------------------------------ orders
@pytest.mark.parametrize("name", FIXED)
def test_temporal_order_on_the_2d_spiral(name):
    """Fitted slope of log(error) vs log(dt) within ±0.3 of the declared order (registry-wide)."""
    order = INTEGRATORS[name].order
    N, L, t_end = 32, 10.0, 2.0
    grid = rd.spectral_grid(L, N, NP)
    problem = rd.LambdaOmegaProblem(grid, 0.1, 0.1, 1.0)
    y0 = rd.rfft2(rd.spiral_periodic(grid, 1))
    ref = integrate(problem, y0, t_end, "dop853", rtol=1e-12, atol=1e-14)
    dts = [0.2, 0.1, 0.05] if order >= 4 else [0.1, 0.05, 0.025]
    if name == "rk4":  # explicit on diffusion: stable for dt ≲ 2.8 / (d |k|²_max) ≈ 0.14 here
        dts = [0.1, 0.05, 0.025]
    errors = [float(np.max(np.abs(rd.irfft2(integrate(problem, y0, t_end, name, dt=dt) - ref, N))))
              for dt in dts]
    slope = float(np.polyfit(np.log(dts), np.log(errors), 1)[0])
    assert abs(slope - order) <= 0.3, (name, errors, slope)


def _rotation_rate(N: int, L: float = 10.0, t_end: float = 40.0) -> float:
    """Angular velocity of a settled spiral: Im(w̄ ∂t w)/|w|², uniform away from the cores."""
    lab = ReactionDiffusionLab(preset="stable_spiral", initial="spiral_periodic", N=N, L=L, t_end=t_end,
                               frame_dt=t_end / 4)
    ds = lab.run()
    grid = rd.spectral_grid(L, N, NP)
    w = final_fields(ds)
    dw = rd.irfft2(lab.make_problem(grid).rhs(rd.rfft2(w)), N)
    z, dz = w[0] + 1j * w[1], dw[0] + 1j * dw[1]
    far = np.abs(z) > 0.9
    return float(np.median(np.imag(np.conj(z) * dz)[far] / np.abs(z[far]) ** 2))


def test_initial_layer_cuts_the_time_error():
    """rd-spiral's spiral is not periodic: its jump at the box edge relaxes in a fast initial layer, whose
    error ETDRK4 at dt = 0.1 carries for the whole run; stepping the layer at dt/5 cuts it."""
    base = dict(preset="stable_spiral", N=48, L=20.0, t_end=2.0, frame_dt=1.0)
    ref = final_fields(ReactionDiffusionLab(**base, integrator="dop853", rtol=1e-12, atol=1e-14).run())
    errors = {layer: float(np.abs(final_fields(ReactionDiffusionLab(**base, dt=0.1, initial_layer=layer).run())
                                  - ref).max()) for layer in (0.0, 0.5)}
    assert errors[0.5] < 0.5 * errors[0.0], errors


def test_spiral_rotation_period_converges_in_N():
    rates = {N: _rotation_rate(N) for N in (24, 32, 48, 96)}
    periods = {N: 2 * math.pi / abs(r) for N, r in rates.items()}
    diffs = [abs(periods[N] - periods[96]) for N in (24, 32, 48)]
    assert diffs[0] > diffs[1] > diffs[2], periods
    assert diffs[2] < 1e-5 * periods[96], periods
    # a one-armed λ–ω spiral turns slower than the uniform oscillation (|ω| < β): its arms carry
    # a wavenumber k with A² = 1 − d k² < 1
    assert 0.5 < abs(rates[96]) < 1.0


# ------------------------------------------------------------------ the co-rotating frame
def test_corotation_rate_is_the_mean_phase_velocity_of_the_full_equations():
    """β⟨A⁴⟩/⟨A²⟩ = −Σ Im(w̄ ∂t w) / Σ|w|² with ∂t w from the whole right-hand side (d1 = d2: diffusion and
    λ(A) add nothing to it), on a start that is far from a rigid rotation; a uniform state turns at β|w|²."""
    grid = rd.spectral_grid(10.0, 32, NP)
    w = rd.spiral(grid, 2) + 0.3 * rd.spiral_periodic(grid, 1)
    problem = rd.LambdaOmegaProblem(grid, 0.2, 0.2, 0.7)
    f = rd.irfft2(problem.rhs(rd.rfft2(w)), 32)
    measured = -np.sum(w[0] * f[1] - w[1] * f[0]) / np.sum(w[0] ** 2 + w[1] ** 2)
    assert rd.corotation_rate(w[0], w[1], 0.7) == pytest.approx(measured, rel=1e-12)
    assert rd.corotation_rate(np.full((4, 4), 0.6), np.full((4, 4), 0.8), 0.7) == pytest.approx(0.7)
    assert rd.corotation_rate(np.zeros((4, 4)), np.zeros((4, 4)), 0.7) == 0.0
    np.testing.assert_allclose(rd.rotate_phase(rd.rotate_phase(w, 0.4), -0.4), w, atol=1e-15)


@pytest.mark.parametrize("integrator, rtol, tol", [("dop853", 1e-6, 1e-8), ("dopri5", 1e-10, 1e-9),
                                                   ("if_dop853", 1e-10, 1e-9), ("split_step", None, 1e-5),
                                                   ("etdrk4", None, 1e-9)])
def test_the_co_rotating_frame_is_an_exact_change_of_variables(integrator, rtol, tol):
    """The same run in the fixed and in the co-rotating frame (whose rate changes at every snapshot) agree
    to the integrator's accuracy. DOP853 at rtol 1e-6 is accurate to ~1e-10 here: a derivative that an
    adaptive stepper took before the frame turned (at its start, or kept from the last step across a
    change of rate) cost 1e-6."""
    base = dict(preset="stable_spiral", N=48, L=20.0, t_end=2.0, frame_dt=1.0, integrator=integrator,
                rtol=rtol or 1e-6, atol=(rtol or 1e-6) * 1e-3, dt=0.01)
    fixed = ReactionDiffusionLab(**base, frame="fixed").run()
    turning = ReactionDiffusionLab(**base, frame="co-rotating").run()
    assert np.abs(final_fields(turning) - final_fields(fixed)).max() < tol
    for name in ("u_mean", "v_variance", "mutual_information", "dwdt_rms"):  # diagnostics of the fixed frame
        np.testing.assert_allclose(turning[name].values, fixed[name].values, rtol=1e-5, atol=1e-9)


def test_a_rigid_spiral_stands_still_in_the_co_rotating_frame():
    """ETDRK4 keeps a fixed point exactly, and a rigidly rotating spiral is one in the frame turning with
    it: at the preset's Δt = 0.1 the co-rotating frame's time error is ~100× smaller than the fixed
    frame's (measured 1.2e-7 against 1.2e-5 at t = 20; stable_spiral at t = 200: 4e-8 against 2.4e-5)."""
    base = dict(preset="stable_spiral", N=64, t_end=20.0, frame_dt=20.0)
    ref = final_fields(ReactionDiffusionLab(**base, integrator="dop853", rtol=1e-12, atol=1e-14).run())
    errors = {frame: float(np.abs(final_fields(ReactionDiffusionLab(**base, frame=frame).run()) - ref).max())
              for frame in ("fixed", "auto")}
    assert errors["auto"] < 0.03 * errors["fixed"], errors
    assert errors["auto"] < 5e-7, errors


def test_the_co_rotating_frame_needs_a_phase_symmetry():
    for params in (dict(preset="turbulent_spiral", N=32), dict(preset="spots", N=32, snapshot_dt=1.0)):
        with pytest.raises(ValueError, match="'frame' = 'co-rotating' needs"):
            next(ReactionDiffusionLab(**params, frame="co-rotating", t_end=1.0, frame_dt=1.0).frames())
        next(ReactionDiffusionLab(**params, frame="auto", t_end=1.0, frame_dt=1.0).frames())  # fixed there
    problem = rd.LambdaOmegaProblem(rd.spectral_grid(10.0, 8, NP), 0.1, 0.2, 1.0)
    with pytest.raises(ValueError, match="frame_rate.*d1 = d2"):
        problem.frame_rate = 0.5
    with pytest.raises(ValueError, match="frame_rate.*finite"):
        rd.LambdaOmegaProblem(rd.spectral_grid(10.0, 8, NP), 0.1, 0.1, 1.0).frame_rate = math.nan


# ------------------------------------------------------------------ array_api_strict
def test_numerics_on_array_api_strict_equal_numpy():
    out = []
    for xp in (array_api_strict, NP):
        grid = rd.spectral_grid(8.0, 16, xp)
        w = rd.spiral(grid, 2) + 0.5 * rd.spiral_periodic(grid, 1)
        y = rd.rfft2(w)
        lo = rd.LambdaOmegaProblem(grid, 0.1, 0.2, 0.7)
        gs = rd.GrayScottProblem(grid, 0.1, 0.05, 0.03, 0.06)
        turning = rd.LambdaOmegaProblem(grid, 0.1, 0.1, 0.7)
        turning.frame_rate = 0.4
        u, v = w[0, ...], w[1, ...]
        k, power = rd.radial_spectrum(y, grid)
        res = [rd.irfft2(lo.rhs(y), 16), lo.nonlinear_flow(y, 0.1), gs.rhs(y), power, k,
               turning.rhs(y), turning.nonlinear_flow(y, 0.1), turning.fixed_frame_rhs(y), turning.fields(y),
               rd.rotate_phase(y, 0.3),
               rd.irfft2(integrate(lo, y, 0.2, "etdrk4", dt=0.05), 16), rd.winding_numbers(u, v)]
        scalars = [*rd.moments(u), rd.mutual_information(u, v), *rd.defect_count(u, v),
                   rd.corotation_rate(u, v, 0.7)]
        out.append(([np.asarray(r) if xp is NP else np.from_dlpack(r) for r in res], scalars))
    for a, b in zip(out[0][0], out[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-12)


def test_spiral_quartet_plants_no_defect_on_the_box_edges():
    """Four cores of alternating charge a quarter box from every edge; smooth (spectral decay) and
    periodic, unlike rd-spiral's start; the lab runs from it with the cores where they were put."""
    L, N = 20.0, 64
    grid = rd.spectral_grid(L, N, NP)
    w = rd.spiral_quartet(grid, 1)
    charge = rd.winding_numbers(w[0], w[1])
    where = np.argwhere(charge != 0)
    assert len(where) == 4 and int(charge.sum()) == 0
    x = np.asarray(grid.x[1]).ravel()
    dx = L / N
    for i, j in where:  # plaquette (i, j) spans [x_j, x_j + dx] × [y_i, y_i + dy]: a core at ±L/4
        cx, cy = x[j] + dx / 2, x[i] + dx / 2
        assert abs(abs(cx) - L / 4) <= dx and abs(abs(cy) - L / 4) <= dx
        assert charge[i, j] == (1 if np.sign(cx) == np.sign(cy) else -1)
    def tail(field):  # share of the variance in the top eighth of the wavenumbers
        _, power = rd.radial_spectrum(rd.rfft2(field), grid)
        return float(power[-N // 8:].sum() / power.sum())

    # no edge discontinuity: the tail is what the cores' cone (phase −r) leaves, as for spiral_periodic,
    # ~20000× below rd-spiral's start, whose phase jumps at the box edge
    assert tail(w) < 1e-6 < 1e-3 < tail(rd.spiral(grid, 1))
    ds = ReactionDiffusionLab(preset="stable_spiral", initial="spiral_quartet", N=N, L=L, t_end=2.0).run()
    assert int(ds.defects.values[0]) == 4 and int(ds.defects.values[-1]) == 4


def test_pattern_regions_are_periodic():
    v = np.zeros((16, 16))
    v[0:3, 0:2] = v[0:3, 14:16] = 1.0   # one spot across the left/right edge
    v[15, 7:9] = v[0, 7:9] = 1.0        # one across the top/bottom edge
    v[8:10, 8:10] = 1.0                 # one inside
    assert rd.pattern_regions(v) == (3, 20 / 256)
    assert rd.pattern_regions(np.full((8, 8), 0.3)) == (0, 0.0)


def test_pearsons_start_is_his_20_by_20_square():
    """Pearson ("Complex patterns in a simple system"): "the 20 by 20 mesh point area located
    symmetrically about the center" of 256² was set to (1/2, 1/4); on other grids, the same area."""
    from explore.numerics import reaction_diffusion as rd

    for n, side in ((256, 20), (128, 10)):
        w = ReactionDiffusionLab(preset="spots", N=n, noise=0.0).initial_state(rd.spectral_grid(2.5, n, np))
        rows, cols = np.nonzero(w[1])
        assert w[1].sum() == 0.25 * side**2 and np.all(w[0][rows, cols] == 0.5)
        assert (rows.min(), rows.max()) == (cols.min(), cols.max()) == (n // 2 - side // 2, n // 2 + side // 2 - 1)


def test_gray_scott_presets_form_their_patterns():
    """Pearson's start on a quarter box at the presets' grid spacing, t = 5000: stripes grow into one
    connected labyrinth over about half the box; spots and mitosis break into small isolated spots
    whose number only grows (they divide)."""
    runs = {name: ReactionDiffusionLab(preset=name, N=64, L=0.625, frame_dt=500.0, snapshot_dt=500.0).run()
            for name in ("spots", "stripes", "mitosis")}
    stripes = runs["stripes"]
    assert stripes.pattern_regions.values[-1] == 1 and stripes.pattern_area.values[-1] > 0.4
    for name in ("spots", "mitosis"):
        n, area = runs[name].pattern_regions.values, runs[name].pattern_area.values
        assert n[-1] >= 6 and area[-1] < 0.25 and area[-1] / n[-1] < 0.03, name
        assert np.all(np.diff(n[1:]) >= 0) and n[-1] >= 2 * n[1], name


def test_radial_spectrum_sums_to_the_variance():
    grid = rd.spectral_grid(10.0, 32, NP)
    w = rd.spiral_periodic(grid, 1)
    _, power = rd.radial_spectrum(rd.rfft2(w), grid)
    # shells up to N/2 miss only the corner modes, which the smooth field barely has
    assert float(np.sum(power)) == pytest.approx(float(np.var(w[0]) + np.var(w[1])), rel=1e-6)
    # with the corners (shells up to N/√2) even white noise is summed whole
    noise = np.random.default_rng(1).standard_normal((2, 32, 32))
    _, power = rd.radial_spectrum(rd.rfft2(noise), grid, bins=math.ceil(32 / math.sqrt(2)))
    assert float(np.sum(power)) == pytest.approx(float(np.var(noise[0]) + np.var(noise[1])), rel=1e-13)


@pytest.mark.parametrize("xp", [NP, array_api_strict], ids=["numpy", "array_api_strict"])
def test_radial_spectrum_resolves_shells_far_below_the_total(xp):
    """A field near 1 (pattern_decay's end) with two small modes: each shell's power is exact to
    round-off of its own size, 20 decades below the mean square, and the empty shells are zero."""
    L, N = 10.0, 32
    grid = rd.spectral_grid(L, N, NP)
    x, y = (np.asarray(a) for a in grid.x)
    dk = 2 * np.pi / L
    a3, a9 = 1e-6, 1e-12  # cos(3 Δk x) and cos(9 Δk y): mean squares a²/2 in shells 3 and 9
    u = 0.98 + a3 * np.cos(3 * dk * x) + 0 * y
    v = -0.2 + a9 * np.cos(9 * dk * y) + 0 * x
    w = np.stack([u, v])
    if xp is not NP:
        grid, w = rd.spectral_grid(L, N, xp), xp.asarray(w)
    _, power = rd.radial_spectrum(rd.rfft2(w), grid)
    power = np.asarray(power) if xp is NP else np.from_dlpack(power)
    assert power[2] == pytest.approx(a3**2 / 2, rel=1e-9, abs=0)
    assert power[8] == pytest.approx(a9**2 / 2, rel=1e-3, abs=0)  # 5e-25, against v's mean² 0.04
    others = np.delete(power, [2, 8])
    assert np.all(np.abs(others) < 1e-28)


def test_mutual_information_and_defects():
    grid = rd.spectral_grid(20.0, 64, NP)
    w = rd.spiral_periodic(grid, 1)
    assert rd.defect_count(w[0], w[1]) == (4, 0)  # the +1 core and its torus images: net charge 0
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(64, 64)), rng.normal(size=(64, 64))
    assert rd.mutual_information(a, b) < 0.2 < rd.mutual_information(a, a + 0.1 * b)
    assert rd.mutual_information(a, 3.0 * a + 7.0) == pytest.approx(rd.mutual_information(a, a))  # scale-free
    assert rd.mutual_information(np.ones((8, 8)), a[:8, :8]) == 0.0
    assert rd.moments(np.full((8, 8), 2.0)) == (2.0, 0.0, 0.0)


# ------------------------------------------------------------------ the lab
@pytest.mark.parametrize("preset", list(ReactionDiffusionLab.presets))
def test_every_preset_runs(preset):
    lab = ReactionDiffusionLab(preset=preset)
    sdt = lab.snapshot_dt
    ds = ReactionDiffusionLab(preset=preset, t_end=2 * sdt, frame_dt=sdt).run()
    assert ds.time.values[-1] == pytest.approx(2 * sdt)
    assert set(ds.data_vars) >= {"u_mean", "v_kurtosis", "mutual_information", "dwdt_rms", "regime", "spectrum",
                                 "u", "v", "phase_portrait_x", "u_final"}
    if lab.model == "lambda_omega":
        assert float(ds.net_charge[0]) == 0.0


def test_frames_are_reduced_for_display():
    frames = list(ReactionDiffusionLab(preset="stable_spiral", N=128, t_end=0.2, frame_dt=0.1).frames())
    f = frames[-1]
    assert f.samples["u"].values.shape == (128, 128) and f.samples["phase_portrait"].x.size <= 10_000
    assert f.spectrum.logy and f.spectrum.x.size == 64
    assert [fr.time for fr in frames] == pytest.approx([0.0, 0.1, 0.2])


@pytest.mark.parametrize("a", [1.0, 1e-90, 1e-200])
def test_moments_of_a_field_decaying_to_zero(a):
    """[0, 0, 0, a]: variance 3a²/16 and excess kurtosis 21/9 - 3 = -2/3 whatever a; at a = 1e-90
    (a Gray–Scott v decaying to 0) var² underflowed to 0 and the run died in a division by zero."""
    mean, var, kurtosis = rd.moments(np.array([0.0, 0.0, 0.0, a]))
    assert mean == a / 4 and kurtosis == pytest.approx(-2 / 3, rel=1e-13)
    if a > 1e-150:  # (3a²/16 underflows below that)
        assert var == pytest.approx(3 * a * a / 16, rel=1e-13, abs=0)


def test_a_uniform_decay_to_a_fixed_point_is_not_an_oscillation():
    """Gray–Scott spots at kill 0.075 die out: the uniform state approaches (1, 0) with a relative rate
    falling ~6× a frame. It lost its contrast long ago but does not oscillate: transient, then steady."""
    ds = ReactionDiffusionLab(preset="spots", kill=0.075, N=64, t_end=700.0, snapshot_dt=50.0, frame_dt=50.0).run()
    regimes = [REGIMES[int(r)] for r in ds.regime.values]
    assert "homogeneous_oscillation" not in regimes and regimes[-1] == "steady", regimes


def test_a_uniform_decay_is_no_oscillation_however_often_the_frames_come():
    """A Gray–Scott state that turns uniform and then relaxes slowly to the node (1, 0) was called a
    homogeneous oscillation at frames 0.1 apart (its rate fell < 1 % over four frames) but transient at
    frames 1.0 apart: the test is now per radian the state turns, not per frame (an audit finding)."""
    base = dict(model="gray_scott", initial="pearson", L=0.5, N=32, d1=0.01, d2=0.01, feed=0.01, kill=0.1,
                integrator="etdrk4", dt=0.05, t_end=60.0, initial_layer=0.0)
    for frame_dt in (0.1, 1.0):
        ds = ReactionDiffusionLab(**base, snapshot_dt=frame_dt, frame_dt=frame_dt).run()
        assert float(ds.contrast[-1]) < 1e-12  # (uniform long before the end)
        regimes = {REGIMES[int(r)] for r in ds.regime.values}
        assert regimes == {"transient"}, (frame_dt, regimes)


def test_a_breathing_pattern_is_periodic_whatever_its_period_in_frames():
    """A breathing pattern (the variance periodic, the cores the same) whose period is no whole number of
    frames samples each peak at another phase: its sampled maxima differ by up to (swing/2)(1 - cos(π/P)),
    and with a swing of ±10 % it was called chaotic at 23 of 50 periods between 3 and 8 frames (an audit
    finding). A series with the same swing but irregular peaks or timing is still chaotic."""

    def classify(series):
        lab = ReactionDiffusionLab()
        lab._history, lab._max = deque(maxlen=16), {"contrast": 0.0}
        return [REGIMES[lab._classify(float(t + 1), 0.5, r, v, n)] for t, (r, v, n) in enumerate(series)]

    for a in (0.05, 0.1, 0.2, 0.5):
        for period in np.arange(3.0, 8.0, 0.1):
            codes = classify([(0.3, 2.0 + a * math.sin(2 * math.pi * t / period + 0.3), 2.0) for t in range(40)])
            assert set(codes[20:]) == {"periodic"}, (a, period, codes)
    rng = np.random.default_rng(1)
    peaks = 2.0 + 0.2 * rng.uniform(0.2, 1.0, 10)  # maxima 2.04–2.2 every 4 frames, minima 1.8
    irregular = [v for p in peaks for v in (1.8, 2.0, p, 2.0)]
    assert classify([(0.3, v, 2.0) for v in irregular])[-1] == "chaotic"
    beats = [2.0 + 0.2 * math.sin(2 * math.pi * t / 6.0) * (1.0 + 0.6 * math.sin(2 * math.pi * t / 23.0)) for t in range(40)]
    assert "periodic" not in classify([(0.3, v, 2.0) for v in beats])[24:]


def test_the_snapshot_file_is_its_own_file(tmp_path):
    """The snapshots and the checkpoint need a file each (sharing one, the checkpoint's rename replaced
    the snapshots silently); a file to continue that is no snapshot file is refused by name."""
    base = dict(N=16, t_end=1.0, snapshot_dt=0.1, frame_dt=0.5)
    same = str(tmp_path / "run.nc")  # (a checkpoint is named .npz, a stream .nc: one name cannot be both)
    with pytest.raises(ValueError, match="'checkpoint_file' = .*run.nc' is written as a NumPy .npz archive"):
        ReactionDiffusionLab(**base, snapshot_file=same, checkpoint_file=same).run()
    checkpoint = str(tmp_path / "c.npz")
    ReactionDiffusionLab(**base, checkpoint_file=checkpoint).run()
    with pytest.raises(ValueError, match="'snapshot_file' = .*c.npz' is written as netCDF"):
        ReactionDiffusionLab(**{**base, "t_end": 2.0}, resume_from=checkpoint, snapshot_file=checkpoint).run()
    link = tmp_path / "c.nc"  # (another name for the same file)
    link.symlink_to(checkpoint)
    with pytest.raises(ValueError, match="'snapshot_file' and 'resume_from' are the same file"):
        ReactionDiffusionLab(**{**base, "t_end": 2.0}, resume_from=checkpoint, snapshot_file=str(link)).run()
    with pytest.raises(ValueError, match="'snapshot_file' and 'checkpoint_file' are the same file"):
        ReactionDiffusionLab(**base, snapshot_file=str(link), checkpoint_file=checkpoint).run()
    other = tmp_path / "notes.nc"
    other.write_text("not netCDF")
    with pytest.raises(ValueError, match="snapshot_file .* cannot continue this run: it is not a snapshot file"):
        ReactionDiffusionLab(**{**base, "t_end": 2.0}, resume_from=checkpoint, snapshot_file=str(other)).run()


def test_regimes():
    decay = ReactionDiffusionLab(preset="pattern_decay", frame_dt=2.0).run()
    # rd-spiral calls this end state "homogeneous"; it is the uniform limit cycle |w| = 1
    assert REGIMES[int(decay.regime[-1])] == "homogeneous_oscillation"
    assert float(decay.contrast[-1]) < 1e-5 and float(decay.defects[-1]) == 0.0
    spiral = ReactionDiffusionLab(preset="stable_spiral", initial="spiral_periodic", N=32, L=10.0,
                                  t_end=60.0, frame_dt=1.0).run()
    assert REGIMES[int(spiral.regime[-1])] == "periodic"
    relax = ReactionDiffusionLab(preset="stable_spiral", initial="spiral_periodic", beta=0.0, N=32, L=10.0,
                                 t_end=50.0, frame_dt=2.0).run()
    assert REGIMES[int(relax.regime[-1])] == "steady"  # β = 0: a gradient flow comes to rest
    # the criteria compare each quantity with itself, so the grid does not change the verdict: rd-spiral's
    # start relaxing at β = 0 (its edge jump makes the t = 0 rate grow with N) is a drift on both grids
    for n in (32, 64):
        drift = ReactionDiffusionLab(preset="stable_spiral", beta=0.0, N=n, L=10.0, t_end=50.0, frame_dt=2.0).run()
        assert {REGIMES[int(r)] for r in drift.regime.values} == {"transient"}, n
    # exact equilibria: the uniform limit cycle, and Gray–Scott's trivial fixed point (rates at round-off)
    uniform = ReactionDiffusionLab(N=16, initial="noise", noise=0.0, t_end=20.0, frame_dt=1.0).run()
    assert REGIMES[int(uniform.regime[-1])] == "homogeneous_oscillation"
    rest = ReactionDiffusionLab(preset="spots", N=16, initial="noise", noise=0.0, t_end=400.0, snapshot_dt=20.0,
                                frame_dt=20.0).run()
    assert REGIMES[int(rest.regime[-1])] == "steady"

    def classify(series):
        lab = ReactionDiffusionLab()
        lab._history, lab._max = deque(maxlen=16), {"contrast": 0.0}
        return [REGIMES[lab._classify(float(t + 1), 0.5, r, v, n)] for t, (r, v, n) in enumerate(series)]

    rng = np.random.default_rng(0)
    noisy = [(1.0 + 0.2 * rng.random(), 0.3 + 0.1 * rng.random(), float(rng.integers(5, 9))) for _ in range(20)]
    codes = classify(noisy)
    assert codes[0] == "transient" and codes[-1] == "chaotic"
    # a drift, even one that turns once (up, then down), is not chaos; a constant state is periodic
    ramp = [(1.0 + 0.05 * t, 0.3 - 0.01 * t, 4.0) for t in range(20)]
    hump = [(1.0 + 0.02 * min(t, 30 - t), 0.3, 4.0) for t in range(20)]
    assert classify(ramp)[-1] == classify(hump)[-1] == "transient"
    assert classify([(1.0, 0.3, 4.0)] * 20)[-1] == "periodic"
    # a breathing pattern (the variance periodic, the cores the same) is periodic, however the frames sample
    # it; a damped oscillation towards a fixed pattern is transient; neither is chaos
    breathing = classify([(1.0, 0.5 * (1 + 0.05 * np.sin(2 * np.pi * t / 6)), 4.0) for t in range(40)])
    assert set(breathing[20:]) == {"periodic"}, breathing
    damped = classify([(1.0, 0.5 * (1 + 0.2 * np.exp(-t / 15) * np.sin(2 * np.pi * t / 5)), 4.0) for t in range(40)])
    assert "chaotic" not in damped and damped[-1] == "transient", damped
    # a pair of cores created, then annihilated, as a multi-armed start relaxes: chaotic only while the
    # new cores are there (the window cannot yet tell it from a break-up), then transient again
    pair = classify([(1.0, 0.3, 6.0)] * 20 + [(1.0, 0.3, 8.0)] * 4 + [(1.0, 0.3, 6.0)] * 10)
    assert pair[20:24] == ["chaotic"] * 4 and "chaotic" not in pair[24:], pair
    # regular means maxima and minima both agree (three extremes at least); a swing that grows is not damped
    rising = [0.6, 0.55, 0.40, 0.55] * 8
    rising = [(1.0, v + (0.03 * (i // 4) if i % 4 == 2 else 0.0), 4.0) for i, v in enumerate(rising)]
    assert "periodic" not in classify(rising)[20:]
    growing = list(np.linspace(0.5, 0.6, 6)) + list(np.linspace(0.58, 0.45, 6)) + list(np.linspace(0.48, 0.70, 8))
    assert classify([(1.0, v, 4.0) for v in growing])[-1] == "chaotic"
    # an exponential approach is steady once what is left of the change is below DECAY_RATIO of the state
    approach = classify([(np.exp(-0.5 * t), 0.3, 4.0) for t in range(40)])
    left = [np.exp(-0.5 * t) / 0.5 for t in range(40)]
    assert all((c == "steady") == (t >= 15 and e <= 1e-3) for t, (c, e) in enumerate(zip(approach, left)))


def test_turbulent_preset_breaks_up_and_is_classified_chaotic():
    """rd-spiral's turbulent regime at its own grid (L = 50, N = 256) to t = 100: the four-armed spiral
    rotates (8 cores, classified periodic), then breaks up at t ≈ 60 (new cores are created and their
    number grows several-fold), and from the first new core on the frames are classified chaotic — on
    a real run, not only on synthetic statistics."""
    ds = ReactionDiffusionLab(preset="turbulent_spiral", t_end=100.0).run()
    defects, times = ds.defects.values, ds.time.values
    regimes = [REGIMES[int(r)] for r in ds.regime.values]
    first = int(np.argmax(np.diff(defects[1:]) > 0)) + 2  # (the start's edge jump makes cores at t = 0+)
    assert defects[-1] >= 3 * defects[0] and 50.0 <= times[first] <= 70.0
    assert "periodic" in regimes[:first] and "chaotic" not in regimes[:first]
    # (every frame here; 90 % leaves room for a quiet window in another round-off realization of the chaos)
    late = regimes[first:]
    assert late.count("chaotic") >= 0.9 * len(late) and not {"steady", "homogeneous_oscillation"} & set(late)


def test_checkpoint_resume_reproduces_the_uninterrupted_run(tmp_path):
    # (dop853 at tight tolerances takes steps below the frame interval: the resumed run must continue
    # with the step size the checkpoint proposed, not a fresh first guess)
    for integrator, tol in (("etdrk4", {}), ("dop853", {}), ("dop853", dict(rtol=1e-9, atol=1e-9))):
        base = dict(preset="stable_spiral", N=32, L=10.0, integrator=integrator, dt=0.05, frame_dt=0.5, **tol)
        full = ReactionDiffusionLab(t_end=2.0, **base).run()
        ck = str(tmp_path / f"{integrator}{len(tol)}.npz")
        first = ReactionDiffusionLab(t_end=1.0, checkpoint_file=ck, **base).run()
        rest = ReactionDiffusionLab(t_end=2.0, resume_from=ck, **base).run()
        np.testing.assert_array_equal(final_fields(rest), final_fields(full))
        np.testing.assert_array_equal(rest.time.values, full.time.values[2:])
        np.testing.assert_array_equal(first.time.values, full.time.values[:3])
        np.testing.assert_array_equal(rest.steps.values, full.steps.values[2:])
        np.testing.assert_array_equal(rest.regime.values, full.regime.values[2:])
        np.testing.assert_array_equal(rest.step.values, full.step.values[2:])  # frames 2, 3, 4 (not 0, 1, 2)
    with pytest.raises(ValueError, match="resume_from.*beta"):
        next(ReactionDiffusionLab(t_end=2.0, resume_from=ck, beta=0.5, **base).frames())
    # the initial state is part of the run too (a resumed run recorded another arms and seed)
    for change in (dict(arms=3), dict(seed=7), dict(initial="spiral_quartet"), dict(noise=0.1)):
        with pytest.raises(ValueError, match=f"resume_from.*{next(iter(change))}"):
            next(ReactionDiffusionLab(t_end=2.0, resume_from=ck, **{**base, **change}).frames())


def test_a_checkpoint_from_before_a_parameter_existed_is_refused_by_name(tmp_path):
    """A checkpoint written before the lab had 'frame' (its run stepped in the fixed frame) cannot continue
    a run that may step in another: refused, naming the parameter, not as 'frame (None vs 'auto')'."""
    import json

    base = dict(preset="stable_spiral", N=16, L=10.0, frame_dt=0.5)
    ck = tmp_path / "ck.npz"
    ReactionDiffusionLab(t_end=1.0, checkpoint_file=str(ck), **base).run()
    entries = dict(np.load(ck))
    params = json.loads(str(entries["params"]))
    del params["frame"], entries["frame"]
    entries["params"] = json.dumps(params)
    np.savez(tmp_path / "old.npz", **entries)
    with pytest.raises(ValueError, match="older version of this lab, without 'frame'; run from the start"):
        next(ReactionDiffusionLab(t_end=2.0, resume_from=str(tmp_path / "old.npz"), **base).frames())


@pytest.mark.parametrize("damage", [
    dict(drop="history"), dict(drop="frame"), dict(maxima=np.zeros(0)), dict(frame=np.array([np.nan, 0.0])),
    dict(y=np.zeros((2, 16, 3))),
])
def test_a_damaged_checkpoint_is_refused_naming_resume_from(tmp_path, damage):
    """A checkpoint whose entries were removed or changed is refused naming 'resume_from' (it was a
    KeyError, an IndexError or a broadcasting error); a history of another layout says 'older version'."""
    base = dict(preset="stable_spiral", N=16, L=10.0, frame_dt=0.5)
    ck = tmp_path / "ck.npz"
    ReactionDiffusionLab(t_end=1.0, checkpoint_file=str(ck), **base).run()
    entries = dict(np.load(ck))
    damage = dict(damage)
    entries.pop(damage.pop("drop", None), None)
    entries.update(damage)
    np.savez(tmp_path / "bad.npz", **entries)
    with pytest.raises(ValueError, match="'resume_from' = .*bad.npz' (is not a checkpoint of this lab|was written by an older)"):
        next(ReactionDiffusionLab(t_end=2.0, resume_from=str(tmp_path / "bad.npz"), **base).frames())


def test_code_and_command_line_reproduce_every_preset(tmp_path):
    """The snippet and the command line list what differs from a bare ``ReactionDiffusionLab()`` (the
    default preset applied), so they rebuild the same configuration: for spots they left out
    initial_layer = 0 (the default preset has 0.5), which the run then refused."""
    from explore.cli import parse_sets

    for preset in ReactionDiffusionLab.presets:
        lab = ReactionDiffusionLab(preset=preset, dt=0.05, checkpoint_file=str(tmp_path / "a b.npz"))
        scope: dict = {}
        exec(lab.to_code().replace("result = lab.run()", ""), scope)  # noqa: S102 - our own generated code
        assert scope["lab"].values() == lab.values(), preset
        line = shlex.split(lab.to_cli())
        sets = [line[i + 1] for i, word in enumerate(line) if word == "--set"]
        assert ReactionDiffusionLab(**parse_sets(ReactionDiffusionLab, sets)).values() == lab.values(), preset


def test_snapshots_stream_to_netcdf(tmp_path):
    import h5netcdf

    path = tmp_path / "snap.nc"
    ds = ReactionDiffusionLab(preset="pattern_decay", N=16, t_end=1.0, snapshot_dt=0.1, frame_dt=0.5,
                              snapshot_file=str(path)).run()
    assert ds.step.size == 3  # frames: the file has all 11 snapshots, the result only reduced data
    with h5netcdf.File(path, "r") as f:
        assert f.variables["u"].dimensions == ("time", "y", "x")
        np.testing.assert_allclose(f.variables["time"][:], np.arange(11) * 0.1, atol=1e-14)
        np.testing.assert_allclose(f.variables["x"][:], ds.x_grid.values)
        np.testing.assert_array_equal(f.variables["u"][-1], ds.u_final.values)
        np.testing.assert_array_equal(f.variables["v"][-1], ds.v_final.values)


def test_snapshot_stream_survives_an_interrupted_run(tmp_path, monkeypatch):
    """The snapshot stream writes blocks of a bounded buffer during the run; a run interrupted after a
    checkpoint (its file already holding snapshots past it) and resumed leaves the same file, bit for
    bit, as the uninterrupted run."""
    import shutil

    import h5netcdf

    import explore.labs.reaction_diffusion as rdlab

    monkeypatch.setattr(rdlab, "SNAPSHOT_BUFFER_BYTES", 3 * 16 * 16 * 16)  # 3 snapshots of u, v on 16²
    blocks = []
    flush = rdlab.SnapshotWriter.flush

    def counting_flush(self):
        blocks.append(len(self._times))
        flush(self)

    monkeypatch.setattr(rdlab.SnapshotWriter, "flush", counting_flush)
    base = dict(preset="stable_spiral", N=16, L=10.0, integrator="etdrk4", dt=0.05, snapshot_dt=0.1,
                frame_dt=0.5, t_end=2.0)
    full = tmp_path / "full.nc"
    ReactionDiffusionLab(snapshot_file=str(full), **base).run()
    assert max(blocks) == 3 and sum(blocks) == 21  # 21 snapshots, never more than 3 in memory
    part, ck, ck_at_1 = tmp_path / "part.nc", tmp_path / "ck.npz", tmp_path / "ck_at_1.npz"
    frames = ReactionDiffusionLab(snapshot_file=str(part), checkpoint_file=str(ck), **base).frames()
    for frame in frames:
        if math.isclose(frame.time, 1.0):
            shutil.copy(ck, ck_at_1)
        if math.isclose(frame.time, 1.5):
            break
    frames.close()  # "the crash": the file has snapshots up to t = 1.5, the kept checkpoint is at t = 1
    with h5netcdf.File(part, "r") as f:
        assert f.variables["time"].shape == (16,)
    ReactionDiffusionLab(snapshot_file=str(part), resume_from=str(ck_at_1), **base).run()
    with h5netcdf.File(full, "r") as a, h5netcdf.File(part, "r") as b:
        for name in ("time", "u", "v"):
            np.testing.assert_array_equal(b.variables[name][:], a.variables[name][:])
    # a run continued to a later t_end leaves a file that says so
    ext, ck_ext = tmp_path / "ext.nc", tmp_path / "ck_ext.npz"
    ReactionDiffusionLab(snapshot_file=str(ext), checkpoint_file=str(ck_ext), **{**base, "t_end": 1.0}).run()
    ReactionDiffusionLab(snapshot_file=str(ext), resume_from=str(ck_ext), **base).run()
    with h5netcdf.File(full, "r") as a, h5netcdf.File(ext, "r") as b:
        assert b.attrs["t_end"] == 2.0
        np.testing.assert_array_equal(b.variables["time"][:], a.variables["time"][:])
    # a file that cannot continue the run is refused by name
    short = tmp_path / "short.nc"
    ReactionDiffusionLab(snapshot_file=str(short), **{**base, "t_end": 0.5}).run()
    with pytest.raises(ValueError, match="snapshot_file .* no snapshot at the checkpoint's t = 1"):
        ReactionDiffusionLab(snapshot_file=str(short), resume_from=str(ck_at_1), **base).run()


def test_determinism_and_round_trip():
    lab = ReactionDiffusionLab(preset="spots", N=32, L=0.3125, t_end=100.0, snapshot_dt=50.0, frame_dt=50.0)
    a = lab.run()
    b = type(lab)(**lab.values()).run()
    np.testing.assert_array_equal(a.u_final, b.u_final)
    c = ReactionDiffusionLab(**{**lab.values(), "seed": 3}).run()
    assert not np.array_equal(a.u_final.values, c.u_final.values)


@pytest.mark.parametrize(
    "params, name",
    [
        (dict(N=4), "N"),
        (dict(N=33), "N"),
        (dict(d1=-0.1), "d1"),
        (dict(integrator="euler"), "integrator"),
        (dict(model="gray_scott", integrator="split_step"), "integrator"),
        (dict(t_end=1.05, snapshot_dt=0.1), "snapshot_dt"),
        (dict(snapshot_dt=1e-320), "snapshot_dt.*too small"),  # (an overflow in round(), not a message)
        (dict(frame_dt=0.15), "frame_dt"),
        (dict(initial_layer=0.25), "initial_layer"),
        (dict(frame="spinning"), "frame"),
        (dict(resume_from="/nonexistent/ck.npz"), "resume_from"),
        (dict(snapshot_file="/nonexistent/dir/a.nc"), "snapshot_file"),
        (dict(L=float("nan")), "L"),
        (dict(L=1e300), r"'L' = 1e\+300 is too large"),  # (NaN at t = 0, reported as a divergence)
        (dict(d1=1e306), "d1.*too large"),
        (dict(nonsense=1), "nonsense"),
    ],
)
def test_bad_input_names_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        next(ReactionDiffusionLab(**params).frames())


def test_a_step_that_blows_up_stops_with_a_message():
    lab = ReactionDiffusionLab(preset="pattern_decay", integrator="rk4", dt=0.1, t_end=5.0)
    with pytest.raises(SolverDiverged, match=r"non-finite at t = .*etdrk4"):
        lab.run()
    # without diffusion the reaction alone limits RK4's step (the hint divided by a zero rate)
    lab = ReactionDiffusionLab(preset="stable_spiral", N=16, L=10.0, t_end=5.0, snapshot_dt=1.0, frame_dt=1.0,
                               initial_layer=0, d1=0, d2=0, integrator="rk4", dt=0.1, beta=50)
    with pytest.raises(SolverDiverged, match="reaction limits it"):
        lab.run()
    # a start too large for |w|² in the co-rotating frame (a ValueError of the frame rate's setter)
    lab = ReactionDiffusionLab(preset="stable_spiral", N=16, L=10.0, t_end=1.0, snapshot_dt=0.1, frame_dt=0.5,
                               noise=1e100)
    with pytest.raises(SolverDiverged, match="t = 0 .*reduce 'noise'"):
        lab.run()


def test_numpy_fast_path_transforms_with_ducc0_or_numpy_alike(monkeypatch):
    """On NumPy the reaction term's 2-D transforms are ducc0's where it is installed, else NumPy's
    two 1-D passes: both give the same tendencies (to round-off), for λ–ω and Gray–Scott."""
    for preset in ("stable_spiral", "spots"):
        lab = ReactionDiffusionLab(preset=preset, N=64)
        grid = rd.spectral_grid(lab.L, lab.N, np)
        y0 = rd.rfft2(np.asarray(lab.initial_state(grid)))
        problem = lab.make_problem(grid)
        assert problem._np._ducc is not None
        ducc = problem.nonlinear(0.0, y0)
        with monkeypatch.context() as m:  # ducc0 missing or disagreeing: NumPy's passes
            m.setattr(rd, "_ducc_fft2", lambda: None)
            plain_problem = lab.make_problem(grid)
        assert plain_problem._np._ducc is None
        plain = plain_problem.nonlinear(0.0, y0)
        np.testing.assert_allclose(ducc, plain, rtol=0, atol=1e-13 * np.abs(plain).max())


def test_a_killed_run_leaves_a_readable_snapshot_file_that_resume_continues(tmp_path):
    """A run killed outright (a scheduler's limit, the OOM killer: SIGKILL, no clean-up) keeps every
    snapshot up to its last checkpoint: the file is open only while a block is written (held open, the
    whole HDF5 file was unreadable after a kill, and resume refused it)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import h5netcdf

    snap, ck = tmp_path / "snap.nc", tmp_path / "ck.npz"
    params = dict(preset="stable_spiral", N=16, L=10.0, frame_dt=1.0, snapshot_file=str(snap), checkpoint_file=str(ck))
    code = ("from explore.labs.reaction_diffusion import ReactionDiffusionLab as R; "
            f"R(t_end=1e5, **{params!r}).run()")
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])  # (this checkout's explore)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (ck.exists() and float(np.load(ck)["t"]) >= 20):
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    t_ck = float(np.load(ck)["t"])
    with h5netcdf.File(snap, "r") as f:
        times = np.asarray(f.variables["time"][:])
    assert t_ck >= 20 and times[-1] >= t_ck and times[0] == 0.0
    np.testing.assert_allclose(np.diff(times), 0.1, rtol=1e-9)
    # resumed to a few frames past the checkpoint, the file ends as an uninterrupted run's would
    t_end = math.floor(t_ck) + 3.0
    ReactionDiffusionLab(t_end=t_end, **{**params, "checkpoint_file": "", "resume_from": str(ck)}).run()
    whole = tmp_path / "whole.nc"
    ReactionDiffusionLab(t_end=t_end, **{**params, "checkpoint_file": "", "snapshot_file": str(whole)}).run()
    with h5netcdf.File(snap, "r") as a, h5netcdf.File(whole, "r") as b:
        np.testing.assert_array_equal(a.variables["time"][:], b.variables["time"][:])
        np.testing.assert_array_equal(a.variables["u"][:], b.variables["u"][:])


def test_multi_armed_cores_are_counted_on_any_even_grid():
    """spiral_quartet's cores sit on grid points: with N = 66 (L/4 between two points) a charge-3 core
    inside one plaquette read as 20 defects instead of 12."""
    for n in (64, 66):
        lab = ReactionDiffusionLab(preset="stable_spiral", initial="spiral_quartet", arms=3, N=n, t_end=1.0,
                                   frame_dt=1.0)
        assert float(next(iter(lab.frames())).diagnostics["defects"]) == 12.0, n


def test_uniform_solution_from_rest_and_from_tiny_amplitudes():
    assert rd.uniform_lambda_omega(1.0, 0.0, 0.3, 1.0) == (0.0, 0.0)  # the unstable fixed point
    u, v = rd.uniform_lambda_omega(1.0, 1e-200, 0.0, 1.0)
    assert u == pytest.approx(math.e * 1e-200, rel=1e-12) and v == 0.0
    # the two closed forms agree where both hold, and t far beyond exp overflow is the limit cycle
    a = rd.uniform_lambda_omega(2.0, 0.3, 0.2, 1.3)
    b = rd.lambda_omega_flow(np.array([0.3 * math.cos(0.2)]), np.array([0.3 * math.sin(0.2)]), 1.3, 2.0)
    b = (float(b[0][0]), float(b[1][0]))
    assert a == pytest.approx(b, rel=1e-13)
    assert math.hypot(*rd.uniform_lambda_omega(400.0, 0.3, 0.2, 1.3)) == pytest.approx(1.0, rel=1e-15)
    # tiny amplitudes at late times (e^{2t} and 1/A0^2 both beyond floating point): A = A0 e^t until it grows
    assert math.hypot(*rd.uniform_lambda_omega(350.0, 1e-160, 0.2, 1.3)) == pytest.approx(1e-160 * math.exp(350), rel=1e-12)
    assert math.hypot(*rd.uniform_lambda_omega(400.0, 1e-200, 0.2, 1.3)) == pytest.approx(1e-200 * math.exp(400), rel=1e-12)
    assert math.hypot(*rd.uniform_lambda_omega(1000.0, 1.5, 0.0, 1.0)) == pytest.approx(1.0, rel=1e-15)


def test_a_frame_interval_longer_than_the_run_is_named():
    with pytest.raises(ValueError, match="'frame_dt' = 1e\\+09 is longer than t_end"):
        ReactionDiffusionLab(frame_dt=1e9, t_end=200.0).run()
