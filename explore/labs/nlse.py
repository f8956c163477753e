r"""The nonlinear Schrödinger lab: :math:`i\psi_t + \tfrac12\psi_{xx} + |\psi|^2\psi = 0` on a periodic interval.

Fourier pseudo-spectral in space; any integrator of the registry in time (adaptive DOP853 as in
the ``simple-idealized-1d-nlse`` library, or the integrating-factor / ETD / split-step methods that
treat the stiff ``k^2`` term exactly; split-step only with ``dealias='none'``: a dealiased nonlinear
term has no exact flow). Exact solutions (soliton, Akhmediev breather) give the error
live; mass, momentum and Hamiltonian drifts, entropies of :math:`|\psi|^2` and the two-soliton
collision shift (against Zakharov–Shabat theory) are reported every frame.

Reading the drifts: mass and the (spectrally computed) Hamiltonian are conserved by the
semi-discrete collocation system, so their drift measures the time integrator; momentum is not
conserved once the cubic product aliases, so a jump in ``momentum_drift`` (e.g. 1e-7 during the
two-soliton collision at N = 512, 1e-14 at N = 1024) flags an under-resolved grid. The Akhmediev
breather is modulationally unstable: any error grows like e^t (the background's largest gain), so
its ``error`` rises after the peak even with a perfect integrator.
"""
from __future__ import annotations

import math

import numpy as np
import param

from explore.core import Curve, Field, Frame, Lab, SolverDiverged, register_lab, to_host
from explore.core.frame import MAX_PIXELS, decimate
from explore.core.lab import MAX_RUN_STEPS
from explore.numerics import nlse as eq
from explore.numerics.entropy import renyi_entropy, shannon_entropy, tsallis_entropy
from explore.numerics.fourier import FourierGrid
from explore.numerics.integrators import INTEGRATORS, make_integrator
from explore.labs._stepping import ignored_stepping, long_run, max_wavenumber, shortened_step, tolerances
from explore.numerics.rk import StepSizeTooSmall, TooManySteps, fill_step

_PEER = dict(L=50.0, N=512, t_end=20.0, n_snapshots=100, integrator="dop853", rtol=1e-9, atol=1e-11)

INITIAL_CONDITIONS = {
    "soliton": "bright soliton A sech(A(x - x0)) e^{ivx} (exact solution)",
    "two_soliton": "two solitons (amplitude, position, velocity) and (amplitude2, position2, velocity2)",
    "akhmediev_breather": "exact Akhmediev breather on the unit background, modulation wavenumber omega",
    "modulated_soliton": "A sqrt(2) sech(A(x - x0)) e^{i nu x} (1 + m cos 2 nu x): the peer's 'breather'",
    "gaussian": "Gaussian A exp(-(x - x0)^2 / 2 w^2) (with noise: modulation instability)",
}

#: the parameters each initial condition reads (the others are greyed out in the dashboard)
START_PARAMETERS = {
    "soliton": ("amplitude", "position", "velocity"),
    "two_soliton": ("amplitude", "position", "velocity", "amplitude2", "position2", "velocity2"),
    "akhmediev_breather": ("omega", "peak_time"),
    "modulated_soliton": ("amplitude", "position", "nu", "modulation"),
    "gaussian": ("amplitude", "position", "width"),
}

#: the truncation rules of ``dealias``: the share of the Nyquist wavenumber kept in the nonlinear term
TRUNCATIONS = {"two_thirds": 2 / 3, "half": 1 / 2}


