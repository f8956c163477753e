"""The NLSE lab: spectral accuracy, integrator orders, invariants, exact breather, collision shifts."""
from __future__ import annotations

import math

import array_api_strict
import numpy as np
import pytest

from explore.core import SolverDiverged
from explore.labs.nlse import NLSELab
from explore.numerics import nlse as eq
from explore.numerics.fourier import FourierGrid
from explore.numerics.integrators import INTEGRATORS, make_integrator


def final_error(**params) -> float:
    ds = NLSELab(preset="single_soliton", n_snapshots=1, **params).run()
    return float(ds.error[-1])


def final_psi(ds) -> np.ndarray:
    """The full-resolution ψ(x, t_end) stored in a result."""
    return ds.psi_real.values + 1j * ds.psi_imag.values


def fitted_slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def test_spectral_accuracy_in_N():
    """Error at t = 1 falls exponentially with N (log error linear in N), to the 1e-10 level."""
    Ns = [96, 128, 192, 256, 384, 512]
    errors = [final_error(N=N, t_end=1.0, integrator="etdrk4", dt=1e-3) for N in Ns]
    # exponential decay: log(error) vs N has a steady negative slope, at least 2 decades per 128 modes
    slopes = np.diff(np.log10(errors[:-1])) / np.diff(Ns[:-1])
    assert np.all(slopes < -2 / 128), (Ns, errors)
    # A = 2 on L = 50: |ψ^(k)| ~ exp(-πk/4) reaches 1e-10 only near k_max = 32, i.e. N = 512
    assert errors[-1] <= 1e-10, errors
    # a unit-amplitude soliton (half the bandwidth) reaches it by N = 256
    unit = final_error(N=256, t_end=1.0, integrator="etdrk4", dt=1e-3, amplitude=1.0, position=0.0, velocity=0.0)
    assert unit <= 1e-10


@pytest.mark.parametrize("name", [n for n, info in INTEGRATORS.items() if not info.adaptive])
def test_integrator_order_on_soliton(name):
    """Fitted slope of log(error) vs log(dt) within ±0.3 of the declared order (registry-wide)."""
    order = INTEGRATORS[name].order
    base = dict(N=128, amplitude=1.0, position=0.0, velocity=0.5, L=40.0, t_end=1.0, integrator=name)
    dts = [0.05, 0.025, 0.0125] if order >= 4 else [0.02, 0.01, 0.005]
    if name == "rk4":  # explicit: dt must resolve max|k^2/2| (stability limit ~0.02 here)
        dts = [0.01, 0.005, 0.0025]
    ref = NLSELab(preset="single_soliton", **{**base, "integrator": "dop853", "rtol": 1e-13, "atol": 1e-15}, n_snapshots=1)
    psi_ref = final_psi(ref.run())
    errors = []
    for dt in dts:
        psi = final_psi(NLSELab(preset="single_soliton", n_snapshots=1, dt=dt, **base).run())
        errors.append(float(np.max(np.abs(psi - psi_ref))))
    slope = fitted_slope(dts, errors)
    assert abs(slope - order) <= 0.3, (name, dts, errors, slope)


def test_dop853_error_tracks_tolerance():
    errs = [final_error(N=256, amplitude=1.0, position=0.0, velocity=0.0, t_end=2.0, rtol=rtol, atol=rtol * 1e-2)
            for rtol in (1e-5, 1e-7, 1e-9)]
    assert errs[0] > errs[1] > errs[2]
    for rtol, e in zip((1e-5, 1e-7, 1e-9), errs):
        assert e < 100 * rtol


def test_single_soliton_preset_conserves_mass():
    ds = NLSELab(preset="single_soliton", t_end=5.0, n_snapshots=10).run()
    assert float(ds.mass_drift.max()) <= 1e-10
    assert float(ds.energy_drift.max()) <= 1e-9
    assert float(ds.momentum_drift.max()) <= 1e-9
    # exact invariants of A sech(A x) e^{ivx}: M = 2A, P = 2Av, H = A v^2 - A^3/3
    a, v = 2.0, 1.0
    assert float(ds.mass[0]) == pytest.approx(2 * a, rel=1e-12)
    assert float(ds.momentum[0]) == pytest.approx(2 * a * v, rel=1e-12)
    assert float(ds.energy[0]) == pytest.approx(a * v**2 - a**3 / 3, rel=1e-12)
    assert float(ds.error.max()) < 1e-9


