"""The Kelvin–Helmholtz lab: exact transforms, linear stability, invariants, budgets, orders, backends."""
from __future__ import annotations

import math

import array_api_compat
import array_api_strict
import numpy as np
import pytest

from explore.core import SolverDiverged
from explore.labs import kelvin_helmholtz as kh_module
from explore.labs.kelvin_helmholtz import KH_INTEGRATORS, KelvinHelmholtzLab
from explore.numerics import boussinesq as bq
from explore.numerics.integrators import INTEGRATORS, make_integrator

NP = array_api_compat.array_namespace(np.zeros(1))
SMALL = dict(nx=64, nz=32, t_end=0.5, n_snapshots=2)


def fitted_slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


#: the three ways of a wall grid's transforms: SciPy's DCT/DST, dense matrices, the even/odd extension
PATHS = {"scipy": dict(), "dense": dict(fast_path=False), "extension": dict(fast_path=False, dense=False)}


@pytest.mark.parametrize("walls", [True, False])
@pytest.mark.parametrize("path", list(PATHS))
def test_transforms_are_exact_on_the_band(walls, path):
    g = bq.ChannelGrid(2.0, 1.0, 32, 16, NP, walls=walls, **PATHS[path])
    assert g._dense_z == (walls and path == "dense")
    x, z = g.x[None, :], g.z[:, None]
    kx = 2 * math.pi * 2 / g.Lx
    if walls:  # cosine mode 3 and sine mode 5 of the wall-bounded box
        kz = 3 * math.pi / g.Lz
        even = np.cos(kx * x) * np.cos(kz * (z + 0.5)) + 0.25
        odd = np.sin(kx * x) * np.sin(kz * (z + 0.5))
        d_odd_dz = np.sin(kx * x) * kz * np.cos(kz * (z + 0.5))
    else:
        kz = 2 * 2 * math.pi / g.Lz
        even = np.cos(kx * x) * np.cos(kz * z) + 0.25
        odd = np.sin(kx * x) * np.sin(kz * z)
        d_odd_dz = np.sin(kx * x) * kz * np.cos(kz * z)
    for f, parity in ((even, bq.EVEN), (odd, bq.ODD)):
        c = g.forward(f, parity)
        np.testing.assert_allclose(g.inverse(c, parity), f, atol=1e-14)
    c_even = g.forward(even, bq.EVEN)
    assert c_even[0, 0].real == pytest.approx(0.25, abs=1e-15)  # the [0, 0] coefficient is the mean
    assert float(g.mean(even)) == pytest.approx(0.25, abs=1e-15)
    np.testing.assert_allclose(g.inverse(g.ikz * g.forward(odd, bq.ODD), bq.EVEN), d_odd_dz, atol=1e-12)
    # Parseval with the half-spectrum weights
    assert float(g.inner(c_even, c_even)) == pytest.approx(float(g.mean(even * even)), rel=1e-13)


@pytest.mark.parametrize("path", ["scipy", "dense"])
def test_fast_and_dense_paths_equal_the_extension(path):
    a = bq.ChannelGrid(2.0, 1.0, 64, 32, NP, **PATHS[path])
    b = bq.ChannelGrid(2.0, 1.0, 64, 32, NP, **PATHS["extension"])
    f = np.random.default_rng(0).standard_normal((2, 33, 64))
    for parity in (bq.EVEN, bq.ODD):
        np.testing.assert_allclose(a.forward(f, parity), b.forward(f, parity), atol=1e-15)
        c = b.forward(f, parity)
        np.testing.assert_allclose(a.inverse(c, parity), b.inverse(c, parity), atol=1e-14)


def test_dense_transforms_follow_the_size():
    """Dense matrices where a direction has at most DENSE_MAX points (off NumPy's SciPy path), FFTs beyond."""
    small = bq.ChannelGrid(2.0, 1.0, bq.DENSE_MAX, bq.DENSE_MAX - 1, NP, fast_path=False)
    wide = bq.ChannelGrid(2.0, 1.0, 2 * bq.DENSE_MAX, 64, NP, fast_path=False)
    tall = bq.ChannelGrid(2.0, 1.0, 64, bq.DENSE_MAX, NP, fast_path=False)
    periodic = bq.ChannelGrid(2.0, 1.0, 64, 64, NP, walls=False)
    assert (small._dense_z, small._dense_x) == (True, True)
    assert (wide._dense_z, wide._dense_x) == (True, False)
    assert (tall._dense_z, tall._dense_x) == (False, False)
    assert not periodic._dense_z and not bq.ChannelGrid(2.0, 1.0, 64, 32, NP)._dense_z
    f = np.random.default_rng(1).standard_normal((65, 2 * bq.DENSE_MAX))
    ref = bq.ChannelGrid(2.0, 1.0, 2 * bq.DENSE_MAX, 64, NP)
    for parity in (bq.EVEN, bq.ODD):  # dense in z, FFT in x
        np.testing.assert_allclose(wide.forward(f, parity), ref.forward(f, parity), atol=1e-15)


