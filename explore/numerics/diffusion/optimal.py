r"""An optimal step schedule by dynamic programming against the reference PF-ODE.

After "Optimal Stepsize for Diffusion Sampling" (Pei et al.): choose ``steps`` of ``candidates``
noise levels (uniform in log-SNR) so that a one-step sampler's error against the reference
trajectory is minimal. The cost of a path is the mean distance between the sampler's state at its
last level and the reference state there; the schedule minimising it over exactly ``steps``
steps is found by dynamic programming in O(steps · candidates²) sampler steps. As in the paper,
the state carried to level k is the sampler's own (the best path's), so the cost is the true global
error of single-step samplers, not a sum of local errors. Candidates: the union of a uniform-λ and
a uniform-t grid. Multistep
samplers have no one-step error; for them the cost of their single-step counterpart is used.
"""
from __future__ import annotations

import numpy as np

from explore.numerics.diffusion.reference import pf_ode
from explore.numerics.diffusion.samplers import SAMPLERS, sample
from explore.numerics.diffusion.schedules import Levels, levels
from explore.numerics.diffusion.step_schedules import register_step_schedule, step_times

__all__ = ["optimal_times", "SINGLE_STEP_COUNTERPART"]

SINGLE_STEP_COUNTERPART = {
    "dpmpp_2m": "dpmpp_2s", "dpmpp_3m": "dpm_solver_3", "dpm_solver": "dpm_solver_2", "deis": "dpm_solver_2",
    "unipc": "dpm_solver_2", "pndm": "heun", "plms_hb": "ddim", "ddpm": "ddim",
}


@register_step_schedule("optimal", needs_model=True)
def optimal_times(model, schedule, steps: int, *, sampler: str = "ddim", candidates: int = 24,
                  n_particles: int = 128, seed: int = 0, rtol: float = 1e-9, x=None, dim: int | None = None,
                  **options):
    """Optimal schedule by dynamic programming on a log-SNR grid of ``candidates`` intervals.

    The particles are ``x`` or ``n_particles`` noise draws in ``dim`` dimensions (default: the
    model's ``dim``, or that of the object whose method it is, as ``target.predict``).
    Returns ``steps + 1`` decreasing times (a subset of the candidate grid, ends included).
    """
    if steps > candidates:
        raise ValueError(f"steps: the optimal schedule picks steps={steps} of candidates={candidates} levels")
    sampler = SINGLE_STEP_COUNTERPART.get(sampler, sampler)
    if SAMPLERS[sampler].multistep:
        sampler = "ddim"
    tc = np.union1d(step_times("logsnr", schedule, candidates), step_times("uniform_t", schedule, candidates))[::-1]
    lv = levels(schedule, tc)
    k_max = lv.steps
    if x is None:
        d = dim or getattr(model, "dim", None) or getattr(getattr(model, "__self__", None), "dim", None)
        if d is None:
            raise ValueError("dim: the optimal schedule needs the particles' dimension ('dim' or 'x')")
        x = np.random.default_rng(seed).standard_normal((n_particles, d)) * float(lv.sigma[0])
    traj, _ = pf_ode(model, x, lv.at(0), [lv.at(j) for j in range(1, k_max + 1)], rtol=rtol, atol=rtol)
    traj = [x] + traj

    def err(a, b):
        return float(np.mean(np.sqrt(np.sum(np.asarray(a - b) ** 2, axis=1))))

    # best[m][k]: smallest error vs the reference at level k after m steps; state[k]: that student state
    best = np.full((steps + 1, k_max + 1), np.inf)
    arg = np.zeros((steps + 1, k_max + 1), dtype=int)
    best[0, 0] = 0.0
    state = {0: x}
    for m in range(1, steps + 1):
        new_state = {}
        last = k_max if m == steps else k_max - (steps - m)
        for k in range(m, last + 1):
            if m == steps and k != k_max:
                continue
            for j in range(m - 1, k):
                if j not in state or not np.isfinite(best[m - 1, j]):
                    continue
                one = Levels(lv.t[[j, k]], lv.alpha[[j, k]], lv.sigma[[j, k]], schedule)
                out, _ = sample(sampler, model, state[j], one, **options)
                e = err(out, traj[k])
                if e < best[m, k]:
                    best[m, k], arg[m, k], new_state[k] = e, j, out
        state = new_state
    path = [k_max]
    for m in range(steps, 0, -1):
        path.append(arg[m, path[-1]])
    path = path[::-1]
    return tc[np.array(path)]