def test_akhmediev_breather_against_exact():
    ds = NLSELab(preset="breather", N=1024, t_end=10.0, peak_time=5.0, n_snapshots=20,
                 rtol=1e-12, atol=1e-14).run()
    assert float(ds.error.max()) < 1e-9
    a = eq.akhmediev_parameter(0.5)
    peak = 1 + 2 * math.sqrt(2 * a)  # |ψ| at the peak of the Akhmediev breather
    assert float(ds.max_amplitude.max()) == pytest.approx(peak, rel=1e-6)
    # it grows and recedes: small modulation at both ends
    assert float(ds.max_amplitude[0]) < 1.2 and float(ds.max_amplitude[-1]) < 1.2


def test_breather_growth_rate_is_the_modulation_instability_gain():
    # b = sqrt(8a(1-2a)) equals the MI gain Ω sqrt(1 - Ω²/4) of the unit background
    for omega in (0.5, 1.0, 1.5):
        assert eq.akhmediev_growth_rate(omega) == pytest.approx(omega * math.sqrt(1 - omega**2 / 4))


def test_two_soliton_shift_matches_theory():
    # collisions at t = 5 and (through the periodic boundary) t = 17.5
    ds = NLSELab(preset="two_soliton", N=512, t_end=22.0, n_snapshots=44).run()
    after_first = ds.where((ds.collisions == 1), drop=True)
    after_second = ds.where((ds.collisions == 2), drop=True)
    assert after_first.step.size > 3 and after_second.step.size > 0
    d1, d2 = eq.soliton_collision_shift(2.0, 2.0, 1.5, -2.0)
    assert d1 > 0 > d2  # each soliton jumps ahead along its own direction
    np.testing.assert_allclose(after_first.shift_1, d1, atol=1e-5)
    np.testing.assert_allclose(after_first.shift_2, d2, atol=1e-5)
    np.testing.assert_allclose(after_second.shift_1, 2 * d1, atol=1e-5)
    assert float(ds.shift_error.max()) < 1e-5
    # before the first collision the solitons move freely
    before = ds.where(ds.collisions == 0, drop=True)
    assert float(np.abs(before.shift_1).max()) < 1e-6


def test_numerics_run_on_array_api_strict():
    xp = array_api_strict
    results = []
    for namespace in (xp, None):
        import array_api_compat
        ns = namespace or array_api_compat.array_namespace(np.zeros(1))
        grid = FourierGrid(30.0, 64, ns)
        psi = eq.soliton(grid.x[0], 0.0, 1.0, 0.0, 0.5, 30.0)
        from explore.numerics.integrators import make_integrator
        for name in INTEGRATORS:
            info = INTEGRATORS[name]
            # (split-step composes exact flows: a dealiased nonlinear term has none)
            problem = eq.NLSEProblem(grid, None if "nonlinear_flow" in info.requires else grid.dealias_mask())
            stepper = make_integrator(name, problem, dt=None if info.adaptive else 0.01, rtol=1e-8, atol=1e-10)
            state = stepper.init(0.0, grid.fft(psi))
            while state.t < 0.1:
                state = stepper.step(state, 0.1)
            out = grid.ifft(state.y)
            results.append((name, np.asarray(out), eq.mass(grid, out), eq.hamiltonian(grid, out), eq.momentum(grid, out)))
    half = len(results) // 2
    for strict, plain in zip(results[:half], results[half:]):
        assert strict[0] == plain[0]
        np.testing.assert_allclose(strict[1], plain[1], atol=1e-13)
        np.testing.assert_allclose(strict[2:], plain[2:], rtol=1e-12)