@pytest.mark.parametrize("preset", ["basic_shear", "forced", "rotating"])
def test_fast_nonlinear_term_equals_the_generic_one(preset):
    """SciPy's real transforms on the kept modes (NumPy fast path) and the dense matrices (the GPU's
    path), full and compact, = the array-API even/odd extension: tendencies, CFL rates and the
    kinetic-energy budget, on a strongly nonlinear band-limited state (with a mean flow)."""
    lab = KelvinHelmholtzLab(preset=preset, nx=64, nz=32)
    y0, um, forcing, psi_f = lab.initial_state()
    um += 0.3
    out = []
    for path in ("scipy", "extension", "dense"):
        grid = bq.ChannelGrid(lab.Lx, lab.Lz, 64, 32, NP, **PATHS[path])
        problem = bq.BoussinesqProblem(grid, lab.Re, lab.Ri, lab.Pr, mean_velocity=um, rotation=lab.rotation,
                                       forcing=forcing, forcing_streamfunction=psi_f)
        assert (problem._fast is not None, problem._dense is not None) == (path == "scipy", path == "dense")
        rng = np.random.default_rng(5)
        y = y0 + np.abs(y0).max() * (rng.standard_normal(y0.shape) + 1j * rng.standard_normal(y0.shape)) * grid.dealias
        y[0, 0], y[0, -1] = 0, 0  # ζ is a sine series
        y[:, :, 0] = y[:, :, 0].real
        problem.record = True
        n = problem.nonlinear(0.0, y)
        out.append((n, problem.max_speed, (problem.max_rate, problem.buoyancy_frequency), problem.budget))
    # the compact state (the dealiased band only) gives the same tendencies on the band
    for path in ("scipy", "dense"):
        grid = bq.ChannelGrid(lab.Lx, lab.Lz, 64, 32, NP, **PATHS[path])
        problem = bq.BoussinesqProblem(grid, lab.Re, lab.Ri, lab.Pr, mean_velocity=um, rotation=lab.rotation,
                                       forcing=forcing, forcing_streamfunction=psi_f, compact=True)
        assert problem.compact and problem.linear.shape == (2, 22, 22)
        np.testing.assert_array_equal(problem.expand(problem.compress(y)), y)  # y is dealiased
        problem.record = True
        n = problem.expand(problem.nonlinear(0.0, problem.compress(y)))
        out.append((n, problem.max_speed, (problem.max_rate, problem.buoyancy_frequency), problem.budget))
    (b, sb, rb, bb) = out.pop(1)
    # the buoyancy frequency sqrt(Ri max|ρ_z|), from the density gradient on the grid
    ext = bq.ChannelGrid(lab.Lx, lab.Lz, 64, 32, NP, **PATHS["extension"])
    rho_z = ext.inverse(ext.ikz * y[1], bq.ODD)
    assert rb[1] > 0 and rb[1] == pytest.approx(np.sqrt(lab.Ri * np.abs(rho_z).max()), rel=1e-14)
    for a, sa, ra, ba in out:
        np.testing.assert_allclose(a, b, atol=1e-13 * np.abs(b).max())
        np.testing.assert_allclose(sa, sb, rtol=1e-14)
        assert ra == pytest.approx(rb, rel=1e-14)
        for key in bb:
            assert ba[key] == pytest.approx(bb[key], rel=1e-12, abs=1e-16), key


def test_fast_path_falls_back_to_scipy_then_to_the_public_transforms(monkeypatch):
    """The fast path transforms with ducc0; where ducc0 is missing or differs, with SciPy's private FFT
    module (pocketfft up to 1.17, duccfft from 1.18), and where that is missing or differs too, with
    scipy.fft / numpy.fft themselves. All three give the same tendencies."""
    lab = KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=32)
    y0, um, _, _ = lab.initial_state()
    grid = bq.ChannelGrid(lab.Lx, lab.Lz, 64, 32, NP)

    def tendencies():
        problem = bq.BoussinesqProblem(grid, lab.Re, lab.Ri, lab.Pr, mean_velocity=um, compact=True)
        return problem.nonlinear(0.0, problem.compress(y0)), problem._fast._dct

    ducc, dct = tendencies()
    assert dct.backend == "ducc0.fft"

    monkeypatch.setattr(bq, "ducc_fft", lambda: None)  # ducc0 not installed
    direct, dct = tendencies()
    assert dct.backend.startswith("scipy.fft._")

    def differs(fast, public, tol):
        raise ValueError("differs")

    monkeypatch.setattr(bq, "_checked", differs)
    public, dct = tendencies()
    assert dct.__name__ == "sf_dct"
    np.testing.assert_allclose(public, direct, rtol=0, atol=1e-14 * np.abs(direct).max())
    np.testing.assert_allclose(ducc, direct, rtol=0, atol=1e-14 * np.abs(direct).max())


def test_fast_nonlinear_term_reuse_and_lazy_speeds():
    """A repeated evaluation with ``record`` at the state of the previous one (a frame's diagnostics,
    then the next step's first stage) gives that result and budget again, as a copy; any other
    evaluation computes. The CFL speeds and the buoyancy frequency read later are those of the last
    evaluation."""
    lab = KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=32)
    y0, um, forcing, psi_f = lab.initial_state()
    grid = bq.ChannelGrid(lab.Lx, lab.Lz, 64, 32, NP)

    def problem():
        return bq.BoussinesqProblem(grid, lab.Re, lab.Ri, lab.Pr, mean_velocity=um, compact=True)

    p, ref = problem(), problem()
    rng = np.random.default_rng(3)
    y1 = p.compress(y0)
    y2 = y1 + 0.1 * np.abs(y1).max() * rng.standard_normal(y1.shape) * (np.abs(y1) > 0)

    def fresh(y, record=True):  # a new problem: nothing to reuse
        ref._fast._memo = None
        ref.record = record
        return ref.nonlinear(0.0, y), ref.max_speed, (ref.max_rate, ref.buoyancy_frequency), ref.budget

    p.record = True
    n1 = p.nonlinear(0.0, y1)
    b1 = dict(p.budget)
    p.record = True
    n1_again = p.nonlinear(0.0, y1.copy())  # equal values: reused
    assert p._fast._calls == 1 and n1_again is not n1
    np.testing.assert_array_equal(n1_again, n1)
    assert p.budget == b1 and p.record is False
    n_ref, s_ref, r_ref, b_ref = fresh(y1)
    np.testing.assert_array_equal(n1, n_ref)
    assert (p.max_speed, (p.max_rate, p.buoyancy_frequency), b1) == (s_ref, r_ref, b_ref)
    # another state, or an evaluation in between: computed again
    p.record = True
    p.nonlinear(0.0, y2)
    p.nonlinear(0.0, y1)
    p.record = True
    n1_third = p.nonlinear(0.0, y1)
    assert p._fast._calls == 4
    np.testing.assert_array_equal(n1_third, n_ref)
    # speeds are those of the last evaluation, however many came before and whenever read
    p.nonlinear(0.0, y2)
    _, s2, r2, _ = fresh(y2, record=False)
    assert (p.max_speed, (p.max_rate, p.buoyancy_frequency)) == (s2, r2)
    assert r2[0] != r_ref[0] and r2[1] != r_ref[1]


