r"""Samplers of diffusion models: one short function per method, in a registry.

Every sampler has the signature ::

    sampler(model, x, levels, *, rng=None, callback=None, **options) -> x

``model(x, alpha, sigma) -> (eps_hat, x0_hat)`` is the (here exact) network; ``x`` the starting
noise at ``levels[0]``; ``levels`` the :class:`~.schedules.Levels` to visit (noisiest first, maybe
ending at a clean level sigma = 0); ``rng`` a ``numpy.random.Generator`` (stochastic samplers draw
their noise on the host from it, so every backend sees the same numbers); ``callback(info)`` is
called after every step with ``i`` (the step), ``x`` (the new state), ``denoised`` (the last data
prediction) and ``nfe``; predictor–corrector samplers add ``corrected``, the corrected state at the
level where step ``i`` started. If the callback returns an array, the sampler continues from it as
its state (teacher forcing: the lab feeds it the reference trajectory to measure local errors, so
every model output in a multistep history is evaluated on that trajectory; a corrector then still
reports its corrected state but continues from the given one).

Notation: :math:`\lambda = \log(\alpha/\sigma)`, :math:`h = \lambda_{i+1} - \lambda_i`, and
:math:`\bar x = x/\alpha`, :math:`\bar\sigma = \sigma/\alpha` (the EDM variables, in which the
probability-flow ODE is :math:`d\bar x/d\bar\sigma = \hat\varepsilon`). A step that lands on a clean
level (sigma = 0) is the first-order limit :math:`x = \alpha\hat x_0` in every sampler. Multistep
samplers start with lower orders. Intermediate points at log-SNR :math:`\lambda` use the normalised
level :math:`(\alpha, \sigma) = (\operatorname{sigmoid}(2\lambda)^{1/2}, \operatorname{sigmoid}(-2\lambda)^{1/2})`:
the exact model is scale-free, so no inverse of the schedule is needed.

:data:`SAMPLERS` maps names to :class:`SamplerInfo` (function, convergence order as a function of
the ``order`` option, options); the lab's Selector, the CLI help and the registry-wide tests read it.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable

import array_api_compat
import numpy as np

from explore.numerics.diffusion import ems as _ems
from explore.numerics.diffusion.schedules import Levels, normalized
from explore.numerics.diffusion.targets import GaussianMixture

__all__ = ["SAMPLERS", "SamplerInfo", "register_sampler", "sample", "CountingModel"]


@dataclass(frozen=True)
class SamplerInfo:
    """A registered sampler.

    Attributes
    ----------
    order : callable
        ``order(options) -> int``: the order of convergence of the ODE samplers (error of the
        endpoint vs the reference ~ NFE^-order); 0 for stochastic samplers.
    orders : tuple
        Values of the ``order`` option it accepts (empty: none).
    stochastic : bool or callable
        Whether it injects noise (needs ``rng``; its error vs the PF-ODE reference does not vanish):
        a bool, or ``stochastic(options) -> bool`` where an option decides (DDIM's ``eta``,
        SA-Solver's ``tau``); :meth:`is_stochastic` answers for given options.
    multistep : bool
        Reuses earlier model outputs (one NFE per step after start-up).
    options : tuple
        Names of the options it takes (``sample`` refuses others).
    """

    name: str
    fn: Callable
    order: Callable
    orders: tuple = ()
    stochastic: bool | Callable = False
    multistep: bool = False
    defaults: dict = field(default_factory=dict)
    doc: str = ""
    options: tuple = ()

    def is_stochastic(self, options: dict | None = None) -> bool:
        """Whether it injects noise with ``options`` (its defaults where not given)."""
        if callable(self.stochastic):
            return bool(self.stochastic({**self.defaults, **(options or {})}))
        return bool(self.stochastic)


SAMPLERS: dict[str, SamplerInfo] = {}


def register_sampler(name, *, theory, orders=(), stochastic=False, multistep=False, **defaults):
    """Decorator registering a sampler under ``name``; ``theory`` is its convergence order (an int or
    ``options -> int``), ``defaults`` its default options."""
    order_fn = theory if callable(theory) else (lambda opts, _o=theory: _o)

    def deco(fn):
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        SAMPLERS[name] = SamplerInfo(name, fn, order_fn, tuple(orders), stochastic, multistep, defaults, doc,
                                     _option_names(fn))
        return fn

    return deco


def _option_names(fn) -> tuple:
    """The keyword options ``fn`` takes; a ``**kw`` forwarded to :func:`dpm_solver_multistep` adds its
    options, less those ``fn`` fixes itself (``predict``, and ``order`` where ``fn`` does not take it)."""
    params = inspect.signature(fn).parameters
    names = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in ("rng", "callback")]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        shared = inspect.signature(dpm_solver_multistep).parameters
        names += [n for n, p in shared.items() if p.kind is p.KEYWORD_ONLY
                  and n not in ("rng", "callback", "predict", "order") and n not in names]
    return tuple(names)


class CountingModel:
    """Wraps a model and counts its evaluations (the NFE)."""

    def __init__(self, model):
        self.model, self.nfe = model, 0

    def __call__(self, x, alpha, sigma):
        self.nfe += 1
        return self.model(x, float(alpha), float(sigma))


def sample(name: str, model, x, levels: Levels, *, rng=None, callback=None, **options):
    """Run sampler ``name``; returns ``(x, nfe)``. Unknown names and options raise ``ValueError``."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler: unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    info = SAMPLERS[name]
    unknown = [k for k in options if k not in info.options]
    if unknown:
        raise ValueError(f"{unknown[0]}: not an option of {name}; its options: {', '.join(info.options) or 'none'}")
    opts = {**info.defaults, **options}
    if "order" in opts and info.orders and opts["order"] not in info.orders:
        raise ValueError(f"order: {name} supports orders {info.orders}, got {opts['order']!r}")
    if info.is_stochastic(opts) and rng is None:
        rng = np.random.default_rng(0)
    counted = CountingModel(model)
    out = info.fn(counted, x, levels, rng=rng, callback=_counting_callback(callback, counted), **opts)
    return out, counted.nfe


def _counting_callback(callback, counted):
    if callback is None:
        return None

    def cb(info):
        return callback({**info, "nfe": counted.nfe})

    return cb


def _noise(rng, x):
    xp = array_api_compat.array_namespace(x)
    return xp.asarray(rng.standard_normal(tuple(x.shape)), dtype=x.dtype)


def _report(callback, i, x, x0, **extra):
    """Call ``callback`` after step ``i``; the state to continue from is its return value if it
    returns one (teacher forcing), else ``x``."""
    return _report_forced(callback, i, x, x0, **extra)[0]


def _report_forced(callback, i, x, x0, **extra):
    """:func:`_report` that also says whether the callback replaced the state."""
    if callback is None:
        return x, False
    out = callback({"i": i, "x": x, "denoised": x0, **extra})
    return (x, False) if out is None else (out, True)


def _report_corrected(callback, i, x, x0, corrected):
    """:func:`_report_forced` for predictor–corrector samplers: ``corrected`` (the corrected state
    at the level where step ``i`` starts, if any) goes into the callback's info."""
    extra = {} if corrected is None else {"corrected": corrected}
    return _report_forced(callback, i, x, x0, **extra)


def _single_step_loop(model, x, levels, callback, step):
    """The loop every single-step sampler shares: the model at the start of step ``i``, then
    ``step(i, x, eps, x0, a, s, a1, s1) -> x_new`` from (alpha, sigma) = (a, s) to (a1, s1)."""
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        x = step(i, x, eps, x0, a, s, a1, s1)
        x = _report(callback, i, x, x0)
    return x


def _ddim_step(x, eps, x0, a1, s1, eta=0.0, h=0.0, rng=None):
    """``alpha' x0 + sqrt(sigma'^2 - c^2) eps + c z`` with ``c = eta sigma' sqrt(1 - e^{-2h})``."""
    if eta == 0.0 or s1 == 0.0:
        return a1 * x0 + s1 * eps
    c = eta * s1 * math.sqrt(-math.expm1(-2 * h))
    return a1 * x0 + math.sqrt(max(s1 * s1 - c * c, 0.0)) * eps + c * _noise(rng, x)


# ============================================================================ DDPM / DDIM
@register_sampler("ddim", theory=lambda o: 1 if o.get("eta", 0.0) == 0 else 0,
                  stochastic=lambda o: o.get("eta", 0.0) != 0, eta=0.0)
def ddim(model, x, levels, *, rng=None, callback=None, eta=0.0):
    """DDIM (Song, Meng & Ermon, "Denoising Diffusion Implicit Models"); eta = 0 is the
    deterministic first-order PF-ODE solver (= Euler in sigma-bar), eta = 1 is DDPM ancestral."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta: DDIM's noise share must be in [0, 1], got {eta!r}")
    lam = levels.lam.tolist()

    def step(i, x, eps, x0, a, s, a1, s1):
        return _ddim_step(x, eps, x0, a1, s1, eta, lam[i + 1] - lam[i], rng)

    return _single_step_loop(model, x, levels, callback, step)


@register_sampler("ddpm", theory=0, stochastic=True)
def ddpm(model, x, levels, *, rng=None, callback=None):
    """DDPM ancestral sampling (Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models"):
    the posterior q(x_{t'} | x_t, x0_hat) at every step (DDIM with eta = 1)."""
    return ddim(model, x, levels, rng=rng, callback=callback, eta=1.0)


# ============================================================================ EDM Euler / Heun
@register_sampler("euler", theory=1)
def euler(model, x, levels, *, rng=None, callback=None):
    """Euler on d x_bar / d sigma_bar = eps (Karras et al., "Elucidating the Design Space of
    Diffusion-Based Generative Models"); first order."""
    sb = levels.sigma_bar.tolist()

    def step(i, x, eps, x0, a, s, a1, s1):
        return a1 * (x / a + (sb[i + 1] - sb[i]) * eps)

    return _single_step_loop(model, x, levels, callback, step)


@register_sampler("heun", theory=2)
def heun(model, x, levels, *, rng=None, callback=None):
    """Heun's second-order method in sigma-bar (EDM, Algorithm 1); Euler on the last step to sigma = 0."""
    sb = levels.sigma_bar.tolist()

    def step(i, x, eps, x0, a, s, a1, s1):
        xb = x / a + (sb[i + 1] - sb[i]) * eps
        if s1 > 0:
            eps2, _ = model(a1 * xb, a1, s1)
            xb = x / a + (sb[i + 1] - sb[i]) * 0.5 * (eps + eps2)
        return a1 * xb

    return _single_step_loop(model, x, levels, callback, step)


# ============================================================================ DPM-Solver (single-step)
def _at_lambda(lam):
    a, s = normalized(lam)
    return float(a), float(s)


def _dpm3_step(model, x, a, s, lam0, lam1, a1, s1, eps, r1=1 / 3, r2=2 / 3):
    """One DPM-Solver-3 step from (a, s) at lam0 to (a1, s1) at lam1, given eps at the start."""
    h = lam1 - lam0
    a_1, s_1 = _at_lambda(lam0 + r1 * h)
    a_2, s_2 = _at_lambda(lam0 + r2 * h)
    u1 = (a_1 / a) * x - s_1 * math.expm1(r1 * h) * eps
    d1 = model(u1, a_1, s_1)[0] - eps
    phi22 = math.expm1(r2 * h) / (r2 * h) - 1
    u2 = (a_2 / a) * x - s_2 * math.expm1(r2 * h) * eps - (r2 / r1) * s_2 * phi22 * d1
    d2 = model(u2, a_2, s_2)[0] - eps
    return (a1 / a) * x - s1 * math.expm1(h) * eps - (s1 / r2) * (math.expm1(h) / h - 1) * d2


def _warmup_order(nominal: int, warmup: str) -> int:
    """Global order of a multistep method of order ``nominal`` started by first-order steps
    ("lower_order": the first step's O(h^2) local error caps it at 2) or by one DPM-Solver-3 step
    ("singlestep": O(h^4) local error, 2 extra NFE)."""
    if warmup not in ("lower_order", "singlestep"):
        raise ValueError(f"warmup: must be 'lower_order' or 'singlestep', got {warmup!r}")
    return nominal if warmup == "singlestep" else min(nominal, 2)


@register_sampler("dpm_solver_2", theory=2)
def dpm_solver_2(model, x, levels, *, rng=None, callback=None, r1=0.5):
    """DPM-Solver-2 (Lu et al., "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model
    Sampling in Around 10 Steps"), noise prediction, single-step, intermediate point at lambda + r1 h."""
    if not 0.0 < r1 <= 1.0:
        raise ValueError(f"r1: the intermediate point's share of the step must be in (0, 1], got {r1!r}")
    lam = levels.lam.tolist()

    def step(i, x, eps, x0, a, s, a1, s1):
        if s1 == 0:
            return a1 * x0
        h = lam[i + 1] - lam[i]
        am, sm = _at_lambda(lam[i] + r1 * h)
        u = (am / a) * x - sm * math.expm1(r1 * h) * eps
        eps_m, _ = model(u, am, sm)
        return (a1 / a) * x - s1 * math.expm1(h) * eps - s1 / (2 * r1) * math.expm1(h) * (eps_m - eps)

    return _single_step_loop(model, x, levels, callback, step)


def _dpm3_theory(o) -> int:
    # the last stage's update -s1/r2 (e^h/h - 1) D2 carries the eps'' term of the expansion exactly only
    # for r2 = 2/3 (the paper's choice); other r2 leave an O(h^3) local error: second order
    return 3 if abs(o.get("r2", 2 / 3) - 2 / 3) < 1e-12 else 2


@register_sampler("dpm_solver_3", theory=_dpm3_theory)
def dpm_solver_3(model, x, levels, *, rng=None, callback=None, r1=1 / 3, r2=2 / 3):
    """DPM-Solver-3 (same paper), noise prediction, single-step with points at lambda + r1 h, r2 h.
    Third order for r2 = 2/3 (any 0 < r1 < r2), second order otherwise."""
    if not 0.0 < r1 < r2 <= 1.0:
        raise ValueError(f"r1, r2: need 0 < r1 < r2 <= 1, got r1 = {r1!r}, r2 = {r2!r}")
    lam = levels.lam.tolist()

    def step(i, x, eps, x0, a, s, a1, s1):
        if s1 == 0:
            return a1 * x0
        return _dpm3_step(model, x, a, s, lam[i], lam[i + 1], a1, s1, eps, r1, r2)

    return _single_step_loop(model, x, levels, callback, step)


@register_sampler("dpmpp_2s", theory=2)
def dpmpp_2s(model, x, levels, *, rng=None, callback=None, r=0.5):
    """DPM-Solver++(2S) (Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
    Probabilistic Models"), data prediction, single-step."""
    if not 0.0 < r <= 1.0:
        raise ValueError(f"r: the intermediate point's share of the step must be in (0, 1], got {r!r}")
    lam = levels.lam.tolist()

    def step(i, x, eps, x0, a, s, a1, s1):
        if s1 == 0:
            return a1 * x0
        h = lam[i + 1] - lam[i]
        am, sm = _at_lambda(lam[i] + r * h)
        u = (sm / s) * x - am * math.expm1(-r * h) * x0
        _, x0_m = model(u, am, sm)
        return (s1 / s) * x - a1 * math.expm1(-h) * (x0 + (x0_m - x0) / (2 * r))

    return _single_step_loop(model, x, levels, callback, step)


# ============================================================================ multistep DPM-Solver(++)
def _threshold(x0, ratio: float, max_value: float, scale: float = 1.0):
    """Dynamic thresholding (Saharia et al., "Photorealistic Text-to-Image Diffusion Models with Deep
    Language Understanding") in units of the data's range ``scale`` (images: 1): per sample,
    s = clip(q, 1, max_value) with q the ``ratio`` quantile of |x0| / scale (linearly interpolated,
    as ``numpy.percentile``), then x0 <- clip(x0, -s scale, s scale) / s. ``max_value = 1`` is a
    static clip to [-scale, scale]; ``inf`` is the paper's rule."""
    xp = array_api_compat.array_namespace(x0)
    flat = xp.sort(xp.abs(xp.reshape(x0, (x0.shape[0], -1))), axis=1) / scale
    pos = ratio * (flat.shape[1] - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, flat.shape[1] - 1)
    q = flat[:, lo] + (pos - lo) * (flat[:, hi] - flat[:, lo])
    s = xp.clip(q, 1.0, max_value)[:, None] * scale
    return xp.clip(x0, -s, s) * (scale / s)


def _final_orders(steps: int, lower_order_final: bool):
    """Order caps of the last two steps (as common libraries do for fewer than 15 steps)."""
    if lower_order_final and steps < 15:
        return {steps - 1: 1, steps - 2: 2}
    return {}


def dpm_solver_multistep(model, x, levels, *, rng=None, callback=None, order=2, predict="x0",
                         lower_order_final=True, thresholding=False, threshold_ratio=0.995,
                         threshold_max=1.0, threshold_scale=1.0, warmup="lower_order", library_3m=False,
                         solver_type="midpoint"):
    r"""Multistep DPM-Solver (predict = "eps") and DPM-Solver++ (predict = "x0"), orders 1–3.

    Second order is the "midpoint" form :math:`D = m_0 + (m_0 - m_1)/(2 r_0)` or, with
    ``solver_type="taylor"``, the Taylor form :math:`\alpha_t(\frac{e^{-h}-1}{h} + 1) D_1`; third order
    the Taylor form of DPM-Solver++(3M). One NFE per step. ``warmup="singlestep"`` takes the first step
    with DPM-Solver-3 (2 extra NFE) so that order 3 is reached globally.

    Third order: with :math:`D_2 = (D_{1,0} - D_{1,1})/(r_0 + r_1) \approx h^2 m''/2`, the
    exponential-integrator expansion needs the weight :math:`2\,\alpha_t((e^{-h} - 1 + h)/h^2 - 1/2)`;
    ``library_3m=True`` uses half of it, as common libraries do, which makes the method second
    order (kept only to reproduce them).

    ``thresholding`` applies :func:`_threshold` to every data prediction (``threshold_ratio``,
    ``threshold_max``, and ``threshold_scale``, the data's range: 1 for images in [-1, 1]).
    """
    w2 = 1.0 if library_3m else 2.0
    _warmup_order(order, warmup)
    if solver_type not in ("midpoint", "taylor"):
        raise ValueError(f"solver_type: must be 'midpoint' or 'taylor', got {solver_type!r}")
    taylor = solver_type == "taylor"
    lam = levels.lam.tolist()
    caps = _final_orders(levels.steps, lower_order_final)
    hist: list = []  # (lambda, model output), newest last
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        if thresholding:
            x0 = _threshold(x0, threshold_ratio, threshold_max, threshold_scale)
            eps = (x - a * x0) / s
        hist = (hist + [(lam[i], x0 if predict == "x0" else eps)])[-3:]
        if s1 == 0:
            x = a1 * x0
            x = _report(callback, i, x, x0)
            continue
        if i == 0 and warmup == "singlestep" and order > 2:
            x = _dpm3_step(model, x, a, s, lam[0], lam[1], a1, s1, eps)
            x = _report(callback, i, x, x0)
            continue
        k = min(order, len(hist), caps.get(i, order))
        h = lam[i + 1] - lam[i]
        m0 = hist[-1][1]
        if k == 1:
            d1 = d2 = None
        elif k == 2:
            r0 = (hist[-1][0] - hist[-2][0]) / h
            d1, d2 = (m0 - hist[-2][1]) / r0, None
        else:
            r0 = (hist[-1][0] - hist[-2][0]) / h
            r1 = (hist[-2][0] - hist[-3][0]) / h
            d1_0 = (m0 - hist[-2][1]) / r0
            d1_1 = (hist[-2][1] - hist[-3][1]) / r1
            d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
        if predict == "x0":
            e = math.expm1(-h)
            x = (s1 / s) * x - a1 * e * m0
            if k == 2:
                x = x + a1 * (e / h + 1) * d1 if taylor else x - 0.5 * a1 * e * d1
            elif k == 3:
                x = x + a1 * (e / h + 1) * d1 - w2 * a1 * ((e + h) / h**2 - 0.5) * d2
        else:
            e = math.expm1(h)
            x = (a1 / a) * x - s1 * e * m0
            if k == 2:
                x = x - s1 * (e / h - 1) * d1 if taylor else x - 0.5 * s1 * e * d1
            elif k == 3:
                x = x - s1 * (e / h - 1) * d1 - w2 * s1 * ((e - h) / h**2 - 0.5) * d2
        x = _report(callback, i, x, x0)
    return x


@register_sampler("dpm_solver", theory=lambda o: _warmup_order(o["order"], o["warmup"]), orders=(1, 2, 3),
                  multistep=True, order=2, lower_order_final=True, warmup="lower_order")
def dpm_solver(model, x, levels, *, rng=None, callback=None, order=2, **kw):
    """Multistep DPM-Solver (Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
    Probabilistic Models", the noise-prediction variant), orders 1-3."""
    return dpm_solver_multistep(model, x, levels, callback=callback, order=order, predict="eps", **kw)


@register_sampler("dpmpp_2m", theory=2, multistep=True)
def dpmpp_2m(model, x, levels, *, rng=None, callback=None, **kw):
    """DPM-Solver++(2M) (Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
    Probabilistic Models"): data prediction, second-order multistep."""
    return dpm_solver_multistep(model, x, levels, callback=callback, order=2, predict="x0", **kw)


@register_sampler("dpmpp_3m", theory=lambda o: _warmup_order(3, o["warmup"]), multistep=True,
                  warmup="lower_order")
def dpmpp_3m(model, x, levels, *, rng=None, callback=None, **kw):
    """DPM-Solver++(3M): data prediction, third-order multistep (same paper)."""
    return dpm_solver_multistep(model, x, levels, callback=callback, order=3, predict="x0", **kw)


# ============================================================================ DPM-Solver-v3
def _taylor_derivatives(dl: list[float], dg: list, pseudo: bool) -> list:
    """Derivatives g', g'', ... at the base point from ``dg[j] = g(λ_s + dl[j]) - g(λ_s)``: the
    Taylor coefficients of the interpolating polynomial (``pseudo``: Newton divided differences
    times k!, DPM-Solver-v3's "pseudo-order", which is formally second order)."""
    n = len(dl)
    if pseudo:
        nodes, table = [0.0] + list(dl), [None] + list(dg)  # g(λ_s) - g(λ_s) = 0 at the base
        table[0] = 0.0 * dg[0]
        out = []
        for k in range(1, n + 1):
            table = [(table[j + 1] - table[j]) / (nodes[j + k] - nodes[j]) for j in range(len(table) - 1)]
            out.append(math.factorial(k) * table[0])
        return out
    r = np.array([[d ** k / math.factorial(k) for k in range(1, n + 1)] for d in dl])
    inv = np.linalg.inv(r)
    return [sum(float(inv[k, j]) * dg[j] for j in range(n)) for k in range(n)]


def _v3_update(ems, vec, x_s, lam_s, a_s, pts, lam_t, a_t, pseudo):
    """One DPM-Solver-v3 update from (x_s at lam_s) to lam_t with the points ``pts`` = [(λ, f)], the
    base first: g_j = e^{-(S_j - S_s)} f_j - ∫ e^{-(S - S_s)} b, its Taylor derivatives from the
    interpolant, and x_t = (α_t/α_s) e^{-ΔL} x_s - α_t e^{-ΔL} (Σ_k c_k g^(k) + c_b)."""
    n = len(pts) - 1
    g0 = pts[0][1]
    dg = []
    for lam_j, f_j in pts[1:]:
        e, b_int = ems.shift(lam_s, lam_j)
        dg.append(vec(e) * f_j - vec(b_int) - g0)
    e_l, c, cb = ems.step(lam_s, lam_t, n)
    inner = vec(c[0]) * g0 + vec(cb)
    if n:
        for ck, gk in zip(c[1:], _taylor_derivatives([p[0] - lam_s for p in pts[1:]], dg, pseudo)):
            inner = inner + vec(ck) * gk
    return (a_t / a_s) * vec(e_l) * x_s - a_t * vec(e_l) * inner


def _v3_statistics(model, levels, samples=None):
    """DPM-Solver-v3's empirical model statistics over the run's finite log-SNR range, from the
    uncounted exact model and its data mixture (cached, see :mod:`.ems`)."""
    raw = model.model if isinstance(model, CountingModel) else model
    owner = getattr(raw, "__self__", raw)
    data = owner if isinstance(owner, GaussianMixture) else getattr(raw, "data", None)
    if data is None:
        raise ValueError("statistics: dpm_solver_v3 needs its empirical model statistics; pass statistics= "
                         "(see explore.numerics.diffusion.ems) for a model that is not a GaussianMixture")
    lam = levels.lam[np.isfinite(levels.lam)]
    opts = {} if samples is None else {"samples": samples}
    return _ems.statistics(raw, data, float(lam.min()), float(lam.max()), **opts)


def _final_step_cap(o, p: int) -> int:
    """``lower_order_final`` makes the last step order 1 at every step count (as UniPC's reference code
    does), and nothing corrects it (no model call follows): its O(h²) local error caps the global
    order at 2."""
    return min(p, 2) if o.get("lower_order_final", False) else p


def _v3_theory(o):
    corrector = o.get("corrector", True)
    p = o["order"] + (1 if corrector else 0)
    if o.get("pseudo", False):
        p = min(p, 2)
    p = p if o["warmup"] == "singlestep" else min(p, 3 if corrector else 2)
    return _final_step_cap(o, p)


@register_sampler("dpm_solver_v3", theory=_v3_theory, orders=(1, 2, 3), multistep=True, order=2,
                  corrector=True, pseudo=False, lower_order_final=True, warmup="lower_order")
def dpm_solver_v3(model, x, levels, *, rng=None, callback=None, order=2, corrector=True, pseudo=False,
                  lower_order_final=True, warmup="lower_order", statistics=None, ems_samples=None):
    r"""DPM-Solver-v3 (Zheng, Lu, Chen & Zhu, "DPM-Solver-v3: Improved Diffusion ODE Solver with
    Empirical Model Statistics"): the exponential integrator of
    :math:`dx/d\lambda = (\dot\alpha/\alpha - l)x - \alpha f`, :math:`f = (\sigma\hat\varepsilon - l x)/\alpha`,
    with the Taylor expansion of :math:`g = e^{-\int s} f - \int e^{-\int s} b` in λ (the
    statistics l, s, b: :mod:`.ems`, computed from the exact model and cached, or ``statistics``).

    Multistep predictor of order ``order`` (its derivatives of g from the last ``order`` points) and,
    with ``corrector``, the multistep corrector: the model output at the predicted point (keeping
    :math:`\sigma\hat\varepsilon - l x` fixed, no extra NFE) re-integrates the step with one more point,
    order ``order + 1``. ``pseudo``: the paper's pseudo-order (divided differences), formally second
    order, meant for very few steps (its default is order 3 with a pseudo-order-4 corrector).
    ``l = 1, s = b = 0`` is DPM-Solver++ (multistep, Taylor form). Start and final orders as in UniPC.
    """
    _warmup_order(order, warmup)
    xp = array_api_compat.array_namespace(x)

    def vec(v):
        return xp.asarray(np.asarray(v, dtype=float), dtype=x.dtype)

    lam = levels.lam.tolist()
    ems = statistics
    if ems is None and any(float(levels.sigma[i + 1]) > 0 for i in range(levels.steps)):
        ems = _v3_statistics(model, levels, ems_samples)
    hist: list = []  # (lambda, f), newest last
    prev = None  # (x, its order, its alpha) at the previous level
    forced = False
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        corrected = None
        if s > 0 and ems is not None:
            l_i = vec(ems.l(lam[i]))
            f = (s * eps - l_i * x) / a
            if corrector and prev is not None:
                x_prev, k_prev, a_prev = prev
                pts = [hist[-1], (lam[i], f)] + hist[-k_prev:-1][::-1]
                corrected = _v3_update(ems, vec, x_prev, lam[i - 1], a_prev, pts, lam[i], a, pseudo)
                if not forced:  # the data prediction that keeps sigma eps - l x fixed
                    x0 = x0 + (1 - l_i) * (corrected - x) / a
                    x = corrected
            hist = (hist + [(lam[i], f)])[-4:]
        if s1 == 0:
            prev = None
            x = a1 * x0
        elif i == 0 and warmup == "singlestep" and order + corrector > 2:
            prev = None
            x = _dpm3_step(model, x, a, s, lam[0], lam[1], a1, s1, eps)
        else:
            k = min(order, len(hist))
            if lower_order_final:
                k = min(k, levels.steps - i)
            prev = (x, k, a)
            x = _v3_update(ems, vec, x, lam[i], a, hist[::-1][:k], lam[i + 1], a1, pseudo)
        x, forced = _report_corrected(callback, i, x, x0, corrected)
    return x


# ============================================================================ DEIS
def _gauss_legendre(n=16):
    return np.polynomial.legendre.leggauss(n)


_GL = _gauss_legendre()


def _deis_coefficients(variable: str, levels: Levels, i: int, idx: list[int]) -> list[float]:
    """c_j = integral over [sigma_bar_i, sigma_bar_{i+1}] of the Lagrange basis l_j(v) d sigma_bar,
    the basis in v = log sigma_bar ("logrho"), sigma_bar ("rho") or the schedule time ("t");
    Gauss–Legendre with 16 nodes in v (exact to rounding for the smooth integrands)."""
    sb = levels.sigma_bar
    nodes, weights = _GL
    if variable in ("logrho", "rho"):
        vs = np.log(sb[idx]) if variable == "logrho" else sb[idx]
        v0 = math.log(sb[i]) if variable == "logrho" else sb[i]
        v1 = math.log(sb[i + 1]) if variable == "logrho" else sb[i + 1]
        v = 0.5 * (v1 - v0) * nodes + 0.5 * (v0 + v1)
        jac = 0.5 * (v1 - v0) * (np.exp(v) if variable == "logrho" else np.ones_like(v))
    elif variable == "t":
        sched = levels.schedule
        vs = levels.t[idx]
        v0, v1 = levels.t[i], levels.t[i + 1]
        v = 0.5 * (v1 - v0) * nodes + 0.5 * (v0 + v1)
        a, s = sched.alpha_sigma(v)
        da, ds = sched.derivatives(v)
        jac = 0.5 * (v1 - v0) * (ds * a - s * da) / (a * a)
    else:
        raise ValueError(f"deis_variable: unknown interpolation variable {variable!r} (logrho, rho, t)")
    return _lagrange_integrals(v, weights * jac, list(vs))


@register_sampler("deis", theory=lambda o: _warmup_order(o["order"], o["warmup"]), orders=(1, 2, 3),
                  multistep=True, order=3, deis_variable="logrho", lower_order_final=True, warmup="lower_order")
def deis(model, x, levels, *, rng=None, callback=None, order=3, deis_variable="logrho",
         lower_order_final=True, warmup="lower_order"):
    """DEIS (Zhang & Chen, "Fast Sampling of Diffusion Models with Exponential Integrator"):
    x_bar_{i+1} = x_bar_i + sum_j c_ij eps_{i-j}, the exponential integrator with the noise
    prediction extrapolated by a Lagrange polynomial of degree order-1 (tAB in v = t, ρAB in
    sigma-bar, or in log sigma-bar as common libraries do). Order ``order``, but at most 2 with
    ``warmup="lower_order"`` (the first-order first step caps it; ``"singlestep"`` reaches 3)."""
    _warmup_order(order, warmup)
    caps = _final_orders(levels.steps, lower_order_final)
    lam = levels.lam.tolist()
    eps_hist: list = []
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        eps_hist = (eps_hist + [(i, eps)])[-3:]
        if s1 == 0:
            x = a1 * x0
        elif i == 0 and warmup == "singlestep" and order > 2:
            x = _dpm3_step(model, x, a, s, lam[0], lam[1], a1, s1, eps)
        else:
            k = min(order, len(eps_hist), caps.get(i, order))
            pts = eps_hist[-k:]
            c = _deis_coefficients(deis_variable, levels, i, [j for j, _ in pts])
            xb = x / a
            for cj, (_, e) in zip(c, pts):
                xb = xb + cj * e
            x = a1 * xb
        x = _report(callback, i, x, x0)
    return x


# ============================================================================ PNDM
_AB = {1: [1.0], 2: [3 / 2, -1 / 2], 3: [23 / 12, -16 / 12, 5 / 12], 4: [55 / 24, -59 / 24, 37 / 24, -9 / 24]}


def _transfer(x, eps, a, s, a1, s1):
    """PNDM's transfer φ: the DDIM step from (a, s) to (a1, s1) with noise prediction eps."""
    return (a1 / a) * x + (s1 - a1 * s / a) * eps


@register_sampler("pndm", theory=2, multistep=True,
                  start="plms")
def pndm(model, x, levels, *, rng=None, callback=None, start="plms"):
    """PNDM (Liu et al., "Pseudo Numerical Methods for Diffusion Models on Manifolds"): the DDIM
    transfer driven by a 4-step Adams–Bashforth combination of noise predictions.

    ``start="plms"``: one improved-Euler step (2 NFE) then AB2, AB3, AB4 (as common libraries do);
    ``start="prk"``: the paper's pseudo Runge–Kutta (4 NFE) for the first three steps. The AB
    weights assume equal steps in the schedule's time, so on non-uniform sigma-bar steps the
    order is 2 with either start (with prk the error falls faster at a few dozen steps, then with
    slope 2 too; see the tests).
    """
    if start not in ("plms", "prk"):
        raise ValueError(f"start: PNDM starts with 'plms' or 'prk', got {start!r}")
    ets: list = []
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        if s1 == 0:
            x = a1 * x0
            x = _report(callback, i, x, x0)
            continue
        if start == "prk" and i < 3:
            tm = 0.5 * (levels.t[i] + levels.t[i + 1])
            am, sm = (float(v) for v in levels.schedule.alpha_sigma(tm))
            e2 = model(_transfer(x, eps, a, s, am, sm), am, sm)[0]
            e3 = model(_transfer(x, e2, a, s, am, sm), am, sm)[0]
            e4 = model(_transfer(x, e3, a, s, a1, s1), a1, s1)[0]
            ets.append(eps)
            e = (eps + 2 * e2 + 2 * e3 + e4) / 6
        elif start == "plms" and i == 0:
            e2 = model(_transfer(x, eps, a, s, a1, s1), a1, s1)[0]
            ets.append(eps)
            e = 0.5 * (eps + e2)
        else:
            ets = (ets + [eps])[-4:]
            w = _AB[len(ets)]
            e = sum(wj * ej for wj, ej in zip(w, reversed(ets)))
        x = _transfer(x, e, a, s, a1, s1)
        x = _report(callback, i, x, x0)
    return x


# ============================================================================ UniPC
def _unipc_setup(h, rks, order, variant):
    hh = -h  # data prediction
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    fact = 1
    b_h = hh if variant == "bh1" else math.expm1(hh)
    rks = np.array(list(rks) + [1.0])
    rows, b = [], []
    for j in range(1, order + 1):
        rows.append(rks ** (j - 1))
        b.append(h_phi_k * fact / b_h)
        fact *= j + 1
        h_phi_k = h_phi_k / hh - 1 / fact
    return h_phi_1, float(b_h), np.array(rows), np.array(b)


def _unipc_update(x, hist, lam_t, a_t, s_t, s0, order, variant, m_t=None):
    """UniP (m_t None) or UniC (m_t the model output at the predicted point) from the newest entry
    of ``hist`` (list of (lambda, x0)) to level (a_t, s_t), with ``order`` points."""
    lam0, m0 = hist[-1]
    h = lam_t - lam0
    rks, d1s = [], []
    for j in range(1, order):
        lam_j, m_j = hist[-1 - j]
        rk = (lam_j - lam0) / h
        rks.append(rk)
        d1s.append((m_j - m0) / rk)
    h_phi_1, b_h, rmat, b = _unipc_setup(h, rks, order, variant)
    x_lin = (s_t / s0) * x - a_t * h_phi_1 * m0
    if m_t is None:  # predictor
        if order == 1:
            return x_lin
        rhos = [0.5] if order == 2 else np.linalg.solve(rmat[:-1, :-1], b[:-1]).tolist()
        return x_lin - a_t * b_h * sum(r * d for r, d in zip(rhos, d1s))
    rhos = [0.5] if order == 1 else np.linalg.solve(rmat, b).tolist()
    corr = sum((r * d for r, d in zip(rhos[:-1], d1s)), 0.0 * m0)
    return x_lin - a_t * b_h * (corr + rhos[-1] * (m_t - m0))


def _unipc_theory(o):
    p = o["order"] + (1 if o.get("corrector", True) else 0)
    p = p if o["warmup"] == "singlestep" else min(p, 3 if o.get("corrector", True) else 2)
    return _final_step_cap(o, p)


@register_sampler("unipc", theory=_unipc_theory, orders=(1, 2, 3), multistep=True,
                  order=2, variant="bh2", lower_order_final=True, warmup="lower_order")
def unipc(model, x, levels, *, rng=None, callback=None, order=2, variant="bh2", lower_order_final=True,
          corrector=True, warmup="lower_order"):
    """UniPC (Zhao et al., "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
    Diffusion Models"), data prediction, B(h) = h ("bh1") or e^h - 1 ("bh2").

    UniP-p predicts with p points; UniC re-uses the model output at the predicted point (no extra
    NFE) to lift the order to p + 1. With the first step at order 1 (UniP-1 + UniC, local error
    O(h^3)) the global order of p = 3 is 3; ``warmup="singlestep"`` (DPM-Solver-3 first step) gives 4.
    Both with ``lower_order_final=False``: by default the last step is an uncorrected UniP-1 at every
    step count (as UniPC's reference code does), which caps the order at 2.
    """
    _warmup_order(order, warmup)
    if variant not in ("bh1", "bh2"):
        raise ValueError(f"variant: UniPC variant must be 'bh1' or 'bh2', got {variant!r}")
    lam = levels.lam.tolist()
    hist: list = []
    prev = None  # (x at the previous level, its order, its sigma)
    forced = False
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        corrected = None
        if corrector and prev is not None:
            x_prev, k_prev, s_prev = prev
            corrected = _unipc_update(x_prev, hist, lam[i], a, s, s_prev, k_prev, variant, m_t=x0)
            x = x if forced else corrected
        hist = (hist + [(lam[i], x0)])[-3:]
        if s1 == 0:
            prev = None
            x = a1 * x0
        elif i == 0 and warmup == "singlestep" and order > 1:
            prev = None
            x = _dpm3_step(model, x, a, s, lam[0], lam[1], a1, s1, eps)
        else:
            k = min(order, len(hist))
            if lower_order_final:
                k = min(k, levels.steps - i)
            prev = (x, k, s)
            x = _unipc_update(x, hist, lam[i + 1], a1, s1, s, k, variant)
        x, forced = _report_corrected(callback, i, x, x0, corrected)
    return x


# ============================================================================ momentum
@register_sampler("plms_hb", theory=lambda o: 1 if o.get("beta", 0.8) < 1 else min(o.get("order", 2), 2),
                  orders=(1, 2, 3, 4), multistep=True, order=2, beta=0.8)
def plms_hb(model, x, levels, *, rng=None, callback=None, order=2, beta=0.8):
    """Heavy-ball momentum on the pseudo linear multistep method (Wizadwongsa & Suwajanakorn,
    "Accelerating Guided Diffusion Sampling with Splitting Numerical Methods" / "Diffusion Sampling
    with Momentum for Mitigating Divergence Artifacts"): v <- (1 - beta) v + beta * AB_order(eps),
    then the DDIM transfer with v. beta = 1 is PLMS (order min(order, 2) on non-uniform sigma-bar
    steps, like PNDM); beta < 1 is first order but its stability interval grows by (2 - beta)/beta."""
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta: the heavy-ball momentum must be in (0, 1], got {beta!r}")
    ets: list = []
    v = None
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        ets = (ets + [eps])[-order:]
        e = sum(wj * ej for wj, ej in zip(_AB[len(ets)], reversed(ets)))
        v = e if v is None else (1 - beta) * v + beta * e
        x = a1 * x0 if s1 == 0 else _transfer(x, v, a, s, a1, s1)
        x = _report(callback, i, x, x0)
    return x


def _ghvb_theory(o):
    return _warmup_order(o["order"], o["warmup"])


@register_sampler("ghvb", theory=_ghvb_theory, orders=(1, 2, 3), multistep=True, order=2, beta=0.8,
                  warmup="lower_order")
def ghvb(model, x, levels, *, rng=None, callback=None, order=2, beta=0.8, warmup="lower_order"):
    r"""Generalized heavy ball, GHVB (Wizadwongsa et al., "Diffusion Sampling with Momentum for
    Mitigating Divergence Artifacts"): the DDIM transfer :math:`\bar x_{n+1} = \bar x_n +
    \Delta\bar\sigma_n w_{n+1}` with the velocity

    .. math:: w_{n+1} = (1-\beta) w_n + \beta\,\frac{M^+_n - (1-\beta) M^-_n}{\beta}
              = M^+_n + (1-\beta)(w_n - M^-_n),

    :math:`M^\pm_n` the means over the next and the previous step (against :math:`d\bar\sigma`) of the
    noise prediction's interpolant through the last ``order`` points (in log sigma-bar, as DEIS).
    On uniform steps the weights :math:`\beta c_j = b^{AB}_j - (1-\beta) b^{-}_j` are the paper's
    (order 2: :math:`((2+\beta)\varepsilon_n - (2-\beta)\varepsilon_{n-1})/2`, see
    :func:`.analysis.ghvb_coefficients`). ``beta = 1`` is DEIS (Adams–Bashforth), order 1 is heavy
    ball on DDIM (``plms_hb``); unlike heavy ball on PLMS it keeps order ``order`` for every beta in
    (0, 1], and a smaller beta enlarges the stability region.
    """
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta: the GHVB momentum must be in (0, 1], got {beta!r}")
    _warmup_order(order, warmup)
    sb = levels.sigma_bar.tolist()
    lam = levels.lam.tolist()
    hist: list = []
    w = None
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        hist = (hist + [(i, eps)])[-order:]
        if s1 == 0:
            x = a1 * x0
        elif i == 0 and warmup == "singlestep" and order > 2:
            x_new = _dpm3_step(model, x, a, s, lam[0], lam[1], a1, s1, eps)
            w = (x_new / a1 - x / a) / (sb[1] - sb[0])  # the mean slope of the first step
            x = x_new
        else:
            idx = [j for j, _ in hist]
            fwd = _deis_coefficients("logrho", levels, i, idx)
            w_new = sum(c * e for c, (_, e) in zip(fwd, hist)) / (sb[i + 1] - sb[i])
            if w is not None and i > 0:
                back = _deis_coefficients("logrho", levels, i - 1, idx)
                w_new = w_new + (1 - beta) * (w - sum(c * e for c, (_, e) in zip(back, hist)) / (sb[i] - sb[i - 1]))
            w = w_new
            x = a1 * (x / a + (sb[i + 1] - sb[i]) * w)
        x = _report(callback, i, x, x0)
    return x


# ============================================================================ flow matching
@register_sampler("fm_euler", theory=1)
def fm_euler(model, x, levels, *, rng=None, callback=None):
    """Flow-matching / rectified-flow Euler in the schedule's time: x += dt * u(x, t) with the exact
    velocity u = alpha' x0_hat + sigma' eps_hat (Lipman et al., "Flow Matching for Generative
    Modeling"; Liu et al., "Flow Straight and Fast"). On the linear path it equals DDIM."""
    sched, t = levels.schedule, levels.t.tolist()
    for i in range(levels.steps):
        a, s = levels.at(i)
        eps, x0 = model(x, a, s)
        da, ds = (float(v) for v in sched.derivatives(t[i]))
        if not math.isfinite(t[i + 1]):
            x = float(levels.alpha[i + 1]) * x0
        else:
            x = x + (t[i + 1] - t[i]) * (da * x0 + ds * eps)
        x = _report(callback, i, x, x0)
    return x


@register_sampler("fm_heun", theory=2)
def fm_heun(model, x, levels, *, rng=None, callback=None):
    """Flow-matching Heun (explicit trapezoid) in the schedule's time with the exact velocity."""
    sched, t = levels.schedule, levels.t.tolist()
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        if not math.isfinite(t[i + 1]):
            x = a1 * x0
        else:
            dt = t[i + 1] - t[i]
            da, ds = (float(v) for v in sched.derivatives(t[i]))
            u0 = da * x0 + ds * eps
            xe = x + dt * u0
            eps1, x01 = model(xe, a1, s1)
            da1, ds1 = (float(v) for v in sched.derivatives(t[i + 1]))
            x = x + 0.5 * dt * (u0 + da1 * x01 + ds1 * eps1)
        x = _report(callback, i, x, x0)
    return x


# ============================================================================ SA-Solver
def _lagrange_integrals(points, weights, nodes) -> list[float]:
    """``sum(weights * L_j(points))`` for each Lagrange basis polynomial ``L_j`` on ``nodes``: the
    quadrature (points, weights) of the weighted basis, shared by DEIS and SA-Solver coefficients."""
    out = []
    for j in range(len(nodes)):
        basis = np.ones_like(points)
        for m in range(len(nodes)):
            if m != j:
                basis = basis * (points - nodes[m]) / (nodes[j] - nodes[m])
        out.append(float(np.sum(weights * basis)))
    return out


def _sa_coefficients(lams: list[float], lam0: float, lam1: float, tau: float) -> list[float]:
    """c_j = integral over [lam0, lam1] of (1 + tau^2) e^{-(1 + tau^2)(lam1 - l)} L_j(l) dl, L_j the
    Lagrange basis on the nodes ``lams`` (Gauss–Legendre, 16 nodes: exact to rounding)."""
    nodes, weights = _GL
    h = lam1 - lam0
    lv = 0.5 * h * nodes + 0.5 * (lam0 + lam1)
    k = 1.0 + tau * tau
    kernel = 0.5 * h * k * np.exp(-k * (lam1 - lv))
    return _lagrange_integrals(lv, weights * kernel, lams)


def _sa_theory(o):
    if o.get("tau", 1.0) > 0:
        return 0
    corrector = o.get("corrector", True)
    # the first step is first order (one point; corrected: local error O(h³)), which caps the method
    return min(o["order"] + (1 if corrector else 0), 3 if corrector else 2)


@register_sampler("sa_solver", theory=_sa_theory, orders=(1, 2, 3), stochastic=lambda o: o.get("tau", 1.0) > 0,
                  multistep=True, order=2, tau=1.0, corrector=True)
def sa_solver(model, x, levels, *, rng=None, callback=None, order=2, tau=1.0, corrector=True):
    r"""SA-Solver (Xue et al., "SA-Solver: Stochastic Adams Solver for Fast Sampling of Diffusion
    Models"): the variance-controlled SDE with noise scale ``tau`` in data-prediction form,

    .. math:: x_t = \frac{\sigma_t}{\sigma_s} e^{-\tau^2 h} x_s + \alpha_t \int_{\lambda_s}^{\lambda_t}
              (1+\tau^2) e^{-(1+\tau^2)(\lambda_t-\lambda)} \hat x_0(\lambda)\,d\lambda
              + \sigma_t\sqrt{1 - e^{-2\tau^2 h}}\, z,

    :math:`\hat x_0` interpolated by a Lagrange polynomial in λ through the last ``order`` points
    (stochastic Adams predictor) and, with ``corrector``, re-integrated with the model output at the
    predicted point added (corrector, no extra NFE; the same noise z is reused). ``tau = 0`` is a
    deterministic Adams method: order ``order`` + 1 with the corrector, ``order`` without, and at
    most 3 and 2 respectively, because the first step (one point) is first order;
    ``tau = 1`` samples the reverse SDE. A step to sigma = 0 is the first-order limit x = x0_hat.
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau >= 0):
        raise ValueError(f"tau: SA-Solver's noise scale must be >= 0, got {tau!r}")
    lam = levels.lam.tolist()
    hist: list = []
    prev = None  # (x_s, lam_s, sigma_s, noise term, order) of the last predictor step
    forced = False
    for i in range(levels.steps):
        a, s = levels.at(i)
        a1, s1 = levels.at(i + 1)
        eps, x0 = model(x, a, s)
        corrected = None
        if corrector and prev is not None:
            xs, lam_s, s_s, noise, k_prev = prev
            pts = hist[-(k_prev - 1):] if k_prev > 1 else []
            pts = pts + [(lam[i], x0)]
            c = _sa_coefficients([p[0] for p in pts], lam_s, lam[i], tau)
            h = lam[i] - lam_s
            corrected = ((s / s_s) * math.exp(-tau * tau * h) * xs + a * sum(cj * p[1] for cj, p in zip(c, pts))
                         + noise)
            x = x if forced else corrected
        hist = (hist + [(lam[i], x0)])[-3:]
        if s1 == 0:
            prev = None
            x = a1 * x0
        else:
            k = min(order, len(hist))
            pts = hist[-k:]
            h = lam[i + 1] - lam[i]
            c = _sa_coefficients([p[0] for p in pts], lam[i], lam[i + 1], tau)
            noise = 0.0
            if tau > 0:
                noise = s1 * math.sqrt(-math.expm1(-2 * tau * tau * h)) * _noise(rng, x)
            prev = (x, lam[i], s, noise, k + 1 if corrector else k)
            x = (s1 / s) * math.exp(-tau * tau * h) * x + a1 * sum(cj * p[1] for cj, p in zip(c, pts)) + noise
        x, forced = _report_corrected(callback, i, x, x0, corrected)
    return x
