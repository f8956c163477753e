r"""The Kelvin–Helmholtz lab: a stratified shear layer rolling up into billows.

Two-dimensional incompressible Boussinesq flow in the x–z plane, periodic in x, free-slip walls in z
(or doubly periodic),

.. math:: \mathbf u_t + \mathbf u\cdot\nabla\mathbf u = -\nabla p + Re^{-1}\nabla^2\mathbf u - Ri\,\rho\,\hat z,
          \quad \nabla\cdot\mathbf u = 0, \quad \rho_t + \mathbf u\cdot\nabla\rho = (Re\,Pr)^{-1}\nabla^2\rho,

solved in vorticity–streamfunction form (velocity divergence-free by construction), Fourier × sine/cosine
pseudo-spectral with 2/3 dealiasing (:mod:`explore.numerics.boussinesq`), and an exponential
integrator (ETDRK4 or IF-RK4: viscosity and diffusion exact) whose step follows a CFL number.
Velocities are in units of a reference velocity ``Uref`` (``velocity`` = U0 is given in it) and ``ρ`` is
the density anomaly in units of the jump ``Δρ = |rho_bottom - rho_top|``: ``Re = Uref Lref / ν`` and
``Ri = g Δρ Lref / (ρ0 Uref²)``, so a layer of U0 ≠ 1 has Reynolds number ``U0 Re`` and bulk Richardson
number ``Ri / U0²``. The sign of the jump is in ``ρ``: heavier fluid on top starts statically unstable.
The gradient Richardson number at the centre of a tanh layer is
``Ri · shear_thickness² / (2 · density_thickness · U0²)``.

Energy budgets (walls), each integrated by the trapezoid rule over the steps and reported as a
relative residual: ``dKE/dt = -ε + B + P`` (dissipation, buoyancy flux ``B = -Ri <w ρ>``, forcing
power) closes to the time-stepping error; ``dPE/dt = -B + Φ_d`` with ``PE = Ri <ρ z>`` and
``Φ_d = -κ Ri (ρ̄_top − ρ̄_bottom) / Lz``, the diffusive flux through the no-flux walls, closes to the
2/3 rule's truncation (the weight ``z`` is not band-limited), which falls fast with the grid. Mixing
(Winters et al.): background PE of the sorted density, APE = PE − BPE, efficiency ΔBPE/(ΔBPE + ∫ε).
Doubly periodic, where ``z`` has no global meaning, the linear APE ``Ri <ρ'²>/(2γ)`` about the
background gradient γ takes PE's place (``d APE/dt = -B - χ``, exact in space) and the efficiency is
``∫χ/(∫χ + ∫ε)``.

Rotation: a Coriolis force about the axis normal to the plane, ``-2Ω ŷ × u = 2Ω ∇ψ``, is a pure
gradient in 2-D incompressible flow. The pressure absorbs it; it has no curl (so no vorticity
source) and does no work (``u·∇ψ = 0``), so the flow is exactly the non-rotating one — only the
pressure changes, by ``2Ωψ``. The ``rotating`` preset adds the force (its curl is computed and added
every step) and reports ``coriolis_torque`` (≈ 1e-16) next to ``coriolis_force`` (order Ω) so the run
shows it. (kh2d-solver instead adds a linear shear to the initial velocity and calls that rotation.)

``double_shear`` takes kh2d-solver's case (its nominal parameters: the peer's buoyancy ``9.81 Ri (ρ − 1)``
makes its own effective bulk Ri larger): a jet of light fluid (1.0) between two shear layers in heavier
fluid (1.5), so its upper interface is heavy over light — statically unstable, with available potential
energy from the start (``stratification="layered"`` is the stable variant).

``checkpoint_file`` saves the state and the budget integrals at every frame; ``resume_from`` continues
such a run (to a later ``t_end``, at the same frame interval) exactly as if it had not stopped.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import param

from explore.core import Alias, Curve, Field, Frame, Lab, SolverDiverged, register_lab, to_host
from explore.core.checkpoint import checkpoint_entries, load_checkpoint, save_checkpoint
from explore.core.files import check_checkpoint_name, check_input_file, check_output_file
from explore.core.frame import decimate
from explore.core.lab import MAX_RUN_STEPS
from explore.numerics import boussinesq as bq
from explore.numerics.exponential import FixedStepSemilinear
from explore.numerics.integrators import INTEGRATORS, make_integrator
from explore.labs._stepping import ignored_stepping, long_run, max_wavenumber, shortened_step, tolerances
from explore.numerics.rk import StepSizeTooSmall, TooManySteps, fill_step

#: integrators that need nothing beyond ``linear`` / ``nonlinear``
KH_INTEGRATORS = [name for name, info in INTEGRATORS.items() if not info.requires]
#: rungs per halving of the CFL-chosen step (dt-dependent exponentials are cached per rung)
DT_RUNGS_PER_OCTAVE = 8
#: the step is chosen at this fraction of the CFL cap, so a flow that speeds up within a frame
#: interval rarely forces a re-split
CFL_MARGIN = 0.9
#: a fixed-step integrator that is not exponential (rk4) also steps viscosity and diffusion
#: explicitly: ``dt max(ν, κ) K²`` stays below this (RK4 is stable on the negative real axis to 2.785)
EXPLICIT_DIFFUSION_LIMIT = 2.5
#: the step also keeps ``dt N`` below this, ``N = sqrt(Ri max|ρ_z|)`` the fastest local gravity wave
#: (or, statically unstable, overturning rate): those waves carry the flow's energy at every scale, so
#: the bound is one of accuracy, well inside RK4's stability limit of 2√2 on the imaginary axis
BUOYANCY_LIMIT = 1.0
#: a run that would need more steps than this is refused before it starts when even ``dt`` (at the CFL
#: margin) cannot reach t_end in time, and stopped when its CFL step shrinks that far during the run
MAX_STEPS = MAX_RUN_STEPS
#: integrators that step viscosity and diffusion explicitly (the others take the linear part exactly)
EXPLICIT_VISCOSITY = ("rk4", "dopri5", "dop853")
#: the notices say so where explicit viscosity alone needs more steps than this to t_end (minutes of
#: run time even on small grids)
MANY_STEPS = 1e5
#: the lab's own arrays (physical fields, transform buffers, diagnostics), in bytes per grid point, with walls
#: and doubly periodic: measured
OWN_BYTES_PER_POINT = {"walls": 340, "periodic": 150}
#: and what they take whatever the grid (the frames' display fields of at most 512 points a side, the
#: diagnostics' buffers): rk4 at 256 × 128, 512 × 256 and 1024 × 512 peaked 12–13 MiB above the estimate
OWN_FIXED_BYTES = 16 * 2**20
#: density-histogram bins of the Shannon entropy
ENTROPY_BINS = 64

ROTATION_NOTE = (
    "In 2-D incompressible flow a Coriolis force about the axis normal to the plane, -2Ω ŷ×u = 2Ω∇ψ, "
    "is a pure gradient: the pressure absorbs it, its curl (the vorticity source) is identically zero "
    "and it does no work, so the flow is the non-rotating one."
)

_PEER = dict(Lx=2.0, Lz=1.0, nx=256, nz=128, boundary="walls", noise=0.01, velocity=1.0)


def _grid_of_N(lab, n) -> dict:
    """``N`` points in x, and in z as many as keep the cells square: ``nz = N Lz / Lx`` (rounded; even
    when doubly periodic)."""
    nz = n * lab.Lz / lab.Lx
    nz = 2 * round(nz / 2) if lab.boundary == "periodic" else round(nz)
    return {"nx": n, "nz": max(8, nz)}


def _domain_of_L(lab, length) -> dict:
    """A domain ``L`` long in x, of the same aspect ratio."""
    return {"Lx": length, "Lz": length * lab.Lz / lab.Lx}


def _sech2(x):
    """``sech²(x) = 4 e^(-2|x|) / (1 + e^(-2|x|))²``, which does not overflow far outside a thin layer
    (``1 / cosh(x)**2`` does, with a warning, where ``|x|`` > 710)."""
    e = np.exp(-2 * np.abs(x))
    return 4 * e / (1 + e) ** 2


@register_lab
class KelvinHelmholtzLab(Lab):
    """Kelvin–Helmholtz instability of a stratified shear layer (2-D Boussinesq, spectral)."""

    lab_name = "kelvin_helmholtz"
    convergence_title = "Invariants and residuals"
    title = "Kelvin–Helmholtz instability"
    description = (
        "A stratified shear layer rolls up into Kelvin–Helmholtz billows: 2-D Boussinesq flow, "
        "vorticity–streamfunction, Fourier × sine/cosine spectral with free-slip walls, ETDRK4 with a CFL step; "
        "energy budget, mixing and the linear growth rate against Rayleigh/Michalke and Taylor–Goldstein theory live."
    )
    presets = {
        "basic_shear": dict(_PEER, t_end=10.0, shear_thickness=0.05, rho_top=1.0, rho_bottom=1.2,
                            Re=1000.0, Ri=0.25),
        "double_shear": dict(_PEER, t_end=15.0, profile="double", shear_thickness=0.04, separation=0.3,
                             rho_top=1.0, rho_bottom=1.5, stratification="jet", Re=2000.0, Ri=0.1),
        "rotating": dict(_PEER, t_end=20.0, shear_thickness=0.05, rho_top=1.0, rho_bottom=1.3,
                         rotation=0.5, Re=1500.0, Ri=0.3),
        "forced": dict(_PEER, nx=384, nz=192, t_end=30.0, shear_thickness=0.05, rho_top=1.0, rho_bottom=1.1,
                       forcing_amplitude=0.1, forcing_modes=5, Re=5000.0, Ri=0.15),
    }
    default_preset = "basic_shear"
    output_files = ("checkpoint_file",)
    input_files = ("resume_from",)
    memory_hint = ("Use fewer points ('nx', 'nz'), or an integrator that keeps fewer arrays: 'rk4', 'ifrk4' or "
                   "'etdrk4' (if_dop853 keeps ~86 of the state's size for each step size).")
    # energies ~1e-3, enstrophy ~10, dt ~1e-3, entropy ~3: on a linear axis only the enstrophy shows
    diagnostics_scale = "abs_log"
    # ~19 diagnostics in one plot are hard to read: the page can show each of these alone
    diagnostic_groups = {
        "energy": ("kinetic_energy", "perturbation_energy", "potential_energy", "available_potential_energy",
                   "background_potential_energy"),
        "budget": ("dissipation", "buoyancy_flux", "pe_diffusion", "forcing_power", "coriolis_power"),
        "mixing": ("mixing_efficiency", "mixed_layer_thickness", "density_entropy", "mean_density"),
        "growth": ("perturbation_energy", "growth_rate", "theory_growth_rate"),
        "flow": ("enstrophy", "coriolis_force", "dt"),
    }
    groups = {
        "Flow": ["profile", "velocity", "shear_thickness", "density_thickness", "separation", "stratification", "rho_top",
                 "rho_bottom", "Re", "Ri", "Pr", "rotation", "forcing_amplitude", "forcing_modes"],
        "Initial perturbation": ["noise", "perturbation", "perturbation_mode", "seed"],
        "Grid": ["boundary", "Lx", "Lz", "nx", "nz"],
        "Time stepping": ["integrator", "cfl", "dt", "rtol", "atol", "t_end", "n_snapshots"],
        "Files": ["checkpoint_file", "resume_from"],
        "Other": ["backend"],
    }
    # the names every 2-D lab of Explore takes (N, L; ny for the second direction, which is z here)
    aliases = {
        "N": Alias(int, "nx = N, and nz = N·Lz/Lx (square cells; even when doubly periodic)", _grid_of_N),
        "ny": Alias(int, "nz, the grid in the second direction (z here)", lambda lab, n: {"nz": n}),
        "L": Alias(float, "Lx = L, and Lz at the same aspect ratio", _domain_of_L),
    }

    # ---------------------------------------------------------------- flow
    profile = param.Selector(default="single", objects=["single", "double"],
                             doc="Velocity profile: single tanh shear layer, or double shear (a jet, two layers).")
    velocity = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.1, 2),
                            doc="Velocity jump half-amplitude U0 (in the units' Uref): u = ±U0 on either side of a layer.")
    shear_thickness = param.Number(0.05, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.01, 0.2),
                                   doc="Shear-layer thickness δ: U = U0 tanh(z/δ).")
    density_thickness = param.Number(None, bounds=(0, None), inclusive_bounds=(False, True), allow_None=True,
                                     softbounds=(0.01, 0.2),
                                     doc="Density-interface thickness (default: the shear thickness).")
    separation = param.Number(0.3, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.1, 0.8),
                              doc="Distance between the two layers of the double shear.")
    stratification = param.Selector(
        default="layered", objects=["layered", "jet"],
        doc="Density of the double profile with walls: 'layered' (rho_top above, rho_bottom below, a step of "
            "half the jump at each layer: stable) or 'jet' (kh2d-solver's double_shear: rho_top between the "
            "two layers, rho_bottom outside, so the upper interface is heavy over light: statically unstable). "
            "Doubly periodic, a uniform background gradient carries the stratification instead.")
    rho_top = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.5, 2),
                           doc="Density of the upper fluid.")
    rho_bottom = param.Number(1.2, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.5, 2),
                              doc="Density of the lower fluid (heavier below: stable stratification; lighter "
                                  "below: heavy over light, statically unstable, with walls only).")
    Re = param.Number(1000.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(10, 20000),
                      doc="Reynolds number Uref Lref / ν of the units (the layer's is velocity · Re).")
    Ri = param.Number(0.25, bounds=(0, None), softbounds=(0, 1),
                      doc="Bulk Richardson number g Δρ Lref / (ρ0 Uref²) of the units (the layer's is Ri / velocity²; "
                          "0: unstratified, density passive).")
    Pr = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.1, 10),
                      doc="Prandtl (Schmidt) number ν / κ.")
    rotation = param.Number(0.0, softbounds=(0, 2),
                            doc="Rotation rate Ω about the axis normal to the plane (Coriolis force; "
                                "no effect in 2-D incompressible flow — see the lab notes).")
    forcing_amplitude = param.Number(0.0, bounds=(0, None), softbounds=(0, 0.5),
                                     doc="Amplitude of the steady random-phase body force (per mode).")
    forcing_modes = param.Integer(5, bounds=(1, 64), doc="Number of forced x-modes (wavenumbers 1..n, random phases).")
    # ---------------------------------------------------------------- perturbation
    noise = param.Number(0.01, bounds=(0, None), softbounds=(0, 0.1),
                         doc="rms velocity of the seeded random perturbation near the layer(s).")
    perturbation = param.Number(0.0, bounds=(0, None), softbounds=(0, 0.1),
                                doc="rms velocity of a single-mode perturbation cos(2π n x/Lx) sech²(z/δ).")
    perturbation_mode = param.Integer(1, bounds=(1, None), softbounds=(1, 16), doc="Mode number n of that perturbation.")
    # ---------------------------------------------------------------- grid
    boundary = param.Selector(default="walls", objects=["walls", "periodic"],
                              doc="z boundaries: free-slip no-flux walls (sine/cosine series) or doubly periodic.")
    Lx = param.Number(2.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.5, 10), doc="Domain length in x (periodic).")
    Lz = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.5, 10), doc="Domain height: z in [-Lz/2, Lz/2].")
    nx = param.Integer(256, bounds=(8, 8192), softbounds=(16, 1024), step=2, doc="Grid points in x (even; FFT-friendly sizes are fastest).")
    nz = param.Integer(128, bounds=(8, 8192), softbounds=(8, 512),
                       doc="Grid intervals in z (nz + 1 points with walls; nz points doubly periodic).")
    # ---------------------------------------------------------------- time
    integrator = param.Selector(default="etdrk4", objects=KH_INTEGRATORS,
                                doc="Time integrator: etdrk4 / ifrk4 (viscosity exact, CFL step), rk4, or adaptive dop853 / dopri5 / if_dop853 (viscosity exact).")
    cfl = param.Number(1.5, bounds=(0, 2.5), softbounds=(0, 2),
                       doc="CFL cap dt·max(|u|/dx + |w|/dz) of the fixed-step methods (the step is taken "
                           "at 0.83–0.9 of it); 0: constant dt. RK4-type steppers on dealiased spectral "
                           "advection are stable to about 1.35 (2√2 / (2π/3)) without viscosity. The step also keeps "
                           "dt·N ≤ 1 for the buoyancy frequency N = sqrt(Ri max|∂ρ/∂z|); rk4, which steps "
                           "viscosity explicitly too, keeps dt·max(ν, κ)·K² below 2.5.")
    dt = param.Number(0.02, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(1e-4, 0.1),
                      doc="Largest step of the fixed-step integrators (with cfl = 0: their constant step, "
                          "shortened so whole steps fill each frame interval); the adaptive ones (dop853, "
                          "dopri5, if_dop853) choose their own from rtol and atol.")
    rtol, atol = tolerances(1e-6, 1e-9)
    t_end = param.Number(10.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.1, 50), doc="Final time.")
    n_snapshots = param.Integer(50, bounds=(1, 100_000), softbounds=(1, 400), doc="Number of frames after t = 0.")
    checkpoint_file = param.String("", doc="File (.npz) overwritten with the full state at every frame ('' = none).")
    resume_from = param.String("", doc="Checkpoint to resume from: continues on the same time line, to this run's "
                                       "t_end, with the same frame interval t_end / n_snapshots ('' = start at t = 0).")

    notes = ROTATION_NOTE

    # ---------------------------------------------------------------- validation
    def inactive_parameters(self) -> frozenset[str]:
        """The double profile's ``separation`` (and its ``stratification``) under the single one, the
        latter and ``density_thickness`` doubly periodic too (a uniform background gradient carries the
        stratification there); the mode counts of an absent forcing or perturbation, ``seed`` without
        noise or forcing (nothing random); ``dt`` and ``cfl`` under an adaptive integrator, the
        tolerances under a fixed-step one."""
        out = set()
        if self.profile == "single":
            out |= {"separation", "stratification"}
        if self.boundary == "periodic":
            out |= {"stratification", "density_thickness"}
        if self.noise == 0 and self.forcing_amplitude == 0:
            out.add("seed")
        if self.forcing_amplitude == 0:
            out.add("forcing_modes")
        if self.perturbation == 0:
            out.add("perturbation_mode")
        return frozenset(out | ignored_stepping(self.integrator, ("dt", "cfl")))

    def notices(self) -> list[str]:
        out = [] if self.cfl > 0 else shortened_step(  # (with a CFL step, dt is a cap: its doc says so)
            self.integrator, self.dt, self.t_end / self.n_snapshots, "frame interval t_end / n_snapshots")
        dz = self.Lz / self.nz
        layers = [("shear_thickness", self.shear_thickness)]
        if self.density_thickness is not None and self.boundary == "walls":  # (doubly periodic: no density layer)
            layers.append(("density_thickness", self.density_thickness))
        for name, thickness in layers:
            if thickness < dz:
                least = math.ceil(self.Lz / thickness)
                if self.boundary == "periodic":  # (nz must be even there)
                    least += least % 2
                out.append(f"'{name}' = {thickness:g} is thinner than the grid spacing Lz/nz = {dz:.3g}: the grid "
                           f"cannot resolve the layer (the flow comes out wrong, and the step may shrink far); use nz ≥ "
                           f"{least:d} or a thicker layer.")
        if self.integrator in EXPLICIT_VISCOSITY:
            kx, kz = bq.largest_kept_wavenumbers(self.Lx, self.Lz, self.nx, self.nz, walls=self.boundary == "walls")
            h = EXPLICIT_DIFFUSION_LIMIT * self.Re * min(1.0, self.Pr) / (kx * kx + kz * kz)
            if self.t_end / h > MANY_STEPS:
                out.append(f"{self.integrator} steps viscosity explicitly: at Re = {self.Re:g} its steps are at most "
                           f"~{h:.2g}, ~{self.t_end / h:.2g} of them to t_end; 'etdrk4' or 'ifrk4' take viscosity "
                           "exactly.")
        return out + long_run(self.integrator, self.dt, self.t_end)

    def memory_estimate(self) -> int:
        """The lab's own arrays (:data:`OWN_BYTES_PER_POINT` per grid point, :data:`OWN_FIXED_BYTES`) and what the integrator keeps
        of states that hold the modes the 2/3 rule keeps (with walls, where the transforms allow it), else
        every mode."""
        walls = self.boundary == "walls"
        if walls and (self.backend == "numpy" or self.nz + 1 <= bq.DENSE_MAX):  # (ChannelGrid's fast or dense z)
            modes = math.prod(bq.kept_band(self.nx, self.nz))
        else:
            modes = (self.nz + 1 if walls else self.nz) * (self.nx // 2 + 1)
        state = 16 * 2 * modes
        own = OWN_BYTES_PER_POINT[self.boundary] * self.nx * self.nz + OWN_FIXED_BYTES
        return own + INTEGRATORS[self.integrator].working_bytes(state)

    def check(self) -> None:
        name = self.lab_name
        if self.nx % 2:
            raise ValueError(f"{name}: 'nx' must be even, got {self.nx}")
        if self.boundary == "periodic" and self.nz % 2:
            raise ValueError(f"{name}: 'nz' must be even when doubly periodic, got {self.nz}")
        if self.nx * self.nz > 2**24:
            raise ValueError(f"{name}: nx × nz = {self.nx * self.nz} is too large; reduce 'nx' or 'nz'")
        for length, n in (("Lx", self.nx), ("Lz", self.nz)):
            max_wavenumber(name, length, getattr(self, length), n)
        if self.rho_bottom == self.rho_top:
            raise ValueError(f"{name}: 'rho_bottom' equals 'rho_top'; the density jump sets the buoyancy scale")
        if self.boundary == "periodic" and self.rho_top > self.rho_bottom:
            raise ValueError(f"{name}: 'rho_top' > 'rho_bottom' (heavy over light) needs boundary 'walls'; doubly "
                             "periodic, an unstable background gradient would grow without bound")
        if self.stratification == "jet" and self.profile != "double":
            raise ValueError(f"{name}: 'stratification' 'jet' needs profile 'double' (the fluid between two shear layers)")
        if self.profile == "single" and self.boundary == "periodic":
            raise ValueError(f"{name}: profile 'single' is not periodic in z; use boundary 'walls' "
                             "(or profile 'double' for the doubly periodic case)")
        half = self.Lz / 2
        thick = max(self.shear_thickness, self._density_thickness)
        if self.profile == "single" and 5 * thick > half:
            raise ValueError(f"{name}: 'shear_thickness'/'density_thickness' {thick:g} too large for Lz = {self.Lz:g} "
                             "(the layer must decay before the walls)")
        if self.profile == "double" and self.separation / 2 + 4 * thick > half:
            raise ValueError(f"{name}: 'separation' {self.separation:g} leaves no room for layers of thickness "
                             f"{thick:g} in Lz = {self.Lz:g}")
        if self.perturbation > 0 and 3 * self.perturbation_mode >= self.nx:
            raise ValueError(f"{name}: 'perturbation_mode' {self.perturbation_mode} is outside the resolved band of nx = {self.nx}")
        if self.forcing_amplitude > 0 and 3 * self.forcing_modes >= self.nx:
            raise ValueError(f"{name}: 'forcing_modes' {self.forcing_modes} is outside the resolved band of nx = {self.nx}")
        info = INTEGRATORS[self.integrator]
        # the step never exceeds dt (with a CFL step, it is taken at CFL_MARGIN of its limit at most)
        least = self.t_end / (self.dt if self.cfl == 0 else CFL_MARGIN * self.dt)
        if not info.adaptive and least > MAX_STEPS:
            raise ValueError(f"{name}: dt = {self.dt:g} needs at least {least:.3g} steps to t_end; increase 'dt' "
                             "or shorten 't_end'")
        if self.resume_from:
            check_input_file(name, "resume_from", self.resume_from)
        if self.checkpoint_file:
            check_output_file(name, "checkpoint_file", self.checkpoint_file)
            check_checkpoint_name(name, "checkpoint_file", self.checkpoint_file)

    @property
    def _density_thickness(self) -> float:
        return self.shear_thickness if self.density_thickness is None else self.density_thickness

    @property
    def divergence_hint(self) -> str:  # type: ignore[override]
        if INTEGRATORS[self.integrator].adaptive:
            return ("If the step size underflowed, loosen 'rtol'/'atol' (tolerances near round-off); otherwise "
                    "tighten them, or increase 'nx'/'nz' (the flow may be under-resolved).")
        if self.cfl == 0:
            return ("With cfl = 0 the step is constant: reduce 'dt' or set 'cfl' (e.g. 0.8) so the step "
                    "follows the velocity; or increase 'nx'/'nz'.")
        return "Reduce 'cfl' or 'dt', or increase 'nx'/'nz' (the flow may be under-resolved)."

    # ---------------------------------------------------------------- set-up
    def make_grid(self, xp) -> bq.ChannelGrid:
        return bq.ChannelGrid(self.Lx, self.Lz, self.nx, self.nz, xp, walls=self.boundary == "walls")

    def base_profiles(self, z):
        """Host arrays ``U(z)``, ``dU/dz`` and the density anomaly ``ρ(z)`` in units of the jump (its sign:
        ``ρ`` falls with height when the bottom fluid is the heavier one)."""
        d, dr, U0 = self.shear_thickness, self._density_thickness, self.velocity
        if self.profile == "single":
            U = U0 * np.tanh(z / d)
            dU = U0 / d * _sech2(z / d)
            rho = -0.5 * np.tanh(z / dr)
        else:
            a = self.separation / 2
            U = U0 * (np.tanh((z + a) / d) - np.tanh((z - a) / d) - 1.0)
            dU = U0 / d * (_sech2((z + a) / d) - _sech2((z - a) / d))
            if self.stratification == "jet":  # rho_top between the layers, rho_bottom outside
                rho = 0.5 - 0.5 * (np.tanh((z + a) / dr) - np.tanh((z - a) / dr))
            else:
                rho = -0.25 * (np.tanh((z - a) / dr) + np.tanh((z + a) / dr))
        if self.boundary == "periodic":  # uniform background gradient -z/Lz carries the stratification
            rho = np.zeros_like(z)
        return U, dU, rho * self._jump_sign

    @property
    def _jump_sign(self) -> float:
        """+1 when the lower fluid is the heavier one (stable), -1 for heavy over light."""
        return 1.0 if self.rho_bottom > self.rho_top else -1.0

    def initial_state(self):
        """Host initial state: ``(y0, mean_velocity, forcing, forcing_streamfunction)`` on a NumPy grid."""
        import array_api_compat

        g = self.make_grid(array_api_compat.array_namespace(np.zeros(1)))
        z, x = g.z[:, None], g.x[None, :]
        U, dU, rho = self.base_profiles(g.z)
        zeta = g.forward(np.broadcast_to(dU[:, None], g.shape), bq.ODD)
        rho_hat = g.forward(np.broadcast_to(rho[:, None], g.shape), bq.EVEN)
        mean_velocity = float(g.mean(np.broadcast_to(U[:, None], g.shape)))
        d = self.shear_thickness
        if self.profile == "single":
            envelope = _sech2(z / d)
        else:
            a = self.separation / 2
            envelope = _sech2((z - a) / d) + _sech2((z + a) / d)
        if self.noise > 0:
            rng = np.random.default_rng([self.seed, 0])
            r = rng.standard_normal(g.shape) * envelope
            # smooth noise: the lowest ~nx/16 x-modes and ~nz/8 z-modes
            low = (g.kx <= g.kx[0, 1] * max(2, self.nx // 16)) & (np.abs(g.kz) <= abs(g.kz[1, 0]) * max(2, self.nz // 8))
            noise_hat = g.forward(r, bq.ODD) * low
            noise_hat[:, 0] = 0.0  # a perturbation, not a change of the mean flow
            zeta = zeta + noise_hat * (self.noise / self._rms_velocity(g, noise_hat))
        if self.perturbation > 0:
            k = 2 * math.pi * self.perturbation_mode / self.Lx
            mode_hat = g.forward(np.cos(k * x) * envelope, bq.ODD)
            zeta = zeta + mode_hat * (self.perturbation / self._rms_velocity(g, mode_hat))
        forcing = psi_f_hat = None
        if self.forcing_amplitude > 0:
            rng = np.random.default_rng([self.seed, 1])
            phases = rng.uniform(0, 2 * math.pi, size=(self.forcing_modes, 2))
            psi_f = np.zeros(g.shape)
            for j in range(self.forcing_modes):
                kx = 2 * math.pi * (j + 1) / self.Lx
                if g.walls:
                    kz = math.pi / self.Lz
                    zpart = np.sin(kz * (z + self.Lz / 2))
                else:
                    kz = 2 * math.pi / self.Lz
                    zpart = np.sin(kz * z + phases[j, 1])
                psi_f = psi_f + self.forcing_amplitude / math.hypot(kx, kz) * np.cos(kx * x + phases[j, 0]) * zpart
            psi_f_hat = g.forward(psi_f, bq.ODD) * g.dealias
            forcing = -g.K2 * psi_f_hat
        y0 = np.stack([zeta, rho_hat]) * g.dealias
        return y0, mean_velocity, forcing, psi_f_hat

    @staticmethod
    def _rms_velocity(g, zeta_hat) -> float:
        return math.sqrt(2 * bq.kinetic_energy(g, zeta_hat)) or 1.0

    def make_problem(self, xp):
        """The grid, the :class:`~explore.numerics.boussinesq.BoussinesqProblem` and ``y0`` on backend ``xp``."""
        grid = self.make_grid(xp)
        y0, mean_velocity, forcing, psi_f = self.initial_state()
        problem = bq.BoussinesqProblem(
            grid, self.Re, self.Ri, self.Pr, mean_velocity=mean_velocity, rotation=self.rotation,
            forcing=None if forcing is None else xp.asarray(forcing),
            forcing_streamfunction=None if psi_f is None else xp.asarray(psi_f),
            background_gradient=1.0 / self.Lz if self.boundary == "periodic" else 0.0, compact=True,
        )
        return grid, problem, xp.asarray(y0)

    # ---------------------------------------------------------------- time step
    def _cfl_limit(self, problem, t: float) -> float:
        """The step at which ``dt max(|u|/dx + |w|/dz)`` equals ``cfl`` (never above ``dt``), at time ``t``,
        shortened to resolve the buoyancy frequency (``BUOYANCY_LIMIT``) and, under rk4, viscosity.

        The rate is the maximum over the grid of the local advective rate, as in the frozen-coefficient
        stability bound of the advection operator (``|λ| ≤ max (|u| k_x,max + |w| k_z,max)``); in the
        billows it is ~25–45 % below ``max|u|/dx + max|w|/dz``, whose maxima sit in different places.

        Raises ``SolverDiverged`` for a non-finite velocity, and for a step so small that the rest of
        the run would take more than ``MAX_STEPS`` (a flow blowing up stays finite for a while, its step
        shrinking towards ``t + h == t``: the run would never end).
        """
        rate = problem.max_rate
        if not math.isfinite(rate):
            raise SolverDiverged(t, "the velocity (CFL)", self.divergence_hint)
        # an explicit stepper (rk4) must also resolve the fastest viscous/diffusive decay; advection
        # (imaginary axis) and diffusion (real axis) share its stability region, hence the sum
        advection = max(rate, 0.0) / self.cfl
        viscous = self._explicit_diffusion_rate / EXPLICIT_DIFFUSION_LIMIT
        buoyancy = problem.buoyancy_frequency / BUOYANCY_LIMIT
        if not math.isfinite(buoyancy):
            raise SolverDiverged(t, "the density gradient (buoyancy frequency)", self.divergence_hint)
        inverse = advection + viscous + buoyancy
        limit = self.dt if inverse <= 0 else min(self.dt, 1.0 / inverse)
        left = (self.t_end - t) / (CFL_MARGIN * limit)
        if left > MAX_STEPS:
            if buoyancy > max(advection, viscous):
                why = (f"The stratification sets this step: gravity waves of frequency up to "
                       f"{problem.buoyancy_frequency:.3g} need dt ≤ {BUOYANCY_LIMIT:g}/N; reduce 'Ri' or 't_end'.")
            elif viscous > advection:  # (rk4 steps viscosity explicitly)
                why = ("Explicit viscosity/diffusion sets this step: use 'etdrk4' or 'ifrk4' (exact viscosity), "
                       "or raise 'Re' or use fewer points.")
            else:
                why = ("The flow is too fast for this grid: reduce 'velocity' (or the forcing), or use fewer points "
                       "('nx'/'nz'); or it is blowing up: " + self.divergence_hint)
            raise SolverDiverged(t, f"the CFL step: {limit:.3g} would take ~{left:.3g} steps to t_end", why,
                                 what="stopped")
        return limit

    @staticmethod
    def _steps_per_frame(need: float) -> int:
        """Smallest rung ``ceil(2^(k/8))`` ≥ ``need``: few distinct step sizes over a run."""
        k = max(0, math.ceil(DT_RUNGS_PER_OCTAVE * math.log2(max(need, 1.0)) - 1e-9))
        while math.ceil(2 ** (k / DT_RUNGS_PER_OCTAVE)) < need:
            k += 1
        return math.ceil(2 ** (k / DT_RUNGS_PER_OCTAVE))

    def _advance_cfl(self, stepper, problem, state, t_target: float, frame_dt: float):
        """Advance to ``t_target`` in equal steps ``frame_dt / n`` that keep the CFL number below ``cfl``.

        The dt-dependent exponentials are cached per step size, so the step is a whole fraction of
        the frame interval taken from a ladder of ~9 % rungs (chosen with the ``CFL_MARGIN``): the same
        few step sizes recur all run long and every frame is reached without a clipped step. If the
        flow speeds up within an interval beyond ``cfl``, the step is divided by a whole number for the
        rest of the interval (which stays a whole number of steps).
        """
        limit = self._cfl_limit(problem, state.t)
        n = self._steps_per_frame(frame_dt / (CFL_MARGIN * limit))
        h = frame_dt / n
        eps = 1e-9 * h
        while t_target - state.t > eps:
            remaining = t_target - state.t
            limit = self._cfl_limit(problem, state.t)
            if h > limit * (1 + 1e-12):  # sped up: divide the step for the rest of the interval
                h = h / math.ceil(h / (CFL_MARGIN * limit))
            if remaining < h * (1 - 1e-6):  # only after a re-split: one odd step lands on the frame
                h_now, t_stop = remaining, t_target
            else:  # a full step (the last one lands on the frame up to round-off, with the cached h)
                h_now, t_stop = h, state.t + 2 * h
            if h_now != state.dt:
                state = dataclasses.replace(state, dt=h_now)
            state = self._one_step(stepper, problem, state, t_stop)
        if abs(state.t - t_target) <= 1e-9 * h:  # n steps of frame_dt / n: the frame time up to round-off
            state = dataclasses.replace(state, t=t_target)
        return state

    def _one_step(self, stepper, problem, state, t_stop: float):
        t0 = state.t
        problem.record = True
        if getattr(state, "f", None) is not None:
            # a first-same-as-last stepper (dopri5, dop853) would start from the previous step's last
            # derivative, and the budget would be recorded at its second stage (t0 + c2 h, a partly
            # advanced state) but filed under t0: an O(h) error in the budget residuals (1e-3 instead of
            # 1e-5 for dopri5 on basic_shear). The first stage is evaluated again, at (t0, y0).
            state = dataclasses.replace(state, f=None)
        try:
            state = stepper.step(state, t_stop)
        except (StepSizeTooSmall, TooManySteps) as exc:
            raise SolverDiverged(state.t, f"the step size ({exc})", self.divergence_hint) from None
        self.ensure_progress(state, self.t_end)
        self._accumulate(t0, problem.budget)
        if state.steps % 32 == 0:
            self.ensure_finite(state.y, state.t, "the vorticity and density")
        return state

    # ---------------------------------------------------------------- the run
    def _frames(self, xp):
        grid, problem, y0 = self.make_problem(xp)
        self.ensure_finite(y0, 0.0, "the initial state")
        info = INTEGRATORS[self.integrator]
        adaptive = info.adaptive
        frame_dt = self.t_end / self.n_snapshots
        dt = None if adaptive else self.dt
        if not adaptive and self.cfl == 0:  # whole steps of one size fill each frame interval
            dt = fill_step(frame_dt, self.dt)
        stepper = make_integrator(self.integrator, problem, dt=dt, rtol=self.rtol, atol=self.atol)
        # one evaluation at t = 0 gives the velocity for the first CFL step and the budget at t = 0;
        # the stepper advances the problem's own (possibly compact: the dealiased band) state
        problem.record = True
        problem.nonlinear(0.0, problem.compress(y0))
        state = stepper.init(0.0, problem.compress(y0))
        use_cfl = not adaptive and self.cfl > 0
        # the largest decay rate of the kept modes, where a stepper does not take it exactly
        lin = problem.linear if problem.compact else problem.linear * grid.dealias
        self._explicit_diffusion_rate = (float(xp.max(xp.abs(lin))) if use_cfl
                                         and not isinstance(stepper, FixedStepSemilinear) else 0.0)
        self._grid, self._problem = grid, problem
        self._setup_diagnostics(grid, problem, y0)
        i0 = 0
        if self.resume_from:  # the references above come from y0 (seeded); the rest from the checkpoint
            state, i0 = self._load_checkpoint(stepper, xp, state.y.shape)
        self._final = None
        eps = 1e-12 * max(1.0, self.t_end)
        with np.errstate(over="ignore", invalid="ignore"):
            yield self._frame(i0, grid, problem, state)
            for i in range(i0 + 1, self.n_snapshots + 1):
                t_target = self.t_end * i / self.n_snapshots
                if use_cfl:
                    state = self._advance_cfl(stepper, problem, state, t_target, frame_dt)
                while t_target - state.t > eps:
                    state = self._one_step(stepper, problem, state, t_target)
                self.ensure_finite(state.y, state.t, "the vorticity and density")
                if self.checkpoint_file:
                    self._save_checkpoint(state, i)
                yield self._frame(i, grid, problem, state)
        y = problem.expand(state.y)
        self._final = (to_host(grid.inverse(y[0], bq.ODD)), to_host(self._density(grid, y)))

    # ---------------------------------------------------------------- checkpoints
    #: the accumulated budget integrals a checkpoint carries (with the budget at the last step start)
    _INTEGRALS = ("_budget_integral", "_dissipation_integral", "_abs_integral", "_pe_integral",
                  "_pe_abs_integral", "_chi_integral")

    def _resume_params(self) -> dict:
        """Everything that shapes the run up to a checkpoint: the physics, the initial state, the
        grid, the time stepping and the frame interval (not ``t_end``: a resumed run may go further)."""
        skip = {"name", "t_end", "n_snapshots", "checkpoint_file", "resume_from", "backend"}
        out = {k: v for k, v in self.values().items() if k not in skip}
        out["frame_dt"] = self.t_end / self.n_snapshots
        return out

    def _save_checkpoint(self, state, i: int) -> None:
        t_ref, b_ref = self._budget_ref
        save_checkpoint(self.checkpoint_file, state, i, self._resume_params(),
                        integrals=np.array([getattr(self, k) for k in self._INTEGRALS]),
                        budget_ref=np.array(json.dumps([t_ref, b_ref])), growth_ref=np.array(self._growth_ref))

    def _load_checkpoint(self, stepper, xp, shape: tuple):
        state, i0, extra = load_checkpoint(self.resume_from, stepper, xp, self._resume_params(), self.lab_name,
                                           shape=shape, required=("integrals", "budget_ref"),
                                           names={"frame_dt": "frame interval t_end / n_snapshots"})
        if i0 > self.n_snapshots:
            raise ValueError(f"{self.lab_name}: 'resume_from' is at t = {state.t:g}, past t_end = {self.t_end:g}")
        with checkpoint_entries(self.resume_from, self.lab_name):
            integrals = [float(v) for v in extra["integrals"]]
            if len(integrals) != len(self._INTEGRALS):
                raise ValueError(f"{len(integrals)} integrals, not {len(self._INTEGRALS)}")
            t_ref, b_ref = json.loads(str(extra["budget_ref"]))
            growth = tuple(float(v) for v in extra["growth_ref"]) if "growth_ref" in extra else None
        for k, v in zip(self._INTEGRALS, integrals):
            setattr(self, k, v)
        self._budget_ref = (t_ref, b_ref)
        if growth is not None:
            self._growth_ref = growth
        return state, i0

    # ---------------------------------------------------------------- diagnostics
    def _density(self, grid, y):
        """Density anomaly (in units of the jump) including the periodic background."""
        rho = grid.inverse(y[1], bq.EVEN)
        if grid.walls:
            return rho
        return rho - grid.z[:, None] / self.Lz

    def _domain_mean(self, grid, rho) -> float:
        """The domain mean of the density anomaly ``rho`` (from :meth:`_density`). Doubly periodic, the
        background ``-z/Lz`` averages to 0 over the period (its mean over the grid points, which hold
        ``-Lz/2`` but not ``Lz/2``, is ``dz/2Lz``): only the periodic part is averaged."""
        if grid.walls:
            return float(grid.mean(rho))
        return float(grid.mean(rho + grid.z[:, None] / self.Lz))

    def _setup_diagnostics(self, grid, problem, y0) -> None:
        xp = grid.xp
        self._ke0 = bq.kinetic_energy(grid, y0[0], problem.mean_velocity)
        self._budget_ref = (0.0, dict(problem.budget))
        self._budget_integral = 0.0      # ∫ (-ε + B + P + C) dt up to the reference time
        self._dissipation_integral = 0.0
        self._abs_integral = 0.0
        self._pe_integral = 0.0          # ∫ (-B + Φ_d) dt (walls: dPE/dt = -B + Φ_d)
        self._pe_abs_integral = 0.0
        self._chi_integral = 0.0         # ∫ χ dt, doubly periodic (linear APE destroyed by mixing)
        rho0 = self._density(grid, y0)
        self._rho_range = (float(xp.min(rho0)), float(xp.max(rho0)))
        self._mean0 = self._domain_mean(grid, rho0)
        self._bpe0 = bq.background_potential_energy(grid, rho0, self.Ri)
        # each grid row as a horizontal slab of its quadrature weight, stacked from the bottom: the heights
        # at which the background PE puts its parcels, so PE - BPE is 0 for a stable layering at any grid
        w = grid.z_weights[:, 0]
        self._z_slab = xp.reshape(-grid.Lz / 2 + grid.Lz * (xp.cumulative_sum(w) - w / 2), (-1, 1))
        self._pe0 = self._potential_energy(grid, y0)
        self._wavy = xp.astype(grid.kx > 0, xp.float64)
        self._growth_ref = (math.nan, math.nan)
        self._theory = self._theory_rate()
        self._z_host = to_host(grid.z)
        self._x_host = to_host(grid.x)

    def _theory_rate(self) -> float | None:
        """Inviscid linear growth rate of the tanh layer (one layer, walls; otherwise None), in the layer's
        units ``U0 tanh(z/δ)``: ``σ = (U0/δ) σ̂(k δ)`` with walls at ``H = Lz/(2δ)``.

        Ri = 0: Rayleigh's equation, for the seeded mode of a single-mode start, else the fastest mode the
        box holds. A stable layering (Ri > 0) with a single-mode start: the Taylor–Goldstein equation for
        that mode, with ``J = Ri δ² / (2 δ_ρ U0²)`` and thickness ratio ``δ/δ_ρ`` (a scan over every mode
        would cost more than a short run; heavy over light has no such theory here).
        """
        if self.profile != "single" or self.boundary != "walls":
            return None
        d, single = self.shear_thickness, self.noise == 0 and self.perturbation > 0
        H, scale = self.Lz / (2 * d), abs(self.velocity) / d
        if self.Ri == 0:  # the curve has one peak (near α = 0.4446): the fastest box mode is one of those around it
            peak = bq.MICHALKE_ALPHA_MAX * self.Lx / (2 * math.pi * d)
            modes = [self.perturbation_mode] if single else {max(1, math.floor(peak) + j) for j in (-1, 0, 1, 2)}
            return scale * max(bq.rayleigh_growth_rate(2 * math.pi * n * d / self.Lx, half_height=H) for n in modes)
        if not single or self._jump_sign < 0:
            return None
        dr = self._density_thickness
        J = self.Ri * d**2 / (2 * dr) / abs(self.velocity) / abs(self.velocity)  # (inf, not an error, for a tiny U0)
        # Miles–Howard: no instability where the gradient Richardson number J cosh⁴(z/δ) / cosh²(z/δ_ρ) is
        # at least 1/4 everywhere between the walls (its minimum is J at z = 0 only while δ/δ_ρ ≤ √2)
        z = np.linspace(0.0, H, 2001)
        log_cosh = lambda x: np.logaddexp(x, -x) - math.log(2)  # noqa: E731 - ln cosh x, without overflow
        if J * float(np.min(np.exp(4 * log_cosh(z) - 2 * log_cosh(z * d / dr)))) >= 0.25:
            return 0.0
        alpha = 2 * math.pi * self.perturbation_mode * d / self.Lx
        return scale * bq.taylor_goldstein_growth_rate(alpha, J, thickness_ratio=d / dr, half_height=H)

    @staticmethod
    def _rate(b: dict) -> float:
        return -b["dissipation"] + b["buoyancy_flux"] + b["forcing_power"] + b["coriolis_power"]

    @staticmethod
    def _abs_rate(b: dict) -> float:
        return b["dissipation"] + abs(b["buoyancy_flux"]) + abs(b["forcing_power"]) + abs(b["coriolis_power"])

    def _potential_energetics(self, grid, rho, pe_budget: float, chi_int: float, diss_int: float) -> dict:
        """Potential, background and available potential energy and the cumulative mixing efficiency.

        With walls (Winters et al., "Available potential energy and mixing in density-stratified
        fluids"): ``PE = Ri <ρ z>``, the background PE of the density sorted stably, ``APE = PE − BPE``,
        and mixing efficiency ``ΔBPE / (ΔBPE + ∫ε dt)``. Doubly periodic, ``z`` has no global meaning
        (a parcel crossing the box top reappears at its bottom); about the background gradient γ the
        linear APE ``Ri <ρ'²> / (2γ)`` and ``∫χ dt / (∫χ dt + ∫ε dt)`` with ``χ`` its mixing loss
        (the budget's ``ape_dissipation``) take their places.
        """
        Ri = self.Ri
        if grid.walls:
            pe = float(Ri * grid.mean(rho * self._z_slab))   # the background PE's parcels and heights
            bpe = bq.background_potential_energy(grid, rho, Ri)
            mixing = bpe - self._bpe0
            return {"potential_energy": pe, "background_potential_energy": bpe, "available_potential_energy": pe - bpe,
                    "mixing_efficiency": mixing / (mixing + diss_int) if mixing + diss_int > 0 else 0.0}
        ape = pe_budget  # doubly periodic: the linear APE
        return {"available_potential_energy": ape,
                "mixing_efficiency": chi_int / (chi_int + diss_int) if chi_int + diss_int > 0 else 0.0}

    def _potential_energy(self, grid, y) -> float:
        """The potential energy of the budget. With walls ``Ri <ρ z>``, exact for the cosine series
        (:meth:`ChannelGrid.z_moment`; the displayed ``potential_energy`` puts each row at the height the
        background PE gives its parcels, so the available PE is exact for a stable layering; they
        differ by O(dz)). Doubly periodic, the linear APE ``Ri <ρ'²> / (2γ)`` about the background
        gradient ``γ = 1/Lz`` (its budget is exact in space: advection conserves ``<ρ'²>``)."""
        if grid.walls:
            return float(self.Ri * grid.z_moment(y[1]))
        anomaly = grid.inverse(y[1], bq.EVEN)
        d = anomaly - grid.mean(anomaly)
        return float(self.Ri * self.Lz * grid.mean(d * d) / 2)

    @staticmethod
    def _pe_rate(b: dict) -> float:
        """dPE/dt (walls: ``-B + Φ_d``) or, doubly periodic, d(linear APE)/dt = ``-B - χ``."""
        return -b["buoyancy_flux"] + b.get("pe_diffusion", 0.0) - b.get("ape_dissipation", 0.0)

    @staticmethod
    def _pe_abs_rate(b: dict) -> float:
        return abs(b["buoyancy_flux"]) + abs(b.get("pe_diffusion", 0.0)) + abs(b.get("ape_dissipation", 0.0))

    def _accumulate(self, t0: float, budget: dict | None) -> None:
        """Trapezoid in time of the kinetic- and potential-energy sources, from the budget recorded at
        each step start."""
        t_ref, b_ref = self._budget_ref
        if budget is None or t0 <= t_ref:
            return
        h = t0 - t_ref
        self._budget_integral += 0.5 * h * (self._rate(b_ref) + self._rate(budget))
        self._dissipation_integral += 0.5 * h * (b_ref["dissipation"] + budget["dissipation"])
        self._abs_integral += 0.5 * h * (self._abs_rate(b_ref) + self._abs_rate(budget))
        self._pe_integral += 0.5 * h * (self._pe_rate(b_ref) + self._pe_rate(budget))
        self._pe_abs_integral += 0.5 * h * (self._pe_abs_rate(b_ref) + self._pe_abs_rate(budget))
        self._chi_integral += 0.5 * h * (b_ref.get("ape_dissipation", 0.0) + budget.get("ape_dissipation", 0.0))
        self._budget_ref = (t0, dict(budget))

    def _frame(self, i: int, grid, problem, state) -> Frame:
        xp = grid.xp
        y = problem.expand(state.y)
        t = float(state.t) if i else 0.0
        # budget at this state, and the integrals up to it
        problem.record = True
        problem.nonlinear(t, state.y)
        b = problem.budget
        t_ref, b_ref = self._budget_ref
        h = t - t_ref
        integral = self._budget_integral + 0.5 * h * (self._rate(b_ref) + self._rate(b))
        diss_int = self._dissipation_integral + 0.5 * h * (b_ref["dissipation"] + b["dissipation"])
        abs_int = self._abs_integral + 0.5 * h * (self._abs_rate(b_ref) + self._abs_rate(b))
        pe_int = self._pe_integral + 0.5 * h * (self._pe_rate(b_ref) + self._pe_rate(b))
        pe_abs_int = self._pe_abs_integral + 0.5 * h * (self._pe_abs_rate(b_ref) + self._pe_abs_rate(b))
        chi_int = self._chi_integral + 0.5 * h * (b_ref.get("ape_dissipation", 0.0) + b.get("ape_dissipation", 0.0))
        ke = bq.kinetic_energy(grid, y[0], problem.mean_velocity)
        u, w = problem.velocity(y)
        rho = self._density(grid, y)
        zeta = grid.inverse(y[0], bq.ODD)
        jump = self.rho_bottom - self.rho_top
        mean_rho = self._domain_mean(grid, rho)
        pe_budget = self._potential_energy(grid, y)  # walls: Ri <ρ z>; doubly periodic: the linear APE
        energetics = self._potential_energetics(grid, rho, pe_budget, chi_int, diss_int)
        psi_hat = problem.streamfunction(y[0])
        wavy = psi_hat * self._wavy  # the x-dependent part: what an instability grows
        pert = float(0.5 * grid.inner(wavy * grid.K2, wavy))
        t_prev, pert_prev = self._growth_ref  # the previous frame's
        # ½ d ln(perturbation energy)/dt since the previous frame: the growth rate of the amplitude
        growth = ({"growth_rate": 0.5 * math.log(pert / pert_prev) / (t - t_prev)}
                  if t > t_prev and pert > 0 and pert_prev > 0 else {})  # (none at the first frame)
        self._growth_ref = (t, pert)
        convergence = {
            "divergence": bq.divergence_rms(grid, u, w),
            "mean_density_drift": abs(mean_rho - self._mean0) * abs(jump),
            "energy_budget_residual": abs(ke - self._ke0 - integral) / max(abs_int, 1e-300) if t > 0 else 0.0,
        }
        # walls: PE = Ri <ρ z>, dPE/dt = -B + Φ_d; doubly periodic: linear APE, d/dt = -B - χ
        convergence["pe_budget_residual"] = (abs(pe_budget - self._pe0 - pe_int) / max(pe_abs_int, 1e-300)
                                             if t > 0 else 0.0)
        rho_host = to_host(rho)
        profile = rho_host @ np.ones(self.nx) / self.nx  # x-mean ρ(z), in units of the jump
        lo, hi = self._rho_range
        if grid.walls:  # the band where the mean density is between 5 % and 95 % of the way across the jump
            frac = (profile - lo) / (hi - lo)
            wz = to_host(grid.z_weights)[:, 0] * self.Lz
            energetics["mixed_layer_thickness"] = float(np.sum(wz * ((frac > 0.05) & (frac < 0.95))))
        # every parcel counts: values a little beyond the initial range (over- and undershoots of the
        # unmixed far field) go to the end bins (np.histogram dropped them, and the rest looked more mixed)
        hist, _ = np.histogram(np.clip(rho_host, lo, hi), bins=ENTROPY_BINS, range=(lo, hi),
                               weights=np.broadcast_to(to_host(grid.z_weights), rho_host.shape))
        p = hist[hist > 0] / hist.sum()
        entropy = float(-(p * np.log(p)).sum() / math.log(ENTROPY_BINS))
        diagnostics = {
            "kinetic_energy": ke,
            "perturbation_energy": pert,
            **growth,
            **({"theory_growth_rate": self._theory} if self._theory is not None else {}),
            **energetics,
            "dissipation": b["dissipation"],
            "buoyancy_flux": b["buoyancy_flux"],
            **({"pe_diffusion": b["pe_diffusion"]} if "pe_diffusion" in b else {}),
            "forcing_power": b["forcing_power"],
            "enstrophy": bq.enstrophy(grid, y[0]),
            "mean_density": float(self._to_physical_density(mean_rho)),
            "density_entropy": entropy,
            "dt": float(state.dt),
        }
        if self.rotation:
            torque = grid.inverse(problem.coriolis_torque(psi_hat), bq.ODD)
            convergence["coriolis_torque"] = float(xp.sqrt(grid.mean(torque * torque)))
            up = u - problem.mean_velocity
            diagnostics["coriolis_force"] = 2 * abs(self.rotation) * float(xp.sqrt(grid.mean(up * up + w * w)))
            diagnostics["coriolis_power"] = b["coriolis_power"]
        k, E = bq.energy_spectrum(grid, u - problem.mean_velocity, w)
        k, E = to_host(k)[1:], to_host(E)[1:]
        x_disp, z_disp = decimate(self._x_host), decimate(self._z_host)
        density_phys = self._to_physical_density(rho_host)
        return Frame(
            step=i, time=t, progress=i / self.n_snapshots,
            convergence=convergence, diagnostics=diagnostics,
            spectrum=Curve(k, E, xlabel="k", ylabel="E(k)", logx=True, logy=True),
            samples={
                "vorticity": Field(x_disp, z_disp, decimate(to_host(zeta)), xlabel="x", ylabel="z", label="vorticity ζ"),
                "density": Field(x_disp, z_disp, decimate(density_phys), xlabel="x", ylabel="z", label="density ρ"),
                "density_profile": Curve(self._z_host, self._to_physical_density(profile), xlabel="z", ylabel="mean density",
                                         vertical=True),
            },
            nfe=state.nfe, steps=state.steps,
        )

    def _to_physical_density(self, rho):
        return 0.5 * (self.rho_top + self.rho_bottom) + abs(self.rho_bottom - self.rho_top) * rho

    def result_extras(self) -> dict:
        if self._final is None:
            return {}
        zeta, rho = self._final
        out = {
            "vorticity_final": (("z_grid", "x_grid"), zeta, {"long_name": "vorticity ζ at t_end (full resolution)"}),
            "density_final": (("z_grid", "x_grid"), self._to_physical_density(rho),
                              {"long_name": "density at t_end (full resolution)"}),
            "x_grid": ("x_grid", self._x_host),
            "z_grid": ("z_grid", self._z_host),
        }
        if self.rotation:
            out["rotation_note"] = ((), float(self.rotation), {"note": ROTATION_NOTE})
        return out


__all__ = ["KelvinHelmholtzLab", "ROTATION_NOTE"]