def test_rayleigh_solver_reproduces_michalke():
    """U = tanh z: maximal growth 0.1897 at α = 0.4446, neutral at α = 1 (Michalke 1964)."""
    assert bq.rayleigh_growth_rate(bq.MICHALKE_ALPHA_MAX) == pytest.approx(bq.MICHALKE_GROWTH_MAX, rel=5e-3)
    assert bq.rayleigh_growth_rate(1.05) == 0.0
    sigma, c = bq.rayleigh_growth_rate(0.3, return_phase_speed=True)
    assert 0 < sigma < bq.MICHALKE_GROWTH_MAX and abs(c) < 1e-6  # the mode of an odd profile is stationary
    # converged in n over the whole unstable band, up to the thin critical layer near neutral
    alphas = np.array([0.3, 0.8, 0.9, 0.95, 0.98])
    curve = bq.rayleigh_growth_curve(alphas)
    np.testing.assert_allclose(curve[[1, 4]], bq.rayleigh_growth_curve(alphas[[1, 4]], n=480), rtol=1e-4)
    assert np.all(np.diff(curve) < 0) and 0.005 < bq.rayleigh_growth_rate(0.99) < curve[-1] < 0.02
    # plain Chebyshev points miss the critical layer there (0.0245 for 0.0588 at α = 0.9)
    assert bq.rayleigh_growth_rate(0.9, cluster=None, n=160) < 0.5 * curve[2]


def test_taylor_goldstein_solver():
    """U = tanh z, N² = J sech² z: J → 0 is Rayleigh's equation; the neutral curve is J = α(1 − α), so
    no mode grows for J ≥ 1/4 (Miles–Howard); spurious critical-layer modes are not reported."""
    assert bq.taylor_goldstein_growth_rate(0.4446, 1e-9) == pytest.approx(bq.rayleigh_growth_rate(0.4446), rel=1e-6)
    for alpha, J in [(0.5, 0.22), (0.7, 0.19), (0.3, 0.19)]:  # inside: α(1 − α) > J
        assert bq.taylor_goldstein_growth_rate(alpha, J) > 1e-3, (alpha, J)
    for alpha, J in [(0.3, 0.23), (0.8, 0.18), (0.5, 0.26)]:  # outside
        assert bq.taylor_goldstein_growth_rate(alpha, J) == 0.0, (alpha, J)
    # close inside the neutral curve Im c is small and the critical layer thin (these were reported
    # stable): against a converged solve (400 points) and on both sides of α(1 − α) = J
    for alpha, J, outside in [(0.70, 0.2, 0.73), (0.42, 0.24, 0.39), (0.86, 0.1, 0.89)]:
        rate = bq.taylor_goldstein_growth_rate(alpha, J)
        assert 1e-3 < rate == pytest.approx(bq.taylor_goldstein_growth_rate(alpha, J, n=400), rel=1e-3), (alpha, J)
        assert bq.taylor_goldstein_growth_rate(outside, J) == 0.0, (outside, J)
    rates = [bq.taylor_goldstein_growth_rate(0.45, J) for J in (0.0, 0.1, 0.2)]
    assert np.all(np.diff(rates) < 0)  # stratification slows the growth


@pytest.mark.parametrize("alpha, Ri, nz, t_end", [(bq.MICHALKE_ALPHA_MAX, 0.0, 64, 40.0), (0.9, 0.0, 256, 80.0),
                                                  (bq.MICHALKE_ALPHA_MAX, 0.2, 128, 40.0), (0.5, 0.46, 128, 120.0)])
def test_linear_growth_rate_matches_stability_theory(alpha, Ri, nz, t_end):
    """A small single-mode perturbation of a tanh layer grows at the rate of linear theory (±5 %): at
    Ri = 0 Rayleigh's, at the fastest wavenumber and near the neutral one (whose thin critical layer
    needs the finer z); stratified (J = Ri/2 here), the Taylor–Goldstein rate, also close to its
    neutral curve J = α(1 − α) (J = 0.23 at α = 0.5)."""
    lab = KelvinHelmholtzLab(preset="basic_shear", Lx=2 * math.pi / alpha, Lz=20.0, nx=16, nz=nz,
                             shear_thickness=1.0, Ri=Ri, Re=1e5, noise=0.0, perturbation=1e-5,
                             t_end=t_end, n_snapshots=40, dt=0.5)
    ds = lab.run()
    t, energy = ds.time.values, ds.perturbation_energy.values
    late = t >= t_end / 2
    measured = float(np.polyfit(t[late], 0.5 * np.log(energy[late]), 1)[0])  # d ln|A| / dt
    theory = bq.taylor_goldstein_growth_rate(alpha, Ri / 2, half_height=10.0)
    assert theory > 0 and abs(measured / theory - 1) < 0.05, (measured, theory)
    # the lab shows both live: the growth rate between frames and the theory of the seeded mode
    # (the frame-to-frame rate carries the other modes' oscillations, stratified: its late mean is the rate)
    assert float(ds.theory_growth_rate[0]) == pytest.approx(theory, rel=1e-9)
    assert np.isnan(float(ds.growth_rate[0])) and abs(float(ds.growth_rate[late].mean()) / theory - 1) < 0.05
    if alpha == bq.MICHALKE_ALPHA_MAX and Ri == 0:
        assert abs(measured / bq.MICHALKE_GROWTH_MAX - 1) < 0.05


@pytest.mark.parametrize("preset", list(KelvinHelmholtzLab.presets))
def test_every_preset_runs_with_divergence_and_mean_density_at_round_off(preset):
    ds = KelvinHelmholtzLab(preset=preset, **SMALL).run()
    assert float(ds.divergence.max()) <= 1e-10
    assert float(ds.mean_density_drift.max()) <= 1e-14
    assert float(ds.energy_budget_residual.max()) < 1e-3
    assert ds.vorticity.dims == ("vorticity_y", "vorticity_x") and ds.spectrum.dims == ("step", "k")
    assert float(ds.perturbation_energy[-1]) > float(ds.perturbation_energy[0])  # the layer is unstable
    lab = KelvinHelmholtzLab(preset=preset)
    assert lab.Lx == 2.0 and lab.Lz == 1.0


def test_double_shear_is_the_peers_jet():
    """kh2d-solver's double_shear: density 1.0 between the two shear layers and 1.5 outside, so the upper
    interface is heavy over light and the flow starts with available potential energy; 'layered' is
    the stable variant (no APE at t = 0)."""
    lab = KelvinHelmholtzLab(preset="double_shear")
    rho = lab._to_physical_density(lab.base_profiles(np.array([-0.5, 0.0, 0.5]))[2])
    np.testing.assert_allclose(rho, [1.5, 1.0, 1.5], atol=1e-3)  # tanh layers of thickness 0.04, 0.15 from z = 0
    small = dict(preset="double_shear", nx=64, nz=64, t_end=0.1, n_snapshots=1)
    jet = KelvinHelmholtzLab(**small).run()
    layered = KelvinHelmholtzLab(**small, stratification="layered").run()
    assert float(jet.available_potential_energy[0]) > 0.1 * abs(float(jet.potential_energy[0]))
    assert abs(float(layered.available_potential_energy[0])) < 1e-4 * abs(float(layered.potential_energy[0]))
    with pytest.raises(ValueError, match="stratification"):
        KelvinHelmholtzLab(preset="basic_shear", stratification="jet").check()


