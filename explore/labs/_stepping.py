"""What the time-stepping parameters mean for a run, shared by the labs that step with the integrator
registry: which of them an integrator ignores, a ``dt`` the run will shorten or that makes a long run,
and the largest wavenumber of a grid (whose square the stiff linear symbols hold)."""
from __future__ import annotations

import math

import param

from explore.numerics.integrators import INTEGRATORS
from explore.numerics.rk import fill_step

#: a fixed-step run of more steps than this is announced before it starts (the presets take at most
#: ~2e4; a run is refused only beyond :data:`explore.core.lab.MAX_RUN_STEPS`)
LONG_RUN_STEPS = 1e6


def ignored_stepping(integrator: str, fixed_step: tuple[str, ...] = ("dt",)) -> set[str]:
    """The parameters ``integrator`` ignores: the fixed-step ones (``fixed_step``) under an adaptive
    integrator, ``rtol`` and ``atol`` under a fixed-step one; none for an unknown name (refused elsewhere)."""
    info = INTEGRATORS.get(integrator)
    if info is None:
        return set()
    return set(fixed_step) if info.adaptive else {"rtol", "atol"}


def shortened_step(integrator: str, dt: float, interval: float, what: str) -> list[str]:
    """A notice where a fixed-step ``integrator`` takes steps shorter than ``dt`` so that whole steps fill
    each output ``interval`` (``what`` names it); none otherwise."""
    info = INTEGRATORS.get(integrator)
    if info is None or info.adaptive or not (dt > 0 and interval > 0):
        return []
    h = fill_step(interval, dt)
    if abs(h - dt) <= 1e-12 * dt:
        return []
    return [f"Steps of {h:.6g}, not dt = {dt:g}: whole steps fill each {what} = {interval:.6g}."]


def long_run(integrator: str, dt: float, t_end: float) -> list[str]:
    """A notice where a fixed-step ``integrator`` with steps of at most ``dt`` needs more than
    :data:`LONG_RUN_STEPS` of them to reach ``t_end`` (a ``dt`` typed a few decades too small would
    otherwise just look like a frozen progress bar); none otherwise."""
    info = INTEGRATORS.get(integrator)
    if info is None or info.adaptive or not (dt > 0 and t_end > 0):
        return []
    steps = t_end / dt
    if not steps > LONG_RUN_STEPS:
        return []
    return [f"dt = {dt:g} makes at least {steps:.2g} steps to t_end = {t_end:g}: a long run. A larger 'dt' "
            "takes fewer."]


def tolerances(rtol: float, atol: float, rtol_floor: float = 1e-14) -> tuple[param.Number, param.Number]:
    """The ``rtol`` and ``atol`` parameters of a lab's adaptive integrators, with these defaults (the
    same meaning and bounds in every lab; ``rtol`` down to ``rtol_floor``)."""
    return (
        param.Number(rtol, bounds=(rtol_floor, 1), doc="Relative tolerance of the adaptive integrators."),
        param.Number(atol, bounds=(1e-20, 1),
                     doc="Absolute tolerance of the adaptive integrators (> 0: spectral states hold exact zeros, "
                         "which a purely relative tolerance cannot measure)."),
    )


def max_wavenumber(lab_name: str, length_name: str, length: float, points: int) -> float:
    """``π points / length``, the grid's largest wavenumber; a ``ValueError`` naming ``length_name`` where
    its square (the Laplacian's symbol) overflows."""
    k_max = math.pi * points / length
    if not math.isfinite(k_max * k_max):
        raise ValueError(f"{lab_name}: '{length_name}' = {length:g} is too small for {points} points: "
                         "the wavenumbers overflow")
    return k_max