def test_a_soliton_crossing_the_boundary_keeps_its_exact_phase():
    """v L / 2π is not an integer: the exact soliton's carrier follows the wrapped centre, so a run
    through the edge stays at the integrator's error (the plain e^{ivx} made it 0.5 at t = 40)."""
    grid = FourierGrid(50.0, 512, np)
    x = grid.x[0]
    A, v, x0 = 2.0, 1.0, -10.0
    stepper = make_integrator("split_step6", eq.NLSEProblem(grid), dt=0.01)
    state = stepper.init(0.0, grid.fft(eq.soliton(x, 0.0, A, x0, v, 50.0)))
    for t in (20.0, 40.0):  # the centre crosses x = 25 at t = 35
        while state.t < t - 1e-12:
            state = stepper.step(state, t)
        assert np.max(np.abs(grid.ifft(state.y) - eq.soliton(x, t, A, x0, v, 50.0))) < 1e-6, t


def test_split_step_refuses_a_projected_nonlinear_term():
    """``P ∘ (exact nonlinear flow)`` is not the flow of ``u' = P N(u)``: with a projector every split-step
    method was first order (split_step6 measured 0.9) and its mass drifted ~dt. The problem refuses the
    flow with a projector, and the lab the combination, by name."""
    grid = FourierGrid(30.0, 64, np)
    with pytest.raises(ValueError, match="no exact flow"):
        eq.NLSEProblem(grid, grid.dealias_mask(0.5)).nonlinear_flow(grid.fft(np.ones(64, complex)), 0.1)
    for integrator in ("split_step", "split_step4", "split_step6"):
        for dealias in ("two_thirds", "half", "filter"):
            with pytest.raises(ValueError, match="needs dealias = 'none'"):
                NLSELab(integrator=integrator, dealias=dealias, dt=0.01).run()


def test_the_filter_keeps_mass_and_its_hamiltonian():
    """The filter enters symmetrically, N = iσF(|ψ_σ|²ψ_σ) with ψ_σ = F⁻¹(σψ̂): mass and the Hamiltonian
    with |ψ_σ|⁴ are invariants, so their drifts measure the integrator (filtering the product alone
    drifted the mass by 6e-6 at any tolerance). The truncation masks give the same numbers as before
    (a truncated state is its own projection)."""
    base = dict(preset="modulation_instability", N=256, t_end=10.0, n_snapshots=5)
    filtered = NLSELab(**base, dealias="filter").run()
    assert float(filtered.mass_drift.max()) < 1e-10 and float(filtered.energy_drift.max()) < 1e-8
    tight = NLSELab(**base, dealias="filter", rtol=1e-11, atol=1e-13).run()
    assert float(tight.mass_drift.max()) < float(filtered.mass_drift.max()) or float(tight.mass_drift.max()) < 1e-13


def test_noise_is_the_peer_librarys_for_the_same_seed():
    """The modulation-instability preset adds the peer's field: NumPy's legacy generator seeded 42,
    real parts then imaginary parts."""
    lab = NLSELab(preset="modulation_instability", N=64)
    grid = FourierGrid(lab.L, lab.N, np)
    rng = np.random.RandomState(42)
    noise = 0.01 * (rng.randn(64) + 1j * rng.randn(64))
    gaussian = np.exp(-grid.x[0] ** 2 / (2 * 5.0**2))
    np.testing.assert_allclose(lab.initial_state(grid), gaussian + noise, rtol=0, atol=1e-15)


def test_modulated_soliton_is_smooth_across_the_edge_wherever_it_sits():
    """Envelope and carrier are taken at the wrapped distance: at position 20 the field's spectrum decays
    as at position 0 (the carrier e^{iνx} alone jumped by 4e-3 at the edge)."""
    tails = []
    for position in (0.0, 20.0):
        lab = NLSELab(preset="modulated_soliton", position=position, N=512)
        grid = FourierGrid(lab.L, lab.N, np)
        spectrum = np.abs(grid.fft(lab.initial_state(grid)))
        tails.append(spectrum[np.abs(grid.k[0]) > 0.6 * grid.k_nyquist[0]].max() / spectrum.max())
    assert tails[1] < 1e-9 and tails[0] < 1e-9, tails