def test_heavy_over_light_is_unstable():
    """Swapping rho_top and rho_bottom puts the heavy fluid on top: the density field is the stable
    one upside down, the flow starts with available potential energy, the buoyancy flux feeds the
    kinetic energy (B > 0) and the perturbation grows faster than over the stable layering. (Doubly
    periodic, an unstable background gradient has no bound, so it is refused.)"""
    small = dict(preset="basic_shear", nx=64, nz=32, t_end=1.0, n_snapshots=4, Ri=0.5)
    stable = KelvinHelmholtzLab(**small).run()
    unstable = KelvinHelmholtzLab(**small, rho_top=1.2, rho_bottom=1.0).run()
    lab = KelvinHelmholtzLab(**small, rho_top=1.2, rho_bottom=1.0)
    np.testing.assert_allclose(lab._to_physical_density(lab.base_profiles(np.array([-0.45, 0.45]))[2]), [1.0, 1.2],
                               atol=1e-6)
    assert float(unstable.available_potential_energy[0]) > 0.1 * abs(float(unstable.potential_energy[0]))
    assert float(stable.available_potential_energy[0]) < 1e-3 * abs(float(stable.potential_energy[0]))
    assert float(unstable.buoyancy_flux[1:].min()) > 0 > float(stable.buoyancy_flux[1:].max())
    assert float(unstable.perturbation_energy[-1]) > 1.3 * float(stable.perturbation_energy[-1])
    with pytest.raises(ValueError, match="rho_top"):
        KelvinHelmholtzLab(preset="double_shear", boundary="periodic", rho_top=1.6).check()


def test_doubly_periodic_double_shear():
    ds = KelvinHelmholtzLab(preset="double_shear", boundary="periodic", **SMALL).run()
    assert float(ds.divergence.max()) <= 1e-10 and float(ds.mean_density_drift.max()) <= 1e-14
    assert float(ds.energy_budget_residual.max()) < 1e-3


def test_energy_budget_closes_at_second_order_in_dt():
    """dKE/dt = -ε + B + P holds exactly in space; the residual is the trapezoid rule in time."""
    res = [float(KelvinHelmholtzLab(preset="forced", nx=64, nz=32, t_end=1.0, n_snapshots=1, cfl=0, dt=dt)
                 .run().energy_budget_residual[-1]) for dt in (0.02, 0.01)]
    assert 3.5 < res[0] / res[1] < 4.5, res


def test_first_same_as_last_steppers_record_the_budget_at_each_step_start():
    """dopri5 starts a step from the last one's final derivative; the budget must still be taken at
    (t0, y0). Then its residual is the trapezoid rule's over its steps, as for etdrk4: ∝ h², so
    about etdrk4's times (steps_etdrk4 / steps_dopri5)². Taken at the second stage instead it was
    ~30× that (3.2e-3)."""
    runs = {name: KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=32, t_end=1.0, n_snapshots=5,
                                     integrator=name).run() for name in ("dopri5", "etdrk4")}
    dp, etd = runs["dopri5"], runs["etdrk4"]
    expected = float(etd.energy_budget_residual.max()) * (int(etd.steps[-1]) / int(dp.steps[-1])) ** 2
    assert float(dp.energy_budget_residual.max()) < 2 * expected < 5e-4
    assert float(dp.pe_budget_residual.max()) < 5e-4


def test_a_flow_blowing_up_within_a_frame_is_stopped(monkeypatch):
    """Ri = 1e6 with the step's buoyancy bound switched off: the buoyancy oscillation is far too fast for
    the CFL step, the flow blows up but stays finite while the step keeps being divided (it ran 17
    million steps of ~1e-40): the step budget is checked inside the frame interval too."""
    monkeypatch.setattr(kh_module, "BUOYANCY_LIMIT", math.inf)
    with pytest.raises(SolverDiverged, match="stopped .* CFL step"):
        KelvinHelmholtzLab(nx=32, nz=16, t_end=0.5, n_snapshots=2, Ri=1e6).run()


def test_miles_howard_no_theory_growth_where_the_gradient_richardson_number_is_a_quarter(monkeypatch):
    """Single-mode stratified start: where J cosh⁴(z/δ)/cosh²(z/δ_ρ) ≥ 1/4 between the walls the
    theory rate is 0 by Miles–Howard, without an eigenproblem (at a tiny velocity, J = inf, that
    failed)."""
    from explore.numerics import boussinesq as bq

    solved = []
    solver = bq.taylor_goldstein_growth_rate
    monkeypatch.setattr(bq, "taylor_goldstein_growth_rate", lambda *a, **k: solved.append(a) or solver(*a, **k))
    single = dict(noise=0.0, perturbation=0.01)
    assert KelvinHelmholtzLab(**single, Ri=0.1)._theory_rate() > 0 and len(solved) == 1  # J = 0.0025
    assert KelvinHelmholtzLab(**single, Ri=10.0)._theory_rate() == 0.0 and len(solved) == 1  # J = 0.25
    assert KelvinHelmholtzLab(**single, velocity=1e-170)._theory_rate() == 0.0 and len(solved) == 1
    # a density layer thinner than the shear layer / √2: J ≥ 1/4 at the centre is not enough (Ri_g falls
    # away from it), so the eigenproblem decides
    KelvinHelmholtzLab(**single, Ri=10.0, density_thickness=0.01)._theory_rate()
    assert len(solved) == 2


def test_mixing_diagnostics_behave_physically():
    """basic_shear to t = 20 on 64 × 32: the billows mix irreversibly. The background PE never
    decreases, the available PE is never negative (and ~0 at t = 0: only the truncated initial profile's
    wiggles), the mixed layer thickens from the interface, the density entropy rises, and the
    cumulative mixing efficiency is a fraction well below 1/2 (≈ 0.1 here)."""
    ds = KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=32, t_end=20.0, n_snapshots=10).run()
    bpe, ape = ds.background_potential_energy.values, ds.available_potential_energy.values
    assert np.all(np.diff(bpe) >= 0) and bpe[-1] - bpe[0] > 0.1 * abs(bpe[0])
    assert np.all(ape >= 0) and ape[0] < 1e-3 * abs(bpe[0])
    thickness, entropy = ds.mixed_layer_thickness.values, ds.density_entropy.values
    assert thickness[-1] > 3 * thickness[0] and entropy[-1] > 1.5 * entropy[0]
    assert np.all((entropy >= 0) & (entropy <= 1))  # normalised by ln(bins)
    # the efficiency is (BPE gained) / (that + dissipated KE): the dissipation integrated over the frames
    # (trapezoid rule) agrees with the one integrated over the steps to ~2 %
    gained = bpe[-1] - bpe[0]
    t, eps = ds.time.values, ds.dissipation.values
    dissipated = float(np.sum(0.5 * (eps[1:] + eps[:-1]) * np.diff(t)))
    assert float(ds.mixing_efficiency[-1]) == pytest.approx(gained / (gained + dissipated), rel=0.05)
    assert 0.02 < float(ds.mixing_efficiency[-1]) < 0.5


