r"""Step schedules: where a sampler with ``steps`` steps places its noise levels.

Each is a function ``(schedule, steps, **options) -> t`` returning ``steps + 1`` strictly
decreasing times from ``schedule.t_max`` to ``schedule.t_min``, registered with
:func:`register_step_schedule`. On a discrete schedule the times are rounded to integers and
de-duplicated, which returns fewer steps where a schedule puts two times within one table entry:
when ``steps`` approaches the table length, or where it crowds its steps (Beta with ``a``, ``b``
well below 1 at the ends: a = b = 0.05 and 10 steps on a 1000-entry table give 4 steps).
The optimal schedule, which needs the model and a sampler, is in :mod:`.optimal`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["STEP_SCHEDULES", "register_step_schedule", "step_times"]


@dataclass(frozen=True)
class StepScheduleInfo:
    name: str
    fn: Callable
    doc: str
    needs_model: bool = False


STEP_SCHEDULES: dict[str, StepScheduleInfo] = {}


def register_step_schedule(name: str, needs_model: bool = False):
    def deco(fn):
        STEP_SCHEDULES[name] = StepScheduleInfo(name, fn, (fn.__doc__ or "").strip().split("\n")[0], needs_model)
        return fn
    return deco


@register_step_schedule("uniform_t")
def uniform_t(schedule, steps):
    """Uniform in the schedule's time t (DDIM "linspace")."""
    return np.linspace(schedule.t_max, schedule.t_min, steps + 1)


@register_step_schedule("logsnr")
def uniform_logsnr(schedule, steps):
    """Uniform in half-log-SNR λ = log(α/σ) (DPM-Solver's "logSNR")."""
    lam = np.linspace(schedule.lam(schedule.t_max), schedule.lam(schedule.t_min), steps + 1)
    t = schedule.t_from_lambda(lam)
    t[0], t[-1] = schedule.t_max, schedule.t_min
    return t


@register_step_schedule("quadratic")
def quadratic(schedule, steps):
    """Quadratic in t, dense near the data (DDIM's "quad")."""
    u = np.linspace(1.0, 0.0, steps + 1) ** 2
    return schedule.t_min + (schedule.t_max - schedule.t_min) * u


@register_step_schedule("karras")
def karras(schedule, steps, rho: float = 7.0):
    """Karras et al.: σ̄^(1/ρ) uniform (ρ = 7 in EDM)."""
    smax, smin = float(schedule.sigma_bar(schedule.t_max)), float(schedule.sigma_bar(schedule.t_min))
    ramp = np.linspace(0.0, 1.0, steps + 1)
    sb = (smax ** (1 / rho) + ramp * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    t = schedule.t_from_sigma_bar(sb)
    t[0], t[-1] = schedule.t_max, schedule.t_min
    return t


@register_step_schedule("beta")
def beta(schedule, steps, a: float = 0.6, b: float = 0.6):
    """Beta-distributed times (Lee et al., "Beta Sampling is All You Need"): quantiles of Beta(a, b)
    in t, dense at both ends."""
    from scipy.special import betaincinv

    q = betaincinv(a, b, np.linspace(1.0, 0.0, steps + 1))
    return schedule.t_min + (schedule.t_max - schedule.t_min) * q


def step_times(name: str, schedule, steps: int, **options) -> np.ndarray:
    """``steps + 1`` decreasing times of step schedule ``name`` on ``schedule``."""
    if name not in STEP_SCHEDULES:
        raise ValueError(f"timesteps: unknown step schedule {name!r}; known: {', '.join(STEP_SCHEDULES)}")
    info = STEP_SCHEDULES[name]
    if info.needs_model:
        raise ValueError(f"timesteps: {name!r} needs the model; use explore.numerics.diffusion.optimal")
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    t = np.asarray(info.fn(schedule, int(steps), **options), dtype=float)
    if schedule.discrete:
        t = np.unique(np.round(t))[::-1]
    return t