def test_breather_far_from_its_peak_is_the_background():
    """Far from the peak the Akhmediev breather is the plane wave e^{it} times a constant phase; its
    formula overflowed (cosh) beyond |b t| ~ 710."""
    x = np.linspace(-10, 10, 7)
    far = eq.akhmediev_breather(x, -2000.0, 0.5)
    assert np.all(np.isfinite(far)) and np.allclose(np.abs(far), 1.0, rtol=1e-12)
    near = eq.akhmediev_breather(x, 0.3, 0.5)
    a = eq.akhmediev_parameter(0.5)
    b, s = math.sqrt(8 * a * (1 - 2 * a)), math.sqrt(2 * a)
    closed = ((1 - 4 * a) * math.cosh(b * 0.3) + s * np.cos(0.5 * x) + 1j * b * math.sinh(b * 0.3)) / (
        s * np.cos(0.5 * x) - math.cosh(b * 0.3)) * np.exp(0.3j)
    np.testing.assert_allclose(near, closed, rtol=1e-14)
    ds = NLSELab(preset="breather", peak_time=2000.0, t_end=0.1, n_snapshots=1).run()
    assert np.isfinite(float(ds.error[-1]))


def test_collision_shifts_on_a_coarse_grid_do_not_crash():
    """A soliton narrower than the grid spacing (N = 32, A = 4): its centre is the nearest grid point
    (the window of 3/A held no point: argmax of an empty array)."""
    ds = NLSELab(preset="two_soliton", N=32, amplitude=4.0, integrator="etdrk4", dt=0.01, t_end=12.0,
                 n_snapshots=24).run()
    assert "shift_1" in ds and np.isfinite(ds.shift_1.values).any()


@pytest.mark.parametrize("fraction, exact", [(1 / 2, True), (2 / 3, False)])
def test_the_half_rule_removes_all_aliasing_of_the_cubic_term(fraction, exact):
    """On band-limited data the masked pseudo-spectral |ψ|²ψ equals the exact (zero-padded) product's
    retained modes with the ½ mask; the 2/3 mask, exact for quadratic products, lets aliases back in."""
    n = 128
    grid = FourierGrid(20.0, n, np)
    mask = np.asarray(grid.dealias_mask(fraction))
    rng = np.random.default_rng(0)
    u = mask * grid.fft(rng.standard_normal(n) + 1j * rng.standard_normal(n))
    m = 2 * n  # a cubic product of modes |k| ≤ k_N needs 2N points to be alias-free
    index = np.round(np.fft.fftfreq(n) * n).astype(int) % m
    padded = np.zeros(m, complex)
    padded[index] = u
    psi = np.fft.ifft(padded, norm="ortho") * math.sqrt(m / n)
    product = np.fft.fft(1j * np.abs(psi) ** 2 * psi, norm="ortho") / math.sqrt(m / n)
    alias_free = mask * product[index]
    aliasing = np.max(np.abs(eq.NLSEProblem(grid, mask).nonlinear(0.0, u) - alias_free)) / np.max(np.abs(alias_free))
    assert (aliasing < 1e-13) if exact else (aliasing > 1e-2), aliasing


def test_the_lab_truncates_at_the_half_rule():
    """``dealias="half"``: the state keeps no mode at or above k_N / 2, and the soliton is still exact
    to the truncation error (A = 1, v = 1: its spectrum sech(π(k - v) / 2A) is ~1e-10 at
    k_N / 2 = π·512 / 100)."""
    ds = NLSELab(preset="single_soliton", amplitude=1.0, dealias="half", t_end=0.5, n_snapshots=1,
                 integrator="etdrk4", dt=1e-3).run()
    spectrum = np.abs(np.fft.fft(final_psi(ds)))
    m = np.abs(np.fft.fftfreq(512) * 512)
    assert spectrum[m >= 128].max() < 1e-14 * spectrum.max()  # (ψ is stored in x: round-off only)
    assert float(ds.error[-1]) < 1e-7


# ------------------------------------------------------------------ entropies of |ψ|²
def test_entropies_of_a_uniform_density_are_exact():
    """p = 1/n everywhere: Shannon and every Rényi entropy are ln n; Tsallis is (1 - n^(1-q)) / (q - 1)."""
    from explore.numerics.entropy import renyi_entropy, shannon_entropy, tsallis_entropy

    n = 1000
    density = np.full(n, 0.37)
    assert shannon_entropy(density) == pytest.approx(math.log(n), rel=1e-15)
    for q in (0.5, 2.0, 10.0):
        assert renyi_entropy(density, q) == pytest.approx(math.log(n), rel=1e-13)
        assert tsallis_entropy(density, q) == pytest.approx((1 - n ** (1 - q)) / (q - 1), rel=1e-13)