def test_mixed_layer_of_the_initial_interface():
    """At t = 0 the mean density is the tanh interface of thickness δ_ρ: the band between 5 % and 95 % of
    the way across the jump is 2 artanh(0.9) δ_ρ thick (to the grid's resolution)."""
    lab = KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=128, t_end=0.01, n_snapshots=1)
    first = next(iter(lab.frames()))
    dz = lab.Lz / lab.nz
    assert abs(first.diagnostics["mixed_layer_thickness"] - 2 * math.atanh(0.9) * 0.05) <= 2 * dz


def test_doubly_periodic_energetics_use_the_linear_available_potential_energy():
    """Doubly periodic, z has no global meaning: APE = Ri <ρ'²>/(2γ) about the background gradient γ,
    whose budget d(APE)/dt = -B - χ is exact in space (advection conserves <ρ'²>): its residual is the
    trapezoid rule in time (second order), and the mixing efficiency ∫χ/(∫χ + ∫ε) is a fraction."""
    base = dict(preset="double_shear", boundary="periodic", nx=32, nz=32, t_end=2.0, n_snapshots=2, cfl=0,
                noise=0.05, Re=300.0)
    runs = [KelvinHelmholtzLab(**base, dt=dt).run() for dt in (0.02, 0.01)]
    res = [float(ds.pe_budget_residual[-1]) for ds in runs]
    assert 3.5 < res[0] / res[1] < 4.5, res
    ds = runs[1]
    assert "background_potential_energy" not in ds and "mixed_layer_thickness" not in ds
    assert float(ds.available_potential_energy[-1]) > 0 and 0 < float(ds.mixing_efficiency[-1]) < 1


def test_potential_energy_budget_closes_to_the_spatial_truncation():
    """dPE/dt = -B + Φ_d, Φ_d = -κ Ri (ρ̄_top − ρ̄_bottom)/Lz the diffusive flux through the no-flux
    walls, with PE = Ri <ρ z> exact for the cosine series. What is left is the 2/3 rule's projection
    (z is not a band-limited weight): it falls ~300× from 32 × 16 to 64 × 32 and is not a time error."""
    def residual(nx, nz, dt):
        ds = KelvinHelmholtzLab(preset="basic_shear", nx=nx, nz=nz, Re=200.0, noise=0.05, t_end=2.0,
                                n_snapshots=2, cfl=0, dt=dt).run()
        assert float(ds.pe_diffusion[-1]) > 0  # heavier below: diffusion raises the potential energy
        return float(ds.pe_budget_residual[-1])

    coarse, fine = residual(32, 16, 0.005), residual(64, 32, 0.005)
    assert fine < 1e-6 and fine < coarse / 100
    assert residual(64, 32, 0.01) == pytest.approx(fine, rel=0.1)  # not the time step's
    g = bq.ChannelGrid(2.0, 1.0, 16, 64, NP)
    z = g.z[:, None] + 0 * g.x[None, :]
    f = np.cos(3 * np.pi * (z + 0.5)) + 0.3 * np.tanh(z / 0.1)
    c = g.forward(f, bq.EVEN)
    # <cos(3π(z + 1/2)) z> = -2/(3π)² exactly; the tanh part is smooth and odd: compare with quadrature
    from scipy.integrate import quad
    ref = quad(lambda s: (math.cos(3 * math.pi * (s + 0.5)) + 0.3 * math.tanh(s / 0.1)) * s, -0.5, 0.5, limit=200)[0]
    assert float(g.z_moment(c)) == pytest.approx(ref, rel=1e-6)  # the trapezoid rule: 6e-4
    assert float(g.wall_mean_difference(c)) == pytest.approx(float(np.mean(f[-1] - f[0])), rel=1e-12)


@pytest.mark.parametrize("name", [n for n in KH_INTEGRATORS if not INTEGRATORS[n].adaptive])
def test_temporal_order_of_the_stepper(name):
    base = dict(preset="basic_shear", nx=32, nz=16, Re=100.0, shear_thickness=0.1, noise=0.05,
                t_end=0.4, n_snapshots=1, cfl=0, integrator=name)
    ref = KelvinHelmholtzLab(**{**base, "integrator": "etdrk4"}, dt=0.0025).run()
    dts = [0.04, 0.02, 0.01]
    errors = []
    for dt in dts:
        ds = KelvinHelmholtzLab(**base, dt=dt).run()
        errors.append(float(np.max(np.abs(ds.vorticity_final.values - ref.vorticity_final.values))))
    slope = fitted_slope(dts, errors)
    assert abs(slope - INTEGRATORS[name].order) <= 0.3, (name, errors, slope)


def test_cfl_step_follows_the_velocity():
    ds = KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=32, t_end=0.5, n_snapshots=2, cfl=0.5, dt=0.1).run()
    dt = float(ds.dt[-1])
    assert dt < 0.1 and 0.5 * (2.0 / 64) / 1.5 < dt <= 0.5 * (2.0 / 64)  # ≈ cfl · dx / max|u|


