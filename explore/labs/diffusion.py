r"""The diffusion-sampler lab: fast ODE/SDE samplers of diffusion models against an exact reference.

The data is a Gaussian mixture, so every noised marginal is a mixture too and the "network"
(noise / data prediction, score, velocity) is exact; the probability-flow ODE from the same
starting noise is solved by DOP853 to ``reference_rtol``. A run samples ``n_samples`` particles
with the chosen sampler and step schedule and streams one frame per sampler step:

- convergence: ``error`` (mean distance of the particles to the reference PF-ODE solution at the
  same level, on the first ``n_reference`` particles), ``distance`` (sliced 2-Wasserstein distance
  to exact samples of the noised marginal), ``local_error`` (deterministic samplers: the error of
  one step taken from the reference state, see :meth:`DiffusionLab.local_errors`); the last frame
  adds the error-vs-NFE study over several step counts;
- spectrum: the stability region of the sampler (Adams–Bashforth with heavy-ball or GHVB momentum
  for the multistep samplers, the order-p Taylor polynomial for single-step ones), or for the
  random-image target the radially averaged power of each step's update;
- samples: the particle cloud (2-D), trajectories of a few particles, the 1-D histogram against the
  exact density, or a sample image.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import param

from explore.core import Curve, Field, Frame, Lab, Points, SolverDiverged, register_lab, to_host
from explore.core.frame import MAX_POINTS
from explore.numerics.diffusion import analysis
from explore.numerics.diffusion.optimal import optimal_times
from explore.numerics.diffusion.reference import pf_ode
from explore.numerics.diffusion.samplers import SAMPLERS, sample
from explore.numerics.diffusion.schedules import SCHEDULES, Levels, levels, make_schedule
from explore.numerics.diffusion.step_schedules import STEP_SCHEDULES, step_times
from explore.numerics.diffusion.targets import TARGETS, guided_model, make_target
from explore.numerics.rk import StepSizeTooSmall

N_TRAJECTORIES = 16
#: a particle this many times farther out than the data plus noise can reach counts as diverged
DIVERGENCE_FACTOR = 20.0


@functools.lru_cache(maxsize=64)
def _stability_points(kind: str, order: int, beta: float = 1.0) -> Points:
    """The stability-region boundary drawn as the spectrum plot (kept: 5-30 ms to compute, and every
    run of the same method draws the same one)."""
    if kind == "rk":
        re, im = analysis.rk_stability_boundary(order, n=200)
    else:
        re, im = analysis.stability_boundary(order, beta, extent=3.0, n=81, kind=kind)
    re.flags.writeable = im.flags.writeable = False
    return Points(re, im, xlabel="Re z", ylabel="Im z", equal_aspect=True)  # the complex plane, undistorted


#: the run's random streams (:meth:`DiffusionLab._rng`): the initial particles, the stochastic samplers'
#: noise, the exact samples the distribution distance compares with
PARTICLE_STREAM, NOISE_STREAM, EXACT_STREAM = 0, 1, 2
#: arrays of the samples' size (n_samples × dim) a run holds at its peak with each sampler's default
#: options, measured (image16 at 30 000 samples, tracemalloc): the initial noise, the previous and current
#: samples, the model's two outputs and the step's temporaries, and the sampler's history; a higher
#: 'order' than the default holds about one more per order (:meth:`DiffusionLab.memory_estimate`)
WORKING_ARRAYS = {"ddim": 7, "ddpm": 7, "euler": 7, "heun": 9, "dpm_solver_2": 9, "dpm_solver_3": 10,
                  "dpmpp_2s": 9, "dpm_solver": 10, "dpmpp_2m": 10, "dpmpp_3m": 13, "dpm_solver_v3": 16, "deis": 10,
                  "pndm": 12, "unipc": 13, "plms_hb": 10, "ghvb": 9, "fm_euler": 7, "fm_heun": 11, "sa_solver": 12}
#: arrays of a (K, points, dim) chunk of the exact model's evaluation alive at once (per dimension, and
#: per component without one: the log-densities and responsibilities), measured (ring8 at 200 000 samples)
MODEL_TEMPORARIES = (5, 2)
#: arrays of a reference PF-ODE solve (DOP853's stages and error estimate) of the reference particles
REFERENCE_ARRAYS = 20
#: what a run holds beside the arrays counted (the interpreter's objects, NumPy's small arrays)
OWN_FIXED_BYTES = 2 * 2**20
#: the samplers that take dynamic thresholding (the data-prediction updates of DPM-Solver(++))
THRESHOLDING_SAMPLERS = ("dpm_solver", "dpmpp_2m", "dpmpp_3m")


def _shown(part) -> np.ndarray:
    """A host copy of ``part`` of a state, for a frame: on NumPy a slice is a view, and a frame holding a
    view of 16 samples kept the whole state alive (every step's samples while the run's frames lived:
    0.43 of 0.86 GB for image16 at 20 000 samples)."""
    return np.array(to_host(part))


@register_lab
class DiffusionLab(Lab):
    """Samplers of diffusion models on Gaussian-mixture data with an exact score."""

    lab_name = "diffusion"
    time_label = "NFE"  # (a frame's time: the evaluations so far; the noise level runs the other way)
    sample_overlays = {"convergence_theory": "convergence_study", "density": "histogram"}
    title = "Diffusion samplers"
    description = (
        "DDIM, DPM-Solver(++), DPM-Solver-v3, UniPC, DEIS, PNDM, GHVB, SA-Solver, EDM Heun, flow matching … on "
        "Gaussian-mixture data "
        "whose score is exact: error against the reference PF-ODE solution vs NFE, live."
    )
    presets = {
        "ring8": dict(target="ring8", schedule="vp_discrete", sampler="dpmpp_2m", steps=10,
                      timesteps="uniform_t"),
        "bimodal_1d": dict(target="bimodal_1d", schedule="vp_linear", sampler="dpm_solver_3", steps=6,
                           timesteps="logsnr", n_samples=5000),
        "narrow_modes": dict(target="narrow_modes", schedule="edm", sampler="heun", steps=12,
                             timesteps="karras"),
        "grid25": dict(target="grid25", schedule="vp_linear", sampler="unipc", order=2, steps=10,
                       timesteps="logsnr"),
        "guided_ring": dict(target="ring_conditional", schedule="vp_discrete", sampler="dpmpp_2m", steps=15,
                            timesteps="uniform_t", guidance=4.0, class_label=2),
        "image16": dict(target="image16", schedule="vp_cosine", sampler="ddim", steps=10, timesteps="beta",
                        n_samples=200, n_reference=200, reference_rtol=1e-7, study=False),
        "flow": dict(target="ring8", schedule="flow", sampler="fm_heun", steps=8, timesteps="uniform_t"),
    }
    default_preset = "ring8"
    groups = {
        "Problem": ["target", "schedule", "guidance", "class_label"],
        "Sampler": ["sampler", "order", "variant", "eta", "momentum", "warmup", "thresholding"],
        "Steps": ["steps", "timesteps", "rho", "beta_a", "beta_b", "denoise"],
        "Run": ["n_samples", "n_reference", "reference_rtol", "study", "compare", "seed", "backend"],
    }

    @property
    def divergence_hint(self) -> str:  # type: ignore[override]
        if self.guidance > 1:
            return (f"Guidance {self.guidance:g} drives {self.sampler} unstable at steps = {self.steps}: lower "
                    "'guidance', increase 'steps', use the first-order 'ddim', or enable 'thresholding' "
                    "(dpm_solver, dpmpp_2m, dpmpp_3m).")
        return "Increase 'steps', or choose a lower-order or data-prediction sampler (ddim, dpmpp_2m)."

    target = param.Selector(default="ring8", objects=list(TARGETS), doc="Data distribution (a Gaussian mixture).")
    schedule = param.Selector(default="vp_discrete", objects=list(SCHEDULES),
                              doc="Noise schedule: VP discrete (DDPM linear beta), VP linear/cosine, VE, EDM, flow.")
    sampler = param.Selector(default="dpmpp_2m", objects=list(SAMPLERS), doc="The sampler.")
    order = param.Integer(default=2, bounds=(1, 4),
                          doc="Order of the multistep samplers (dpm_solver, dpm_solver_v3, deis, unipc, ghvb, sa_solver: 1-3; "
                              "plms_hb: 1-4).")
    variant = param.Selector(default="bh2", objects=["bh1", "bh2"], doc="UniPC's B(h): h (bh1) or e^h - 1 (bh2).")
    eta = param.Number(default=0.0, bounds=(0.0, 1.0), doc="DDIM stochasticity (0: ODE, 1: DDPM ancestral).")
    momentum = param.Number(default=0.8, bounds=(0.0, 1.0), inclusive_bounds=(False, True),
                            doc="Momentum beta in (0, 1] of plms_hb (heavy ball; 1: plain PLMS) and ghvb "
                                "(generalized heavy ball; 1: DEIS / Adams-Bashforth).")
    warmup = param.Selector(default="lower_order", objects=["lower_order", "singlestep"],
                            doc="Start of multistep samplers: lower-order steps, or one DPM-Solver-3 step.")
    thresholding = param.Boolean(default=False, doc="Dynamic thresholding of x0 (dpm_solver, dpmpp_2m/3m): "
                                                    "Imagen's rule in units of the data's range (its means "
                                                    "± 3 std per coordinate).")
    steps = param.Integer(default=10, bounds=(1, 1000), softbounds=(1, 100), doc="Number of sampler steps.")
    timesteps = param.Selector(default="uniform_t", objects=list(STEP_SCHEDULES),
                               doc="Step schedule: uniform t, uniform log-SNR, quadratic, Karras, Beta, optimal (DP).")
    rho = param.Number(default=7.0, bounds=(0.5, 20.0), doc="Karras schedule exponent rho.")
    beta_a = param.Number(default=0.6, bounds=(0.05, 10.0), doc="Beta step schedule parameter a.")
    beta_b = param.Number(default=0.6, bounds=(0.05, 10.0), doc="Beta step schedule parameter b.")
    denoise = param.Boolean(default=True, doc="Finish with a step to the clean level sigma = 0.")
    guidance = param.Number(default=1.0, bounds=(0.0, 100.0), softbounds=(0.0, 10.0),
                            doc="Classifier-free guidance scale (ring_conditional only; 1 = conditional model).")
    class_label = param.Integer(default=0, bounds=(0, 7), doc="Class of the guided target (ring_conditional).")
    n_samples = param.Integer(default=2000, bounds=(1, 1_000_000), softbounds=(100, 20_000), doc="Number of particles.")
    n_reference = param.Integer(default=2000, bounds=(1, 100_000),
                                doc="Particles whose reference PF-ODE solution is computed (error, trajectories).")
    reference_rtol = param.Number(default=1e-9, bounds=(1e-13, 1e-3), doc="Tolerance of the DOP853 reference.")
    study = param.Boolean(default=True, doc="At the end, error vs NFE over several step counts (at the last "
                                             "noise level before the clean one: the sampler's order).")
    compare = param.String(default="", doc="Comma-separated samplers run side by side at the same NFE budget "
                                           "(last frame: their clouds and errors), e.g. 'ddim,unipc'; they take the main "
                                           "sampler's options where they have them, else their defaults.")

    # ------------------------------------------------------------------ validation
    #: the sampler options the parameters set (parameter → the option's name in the samplers' defaults)
    _OPTIONS = {"order": "order", "variant": "variant", "eta": "eta", "momentum": "beta", "warmup": "warmup"}

    def inactive_parameters(self) -> frozenset[str]:
        """The options the sampler does not take (``order``, ``variant``, ``eta``, ``momentum``,
        ``warmup``: a compared sampler gets them only through the main one), ``thresholding`` where the
        sampler has none; ``rho`` off the Karras and ``beta_a``/``beta_b`` off the Beta step schedule;
        ``guidance`` and ``class_label`` off the class-conditional target."""
        takes = SAMPLERS[self.sampler].defaults
        out = {name for name, option in self._OPTIONS.items() if option not in takes}
        if self.sampler not in THRESHOLDING_SAMPLERS:
            out.add("thresholding")
        if self.timesteps != "karras":
            out.add("rho")
        if self.timesteps != "beta":
            out |= {"beta_a", "beta_b"}
        if self.target != "ring_conditional":
            out |= {"guidance", "class_label"}
        return frozenset(out)

    memory_hint = ("Use fewer 'n_samples' (or 'n_reference', 'steps'), or a sampler that keeps fewer arrays "
                   "(ddim, euler).")

    def memory_estimate(self) -> int:
        """About the most memory (bytes) a run takes: the largest of its phases, each a count of arrays of
        the samples' size (``n_samples`` × dim) or of the reference particles' (``n_reference``), plus the
        frames' samples (a run's frames are made as it goes and handed on at its end):

        - the reference PF-ODE solve: its trajectory (a state per step) and DOP853's arrays;
        - the local errors: the trajectory, the teacher-forced run's states and its sampler's arrays;
        - the run: the trajectory, :data:`WORKING_ARRAYS` for the sampler and the exact model's
          temporaries of one chunk (:data:`~explore.numerics.diffusion.targets.CHUNK_ELEMENTS`);
        - its end: a compared sampler's arrays, or the study's runs on 512 particles, beside the run's three.
        """
        from explore.numerics.diffusion.targets import CHUNK_ELEMENTS

        target = make_target(self.target)
        n, d, k, steps = self.n_samples, target.dim, target.components, self.steps
        state, ref = 8 * n * d, 8 * min(self.n_reference, n) * d

        def working(name: str) -> int:
            info = SAMPLERS[name]
            arrays = WORKING_ARRAYS.get(name, max(WORKING_ARRAYS.values()))
            if name == self.sampler and info.orders and "order" in info.defaults:
                arrays += max(0, self.order - info.defaults["order"])
            return arrays + (2 if self.target == "ring_conditional" else 0)  # (guidance: both models' outputs)

        chunk = min(n, max(1, CHUNK_ELEMENTS // (k * d)))
        temporaries = 8 * chunk * k * (MODEL_TEMPORARIES[0] * d + MODEL_TEMPORARIES[1])
        trajectory = ref * (steps + 1)
        phases = [state + trajectory + ref * REFERENCE_ARRAYS,
                  trajectory + ref * (steps + working(self.sampler)) + temporaries,
                  trajectory + state * working(self.sampler) + temporaries]
        for name in self.compared():
            if name in SAMPLERS:
                phases.append(trajectory + state * (3 + working(name)) + temporaries)
        if self.study:
            small = 8 * min(self.n_reference, n, 512) * d
            phases.append(trajectory + 3 * state + small * (4 * steps + REFERENCE_ARRAYS) + temporaries)
        shown = min(n, MAX_POINTS) * min(d, 2) if d <= 2 else d  # (a frame's samples: points, or one image)
        frames = 8 * (steps + 1) * (shown + N_TRAJECTORIES * d * (steps + 2) // 2 * (d == 2))
        return max(phases) + frames + OWN_FIXED_BYTES

    def compared(self) -> list[str]:
        return [c.strip() for c in self.compare.split(",") if c.strip()]

    def check(self) -> None:
        for name in self.compared():
            if name not in SAMPLERS:
                raise ValueError(f"diffusion: 'compare' names an unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
        info = SAMPLERS[self.sampler]
        if info.orders and "order" in info.defaults and self.order not in info.orders:
            raise ValueError(f"diffusion: 'order' = {self.order} is not available for {self.sampler}; "
                             f"choose one of {info.orders}")
        if self.guidance != 1.0 and self.target != "ring_conditional":
            raise ValueError("diffusion: 'guidance' needs the class-conditional target 'ring_conditional'")
        if self.schedule == "vp_discrete" and self.steps > 999:
            raise ValueError("diffusion: 'steps' must be below the 1000 levels of the discrete schedule")
        if self.thresholding and self.sampler not in THRESHOLDING_SAMPLERS:
            raise ValueError("diffusion: 'thresholding' applies to dpm_solver, dpmpp_2m and dpmpp_3m")
        if self.timesteps == "optimal" and self.steps > 24:
            raise ValueError("diffusion: the 'optimal' step schedule is searched for 'steps' <= 24")
        if "beta" in info.defaults and not 0.0 < self.momentum <= 1.0:
            raise ValueError(f"diffusion: 'momentum' must be in (0, 1] for {self.sampler}, got {self.momentum}")
        if self.timesteps == "beta":  # a skewed Beta law can put two time points on one float
            for count in sorted({self.steps, *(self._study_counts() if self.study else ())}):
                try:
                    self.noise_levels(count)
                except ValueError as exc:
                    raise ValueError(f"diffusion: 'beta_a' = {self.beta_a:g} and 'beta_b' = {self.beta_b:g} fail for "
                                     f"{count} steps of the '{self.schedule}' schedule ({exc}); choose values nearer "
                                     "1 (or fewer steps)") from None

    # ------------------------------------------------------------------ set-up
    def _rng(self, stream: int) -> np.random.Generator:
        """The generator of one of the run's random streams (:data:`PARTICLE_STREAM` …), seeded by
        ``(seed, stream)``: independent of every other seed's streams (``seed + stream`` made seed 1's
        sampler noise seed 2's initial particles)."""
        return np.random.default_rng([self.seed, stream])

    def model(self):
        """The exact model ``(x, alpha, sigma) -> (eps, x0)`` (guided for ring_conditional)."""
        target = make_target(self.target)
        if self.target == "ring_conditional":
            return target, guided_model(target, target.conditional(self.class_label), self.guidance)
        return target, target.predict

    def options(self) -> dict:
        """Sampler options from the parameters (only those the sampler takes)."""
        info = SAMPLERS[self.sampler]
        opts = dict(info.defaults)
        values = {option: getattr(self, name) for name, option in self._OPTIONS.items()}
        for key in opts:
            if key in values:
                opts[key] = values[key]
        if self.thresholding:
            if self.sampler not in THRESHOLDING_SAMPLERS:
                raise ValueError("diffusion: 'thresholding' applies to dpm_solver, dpmpp_2m and dpmpp_3m")
            opts.update(thresholding=True, threshold_max=math.inf,
                        threshold_scale=make_target(self.target).bound())
        return opts

    def options_for(self, name: str) -> dict:
        """The main sampler's options (:meth:`options`) as a compared sampler ``name`` takes them: only
        those it has (so it gets the lab's ``order``, ``eta`` … only where the main sampler takes them
        too; otherwise its own defaults), with ``order`` capped to the highest it supports."""
        info = SAMPLERS[name]
        opts = {k: v for k, v in self.options().items() if k in info.options}
        if "order" in opts and info.orders and opts["order"] not in info.orders:
            opts["order"] = max([o for o in info.orders if o <= opts["order"]] or [min(info.orders)])
        return opts

    def times(self, schedule, steps: int, model=None) -> np.ndarray:
        if self.timesteps == "optimal":
            return optimal_times(model, schedule, steps, sampler=self.sampler, seed=self.seed,
                                 dim=make_target(self.target).dim)
        extra = {"karras": dict(rho=self.rho), "beta": dict(a=self.beta_a, b=self.beta_b)}.get(self.timesteps, {})
        return step_times(self.timesteps, schedule, steps, **extra)

    def noise_levels(self, steps: int | None = None, model=None, denoise: bool | None = None) -> Levels:
        schedule = make_schedule(self.schedule)
        return levels(schedule, self.times(schedule, steps or self.steps, model),
                      denoise=self.denoise if denoise is None else denoise)

    # ------------------------------------------------------------------ the run
    def _frames(self, xp):
        target, model = self.model()
        d = target.dim
        lv = self.noise_levels(model=model)
        rng = self._rng(PARTICLE_STREAM)
        x_host = rng.standard_normal((self.n_samples, d)) * float(lv.sigma[0])
        x = xp.asarray(x_host)
        n_ref = min(self.n_reference, self.n_samples)
        info = SAMPLERS[self.sampler]
        opts = self.options()
        self._stability = None
        self._target = target
        exact_rng = self._rng(EXACT_STREAM)
        data = target.conditional(self.class_label) if self.target == "ring_conditional" else target
        n_dist = min(self.n_samples, 4000)
        history = [_shown(x[:N_TRAJECTORIES])]
        radius = float(np.max(np.linalg.norm(target.means, axis=1)) + 6 * math.sqrt(float(target.eigenvalues.max())))
        last = lv.steps

        def frame(i, xi, prev, nfe_i, ref_i, ref_end=None, local=None):
            self.ensure_finite(xi, float(nfe_i), f"the samples after step {i} of {self.sampler}")
            a, s = lv.at(i)
            bound = DIVERGENCE_FACTOR * (radius * a + 6 * s * math.sqrt(d))
            largest = float(xp.max(xp.sqrt(xp.sum(xi * xi, axis=1))))
            if largest > bound:
                raise SolverDiverged(float(nfe_i), f"the samples after step {i} of {self.sampler} (|x| = "
                                     f"{largest:.3g}, {DIVERGENCE_FACTOR}x beyond the data and noise scale)",
                                     self.divergence_hint, what="diverged")
            err = xp.sqrt(xp.sum((xi[:n_ref] - ref_i) ** 2, axis=1))
            exact = xp.asarray(data.sample(n_dist, exact_rng, a, s))
            convergence = {
                "error": float(xp.mean(err)),
                "distance": analysis.sliced_wasserstein(xi[:n_dist], exact),
            }
            if i > 0 and local is not None:
                convergence["local_error"] = local[i - 1]
            history.append(_shown(xi[:N_TRAJECTORIES]))
            samples = self._samples(xi, a, s, history)
            spectrum = self._spectrum(xi - prev if i > 0 else None)
            diagnostics = {"sigma_bar": float(s / a), "max_error": float(xp.max(err))}
            if i == last and self.study:
                samples["convergence_study"] = self._study(model, x_host[:min(n_ref, 512)], xp)
                theory = info.order({**info.defaults, **opts})
                nfes, errs = self._study_result
                if theory > 0 and nfes.size:
                    samples["convergence_theory"] = Curve(
                        nfes, errs[-1] * (nfes / nfes[-1]) ** (-theory), xlabel="nfe",
                        ylabel=f"reference slope NFE^-{theory}", logx=True, logy=True)
            if i == last:
                for name in self.compared():
                    cloud, err_c = self._side_by_side(name, model, x, ref_end, n_ref, int(nfe_i), xp)
                    convergence[f"error_{name}"] = err_c
                    if cloud is not None:
                        samples[f"compare_{name}"] = cloud
            return Frame(step=i, time=float(nfe_i), progress=i / lv.steps, convergence=convergence,
                         diagnostics=diagnostics, spectrum=spectrum, samples=samples, nfe=int(nfe_i), steps=i)

        # the initial noise is shown before any solve: a new parameter value's first frame (the page's
        # preview) costs milliseconds, not the reference PF-ODE and the whole sampling run
        if last > 0:
            yield frame(0, x, x, 0, x[:n_ref])
        stops = [lv.at(i) for i in range(1, lv.steps + 1)]
        try:
            ref, _ = pf_ode(model, x[:n_ref], lv.at(0), stops, rtol=self.reference_rtol, atol=self.reference_rtol)
        except StepSizeTooSmall as exc:
            raise SolverDiverged(0.0, f"the reference PF-ODE ({exc})", self.divergence_hint) from None
        ref = [x[:n_ref]] + ref
        local = None if info.is_stochastic(opts) else self.local_errors(model, ref, lv, opts, xp)
        # each step's frame is made as the sampler goes, so only the current state and the previous one
        # are held (keeping every step's samples for frames made afterwards took steps × n_samples × dim:
        # 0.43 of 0.86 GB for image16 at 20 000 samples), and a diverging run stops at its bad step; the
        # last frame, which runs the compared samplers, waits until the sampler has let go of its arrays
        made, prev, kept = [], [x], []

        def record(step):
            i = len(made) + 1
            if i == last:
                kept.append((step["x"], step["nfe"]))
                return
            made.append(frame(i, step["x"], prev[0], step["nfe"], ref[i], ref[-1], local))
            prev[0] = step["x"]

        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out, nfe = sample(self.sampler, model, x, lv, rng=self._rng(NOISE_STREAM),
                                  callback=record, **opts)
            if last == 0:
                made.append(frame(0, x, x, 0, ref[0], ref[-1], local))
            else:
                (x_last, nfe_last), = kept  # (the callback reports every step)
                if nfe != nfe_last:  # pragma: no cover
                    raise RuntimeError("sampler callback missed steps")
                del kept[:]
                made.append(frame(last, x_last, prev[0], nfe_last, ref[last], ref[-1], local))
        except SolverDiverged:
            yield from made  # (the frames before the step that diverged, as a run shows them)
            raise
        del prev[:]
        self._final = to_host(out)
        self._reference = to_host(ref[-1])
        yield from made

    def local_errors(self, model, ref, lv: Levels, opts: dict, xp) -> list[float]:
        """Per-step local errors: entry ``i - 1`` is the mean distance to ``ref[i]`` of the state after
        one step taken from ``ref[i - 1]``.

        The sampler runs once with teacher forcing (its callback returns the reference state, see
        :mod:`explore.numerics.diffusion.samplers`): every step starts from the reference trajectory,
        and a multistep sampler's history (its earlier model outputs, its momentum) was evaluated on
        that trajectory too. For single-step samplers that is one step from the reference state; for
        multistep ones it is the error their formula commits in one step given exact history, the
        quantity whose size ~ h^(p+1) makes the method order p. Predictor–corrector samplers (UniPC,
        DPM-Solver-v3 with corrector) are measured after the correction: the step predicts from
        ``ref[i - 1]``, evaluates the model there, and corrects.
        """
        reported, corrected = {}, {}

        def force(info):
            i = info["i"]
            reported[i + 1] = info["x"]
            if "corrected" in info:
                corrected[i] = info["corrected"]
            return ref[i + 1]

        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            sample(self.sampler, model, ref[0], lv, rng=self._rng(NOISE_STREAM), callback=force, **opts)
        out = []
        for i in range(1, lv.steps + 1):
            xi = corrected.get(i, reported[i])
            out.append(float(xp.mean(xp.sqrt(xp.sum((xi - ref[i]) ** 2, axis=1)))))
        return out

    # ------------------------------------------------------------------ views
    def _samples(self, xi, a, s, history) -> dict:
        target = self._target
        host = _shown(xi[:MAX_POINTS] if target.dim <= 2 else xi[:1])
        out = {}
        if target.dim == 2:
            out["samples"] = Points(host[:, 0], host[:, 1], xlabel="x1", ylabel="x2", equal_aspect=True)
            traj = np.stack(history)  # (steps, particles, 2)
            out["trajectories"] = Points(traj[..., 0].ravel(), traj[..., 1].ravel(), xlabel="x1", ylabel="x2",
                                         equal_aspect=True)
        elif target.dim == 1:
            sd = math.sqrt(a * a * float(target.eigenvalues.max()) + s * s)
            lo = a * float(target.means.min()) - 4 * sd
            hi = a * float(target.means.max()) + 4 * sd
            edges = np.linspace(lo, hi, 81)
            hist, _ = np.histogram(host[:, 0], bins=edges, density=True)
            centres = 0.5 * (edges[1:] + edges[:-1])
            out["histogram"] = Curve(centres, hist, xlabel="x", ylabel="density")
            dens = np.exp(to_host(target.log_prob(np.asarray(centres)[:, None], a, s)))
            out["density"] = Curve(centres, dens, xlabel="x", ylabel="exact density")
        else:
            size = int(round(math.sqrt(target.dim)))
            if size * size == target.dim:
                out["image"] = Field(np.arange(size), np.arange(size), host[0].reshape(size, size),
                                     xlabel="column", ylabel="row", label="pixel")
        return out

    def _spectrum(self, update):
        target = self._target
        size = int(round(math.sqrt(target.dim)))
        if target.dim > 2 and size * size == target.dim:
            if update is None:
                return None
            k, power = analysis.radial_power(_shown(update[:512]), size)
            return Curve(k, power, xlabel="k", ylabel="power of the update", logy=True)
        if getattr(self, "_stability", None) is not None:
            return self._stability
        info = SAMPLERS[self.sampler]
        if info.multistep:
            order = {"pndm": 4, "dpmpp_2m": 2, "dpmpp_3m": 3}.get(self.sampler, min(self.order, 4))
            beta = self.momentum if "beta" in info.defaults else 1.0
            kind = "ghvb" if self.sampler == "ghvb" else "hb"
            self._stability = _stability_points(kind, order, beta)
        else:
            self._stability = _stability_points("rk", max(1, min(info.order({**info.defaults, **self.options()}), 4)))
        return self._stability

    def _side_by_side(self, name, model, x, ref_end, n_ref, nfe_budget, xp):
        """Sampler ``name`` from the same noise with the same step schedule, its steps chosen so that its
        NFE is at most the main run's; returns its cloud (2-D targets) and its error vs the reference."""
        probe = xp.asarray(np.zeros((1, self._target.dim)))
        counts = []
        for trial in (2, 3):
            _, n = sample(name, model, probe, self.noise_levels(trial, model), rng=np.random.default_rng(0))
            counts.append(n)
        per_step, offset = counts[1] - counts[0], counts[0] - 2 * (counts[1] - counts[0])
        steps = max(1, (nfe_budget - offset) // max(per_step, 1))
        lv = self.noise_levels(steps, model)
        opts = self.options_for(name)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out, _ = sample(name, model, x, lv, rng=self._rng(NOISE_STREAM), **opts)
        err = float(xp.mean(xp.sqrt(xp.sum((out[:n_ref] - ref_end) ** 2, axis=1))))
        if self._target.dim != 2:
            return None, err
        host = _shown(out[:MAX_POINTS])
        return Points(host[:, 0], host[:, 1], xlabel="x1", ylabel="x2", equal_aspect=True), err

    def _study_counts(self) -> list[int]:
        """The step counts of the error-vs-NFE study: a quarter of ``steps`` to four times it."""
        counts = sorted({max(1, self.steps // 4), max(1, self.steps // 2), self.steps, 2 * self.steps,
                         4 * self.steps})
        if self.schedule == "vp_discrete":
            counts = [c for c in counts if c <= 250]
        if self.timesteps == "optimal":
            counts = [c for c in counts if c <= 24]
        return counts

    def _study(self, model, x0_host, xp) -> Curve:
        """Error vs NFE over step counts around ``steps`` (same endpoints, one reference).

        Measured at the last noise level sigma_min > 0, without the final denoising step: that jump
        x = alpha x0_hat has an error ~ sigma_min^2 whatever the step count, a floor under which the
        study's slope (the sampler's order) would flatten."""
        counts = self._study_counts()
        x0 = xp.asarray(x0_host)
        lv_end = self.noise_levels(counts[0], model, denoise=False)
        ref, _ = pf_ode(model, x0, lv_end.at(0), [lv_end.at(lv_end.steps)], rtol=self.reference_rtol,
                        atol=self.reference_rtol)
        nfes, errors = [], []
        for c in counts:
            lv = self.noise_levels(c, model, denoise=False)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out, nfe = sample(self.sampler, model, x0, lv, rng=self._rng(NOISE_STREAM),
                                  **self.options())
            e = float(xp.mean(xp.sqrt(xp.sum((out - ref[0]) ** 2, axis=1))))
            if math.isfinite(e) and e > 0:
                nfes.append(nfe)
                errors.append(e)
        self._study_result = (np.array(nfes, dtype=float), np.array(errors))
        return Curve(np.array(nfes, dtype=float), np.array(errors), xlabel="nfe", ylabel="error vs reference",
                     logx=True, logy=True)

    def result_extras(self) -> dict:
        if getattr(self, "_final", None) is None:
            return {}
        extras = {
            "final_samples": (("particle", "dim"), self._final, {"long_name": "final samples"}),
            "reference_endpoints": (("reference_particle", "dim"), self._reference,
                                    {"long_name": "reference PF-ODE endpoints from the same noise"}),
        }
        if self.study and getattr(self, "_study_result", None) is not None:
            nfes, errs = self._study_result
            extras["study_nfe"] = ("study", nfes)
            extras["study_error"] = ("study", errs, {"long_name": "error vs reference at study_nfe"})
        return extras