@pytest.mark.parametrize("xp", [np, array_api_strict], ids=["numpy", "array_api_strict"])
def test_entropies_tend_to_shannon_as_q_tends_to_1(xp):
    """|R_q - S| and |T_q - S| are O(|q - 1|) (≈ 1e-9 at q = 1 ± 1e-10 for a soliton's |ψ|²): the
    sums near 1 are taken as sum p (p^(q-1) - 1), not as 1 - sum p^q, which lost ~7 digits there (a
    2.5e-7 relative error at q = 1 + 1e-10). Far from 1 (q = 10) the Rényi entropy is log(sum p^q)."""
    from explore.numerics.entropy import renyi_entropy, shannon_entropy, tsallis_entropy

    x = -25 + 50 / 512 * np.arange(512)
    density = xp.asarray((2 / np.cosh(2 * (x + 10))) ** 2)
    shannon = shannon_entropy(density)
    for eps in (1e-10, -1e-10, 1e-12):
        for entropy in (renyi_entropy, tsallis_entropy):
            assert abs(entropy(density, 1 + eps) - shannon) < 20 * abs(eps) * shannon
    p = np.asarray(density) / float(np.sum(np.asarray(density)))
    assert renyi_entropy(density, 10.0) == pytest.approx(math.log(np.sum(p**10)) / -9, rel=1e-14)
    assert tsallis_entropy(density, 10.0) == pytest.approx((1 - np.sum(p**10)) / 9, rel=1e-14)


def test_whole_equal_steps_fill_each_frame_interval():
    """dt = 0.003 against frames 0.2 apart is 67 steps of 0.2 / 67 a frame, the run with that step
    exactly (not 66 steps of 0.003 and a clipped one of 0.002)."""
    runs = [NLSELab(preset="single_soliton", integrator="etdrk4", t_end=0.4, n_snapshots=2, dt=dt).run()
            for dt in (0.003, 0.2 / 67)]
    assert int(runs[0].steps[-1]) == 2 * 67
    np.testing.assert_array_equal(final_psi(runs[0]), final_psi(runs[1]))


def test_frames_and_result_shapes():
    lab = NLSELab(preset="two_soliton", N=256, t_end=1.0, n_snapshots=5)
    frames = list(lab.frames())
    assert [f.step for f in frames] == list(range(6))
    assert frames[-1].progress == 1.0 and frames[-1].time == pytest.approx(1.0)
    f = frames[-1]
    assert set(f.convergence) >= {"mass_drift", "momentum_drift", "energy_drift"}
    assert f.spectrum.logy and f.spectrum.x.shape == (256,)
    assert f.samples["abs_psi"].y.shape == (256,)
    assert f.samples["waterfall"].values.shape == (6, 256)
    big = list(NLSELab(N=2048, t_end=0.01, n_snapshots=1, integrator="etdrk4", dt=0.005).frames())[-1]
    assert big.samples["abs_psi"].x.size <= 512 and big.spectrum.x.size <= 512
    ds = lab.run()
    assert ds.mass_drift.dims == ("step",) and ds.abs_psi.dims == ("step", "x")
    assert ds.spectrum.dims == ("step", "k")
    assert ds.attrs["N"] == 256 and ds.attrs["lab"] == "nlse" and ds.attrs["integrator"] == "dop853"


def test_a_long_run_keeps_its_waterfall_bounded(monkeypatch):
    """A run of many frames: the waterfall shows at most MAX_PIXELS rows (a stride ending at the newest
    frame, in time order), and a headless run keeps the fields of its last frame only (every frame held
    the waterfall of all earlier ones: memory grew with the square of ``n_snapshots``; 4000 frames of
    N = 512 were killed for memory)."""
    import explore.core.result as result
    from explore.core.frame import MAX_PIXELS

    kept = []
    make = result.frames_to_parts
    monkeypatch.setattr(result, "frames_to_parts", lambda frames, *a, **k: kept.append(frames) or make(frames, *a, **k))
    n = 2 * MAX_PIXELS + 100
    ds = NLSELab(N=32, t_end=0.5, n_snapshots=n, integrator="etdrk4", dt=0.5 / n).run()
    frames = kept[0]
    assert len(frames) == n + 1
    assert all("waterfall" not in f.samples and "abs_psi" in f.samples for f in frames[:-1])
    shown = frames[-1].samples["waterfall"]
    assert shown.values.shape == (len(shown.y), 32) and MAX_PIXELS // 2 < len(shown.y) <= MAX_PIXELS
    assert shown.y[-1] == ds.time.values[-1] and np.all(np.diff(shown.y) > 0)
    rows = np.searchsorted(ds.time.values, shown.y)
    np.testing.assert_array_equal(ds.time.values[rows], shown.y)
    np.testing.assert_array_equal(ds.abs_psi.values[rows], shown.values)  # the rows are the frames' |ψ|