def test_default_cfl_step_is_stable_and_accurate():
    """The default CFL cap (1.5: steps at 0.83–0.9 of it) is a stability choice, not an accuracy one:
    over the roll-up (coarse grid) the result equals a run at a third of the step to 2e-4 of the field."""
    base = dict(preset="basic_shear", nx=64, nz=32, t_end=4.0, n_snapshots=4, dt=0.1)
    default = KelvinHelmholtzLab(**base).run()
    small = KelvinHelmholtzLab(**base, cfl=0.5).run()
    assert int(default.steps[-1]) < 0.4 * int(small.steps[-1])
    scale = float(np.abs(small.vorticity_final).max())
    assert float(np.abs(default.vorticity_final - small.vorticity_final).max()) < 2e-4 * scale
    assert float(default.energy_budget_residual.max()) < 1e-3


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("compact", [False, True])
def test_numerics_on_array_api_strict_equal_numpy(path, compact):
    """array_api_strict (dense or extension: what CuPy runs) against NumPy (its SciPy path or the same)."""
    lab = KelvinHelmholtzLab(preset="forced", nx=32, nz=16, rotation=0.3)
    out = []
    for xp in (array_api_strict, NP):
        grid = bq.ChannelGrid(lab.Lx, lab.Lz, 32, 16, xp, **PATHS[path])
        y0, um, forcing, psi_f = lab.initial_state()
        um += 0.2
        problem = bq.BoussinesqProblem(grid, lab.Re, lab.Ri, lab.Pr, mean_velocity=um, rotation=0.3,
                                       forcing=xp.asarray(forcing), forcing_streamfunction=xp.asarray(psi_f),
                                       compact=compact)
        assert problem.compact == (compact and path != "extension")
        stepper = make_integrator("etdrk4", problem, dt=0.01)
        state = stepper.init(0.0, problem.compress(xp.asarray(y0)))
        for _ in range(3):
            state = stepper.step(state, 1.0)
        y = problem.expand(state.y)
        u, w = problem.velocity(y)
        rho = grid.inverse(y[1, ...], bq.EVEN)
        out.append((np.asarray(y), bq.kinetic_energy(grid, y[0, ...], um), bq.enstrophy(grid, y[0, ...]),
                    bq.divergence_rms(grid, u, w), bq.background_potential_energy(grid, rho, lab.Ri),
                    np.asarray(bq.energy_spectrum(grid, u, w)[1])))
    strict, plain = out
    np.testing.assert_allclose(strict[0], plain[0], atol=1e-13)
    np.testing.assert_allclose(strict[1:3], plain[1:3], rtol=1e-12)
    assert strict[3] < 1e-12 and plain[3] < 1e-12
    assert strict[4] == pytest.approx(plain[4], rel=1e-12)
    np.testing.assert_allclose(strict[5], plain[5], rtol=1e-10, atol=1e-20)


def test_rotation_has_no_effect_in_two_dimensions():
    """The Coriolis force about the normal axis is a gradient: same flow, zero torque, zero work."""
    params = dict(preset="rotating", nx=64, nz=32, t_end=1.0, n_snapshots=2)
    rot = KelvinHelmholtzLab(**params).run()
    still = KelvinHelmholtzLab(**params, rotation=0.0).run()
    scale = float(np.abs(still.vorticity_final).max())
    assert float(np.abs(rot.vorticity_final - still.vorticity_final).max()) < 1e-10 * scale
    assert float(rot.coriolis_torque.max()) < 1e-12 * float(rot.coriolis_force.min())
    # its size: 2 |Ω| times the rms velocity, sqrt(2 KE) (no mean flow in this preset)
    np.testing.assert_allclose(rot.coriolis_force.values, 2 * 0.5 * np.sqrt(2 * rot.kinetic_energy.values), rtol=1e-12)
    assert float(np.abs(rot.coriolis_power).max()) < 1e-15
    assert "pure gradient" in rot.rotation_note.attrs["note"]


def test_forcing_does_work_and_runs_are_seeded():
    params = dict(preset="forced", nx=64, nz=32, t_end=1.0, n_snapshots=2)
    a = KelvinHelmholtzLab(**params).run()
    b = KelvinHelmholtzLab(**params).run()
    c = KelvinHelmholtzLab(**params, seed=3).run()
    unforced = KelvinHelmholtzLab(**params, forcing_amplitude=0.0).run()
    np.testing.assert_array_equal(a.vorticity_final, b.vorticity_final)
    assert not np.array_equal(a.vorticity_final, c.vorticity_final)
    assert float(np.abs(a.forcing_power).max()) > 1e-3 and float(np.abs(unforced.forcing_power).max()) == 0
    assert float(a.kinetic_energy[-1]) > float(unforced.kinetic_energy[-1])


def test_checkpoint_resume_reproduces_the_uninterrupted_run(tmp_path):
    """A run checkpointed at t = 1 and resumed to t = 2 (the same frame interval) ends bit for bit where
    the uninterrupted run does: fields, steps, every diagnostic and both budget residuals."""
    base = dict(preset="rotating", nx=64, nz=32)
    full = KelvinHelmholtzLab(**base, t_end=2.0, n_snapshots=4).run()
    ck = str(tmp_path / "kh.npz")
    KelvinHelmholtzLab(**base, t_end=1.0, n_snapshots=2, checkpoint_file=ck).run()
    rest = KelvinHelmholtzLab(**base, t_end=2.0, n_snapshots=4, resume_from=ck).run()
    np.testing.assert_array_equal(rest.vorticity_final, full.vorticity_final)
    np.testing.assert_array_equal(rest.density_final, full.density_final)
    np.testing.assert_array_equal(rest.time.values, full.time.values[2:])
    for name in ("steps", "kinetic_energy", "energy_budget_residual", "pe_budget_residual", "mixing_efficiency",
                 "growth_rate"):
        np.testing.assert_array_equal(rest[name].values, full[name].values[2:], err_msg=name)
    with pytest.raises(ValueError, match="resume_from.*Re"):
        next(KelvinHelmholtzLab(**base, t_end=2.0, n_snapshots=4, resume_from=ck, Re=500.0).frames())
    with pytest.raises(ValueError, match=r"resume_from.*frame interval t_end / n_snapshots \(0\.5 vs 1\.0\)"):
        next(KelvinHelmholtzLab(**base, t_end=2.0, n_snapshots=2, resume_from=ck).frames())
    # the same frame interval reached by another division (0.3 / 3 is 0.09999999999999999) resumes
    ck3 = str(tmp_path / "kh3.npz")
    KelvinHelmholtzLab(**base, t_end=0.3, n_snapshots=3, checkpoint_file=ck3).run()
    assert float(KelvinHelmholtzLab(**base, t_end=0.5, n_snapshots=5, resume_from=ck3).run().time[-1]) == 0.5