class _Rows:
    """The waterfall's rows ``|ψ(x, t_i)|``, kept in a buffer that doubles when full (appending is O(1),
    not a copy of every row so far), shown on at most ``MAX_PIXELS`` rows, the newest among them."""

    def __init__(self):
        self.n, self.t, self.rows = 0, np.empty(0), None

    def append(self, t: float, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add the row at time ``t``; return the rows to show and their times (a stride ending at the newest)."""
        if self.rows is None or self.n == len(self.t):
            size = max(64, 2 * self.n)
            times, rows = np.empty(size), np.empty((size, row.size))
            if self.rows is not None:
                times[:self.n], rows[:self.n] = self.t[:self.n], self.rows[:self.n]
            self.t, self.rows = times, rows
        self.t[self.n], self.rows[self.n] = t, row
        self.n += 1
        stride = -(-self.n // MAX_PIXELS)
        shown = slice((self.n - 1) % stride, self.n, stride)
        return self.t[shown].copy(), self.rows[shown].copy()


#: the lab's own arrays in states (``N`` complex) beside the integrator's, measured (N = 2¹⁶: ifrk4 and
#: etdrk4 take 21–25 more than their registered working states, the splitting steppers 7–17: their
#: estimate is up to 1.8× what they take)
OWN_STATES = 18


@register_lab
class NLSELab(Lab):
    """Solitons, collisions, breathers and modulation instability of the focusing cubic NLSE."""

    lab_name = "nlse"
    memory_hint = "Use a smaller 'N', or an integrator that keeps fewer arrays: 'split_step', 'rk4' or 'ifrk4'."
    convergence_title = "Conservation and error"
    title = "Nonlinear Schrödinger equation"
    description = (
        "Solitons, collisions, Akhmediev breathers and modulation instability of "
        "iψ_t + ½ψ_xx + |ψ|²ψ = 0, Fourier pseudo-spectral, with exact solutions and invariants live."
    )
    presets = {
        "single_soliton": dict(_PEER, initial="soliton", amplitude=2.0, position=-10.0, velocity=1.0),
        "two_soliton": dict(
            _PEER, initial="two_soliton", amplitude=2.0, position=-10.0, velocity=2.0,
            amplitude2=1.5, position2=10.0, velocity2=-2.0,
        ),
        "breather": dict(
            _PEER, initial="akhmediev_breather", omega=0.5, L=16 * math.pi, peak_time=10.0,
        ),
        "modulated_soliton": dict(
            _PEER, initial="modulated_soliton", amplitude=1.0, position=0.0, nu=0.5, modulation=0.5,
        ),
        "modulation_instability": dict(
            _PEER, initial="gaussian", amplitude=1.0, width=5.0, position=0.0, noise=0.01, seed=42,
            dealias="two_thirds",
        ),
    }
    default_preset = "single_soliton"
    sample_titles = {"abs_psi": "|ψ(x)|", "waterfall": "|ψ(x, t)|, space–time"}
    groups = {
        "Initial condition": [
            "initial", "amplitude", "position", "velocity", "amplitude2", "position2", "velocity2",
            "width", "nu", "modulation", "omega", "peak_time", "noise", "seed",
        ],
        "Grid": ["L", "N", "dealias"],
        "Time stepping": ["integrator", "dt", "rtol", "atol", "t_end", "n_snapshots"],
        "Diagnostics": ["entropy_q", "backend"],
    }

    initial = param.Selector(default="soliton", objects=list(INITIAL_CONDITIONS), doc="Initial condition.")
    amplitude = param.Number(2.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.1, 4),
                             doc="Amplitude A (soliton 1, Gaussian, modulated soliton).")
    position = param.Number(-10.0, softbounds=(-25, 25), doc="Centre x0 (soliton 1, Gaussian, modulated soliton).")
    velocity = param.Number(1.0, softbounds=(-4, 4), doc="Velocity v of soliton 1 (carrier wavenumber e^{ivx}).")
    amplitude2 = param.Number(1.5, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.1, 4),
                              doc="Amplitude of soliton 2.")
    position2 = param.Number(10.0, softbounds=(-25, 25), doc="Centre of soliton 2.")
    velocity2 = param.Number(-2.0, softbounds=(-4, 4), doc="Velocity of soliton 2.")
    width = param.Number(5.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.5, 10),
                         doc="Width w of the Gaussian.")
    nu = param.Number(0.5, softbounds=(0, 2), doc="Carrier wavenumber ν of the modulated soliton.")
    modulation = param.Number(0.5, bounds=(0, None), softbounds=(0, 1), doc="Modulation depth m of the modulated soliton.")
    omega = param.Number(0.5, bounds=(0, 2), inclusive_bounds=(False, False),
                         doc="Modulation wavenumber Ω of the Akhmediev breather (0 < Ω < 2); L must hold whole periods 2π/Ω.")
    peak_time = param.Number(10.0, softbounds=(0, 20), doc="Time at which the Akhmediev breather peaks.")
    noise = param.Number(0.0, bounds=(0, None), softbounds=(0, 0.1),
                         doc="Level of complex Gaussian noise added to the initial condition (seeded).")
    L = param.Number(50.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(5, 200),
                     doc="Domain length: x in [-L/2, L/2), periodic.")
    N = param.Integer(512, bounds=(16, 2**20), softbounds=(16, 4096), doc="Number of grid points (Fourier modes).")
    dealias = param.Selector(default="none", objects=["none", "two_thirds", "half", "filter"],
                             doc="Treatment of the nonlinear term: none; 2/3-rule truncation (Orszag's rule, exact for "
                                 "quadratic products: the cubic |ψ|²ψ keeps some aliasing); ½-rule truncation (none "
                                 "left for the cubic term); or the exponential filter exp(-36 (|k|/k_c)^36), applied to "
                                 "the field and the product (with it, 'energy' is the Hamiltonian the filtered equation "
                                 "conserves: its quartic term is of the filtered field). Split-step needs 'none'.")
    integrator = param.Selector(default="dop853", objects=list(INTEGRATORS),
                                doc="Time integrator (adaptive: dop853, dopri5, if_dop853; fixed dt: the others).")
    dt = param.Number(1e-3, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(1e-4, 0.1),
                      doc="Time step of the fixed-step integrators (shortened so whole steps fill each frame "
                          "interval t_end / n_snapshots).")
    rtol, atol = tolerances(1e-9, 1e-11, rtol_floor=1e-15)
    t_end = param.Number(20.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.1, 100),
                         doc="Final time.")
    n_snapshots = param.Integer(100, bounds=(1, 100_000), softbounds=(1, 500), doc="Number of frames (snapshots) after t = 0.")
    entropy_q = param.Number(2.0, bounds=(0, 10), inclusive_bounds=(False, True),
                             doc="Order q of the Rényi and Tsallis entropies of |ψ|².")

    def inactive_parameters(self) -> frozenset[str]:
        """The initial-condition parameters the chosen start does not use (:data:`START_PARAMETERS`),
        ``seed`` without noise; ``dt`` under an adaptive integrator, the tolerances under a fixed-step one."""
        used = START_PARAMETERS.get(self.initial, ())
        out = {p for p in set().union(*START_PARAMETERS.values()) if p not in used}
        if self.noise == 0:
            out.add("seed")
        return frozenset(out | ignored_stepping(self.integrator))

    def notices(self) -> list[str]:
        return (shortened_step(self.integrator, self.dt, self.t_end / self.n_snapshots,
                               "frame interval t_end / n_snapshots")
                + long_run(self.integrator, self.dt, self.t_end))

    def memory_estimate(self) -> int:
        """The state (``N`` complex), the lab's own arrays (:data:`OWN_STATES` states: the grid, the
        exact solution, the densities and spectra of a frame) and what the integrator keeps."""
        state = 16 * self.N
        return OWN_STATES * state + INTEGRATORS[self.integrator].working_bytes(state)

    # ------------------------------------------------------------------ validation
    def check(self) -> None:
        info = INTEGRATORS[self.integrator]
        max_wavenumber("nlse", "L", self.L, self.N)  # (the dispersion's symbol k²/2)
        if not info.adaptive and self.t_end / self.dt > MAX_RUN_STEPS:
            raise ValueError(f"nlse: dt = {self.dt:g} needs {self.t_end / self.dt:.3g} steps to reach t_end; increase 'dt'")
        if self.initial == "akhmediev_breather":
            periods = self.L * self.omega / (2 * math.pi)
            if abs(periods - round(periods)) > 1e-9 or round(periods) < 1:
                raise ValueError(
                    f"nlse: the Akhmediev breather needs L to be a whole number of modulation periods "
                    f"2π/omega = {2 * math.pi / self.omega:.6g}; got L = {self.L:.6g} ({periods:.4g} periods). "
                    "Change 'L' or 'omega'."
                )
        if "nonlinear_flow" in info.requires and self.dealias != "none":
            raise ValueError(f"nlse: {self.integrator} needs dealias = 'none': split-step composes exact flows, and "
                             "a dealiased nonlinear term has none (projecting the flow made it first order, its "
                             "mass drifting); use dop853, etdrk4 or ifrk4 with 'dealias'")
        if self.initial == "two_soliton" and self.velocity == self.velocity2:
            raise ValueError("nlse: 'velocity' and 'velocity2' are equal: the solitons never collide")

    @property
    def divergence_hint(self) -> str:  # type: ignore[override]
        rate = 0.5 * (math.pi * self.N / self.L) ** 2
        if self.integrator == "rk4":
            step = fill_step(self.t_end / self.n_snapshots, self.dt)  # (the step taken: see _frames)
            return (f"Explicit RK4 is stable only for dt ≲ 2.8 / max|k²/2| = {2.8 / rate:.3g} on this grid "
                    f"(the step was {step:.3g}): reduce 'dt' or use 'ifrk4', 'etdrk4'"
                    + (" or 'split_step'." if self.dealias == "none" else "."))
        if INTEGRATORS[self.integrator].adaptive:
            return ("If the step size underflowed, loosen 'rtol'/'atol' (tolerances near round-off); otherwise "
                    "tighten them, or increase 'N' if the solution is under-resolved.")
        return "Reduce 'dt' or increase 'N' (the solution may be under-resolved)."

    # ------------------------------------------------------------------ set-up
    def exact(self, grid: FourierGrid, t: float):
        """The exact solution at time ``t`` where one exists, else ``None``."""
        x = grid.x[0]
        if self.initial == "soliton":
            return eq.soliton(x, t, self.amplitude, self.position, self.velocity, self.L)
        if self.initial == "akhmediev_breather":
            return eq.akhmediev_breather(x, t - self.peak_time, self.omega)
        return None

    def initial_state(self, grid: FourierGrid):
        """ψ(x, 0) on ``grid`` (noise drawn on the host from ``seed``, so every backend sees the same field)."""
        xp, x, L = grid.xp, grid.x[0], self.L
        if self.initial in ("soliton", "akhmediev_breather"):
            psi = self.exact(grid, 0.0)
        elif self.initial == "two_soliton":
            psi = eq.soliton(x, 0.0, self.amplitude, self.position, self.velocity, L) + eq.soliton(
                x, 0.0, self.amplitude2, self.position2, self.velocity2, L)
        elif self.initial == "modulated_soliton":
            # envelope and carrier at the wrapped distance from the centre (continuous across the edge,
            # as eq.soliton): e^{iνx} alone is periodic only when νL/2π is an integer
            a, xi = self.amplitude, eq._wrap(x - self.position, L)
            psi = (a * math.sqrt(2) / xp.cosh(a * xi) * xp.exp(1j * self.nu * (xi + self.position))
                   * (1 + self.modulation * xp.cos(2 * self.nu * (xi + self.position))))
        else:  # gaussian
            xi = eq._wrap(x - self.position, L)
            psi = xp.astype(self.amplitude * xp.exp(-(xi**2) / (2 * self.width**2)), xp.complex128)
        if self.noise > 0:  # NumPy's legacy generator, as the peer library: the same field for the same seed
            rng = np.random.RandomState(self.seed)
            z = self.noise * (rng.randn(self.N) + 1j * rng.randn(self.N))
            psi = psi + xp.asarray(z)
        return xp.astype(psi, xp.complex128)

    def _projector(self, grid: FourierGrid):
        if self.dealias in TRUNCATIONS:
            return grid.dealias_mask(TRUNCATIONS[self.dealias])
        if self.dealias == "filter":
            return grid.exponential_filter(36.0, 36, 2 / 3)
        return None

    # ------------------------------------------------------------------ the run
    def _frames(self, xp):
        grid = FourierGrid(self.L, self.N, xp)
        problem = eq.NLSEProblem(grid, self._projector(grid))
        # the Hamiltonian the run conserves: with the filter, its quartic term is of the filtered field
        self._filter = problem.projector if self.dealias == "filter" else None
        with np.errstate(over="ignore"):  # (a narrow soliton's cosh overflows to inf: its envelope is then 0)
            psi0 = self.initial_state(grid)
        self.ensure_finite(psi0, 0.0, "the initial condition ψ(x, 0)")
        if not float(xp.sum(xp.real(psi0 * xp.conj(psi0)))) > 0:  # (the drifts are relative to its mass)
            raise ValueError(f"nlse: the initial condition vanishes on this grid (|ψ|² underflows at every point: "
                             f"an amplitude too small, or a soliton far narrower than the grid spacing "
                             f"L/N = {self.L / self.N:.3g}); change 'amplitude', or 'N' or 'L'")
        u = grid.fft(psi0)
        if self.dealias in TRUNCATIONS:
            u = problem.projector * u  # truncated modes then stay zero
        info = INTEGRATORS[self.integrator]
        h = None if info.adaptive else fill_step(self.t_end / self.n_snapshots, self.dt)
        stepper = make_integrator(self.integrator, problem, dt=h, rtol=self.rtol, atol=self.atol)
        state = stepper.init(0.0, u)
        self._x_host = to_host(grid.x[0])
        k_host = to_host(grid.k[0])
        self._k_order = np.argsort(k_host)  # spectrum shown with k ascending
        self._k_display = decimate(k_host[self._k_order])
        self._waterfall = _Rows()
        self._invariants0 = None
        self._final = None
        eps = 1e-12 * max(1.0, self.t_end)
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(self.n_snapshots + 1):
                t_target = self.t_end * i / self.n_snapshots
                while t_target - state.t > eps:
                    try:
                        state = stepper.step(state, t_target)
                    except (StepSizeTooSmall, TooManySteps) as exc:
                        raise SolverDiverged(state.t, f"the step size ({exc})", self.divergence_hint) from None
                    self.ensure_progress(state, self.t_end)
                    if state.steps % 64 == 0:
                        self.ensure_finite(state.y, state.t, "ψ")
                self.ensure_finite(state.y, state.t, "ψ")
                yield self._frame(i, grid, state)
        self._final = to_host(grid.ifft(state.y))

    def _frame(self, i: int, grid: FourierGrid, state) -> Frame:
        xp = grid.xp
        psi = grid.ifft(state.y)
        t = float(state.t) if i else 0.0
        m, p, h = eq.mass(grid, psi), eq.momentum(grid, psi), eq.hamiltonian(grid, psi, self._filter)
        if self._invariants0 is None:
            k_min = 2 * math.pi / self.L
            kinetic = eq.hamiltonian(grid, psi) + 0.5 * float(grid.integrate(xp.abs(psi) ** 4))
            self._invariants0 = (m, p, h, max(abs(p), m * k_min), max(abs(h), 1e-3 * (abs(kinetic) + abs(h - kinetic))))
        m0, p0, h0, p_scale, h_scale = self._invariants0
        convergence = {
            "mass_drift": abs(m - m0) / m0,
            "momentum_drift": abs(p - p0) / p_scale,
            "energy_drift": abs(h - h0) / h_scale,
        }
        exact = self.exact(grid, t)
        if exact is not None:
            convergence["error"] = float(xp.max(xp.abs(psi - exact)))
        density = xp.real(psi * xp.conj(psi))
        density_host = to_host(density)
        diagnostics = {
            "mass": m, "momentum": p, "energy": h,
            "max_amplitude": float(math.sqrt(float(np.max(density_host)))),
            "shannon_entropy": shannon_entropy(density),
            "renyi_entropy": renyi_entropy(density, self.entropy_q),
            "tsallis_entropy": tsallis_entropy(density, self.entropy_q),
        }
        if self.initial == "two_soliton":
            shifts = self._collision_shifts(density_host, t)
            if shifts is not None:
                diagnostics.update(shifts)
                if shifts["collisions"] > 0:
                    convergence["shift_error"] = max(
                        abs(shifts["shift_1"] - shifts["shift_1_theory"]),
                        abs(shifts["shift_2"] - shifts["shift_2_theory"]),
                    )
        # display: |ψ| on at most 512 points, spectrum |ψ~(k)|² with ψ~ the continuous transform
        x_disp = decimate(self._x_host)
        abs_disp = np.sqrt(decimate(density_host))
        power = to_host(xp.real(state.y * xp.conj(state.y))) * grid.dx[0] * self.L
        times, rows = self._waterfall.append(t, abs_disp)
        return Frame(
            step=i, time=t, progress=i / self.n_snapshots,
            convergence=convergence, diagnostics=diagnostics,
            spectrum=Curve(self._k_display, decimate(power[self._k_order]), xlabel="k", ylabel="|ψ(k)|²", logy=True),
            samples={
                "abs_psi": Curve(x_disp, abs_disp, xlabel="x", ylabel="|ψ|"),
                "waterfall": Field(x_disp, times, rows, xlabel="x", ylabel="t", label="|ψ(x, t)|", equal_aspect=False),
            },
            nfe=state.nfe, steps=state.steps,
        )

    def _collision_shifts(self, density: np.ndarray, t: float) -> dict | None:
        """Measured and predicted position shifts of the two solitons; ``None`` while they overlap."""
        a = (self.amplitude, self.amplitude2)
        x0 = (self.position, self.position2)
        v = (self.velocity, self.velocity2)
        L, x = self.L, self._x_host
        rel = v[0] - v[1]
        d0 = x0[1] - x0[0]
        # meetings: (v1 - v2) t = d0 + m L for integers m, counted over (0, t]
        s = 1.0 if rel > 0 else -1.0
        m_lo = math.floor(-s * d0 / L) + 1
        m_hi = math.floor((abs(rel) * t - s * d0) / L)
        collisions = max(0, m_hi - m_lo + 1)
        delta = eq.soliton_collision_shift(a[0], v[0], a[1], v[1])
        theory = [collisions * d for d in delta]
        free = [x0[j] + v[j] * t for j in range(2)]
        predicted = [free[j] + theory[j] for j in range(2)]
        gap = abs(float(eq._wrap(np.array(predicted[0] - predicted[1]), L)))
        if gap < 10 * (1 / a[0] + 1 / a[1]):
            return None
        out = {"collisions": float(collisions)}
        for j in range(2):
            d = eq._wrap(x - predicted[j], L)
            near = np.abs(d) < 3 / a[j]
            if not near.any():  # a soliton narrower than the grid spacing: its nearest point
                near = np.abs(d) == np.abs(d).min()
            centre = predicted[j] + d[near][np.argmax(density[near])]
            d = eq._wrap(x - centre, L)
            window = np.abs(d) < 8 / a[j]
            offset = float(np.sum(d[window] * density[window]) / np.sum(density[window]))
            measured = float(eq._wrap(np.array(centre + offset - free[j]), L))
            out[f"shift_{j + 1}"] = measured
            out[f"shift_{j + 1}_theory"] = theory[j]
        return out

    def result_extras(self) -> dict:
        if self._final is None:
            return {}
        return {
            "psi_real": ("x_grid", self._final.real, {"long_name": "Re ψ at t_end (full resolution)"}),
            "psi_imag": ("x_grid", self._final.imag, {"long_name": "Im ψ at t_end (full resolution)"}),
            "x_grid": ("x_grid", self._x_host),
        }