def test_netcdf_round_trip(tmp_path):
    import xarray as xr

    ds = NLSELab(preset="single_soliton", N=128, t_end=0.5, n_snapshots=4, integrator="ifrk4", dt=0.01).run()
    path = tmp_path / "run.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    back = xr.load_dataset(path, engine="h5netcdf")
    xr.testing.assert_identical(ds, back)


def test_determinism_and_round_trip_through_parameters():
    lab = NLSELab(preset="modulation_instability", N=128, t_end=0.5, n_snapshots=2)
    a = lab.run()
    b = type(lab)(**lab.values()).run()
    np.testing.assert_array_equal(a.psi_real, b.psi_real)
    c = NLSELab(preset="modulation_instability", N=128, t_end=0.5, n_snapshots=2, seed=7).run()
    assert not np.array_equal(a.psi_real, c.psi_real)


@pytest.mark.parametrize("preset", list(NLSELab.presets))
def test_every_preset_runs(preset):
    ds = NLSELab(preset=preset, t_end=0.2, n_snapshots=2).run()
    assert float(ds.mass_drift.max()) < 1e-8


@pytest.mark.parametrize(
    "params, name",
    [
        (dict(N=0), "N"),
        (dict(L=-1.0), "L"),
        (dict(integrator="euler"), "integrator"),
        (dict(amplitude=float("nan")), "amplitude"),
        (dict(position=float("nan")), "position"),
        (dict(initial="akhmediev_breather", omega=0.5, L=50.0), "L"),
        (dict(integrator="rk4", dt=1e-12), "dt"),
        (dict(nonsense=1), "nonsense"),
        # an initial condition with no mass on the grid (the drifts are relative to it): was a ZeroDivisionError
        (dict(amplitude=1e8, N=64), "'amplitude'"),
        (dict(amplitude=1e-300, N=64), "'amplitude'"),
        (dict(preset="modulated_soliton", amplitude=1e-200, N=64), "'amplitude'"),
        (dict(L=1e-160, N=64), "'L'.*overflow"),  # (was an OverflowError in the divergence hint)
    ],
)
def test_bad_input_names_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        lab = NLSELab(**params)
        next(lab.frames())


def test_blow_up_stops_with_a_message():
    lab = NLSELab(preset="single_soliton", integrator="rk4", dt=0.05, t_end=5.0, n_snapshots=5)
    with pytest.raises(SolverDiverged, match=r"non-finite at t = .*ifrk4"):
        lab.run()


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset"):
        NLSELab(preset="nope")


def test_spectrum_is_the_continuous_transform():
    """The plotted spectrum is |ψ~(k)|² with ψ~(k) = ∫ ψ e^{-ikx} dx: for the soliton A sech(A x) it is
    π² sech²(π k / 2A) whatever A (a grid-normalised |FFT|² would scale with N or L)."""
    for amplitude, N in ((1.0, 256), (2.0, 512)):
        f = next(iter(NLSELab(preset="single_soliton", amplitude=amplitude, velocity=0.0, N=N, t_end=0.1,
                              n_snapshots=1).frames()))
        k, power = np.asarray(f.spectrum.x), np.asarray(f.spectrum.y)
        exact = (math.pi / np.cosh(math.pi * k / (2 * amplitude))) ** 2
        assert power.max() == pytest.approx(math.pi**2, rel=1e-6)
        assert np.allclose(power, exact, rtol=1e-6, atol=1e-12), np.max(np.abs(power - exact))