@pytest.mark.parametrize("damage", [
    dict(drop="integrals"), dict(drop="budget_ref"), dict(budget_ref="not json"), dict(integrals=np.zeros(1)),
    dict(y=np.zeros((2, 3))), dict(y="text"), dict(t="abc"), dict(y_nan=True),
])
def test_a_damaged_checkpoint_is_refused_naming_resume_from(tmp_path, damage):
    """A checkpoint whose entries were removed or changed (by hand, or by another tool: the lab's own
    writes are atomic) is refused with a message naming 'resume_from', not a KeyError, an IndexError
    or a broadcasting error from deep inside the run; a state that is not finite likewise."""
    base = dict(preset="basic_shear", nx=32, nz=16)
    ck = tmp_path / "kh.npz"
    KelvinHelmholtzLab(**base, t_end=0.2, n_snapshots=2, checkpoint_file=str(ck)).run()
    entries = dict(np.load(ck))
    damage = dict(damage)
    entries.pop(damage.pop("drop", None), None)
    if damage.pop("y_nan", False):
        entries["y"] = entries["y"] * np.nan
    entries.update(damage)
    np.savez(tmp_path / "bad.npz", **entries)
    with pytest.raises(ValueError, match="'resume_from' = .*bad.npz' is not a checkpoint of this lab"):
        next(KelvinHelmholtzLab(**base, t_end=0.4, n_snapshots=4, resume_from=str(tmp_path / "bad.npz")).frames())


def test_checkpoint_resume_of_a_doubly_periodic_run_keeps_its_integrals(tmp_path):
    """Doubly periodic, the mixing efficiency integrates the APE's mixing loss χ: a resumed run must carry
    that integral (and every other) over to end where the uninterrupted run does."""
    base = dict(preset="double_shear", boundary="periodic", nx=32, nz=32, noise=0.05, Re=300.0)
    full = KelvinHelmholtzLab(**base, t_end=2.0, n_snapshots=4).run()
    ck = str(tmp_path / "kh.npz")
    KelvinHelmholtzLab(**base, t_end=1.0, n_snapshots=2, checkpoint_file=ck).run()
    rest = KelvinHelmholtzLab(**base, t_end=2.0, n_snapshots=4, resume_from=ck).run()
    for name in ("mixing_efficiency", "available_potential_energy", "energy_budget_residual", "pe_budget_residual"):
        np.testing.assert_array_equal(rest[name].values, full[name].values[2:], err_msg=name)
    assert float(full.mixing_efficiency[-1]) > 0


def test_theory_growth_rate_is_the_fastest_mode_the_box_holds():
    """With a noisy start every box mode grows; the theory line is the fastest of them (Rayleigh's
    equation at k = 2πn/Lx for every n up to twice the peak), not only the mode nearest the peak."""
    lab = KelvinHelmholtzLab(preset="basic_shear", Ri=0.0)
    d, H = lab.shear_thickness, lab.Lz / (2 * lab.shear_thickness)
    peak = bq.MICHALKE_ALPHA_MAX * lab.Lx / (2 * math.pi * d)
    rates = [bq.rayleigh_growth_rate(2 * math.pi * n * d / lab.Lx, half_height=H) for n in range(1, int(2 * peak) + 2)]
    assert lab._theory_rate() == pytest.approx(lab.velocity / d * max(rates), rel=1e-9)


def test_rk4_step_also_resolves_viscosity():
    """rk4 steps viscosity explicitly: at Re = 100 on 128 × 64 the CFL step alone puts dt ν K² past
    RK4's real-axis stability limit, and the run goes wrong without blowing up (8 % off, budget
    residual ~1). The step also keeps dt max(ν, κ) K² ≤ 2.5, and rk4 agrees with etdrk4."""
    base = dict(preset="basic_shear", nx=128, nz=64, Re=100.0, t_end=1.0, n_snapshots=2)
    lab = KelvinHelmholtzLab(**base, integrator="rk4")
    rk4 = lab.run()
    etd = KelvinHelmholtzLab(**base).run()
    # dt · max|ν K², κ K²| over the kept modes (the stepper's largest decay rate) within the limit
    assert lab._explicit_diffusion_rate > 0
    assert float(rk4.dt[1:].max()) * lab._explicit_diffusion_rate <= 2.5 * (1 + 1e-12)  # (frame 0: no step yet)
    scale = float(abs(etd.vorticity_final).max())
    assert float(abs(rk4.vorticity_final - etd.vorticity_final).max()) < 1e-6 * scale
    assert float(rk4.energy_budget_residual.max()) < 1e-3


def test_notices_say_what_makes_a_run_slow_before_it_starts():
    """Two runs that crawl (fuzz findings) say why beside the controls: a layer thinner than the grid
    spacing (1e-6 on 16 intervals took 79 000 steps to t = 0.1, an overflow warning on the way), and
    rk4 at a tiny Re, whose explicit viscous step the notice estimates as the run's own limit does."""
    import warnings

    thin = KelvinHelmholtzLab(nx=32, nz=16, shear_thickness=1e-6)
    (note,) = thin.notices()
    assert "'shear_thickness' = 1e-06 is thinner than the grid spacing Lz/nz = 0.0625" in note
    assert "nz ≥ 1000000" in note
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sech² far outside the layer: no overflow
        y0 = thin.initial_state()[0]
    assert np.all(np.isfinite(y0))
    (note,) = KelvinHelmholtzLab(density_thickness=1e-3).notices()
    assert note.startswith("'density_thickness' = 0.001 is thinner than the grid spacing Lz/nz = 0.00781")
    for preset in ("basic_shear", "double_shear", "rotating", "forced"):
        assert KelvinHelmholtzLab(preset=preset).notices() == []
    for boundary, profile in (("walls", "single"), ("periodic", "double")):
        lab = KelvinHelmholtzLab(nx=64, nz=32, Re=1e-3, t_end=1.0, integrator="rk4", boundary=boundary, profile=profile)
        (note,) = lab.notices()
        assert note.startswith("rk4 steps viscosity explicitly: at Re = 0.001 its steps are at most ~")
        grid, problem, _ = lab.make_problem(np)
        lin = problem.linear if problem.compact else problem.linear * grid.dealias
        h = kh_module.EXPLICIT_DIFFUSION_LIMIT / float(np.max(np.abs(lin)))  # the run's own limit
        assert f"~{h:.2g}, ~{1.0 / h:.2g} of them" in note
        assert KelvinHelmholtzLab(nx=64, nz=32, Re=1e-3, t_end=1.0, boundary=boundary, profile=profile).notices() == []



