r"""The reaction–diffusion lab: λ–ω spirals (rd-spiral's three regimes) and Gray–Scott patterns.

Two fields on a periodic square, Fourier pseudo-spectral with real FFTs: the state is the stacked
spectra of ``u`` and ``v`` (shape ``(2, N, N//2+1)``) with the diffusion symbol ``d_i |k|²`` per field,
so every integrator of the registry applies but the compositions that step backwards in time
(``split_step4`` / ``split_step6``: diffusion run backwards blows up): adaptive Dormand–Prince (``dopri5``,
the method of rd-spiral's RK45, or ``dop853``; their steps are pinned by diffusion), or IF-RK4 / ETDRK4 /
Strang splitting (λ–ω only) / the adaptive Lawson DOP853 (``if_dop853``), which treat the stiff diffusion
exactly. λ–ω with d1 = d2 is stepped in a frame co-rotating with the pattern (``frame``), where a rigidly
rotating spiral stands still. Each frame reports the moments of ``u``
and ``v``, their mutual information, the time-derivative norm, the phase-defect (spiral core) count
by winding number (λ–ω) or the number and area of the pattern's regions (Gray–Scott: spots or
stripes), an automatic regime classification and the radial (shell-summed) power spectrum.
Snapshots stream to netCDF while the run goes (``snapshot_file``, in blocks of a bounded buffer);
``checkpoint_file`` / ``resume_from`` restart a run on exactly the same time line, and a resumed run
continues its snapshot file from the checkpoint (the file is written at each checkpoint, and open only
while a block is written), so an interrupted (even killed) and resumed run leaves the same file as an
uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import deque

import numpy as np
import param

from explore.core import Curve, Field, Frame, Lab, Points, SolverDiverged, register_lab, to_host
from explore.core.checkpoint import checkpoint_entries, load_checkpoint, save_checkpoint
from explore.core.files import check_checkpoint_name, check_input_file, check_netcdf_name, check_output_file
from explore.core.frame import MAX_POINTS, decimate
from explore.core.lab import MAX_RUN_STEPS
from explore.numerics import reaction_diffusion as rd
from explore.numerics.integrators import INTEGRATORS, make_integrator
from explore.labs._stepping import ignored_stepping, long_run, max_wavenumber, shortened_step, tolerances
from explore.numerics.rk import StepSizeTooSmall, TooManySteps, fill_step

#: regime codes of the ``regime`` diagnostic (CF flag values / meanings in the result)
REGIMES = ("transient", "steady", "periodic", "chaotic", "homogeneous_oscillation")
#: frames in the window the regime classification looks at
REGIME_WINDOW = 16
#: the spatial contrast has "died out" when it has fallen this far below its own maximum over the
#: run; and a state is steady when what is left of its change is this small a fraction of it
DECAY_RATIO = 1e-3
#: a windowed statistic is stationary when its relative spread stays below this; it fluctuates
#: (rather than drifts) when it moves back against its trend by more than this fraction of itself
STATIONARY_SPREAD = 1e-2
#: frames over which a homogeneous oscillation's relative rate (its frequency) must be stationary: a
#: uniform state that decays to a fixed point (Gray–Scott's (1, 0)) has lost its contrast too
OSCILLATION_FRAMES = 4
#: a relative change or contrast this small is round-off: nothing moves, or nothing varies in space
ROUNDOFF = 1e-10
#: side of Pearson's perturbed square: 20 grid points of 256 on a box of side 2.5
PEARSON_SIDE = 20 * 2.5 / 256
#: the fixed step is divided by this over the ``initial_layer``
INITIAL_LAYER_REFINEMENT = 5
#: the most snapshot intervals a run may have (t_end / snapshot_dt): far beyond any useful run, and
#: below what would overflow a count (a snapshot_dt of 1e-320 made round() raise OverflowError)
MAX_SNAPSHOTS = 10**9
#: memory the snapshot stream may hold before it writes a block to ``snapshot_file``
SNAPSHOT_BUFFER_BYTES = 32 * 2**20
#: the lab's own arrays (fields, wavenumbers, diagnostics), in states (2, N, N/2 + 1) complex: measured
OWN_STATES = 10
#: physics and numerics that a checkpoint must share with the run resuming from it
#: what shapes the run up to a checkpoint: the physics, the initial state, the grid and the time stepping
_RESUME_KEYS = ("model", "d1", "d2", "beta", "feed", "kill", "initial", "arms", "noise", "seed", "L", "N",
                "integrator", "dt", "rtol", "atol", "snapshot_dt", "initial_layer", "frame")

_PEER = dict(model="lambda_omega", initial="spiral", integrator="etdrk4", snapshot_dt=0.1, initial_layer=0.5)
_PEARSON = dict(model="gray_scott", initial="pearson", d1=2e-5, d2=1e-5, L=2.5, N=256, noise=0.01,
                integrator="etdrk4", dt=1.0, t_end=5000.0, snapshot_dt=50.0, frame_dt=50.0)

FRAMES = ("auto", "co-rotating", "fixed")

INITIAL_CONDITIONS = {
    "spiral": "rd-spiral's tanh(r)(cos(mθ − r), sin(mθ − r)): not periodic, its phase jumps at the box edge",
    "spiral_periodic": "the same spiral in periodic coordinates (L/2π) sin(2πx/L): smooth, no jump at the edge "
                       "(the partner cores the torus needs sit on the box edges)",
    "spiral_quartet": "the periodic spiral centred at (−L/4, −L/4): four cores (±m) at (±L/4, ±L/4), "
                      "none on the box edges",
    "pearson": "Pearson's Gray–Scott start: u = 1, v = 0, a central 0.195 × 0.195 square (20 × 20 points of 256 on "
               "2.5) at u = 1/2, v = 1/4",
    "noise": "uniform state (u, v) = (1, 0) plus noise",
}


@register_lab
class ReactionDiffusionLab(Lab):
    """λ–ω spiral waves and Gray–Scott patterns, pseudo-spectral, with live statistics and defects."""

    lab_name = "reaction_diffusion"
    convergence_title = "Rates and contrast"
    title = "Reaction–diffusion: spirals and Gray–Scott"
    description = (
        "λ–ω spiral waves (stable rotation, spiral break-up into spatiotemporal chaos, decay to a "
        "homogeneous oscillation) and Gray–Scott spots, stripes and mitosis on a periodic square; "
        "real-FFT pseudo-spectral, defect counting, regime classification, netCDF streaming, resume."
    )
    presets = {
        "stable_spiral": dict(_PEER, d1=0.1, d2=0.1, beta=1.0, L=20.0, N=128, t_end=200.0, arms=1,
                              dt=0.1, frame_dt=1.0),
        "turbulent_spiral": dict(_PEER, d1=0.03, d2=0.20, beta=0.65, L=50.0, N=256, t_end=500.0, arms=4,
                                 dt=0.1, frame_dt=2.0),
        "pattern_decay": dict(_PEER, d1=0.5, d2=0.5, beta=1.0, L=10.0, N=64, t_end=100.0, arms=1,
                              dt=0.025, frame_dt=1.0),
        "spots": dict(_PEARSON, feed=0.035, kill=0.065),
        "stripes": dict(_PEARSON, feed=0.060, kill=0.062),
        "mitosis": dict(_PEARSON, feed=0.0367, kill=0.0649),
    }
    default_preset = "stable_spiral"
    output_files = ("snapshot_file", "checkpoint_file")
    input_files = ("resume_from",)
    last_samples_only = True  # (the result keeps the fields and points of the last frame)
    memory_hint = ("Use a smaller 'N', or an integrator that keeps fewer arrays: 'ifrk4' or 'etdrk4' (if_dop853 "
                   "keeps ~86 of the state's size for each step size).")
    categorical_diagnostics = {"regime": REGIMES}
    diagnostic_groups = {
        "moments": ("u_mean", "u_variance", "u_kurtosis", "v_mean", "v_variance", "v_kurtosis"),
        "pattern": ("defects", "net_charge", "pattern_regions", "pattern_area", "mutual_information"),
    }
    groups = {
        "Model": ["model", "d1", "d2", "beta", "feed", "kill"],
        "Initial condition": ["initial", "arms", "noise", "seed"],
        "Grid": ["L", "N"],
        "Time stepping": ["integrator", "dt", "initial_layer", "frame", "rtol", "atol", "t_end", "snapshot_dt",
                          "frame_dt"],
        "Files": ["snapshot_file", "checkpoint_file", "resume_from", "backend"],
    }

    model = param.Selector(default="lambda_omega", objects=["lambda_omega", "gray_scott"],
                           doc="Reaction: λ–ω (λ = 1 − A², ω = −βA²) or Gray–Scott (feed F, kill k).")
    d1 = param.Number(0.1, bounds=(0, None), softbounds=(0, 1), doc="Diffusion coefficient of u.")
    d2 = param.Number(0.1, bounds=(0, None), softbounds=(0, 1), doc="Diffusion coefficient of v.")
    beta = param.Number(1.0, softbounds=(-2, 2), doc="λ–ω: twist β of the frequency ω(A) = −βA².")
    feed = param.Number(0.035, bounds=(0, None), softbounds=(0, 0.1), doc="Gray–Scott: feed rate F.")
    kill = param.Number(0.065, bounds=(0, None), softbounds=(0, 0.1), doc="Gray–Scott: kill rate k.")
    initial = param.Selector(default="spiral", objects=list(INITIAL_CONDITIONS), doc="Initial condition.")
    arms = param.Integer(1, bounds=(1, 12), doc="Number of spiral arms m (winding of the initial spiral).")
    noise = param.Number(0.0, bounds=(0, None), softbounds=(0, 0.1),
                         doc="Amplitude of uniform noise added to both fields at t = 0 (seeded).")
    L = param.Number(20.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(1, 200),
                     doc="Side of the periodic square [-L/2, L/2)².")
    N = param.Integer(128, bounds=(8, 4096), softbounds=(16, 1024), step=2,
                      doc="Grid points per axis (even; FFT-friendly sizes such as 2^p 3^q are fastest).")
    integrator = param.Selector(default="etdrk4", objects=list(INTEGRATORS),
                                doc="Time integrator (adaptive: dop853, dopri5, if_dop853; fixed dt: the others).")
    dt = param.Number(0.05, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(1e-3, 1),
                      doc="Time step of the fixed-step integrators (shortened so whole steps fill each snapshot_dt).")
    initial_layer = param.Number(0.0, bounds=(0, None), softbounds=(0, 5),
                                 doc="Start phase (a whole number of snapshot_dt) stepped at dt/5 by the fixed-step "
                                     "integrators: the sharp features of the initial condition relax there, and "
                                     "small steps over it cut the error they leave behind for the whole run.")
    frame = param.Selector(
        default="auto", objects=list(FRAMES),
        doc="Frame the fields are stepped in: 'co-rotating' turns with the pattern's mean phase velocity "
            "β⟨A⁴⟩/⟨A²⟩ (updated at every snapshot), so a rigidly rotating spiral stands still and only its "
            "deviation is stepped: a far smaller time error at the same cost. λ–ω with d1 = d2 only (the "
            "equations are then unchanged by a phase rotation); 'auto' takes it there and 'fixed' elsewhere. "
            "Results are always in the fixed frame.")
    rtol, atol = tolerances(1e-6, 1e-9)
    t_end = param.Number(200.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(1, 1000),
                         doc="Final time (a whole number of snapshot_dt).")
    snapshot_dt = param.Number(0.1, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.01, 10),
                               doc="Time between snapshots (the output cadence; the run lands exactly on each).")
    frame_dt = param.Number(1.0, bounds=(0, None), inclusive_bounds=(False, True), softbounds=(0.1, 100),
                            doc="Time between frames (diagnostics, live plots): a whole multiple of snapshot_dt.")
    snapshot_file = param.String("", doc="netCDF file that receives u and v at every snapshot while the run goes "
                                         "('' = none; with resume_from, the file is continued from the checkpoint).")
    checkpoint_file = param.String("", doc="File (.npz) overwritten with the full state at every frame ('' = none).")
    resume_from = param.String("", doc="Checkpoint to resume from: continues on the same time line ('' = start at t = 0).")

    # ------------------------------------------------------------------ validation
    def _counts(self) -> tuple[int, int]:
        """``(number of snapshot intervals, snapshots per frame)``."""
        return round(self.t_end / self.snapshot_dt), round(self.frame_dt / self.snapshot_dt)

    def inactive_parameters(self) -> frozenset[str]:
        """The other model's coefficients; ``arms`` without a spiral start, ``seed`` without noise, ``frame``
        where no co-rotating frame exists (Gray–Scott, or d1 ≠ d2: every run is in the fixed one); ``dt``
        and ``initial_layer`` (fixed steps) under an adaptive integrator, the tolerances under a fixed-step
        one."""
        out = {"feed", "kill"} if self.model == "lambda_omega" else {"beta"}
        if not self._symmetric():
            out.add("frame")
        if not self.initial.startswith("spiral"):
            out.add("arms")
        if self.noise == 0:
            out.add("seed")
        return frozenset(out | ignored_stepping(self.integrator, ("dt", "initial_layer")))

    def notices(self) -> list[str]:
        out = shortened_step(self.integrator, self.dt, self.snapshot_dt, "snapshot_dt")
        out += long_run(self.integrator, self.dt, self.t_end)
        info = INTEGRATORS.get(self.integrator)
        if self.initial_layer >= self.t_end and info is not None and not info.adaptive:
            out.append(f"initial_layer = {self.initial_layer:g} lasts the whole run (t_end = {self.t_end:g}): every "
                       f"step is dt/{INITIAL_LAYER_REFINEMENT}.")
        return out

    def memory_estimate(self) -> int:
        """The state ``(2, N, N/2 + 1)`` complex, the lab's own arrays (:data:`OWN_STATES`), the snapshot
        buffer and what the integrator keeps (``N = 4096``: ~8.3 GB with etdrk4, 7 GB measured; ~37 GB with
        if_dop853)."""
        state = 16 * 2 * self.N * (self.N // 2 + 1)
        buffer = SNAPSHOT_BUFFER_BYTES if self.snapshot_file else 0
        return OWN_STATES * state + buffer + INTEGRATORS[self.integrator].working_bytes(state)

    def check(self) -> None:
        name = self.lab_name
        if self.N % 2:
            raise ValueError(f"{name}: 'N' must be even (real FFTs), got {self.N}")
        k_max = max_wavenumber(name, "L", self.L, self.N)
        if not math.isfinite(self.L * self.L):  # (the initial conditions' r² = x² + y²: NaN at t = 0, which
            # was reported as a divergence, advising dt and N)
            raise ValueError(f"{name}: 'L' = {self.L:g} is too large: the squared distances on the grid overflow")
        for p in ("d1", "d2"):  # (the diffusion symbol d k², and its exponentials' arguments)
            if not math.isfinite(getattr(self, p) * k_max * k_max * max(self.dt, 1.0)):
                raise ValueError(f"{name}: '{p}' = {getattr(self, p):g} is too large for this grid: d k_max² overflows")
        if self.frame_dt > self.t_end:
            raise ValueError(f"{name}: 'frame_dt' = {self.frame_dt:g} is longer than t_end = {self.t_end:g}")
        for p in ("t_end", "frame_dt", "initial_layer"):
            ratio = getattr(self, p) / self.snapshot_dt
            if not ratio <= MAX_SNAPSHOTS:
                raise ValueError(f"{name}: 'snapshot_dt' = {self.snapshot_dt:g} is too small: {p} / snapshot_dt = "
                                 f"{ratio:.3g} (at most {MAX_SNAPSHOTS:.0e} snapshots)")
        n_out, every = self._counts()
        if n_out < 1 or abs(n_out * self.snapshot_dt - self.t_end) > 1e-9 * self.t_end:
            raise ValueError(f"{name}: t_end = {self.t_end:g} is not a whole number of snapshot_dt = "
                             f"{self.snapshot_dt:g}; change 'snapshot_dt' or 't_end'")
        if every < 1 or abs(every * self.snapshot_dt - self.frame_dt) > 1e-9 * self.frame_dt:
            raise ValueError(f"{name}: 'frame_dt' = {self.frame_dt:g} must be a whole multiple of "
                             f"snapshot_dt = {self.snapshot_dt:g}")
        info = INTEGRATORS[self.integrator]
        layer = round(self.initial_layer / self.snapshot_dt)  # (fixed steps only: adaptive ones ignore it)
        if not info.adaptive and (abs(layer * self.snapshot_dt - self.initial_layer)
                                  > 1e-9 * max(self.initial_layer, self.snapshot_dt)):
            raise ValueError(f"{name}: 'initial_layer' = {self.initial_layer:g} must be a whole multiple of "
                             f"snapshot_dt = {self.snapshot_dt:g}")
        steps = round(self.t_end / fill_step(self.snapshot_dt, self.dt))
        if not info.adaptive and steps > MAX_RUN_STEPS:
            raise ValueError(f"{name}: dt = {self.dt:g} (at most snapshot_dt = {self.snapshot_dt:g}) needs "
                             f"{steps:.3g} steps; increase 'dt' or 'snapshot_dt', or shorten 't_end'")
        if "nonlinear_flow" in info.requires and self.model != "lambda_omega":
            raise ValueError(f"{name}: integrator {self.integrator!r} needs an exact nonlinear flow, which only "
                             "the λ–ω model has; choose another 'integrator'")
        if info.backward_substeps:
            raise ValueError(f"{name}: integrator {self.integrator!r} takes sub-steps backwards in time, which run "
                             "diffusion backwards (the high wavenumbers grow: NaN at N = 256, dt = 0.2); choose "
                             "'split_step' (Strang) or an exponential integrator")
        if self.frame == "co-rotating" and not self._symmetric():
            raise ValueError(f"{name}: 'frame' = 'co-rotating' needs the λ–ω model with d1 = d2 (got "
                             + (f"d1 = {self.d1:g}, d2 = {self.d2:g}" if self.model == "lambda_omega" else
                                "Gray–Scott") + "): only then is a phase rotation a symmetry; choose frame "
                             "'fixed' or 'auto'")
        if self.resume_from:
            check_input_file(name, "resume_from", self.resume_from)
        for p, check_name in (("snapshot_file", check_netcdf_name), ("checkpoint_file", check_checkpoint_name)):
            if getattr(self, p):
                check_output_file(name, p, getattr(self, p))
                check_name(name, p, getattr(self, p))
        if self.snapshot_file:
            for p in ("checkpoint_file", "resume_from"):
                other = getattr(self, p)
                if other and os.path.realpath(other) == os.path.realpath(self.snapshot_file):
                    raise ValueError(f"{name}: 'snapshot_file' and '{p}' are the same file ({other!r}): the "
                                     "snapshots and the checkpoint need one each")

    def _symmetric(self) -> bool:
        """Whether a constant phase rotation of ``u + iv`` maps solutions to solutions."""
        return self.model == "lambda_omega" and self.d1 == self.d2

    def _corotating(self) -> bool:
        return self.frame == "co-rotating" or (self.frame == "auto" and self._symmetric())

    @property
    def divergence_hint(self) -> str:  # type: ignore[override]
        rate = max(self.d1, self.d2) * 2 * (math.pi * self.N / self.L) ** 2
        if self.integrator == "rk4" and 0 < rate < math.inf:  # (no diffusion: the reaction limits the step)
            return (f"Explicit RK4 is stable only for dt ≲ 2.8 / max(d)|k|²_max = {2.8 / rate:.3g} on this grid "
                    f"(dt = {self.dt:g}): reduce 'dt' or use 'etdrk4' / 'ifrk4'.")
        if INTEGRATORS[self.integrator].adaptive:
            return ("If the step size underflowed, loosen 'rtol'/'atol' (tolerances near round-off); otherwise "
                    "tighten them, or use 'etdrk4' with a small 'dt'.")
        return "Reduce 'dt' (the explicit treatment of the reaction limits it) or increase 'N'."

    # ------------------------------------------------------------------ set-up
    def make_problem(self, grid):
        """The semilinear problem of the chosen model on ``grid``."""
        if self.model == "lambda_omega":
            return rd.LambdaOmegaProblem(grid, self.d1, self.d2, self.beta)
        return rd.GrayScottProblem(grid, self.d1, self.d2, self.feed, self.kill)

    def initial_state(self, grid):
        """``(u, v)`` at t = 0, stacked ``(2, N, N)`` (noise drawn on the host from ``seed``)."""
        xp, n = grid.xp, self.N
        if self.initial == "spiral":
            w = rd.spiral(grid, self.arms)
        elif self.initial == "spiral_periodic":
            w = rd.spiral_periodic(grid, self.arms)
        elif self.initial == "spiral_quartet":
            w = rd.spiral_quartet(grid, self.arms)
        else:
            base = np.zeros((2, n, n))
            base[0] = 1.0
            if self.initial == "pearson":  # Pearson's "20 by 20 mesh point area located symmetrically about
                x = to_host(grid.x[1]).ravel()  # the center": at N = 256, indices 118–137, centred on −dx/2
                inside = np.abs(x + 0.5 * (x[1] - x[0])) < 0.5 * PEARSON_SIDE
                square = np.outer(inside, inside)
                base[0][square] = 0.5
                base[1][square] = 0.25
            w = xp.asarray(base)
        if self.noise > 0:
            rng = np.random.default_rng(self.seed)
            w = w + xp.asarray(self.noise * rng.uniform(-1.0, 1.0, size=(2, n, n)))
        return w

    # ------------------------------------------------------------------ the run
    def _frames(self, xp):
        grid = rd.spectral_grid(self.L, self.N, xp)
        problem = self.make_problem(grid)
        info = INTEGRATORS[self.integrator]
        n_out, every = self._counts()
        if info.adaptive:
            h = None
        else:  # whole steps fill each snapshot interval, all of exactly the same size
            h = fill_step(self.snapshot_dt, self.dt)
        stepper = make_integrator(self.integrator, problem, dt=h, rtol=self.rtol, atol=self.atol)
        self._final = None
        self._grid_host = (to_host(grid.x[1]).ravel(), to_host(grid.x[0]).ravel())
        self._history = deque(maxlen=REGIME_WINDOW)
        self._max = {"contrast": 0.0}
        self._theta = 0.0  # the phase Θ by which the frame of the state has turned: z = e^{iΘ} w
        corotating = self._corotating()
        if self.resume_from:
            state, i0 = self._load_checkpoint(stepper, xp, n_out, problem)
        else:
            w0 = self.initial_state(grid)
            self.ensure_finite(w0, 0.0, "the initial condition")
            if corotating:  # (before init: an adaptive stepper evaluates the derivative there)
                with np.errstate(over="ignore", invalid="ignore"):
                    rate = rd.corotation_rate(w0[0, ...], w0[1, ...], self.beta)
                if not math.isfinite(rate):  # (|w|⁴ overflows: a start the fixed frame blows up on too)
                    raise SolverDiverged(0.0, "the co-rotation rate of the initial condition",
                                         "The initial fields are too large (|u|² + |v|² overflows): reduce 'noise'.")
                problem.frame_rate = rate
            state, i0 = stepper.init(0.0, rd.rfft2(w0)), 0
        writer = None
        if self.snapshot_file:
            writer = SnapshotWriter(self.snapshot_file, self._grid_host, self.values(), SNAPSHOT_BUFFER_BYTES,
                                    resume_at=state.t if self.resume_from else None,
                                    same_run=self._resume_params())
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                if writer is not None and not writer.holds(state.t):
                    writer.append(state.t, to_host(self._fixed(self._physical(problem, state.y))))
                yield self._frame(i0, n_out, grid, problem, state)
                n_layer = round(self.initial_layer / self.snapshot_dt)
                for i in range(i0 + 1, n_out + 1):
                    t_target, t_start = i * self.snapshot_dt, state.t
                    fine = h is not None and i <= n_layer
                    state = self._advance(stepper, state, t_target, h / INITIAL_LAYER_REFINEMENT if fine else h)
                    last = i == n_out
                    if writer is not None or last or i % every == 0:
                        self.ensure_finite(state.y, state.t, "the fields (u, v)")
                    w = self._physical(problem, state.y) if corotating or writer is not None else None
                    if corotating:
                        self._theta += problem.frame_rate * (t_target - t_start)
                        state = self._turn_frame(problem, state, w)
                    if writer is not None:
                        writer.append(t_target, to_host(self._fixed(w)))
                    if i % every == 0 or last:
                        if self.checkpoint_file:
                            if writer is not None:  # the file holds every snapshot up to the checkpoint
                                writer.flush()
                            self._save_checkpoint(state, i, problem)
                        yield self._frame(i, n_out, grid, problem, state)
        finally:
            if writer is not None:
                writer.close()
        self._final = np.array(to_host(self._fixed(self._physical(problem, state.y))))

    def _physical(self, problem, y):
        """The fields ``(u, v)`` of the spectral state ``y``, as the snapshots take them (λ–ω: by the problem's
        fast transform, into a buffer valid until its next evaluation)."""
        fields = getattr(problem, "fields", None)
        return rd.irfft2(y, self.N) if fields is None else fields(y)

    def _fixed(self, w):
        """Fields (or spectra) of the state, ``z``, in the fixed frame: ``w = e^{−iΘ} z``."""
        return w if self._theta == 0.0 else rd.rotate_phase(w, -self._theta)

    def _turn_frame(self, problem, state, w):
        """Set the frame's rate for the next snapshot interval to the pattern's rotation now (``w``: the
        state's fields). An adaptive stepper's remembered derivative belongs to the old rate: the frame's
        term is linear in the state, so it is moved to the new rate exactly, with no new evaluation."""
        omega = rd.corotation_rate(w[0, ...], w[1, ...], self.beta)
        if math.isfinite(omega) and omega != problem.frame_rate:  # (a non-finite state stops at the frame)
            change = omega - problem.frame_rate
            problem.frame_rate = omega
            if state.f is not None:
                state = dataclasses.replace(state, f=state.f + change * problem.turn(state.y))
        return state

    def _advance(self, stepper, state, t_target: float, h: float | None):
        """Step from the previous snapshot to ``t_target``, landing on it exactly."""
        try:
            if h is None:  # adaptive: the stepper lands on t_target itself
                while state.t < t_target:
                    state = stepper.step(state, t_target)
                    self.ensure_progress(state, self.t_end)
            else:  # fixed: whole steps of exactly h; aim past the target so no step is clipped
                if state.dt != h:
                    state = dataclasses.replace(state, dt=h)
                for _ in range(round((t_target - state.t) / h)):
                    state = stepper.step(state, t_target + 0.5 * h)
                state = dataclasses.replace(state, t=t_target)
        except (StepSizeTooSmall, TooManySteps) as exc:
            raise SolverDiverged(state.t, f"the step size ({exc})", self.divergence_hint) from None
        return state

    # ------------------------------------------------------------------ frames
    def _frame(self, i: int, n_out: int, grid, problem, state) -> Frame:
        xp = grid.xp
        t = i * self.snapshot_dt
        y = self._fixed(state.y)
        w = rd.irfft2(y, self.N)
        u, v = w[0, ...], w[1, ...]
        mu, vu, ku = rd.moments(u)
        mv, vv, kv = rd.moments(v)
        ms = float(xp.mean(u * u + v * v))
        dwdt = problem.fixed_frame_rhs(y)
        rate_rms = _rms_from_half_spectrum(xp, dwdt, self.N)
        contrast = math.sqrt((vu + vv) / ms) if ms > 0 else 0.0  # spatial std over rms: 0 when uniform
        rate = rate_rms / math.sqrt(ms) if ms > 0 else 0.0       # ‖∂t w‖ / ‖w‖: a rate (1/time)
        diagnostics = {
            "u_mean": mu, "u_variance": vu, "u_kurtosis": ku,
            "v_mean": mv, "v_variance": vv, "v_kurtosis": kv,
            "mutual_information": rd.mutual_information(u, v),
        }
        if self.model == "lambda_omega":
            count, charge = rd.defect_count(u, v)
            diagnostics["defects"], diagnostics["net_charge"] = float(count), float(charge)
        else:  # Gray–Scott: spots (many small regions of high v) or stripes (one labyrinth)
            regions, area = rd.pattern_regions(to_host(v))
            diagnostics["pattern_regions"], diagnostics["pattern_area"] = float(regions), area
        count = diagnostics["defects"] if self.model == "lambda_omega" else diagnostics["pattern_regions"]
        regime = self._classify(t, contrast, rate, vu + vv, count)
        diagnostics["regime"] = float(regime)
        convergence = {"dwdt_rms": rate_rms, "relative_rate": rate, "contrast": contrast}
        k, power = rd.radial_spectrum(y, grid)
        x_host, y_host = self._grid_host
        x_d, y_d = decimate(x_host), decimate(y_host)
        u_d, v_d = to_host(decimate(u)), to_host(decimate(v))  # reduce on the device, then copy
        stride = max(1, -(-self.N * self.N // MAX_POINTS))
        u_pts, v_pts = (to_host(xp.reshape(f, (-1,))[::stride]) for f in (u, v))
        every = self._counts()[1]
        return Frame(
            step=-(-i // every), time=t, progress=i / n_out,  # (the frame's index: i counts snapshots)
            convergence=convergence, diagnostics=diagnostics,
            spectrum=Curve(to_host(k), to_host(power), xlabel="k", ylabel="radial power E(k)",
                           logy=True),
            samples={
                "u": Field(x_d, y_d, u_d, xlabel="x", ylabel="y", label="u"),
                "v": Field(x_d, y_d, v_d, xlabel="x", ylabel="y", label="v"),
                "phase_portrait": Points(u_pts, v_pts, xlabel="u", ylabel="v", equal_aspect=True),
            },
            nfe=state.nfe, steps=state.steps,
        )

    def _classify(self, t: float, contrast: float, rate: float, variance: float, count: float) -> int:
        """Regime of the recent frames, from criteria relative to the run's own scales and history.

        Every test compares a quantity with itself (its maximum, its mean, its trend), never with a
        fixed physical value, so it reads the same whatever N, L or the units of time:

        * steady: over the last ``REGIME_WINDOW`` frames the relative rate ``r = ‖∂t w‖/‖w‖`` decays
          steadily and what is left of the change, ``r/γ`` with ``γ`` the window's decay constant of
          ``r``, is below ``DECAY_RATIO`` of the state; or the state moves by round-off only;
        * homogeneous oscillation: the spatial contrast (std/rms) has fallen ``DECAY_RATIO`` below its
          maximum over the run, or is at round-off, and the rate (then the oscillation's angular
          frequency) changed by less than ``STATIONARY_SPREAD`` of itself per radian turned over the last
          ``OSCILLATION_FRAMES`` frames (:func:`_turns_steadily`; a uniform state still approaching a
          fixed point is transient until it is steady, however often the frames come);
        * periodic: over the window the count (spiral cores, or Gray–Scott pattern regions) is constant
          and the variance and the rate keep a relative spread below ``STATIONARY_SPREAD``, or the
          variance oscillates regularly (a breathing pattern: its maxima agree, and so do its minima, within
          that spread and what sampling a period in whole frames makes them differ; see :func:`_oscillation`);
        * chaotic: spiral cores are created and are still there at the window's end (break-up makes
          cores that stay; a pair created and annihilated within the window, as a multi-armed start
          relaxes, is a transient), or the variance or the count fluctuate irregularly: one turns
          back at least twice within the window, each time by more than ``STATIONARY_SPREAD`` of
          itself (a drift, a single change of direction, a regular or a damped oscillation are not
          chaos; nor are the bursts of the rate while Gray–Scott spots split);
        * transient otherwise (a drift: a pattern forming, coarsening or decaying; a damped
          oscillation), at t = 0 and until the window (which starts after t = 0) is full.

        A creation the window cannot yet tell from a break-up (the new cores are still there) is
        called chaotic until they annihilate.
        """
        m = self._max
        m["contrast"] = max(m["contrast"], contrast)
        if t == 0.0:  # the initial condition: not yet a state of the dynamics (rd-spiral's jumps across
            return REGIMES.index("transient")  # the box edge make and then annihilate cores at once)
        self._history.append((t, variance, rate, count))
        h = np.array(self._history)
        span = h[-1, 0] - h[0, 0]
        if len(h) > 1 and rate * span <= ROUNDOFF:
            return REGIMES.index("steady")
        if len(h) == REGIME_WINDOW and _settles(h[:, 0], h[:, 2]):
            return REGIMES.index("steady")
        if contrast <= max(DECAY_RATIO * m["contrast"], ROUNDOFF):
            recent = h[-OSCILLATION_FRAMES:]
            if len(recent) == OSCILLATION_FRAMES and _turns_steadily(recent[:, 0], recent[:, 2]):
                return REGIMES.index("homogeneous_oscillation")
            return REGIMES.index("transient")  # uniform, but still settling (towards a fixed point?)
        if len(h) < REGIME_WINDOW:
            return REGIMES.index("transient")
        stats = h[:, 1:]
        scale = np.maximum(np.abs(stats).mean(axis=0), 1e-300)
        spread = np.ptp(stats, axis=0) / scale
        if spread[2] == 0 and np.all(spread[:2] < STATIONARY_SPREAD):
            return REGIMES.index("periodic")
        deltas = STATIONARY_SPREAD * np.maximum(scale, [0.0, 0.0, 1.0])
        counts = stats[:, 2]
        rises = np.flatnonzero(np.diff(counts) > 0)
        # new cores that are still there (a pair created and annihilated within the window is a transient)
        created = self.model == "lambda_omega" and rises.size > 0 and counts[-1] > counts[rises[0]]
        if not created and spread[2] == 0:  # the same cores (regions) throughout: a breathing pattern?
            kind = _oscillation(stats[:, 0], deltas[0])
            if kind == "regular":
                return REGIMES.index("periodic")
            if kind == "damped":
                return REGIMES.index("transient")
        if created or any(_turns(stats[:, j], deltas[j]) >= 2 for j in (0, 2)):
            return REGIMES.index("chaotic")
        return REGIMES.index("transient")

    # ------------------------------------------------------------------ checkpoints
    def _resume_params(self) -> dict:
        return {k: getattr(self, k) for k in _RESUME_KEYS}

    def _save_checkpoint(self, state, i: int, problem) -> None:
        rate = getattr(problem, "frame_rate", 0.0)
        save_checkpoint(self.checkpoint_file, state, i, self._resume_params(),
                        history=np.array(self._history, dtype=float).reshape(-1, 4),
                        maxima=np.array([self._max["contrast"]]), frame=np.array([self._theta, rate]))

    def _load_checkpoint(self, stepper, xp, n_out: int, problem):
        n = self.N
        state, i0, extra = load_checkpoint(self.resume_from, stepper, xp, self._resume_params(), self.lab_name,
                                           shape=(2, n, n // 2 + 1), required=("history", "maxima", "frame"))
        if i0 > n_out:
            raise ValueError(f"{self.lab_name}: 'resume_from' is at t = {state.t:g}, past t_end = {self.t_end:g}")
        with checkpoint_entries(self.resume_from, self.lab_name):
            history = np.asarray(extra["history"], dtype=float)
            contrast = float(extra["maxima"][0])
            theta, rate = (float(x) for x in extra["frame"])
            if not (math.isfinite(theta) and math.isfinite(rate)):
                raise ValueError(f"its frame's phase {theta!r} or rate {rate!r} is not finite")
        if history.ndim != 2 or history.shape[1] != 4:
            raise ValueError(f"{self.lab_name}: 'resume_from' = {self.resume_from!r} was written by an older "
                             "version of this lab (its regime history has another layout); run from the start")
        self._history.extend(tuple(row) for row in history)
        self._max["contrast"], self._theta = contrast, theta
        if rate != 0.0:
            problem.frame_rate = rate
        return state, i0

    # ------------------------------------------------------------------ result
    def result_extras(self) -> dict:
        if self._final is None:
            return {}
        x, y = self._grid_host
        return {
            "u_final": (("y_grid", "x_grid"), self._final[0], {"long_name": "u at t_end (full resolution)"}),
            "v_final": (("y_grid", "x_grid"), self._final[1], {"long_name": "v at t_end (full resolution)"}),
            "x_grid": ("x_grid", x), "y_grid": ("y_grid", y),
        }


def _settles(t, rate) -> bool:
    """Whether a relative rate that falls at every frame has little change left: with ``γ`` the mean
    decay constant of ``rate`` over ``t``, the state still moves by about ``rate[-1]/γ`` of itself
    (exactly so for an exponential approach), which must be below ``DECAY_RATIO``."""
    if not (rate[-1] > 0.0 and np.all(np.diff(rate) < 0.0)):
        return False
    gamma = math.log(rate[0] / rate[-1]) / (t[-1] - t[0])
    return rate[-1] <= DECAY_RATIO * gamma


def _turns_steadily(t, rate) -> bool:
    """Whether the relative rate ``r = ‖∂t w‖/‖w‖`` of a uniform state changed by less than
    ``STATIONARY_SPREAD`` of itself per radian turned (``∫ r dt``) over the times ``t``: a uniform
    oscillation, whose rate is its angular frequency. Per radian, not per frame, so the verdict does not
    depend on how often frames come; a state decaying to a fixed point at rate ``γ`` changes by ``γ/r``
    a radian, which grows without bound as it settles."""
    if not np.all(rate > 0):
        return False
    radians = float(np.mean(rate)) * float(t[-1] - t[0])
    return float(np.ptp(np.log(rate))) <= max(STATIONARY_SPREAD * radians, ROUNDOFF)


def _extremes(x, delta: float) -> list[tuple[int, float]]:
    """``(frame, value)`` of the extremes at which the series ``x`` turned back by more than ``delta`` (a
    zigzag: wiggles smaller than ``delta`` are not turns), in order; maxima and minima alternate."""
    out, trend, lo, hi = [], 0, x[0], x[0]
    extreme, at = x[0], 0
    for i, v in enumerate(x[1:], start=1):
        if trend == 0:  # no move larger than delta yet
            lo, hi = min(lo, v), max(hi, v)
            if hi - lo > delta:
                trend, extreme, at = (1 if v == hi else -1), v, i
        elif trend * (v - extreme) > 0:  # the trend goes on: a new extreme
            extreme, at = v, i
        elif trend * (extreme - v) > delta:
            out.append((at, float(extreme)))
            trend, extreme, at = -trend, v, i
    return out


def _turns(x, delta: float) -> int:
    """How often the series ``x`` turns back by more than ``delta`` from its last extreme."""
    return len(_extremes(x, delta))


def _oscillation(x, delta: float) -> str | None:
    """How a series that turns back at least twice oscillates (three extremes at least to tell):

    * ``"regular"`` (a periodic breathing, as the frames sample it): successive maxima come a period
      apart to within the two frames that rounding a peak's time to a frame can cost, and so do the
      minima; and the maxima agree, and so do the minima, within ``delta`` plus how far a frame can sit
      from a peak: ``(swing/2)(1 - cos(π/P))`` for a sinusoid of that swing sampled ``P`` frames a
      period (a period that is no whole number of frames samples each peak at another phase);
    * ``"damped"`` when the swing between successive extremes, up to the newest value, shrinks at every
      turn (an approach to a fixed pattern);
    * ``None`` otherwise (irregular)."""
    ext = _extremes(x, delta)
    if len(ext) < 2:
        return None
    frames = np.array([i for i, _ in ext], dtype=float)
    values = np.array([v for _, v in ext])
    if len(ext) >= 3:
        period = 2.0 * float(np.mean(np.diff(frames)))  # (maxima and minima alternate)
        swing = float(np.mean(np.abs(np.diff(values))))
        tol = delta + 0.5 * swing * (1.0 - math.cos(math.pi / max(period, 2.0)))
        gaps = [np.diff(frames[k::2]) for k in (0, 1)]  # (maxima apart, minima apart; one may be empty)
        on_time = all(g.size == 0 or np.ptp(g) <= 2 for g in gaps)
        if on_time and np.ptp(values[0::2]) <= tol and np.ptp(values[1::2]) <= tol:
            return "regular"
    swings = np.abs(np.diff([*values, float(x[-1])]))
    if np.all(np.diff(swings) < 0):
        return "damped"
    return None


def _rms_from_half_spectrum(xp, w_hat, n: int) -> float:
    """``sqrt(mean over the box of Σ_fields f²)`` for real fields given by their orthonormal real-FFT spectra."""
    m = w_hat.shape[-1]
    p = xp.real(w_hat * xp.conj(w_hat))
    total = 2.0 * xp.sum(p) - xp.sum(p[..., 0]) - (xp.sum(p[..., m - 1]) if n % 2 == 0 else 0.0)
    return math.sqrt(max(float(total), 0.0) / (n * n))


class SnapshotWriter:
    """Streams ``u`` and ``v`` snapshots to a netCDF-4 file with an unlimited ``time`` axis.

    Snapshots are buffered up to ``buffer_bytes`` and written in blocks, so memory stays bounded
    whatever the run length. Dimensions ``(time, y, x)`` with coordinate variables. The file is open
    only while a block is written: a run killed between blocks (a scheduler's time limit, the
    out-of-memory killer) leaves a readable file holding every block written so far (an HDF5 file
    held open was unreadable after a kill, all of it), which a resumed run continues.

    ``resume_at``: a run resumed from a checkpoint at that time continues an existing file: the
    snapshots after ``resume_at`` (written after the checkpoint by the interrupted run) are dropped
    and the run appends from there, so the file ends as the uninterrupted run's would. The file's
    attributes must agree with ``same_run`` (the physics and numerics) and then take the resumed run's
    (its ``t_end``); a missing file is started afresh at ``resume_at``.
    """

    def __init__(self, path: str, grid: tuple[np.ndarray, np.ndarray], attrs: dict, buffer_bytes: int = 32 * 2**20,
                 *, resume_at: float | None = None, same_run: dict | None = None):
        import h5netcdf

        x, y = grid
        self._cap = max(1, buffer_bytes // (16 * x.size * y.size))
        # one block buffer, allocated once: field-major, so each field's block is contiguous on write
        self._block = np.empty((2, self._cap, y.size, x.size))
        self._times: list[float] = []
        self._n = 0
        self._last = None  # time of the last snapshot on file
        self._path = path
        if resume_at is not None and os.path.exists(path):
            try:
                f = h5netcdf.File(path, "a")
            except OSError as exc:  # not an HDF5 / netCDF-4 file
                raise ValueError(f"snapshot_file {path!r} cannot continue this run: it is not a snapshot "
                                 f"file ({exc})") from None
            with f:
                self._continue(f, path, x, y, resume_at, same_run or {}, attrs)
            return
        with h5netcdf.File(path, "w") as f:
            f.dimensions = {"time": None, "y": y.size, "x": x.size}
            for name, values in (("x", x), ("y", y)):
                var = f.create_variable(name, (name,), "f8")
                var[:] = values
            f.create_variable("time", ("time",), "f8")
            for name in ("u", "v"):
                f.create_variable(name, ("time", "y", "x"), "f8", chunks=(1, y.size, x.size))
            f.attrs.update({k: self._attr(v) for k, v in attrs.items()})

    @staticmethod
    def _attr(v):
        return json.dumps(v) if not isinstance(v, (int, float, str)) or isinstance(v, bool) else v

    def _continue(self, f, path: str, x, y, resume_at: float, same_run: dict, attrs: dict) -> None:
        try:
            if tuple(f.variables["u"].shape[1:]) != (y.size, x.size):
                raise ValueError(f"its grid is {tuple(f.variables['u'].shape[1:])}, the run's {(y.size, x.size)}")
            other = [k for k, v in same_run.items() if k in f.attrs and f.attrs[k] != self._attr(v)]
            if other:
                raise ValueError("it was written with different " + ", ".join(other))
            times = np.asarray(f.variables["time"][:])
            tol = 1e-9 * max(1.0, abs(resume_at))
            keep = int(np.searchsorted(times, resume_at + tol, side="right"))
            if keep == 0 or abs(times[keep - 1] - resume_at) > tol:
                raise ValueError(f"it holds no snapshot at the checkpoint's t = {resume_at:g}")
        except Exception as exc:
            raise ValueError(f"snapshot_file {path!r} cannot continue this run: {exc}") from None
        f.resize_dimension("time", keep)
        self._n, self._last = keep, float(times[keep - 1])
        f.attrs.update({k: self._attr(v) for k, v in attrs.items()})  # the run that now ends the file (t_end …)

    def holds(self, t: float) -> bool:
        """Whether the file already has the snapshot at ``t`` (a resumed run's first one)."""
        return self._last is not None and abs(self._last - t) <= 1e-9 * max(1.0, abs(t))

    def append(self, t: float, w: np.ndarray) -> None:
        k = len(self._times)
        self._block[0, k] = w[0]
        self._block[1, k] = w[1]
        self._times.append(float(t))
        if k + 1 >= self._cap:
            self.flush()

    def flush(self) -> None:
        """Write the buffered snapshots (the file is opened for this block and closed after it)."""
        import h5netcdf

        if not self._times:
            return
        k = len(self._times)
        with h5netcdf.File(self._path, "a") as f:
            f.resize_dimension("time", self._n + k)
            f.variables["time"][self._n:self._n + k] = self._times
            f.variables["u"][self._n:self._n + k] = self._block[0, :k]
            f.variables["v"][self._n:self._n + k] = self._block[1, :k]
        self._n += k
        self._times.clear()

    def close(self) -> None:
        self.flush()