def test_step_resolves_the_buoyancy_frequency():
    """A strong stratification (Ri = 5000, outside Ri's soft range) makes gravity waves of frequency
    up to N = sqrt(Ri max|ρ_z|) ≈ 100, faster than the flow's CFL rate: a CFL step alone (hN ≈ 1.7)
    left the vorticity 16 % off and the energy budget 13 % open. The step keeps dt N ≤ 1 too, and the
    run agrees with one of 4000 small steps."""
    base = dict(preset="basic_shear", nx=64, nz=32, t_end=2.0, n_snapshots=20, Ri=5000.0)
    lab = KelvinHelmholtzLab(**base)
    ds = lab.run()
    ref = KelvinHelmholtzLab(**base, cfl=0.0, dt=5e-4).run()
    assert int(ref.steps[-1]) == 4000
    scale = float(abs(ref.vorticity_final).max())
    assert float(abs(ds.vorticity_final - ref.vorticity_final).max()) < 5e-3 * scale
    assert float(ds.energy_budget_residual.max()) < 1e-3
    # the steps follow N, not the CFL rate: (4 to 5 times as many as at the preset's Ri)
    weak = KelvinHelmholtzLab(**{**base, "Ri": 0.25}).run()
    assert int(ds.steps[-1]) > 3 * int(weak.steps[-1])
    # a stratification no run could resolve in time is refused with the reason
    with pytest.raises(SolverDiverged, match="stratification sets this step"):
        KelvinHelmholtzLab(**{**base, "Ri": 1e14, "t_end": 10.0}).run()

def test_frames_are_reduced_for_display():
    lab = KelvinHelmholtzLab(preset="basic_shear", nx=1024, nz=16, Lz=1.0, shear_thickness=0.08,
                             t_end=0.002, n_snapshots=1)
    f = list(lab.frames())[-1]
    assert f.samples["vorticity"].values.shape == (17, 512)
    assert f.samples["density"].values.shape[1] <= 512
    assert f.spectrum.logx and f.spectrum.logy
    assert set(f.convergence) >= {"divergence", "mean_density_drift", "energy_budget_residual"}
    assert set(f.diagnostics) >= {"kinetic_energy", "potential_energy", "dissipation", "buoyancy_flux",
                                  "enstrophy", "mean_density", "mixed_layer_thickness",
                                  "mixing_efficiency", "density_entropy"}


@pytest.mark.parametrize(
    "params, name",
    [
        (dict(nx=63), "nx"),
        (dict(nx=0), "nx"),
        (dict(Re=-1.0), "Re"),
        (dict(Ri=float("nan")), "Ri"),
        (dict(rho_bottom=1.0, rho_top=1.0), "rho_bottom"),
        (dict(boundary="periodic"), "profile"),
        (dict(shear_thickness=0.2), "shear_thickness"),
        (dict(profile="double", separation=0.9), "separation"),
        (dict(integrator="split_step"), "integrator"),
        (dict(cfl=0, dt=1e-9), "dt"),
        (dict(perturbation=0.01, perturbation_mode=100, nx=64), "perturbation_mode"),
        (dict(stratification="jet"), "stratification"),
        (dict(atol=0.0), "atol"),
        (dict(resume_from="/"), "resume_from"),
        (dict(checkpoint_file="/"), "checkpoint_file"),
        (dict(resume_from="/no/such/checkpoint.npz"), "resume_from"),
        (dict(checkpoint_file="/no/such/folder/ck.npz"), "checkpoint_file"),
        (dict(nonsense=1), "nonsense"),
    ],
)
def test_bad_input_names_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        next(KelvinHelmholtzLab(**params).frames())


def test_a_flow_too_fast_for_its_grid_stops_with_a_message():
    """The CFL step follows the flow; one that would take billions of steps stops at once, saying why."""
    with pytest.raises(SolverDiverged, match="stopped .* CFL step.*'velocity'"):
        KelvinHelmholtzLab(preset="basic_shear", nx=32, nz=16, velocity=1e9, t_end=0.2).run()


def test_blow_up_stops_with_a_message():
    lab = KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=32, integrator="rk4", cfl=0, dt=0.2,
                             t_end=20.0, n_snapshots=4)
    with pytest.raises(SolverDiverged, match="cfl"):
        lab.run()


def test_density_entropy_counts_every_parcel():
    """Over- and undershoots of the unmixed far field lie a little outside the initial density range:
    they count in the end bins (dropped, a quarter of the forced run's area made the rest look mixed)."""
    lab = KelvinHelmholtzLab(preset="forced", nx=64, nz=32, t_end=2.0, n_snapshots=2)
    ds = lab.run()
    grid = lab.make_grid(np)
    rho = (ds.density_final.values - 0.5 * (lab.rho_top + lab.rho_bottom)) / abs(lab.rho_bottom - lab.rho_top)
    lo, hi = lab._rho_range  # (the initial field's range, in units of the jump)
    assert rho.min() < lo or rho.max() > hi  # (the case in point: parcels beyond it)
    weights = np.broadcast_to(np.asarray(grid.z_weights), rho.shape)
    hist, _ = np.histogram(np.clip(rho, lo, hi), bins=64, range=(lo, hi), weights=weights)
    p = hist[hist > 0] / hist.sum()
    assert float(ds.density_entropy[-1]) == pytest.approx(float(-(p * np.log(p)).sum() / math.log(64)), rel=1e-9)


def test_mean_density_of_a_doubly_periodic_run_is_the_layers_mean():
    """The background -z/Lz averages to 0 over a period (its grid mean, dz/2Lz, read 1.2578 for 1.25)."""
    lab = KelvinHelmholtzLab(preset="double_shear", boundary="periodic", nx=64, nz=32, t_end=0.1, n_snapshots=1)
    first = next(iter(lab.frames()))
    assert first.diagnostics["mean_density"] == pytest.approx(0.5 * (lab.rho_top + lab.rho_bottom), abs=1e-12)


def test_tolerances_and_step_caps_are_named():
    """An atol near 1e-300 overflowed the starting-step norms (ZeroDivisionError); a dt that cannot reach
    t_end in MAX_STEPS is refused before the run, whatever cfl; an rk4 run held back by its explicit
    viscosity says so."""
    with pytest.raises(ValueError, match="atol"):
        KelvinHelmholtzLab(atol=1e-300)
    with pytest.raises(ValueError, match="increase 'dt'"):
        KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=32, t_end=1.0, dt=1e-8).run()
    with pytest.raises(SolverDiverged, match="Explicit viscosity"):
        KelvinHelmholtzLab(preset="basic_shear", nx=64, nz=32, t_end=1e3, integrator="rk4", Re=1e-4, dt=0.02).run()
