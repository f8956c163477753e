"""Diffusion samplers: overhead on top of the model, and accuracy next to diffusers' schedulers.

    .venv/bin/python benchmarks/diffusion_speed.py                 # both parts
    .venv/bin/python benchmarks/diffusion_speed.py --part overhead --particles 100000
    .venv/bin/python benchmarks/diffusion_speed.py --part accuracy --nfe 5,10,20

Part 1 (overhead): 100k particles of the ring8 target, 10 NFE; the time spent inside the exact
model is measured by a timing wrapper, the rest of the sampler's wall time is its overhead
(target: <= 20 % of the model time).

Part 2 (accuracy): ring8 on the DDPM discrete linear-beta schedule, the same starting noise for
everyone; error = mean distance to the reference PF-ODE endpoint (DOP853, rtol 1e-10) at each
run's own final level. diffusers' default schedulers (float64 samples, our exact model) run with
their default timesteps; each Explore namesake runs on the very same levels, then Explore's
samplers are also tried with its other step schedules (uniform log-SNR, Karras, quadratic, Beta,
optimal). Targets: each Explore sampler at least as accurate as its diffusers namesake at equal NFE;
Explore's best sampler + schedule at 10 NFE at most half the error of diffusers' best.
Writes benchmarks/results/diffusion_speed.{md,json}. diffusers (and CPU torch==2.13.0) are only
needed for part 2; without them part 2 reports Explore's side alone.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from explore.numerics.diffusion.optimal import optimal_times  # noqa: E402
from explore.numerics.diffusion.reference import pf_ode  # noqa: E402
from explore.numerics.diffusion.samplers import SAMPLERS, sample  # noqa: E402
from explore.numerics.diffusion.schedules import Levels, VPDiscrete, levels  # noqa: E402
from explore.numerics.diffusion.step_schedules import step_times  # noqa: E402
from explore.numerics.diffusion.targets import make_target  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NFE_PER_STEP = {"heun": 2, "dpm_solver_2": 2, "dpmpp_2s": 2, "fm_heun": 2, "dpm_solver_3": 3}


class TimedModel:
    def __init__(self, model):
        self.model, self.seconds = model, 0.0

    def __call__(self, x, a, s):
        t0 = time.perf_counter()
        out = self.model(x, a, s)
        self.seconds += time.perf_counter() - t0
        return out


def overhead(n_particles: int, nfe: int = 10, repeat: int = 3) -> list[dict]:
    target = make_target("ring8")
    sch = VPDiscrete()
    x = np.random.default_rng(0).standard_normal((n_particles, 2))
    rows = []
    for name, info in SAMPLERS.items():
        if name.startswith("fm_"):
            continue
        steps = max(1, nfe // NFE_PER_STEP.get(name, 1))
        lv = levels(sch, step_times("uniform_t", sch, steps), denoise=True)
        best = None
        for _ in range(repeat):
            timed = TimedModel(target.predict)
            t0 = time.perf_counter()
            _, n = sample(name, timed, x, lv, rng=np.random.default_rng(1))
            total = time.perf_counter() - t0
            ratio = (total - timed.seconds) / timed.seconds
            if best is None or ratio < best["overhead"]:
                best = dict(sampler=name, nfe=n, total_s=total, model_s=timed.seconds, overhead=ratio)
        rows.append(best)
    return rows


# ---------------------------------------------------------------------------- accuracy
def _err(model, x, lv, name, **opts):
    ref, _ = pf_ode(model, x, lv.at(0), [lv.at(lv.steps)], rtol=1e-10, atol=1e-10)
    out, nfe = sample(name, model, x, lv, **opts)
    return float(np.mean(np.linalg.norm(out - ref[0], axis=1))), nfe


DIFFUSERS = {
    # our name: (diffusers class, kwargs, steps for an NFE budget, our options)
    "ddim": ("DDIMScheduler", {"clip_sample": False}, lambda n: n, {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}, lambda n: n - 1, {"start": "plms"}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}, lambda n: n, {}),
    "unipc": ("UniPCMultistepScheduler", {}, lambda n: n, {"order": 2}),
    "deis": ("DEISMultistepScheduler", {}, lambda n: n, {"order": 2}),
    "euler": ("EulerDiscreteScheduler", {}, lambda n: n, {}),
    "heun": ("HeunDiscreteScheduler", {}, lambda n: (n + 1) // 2, {}),
}


def _diffusers_run(name, nfe, target, x):
    """Run diffusers' scheduler ``name``; returns (its error, our error on the same levels, NFE)."""
    import diffusers
    import torch

    cls, kwargs, steps_for, opts = DIFFUSERS[name]
    sched = getattr(diffusers, cls)(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                    beta_schedule="linear", **kwargs)
    sched.set_timesteps(steps_for(nfe))
    ac = sched.alphas_cumprod.double().numpy()
    ours = VPDiscrete(alphas_cumprod=ac)
    sigma_based = hasattr(sched, "sigmas") and cls not in ("DDIMScheduler", "PNDMScheduler")
    if sigma_based:
        sig = sched.sigmas.double().numpy()
        if cls == "HeunDiscreteScheduler":
            sig = np.concatenate([sig[:1], sig[1::2]])
        a = 1 / np.sqrt(1 + sig**2)
        lv = Levels(np.where(sig > 0, np.arange(sig.size)[::-1], np.nan).astype(float), a, sig * a, ours)
        all_sig = sched.sigmas.double().numpy()

        def level_of(j, t):
            aa = 1 / np.sqrt(1 + all_sig[j] ** 2)
            return aa, all_sig[j] * aa
    else:
        ts = sched._timesteps[::-1] if cls == "PNDMScheduler" else sched.timesteps.numpy()
        fin = float(sched.final_alpha_cumprod)
        acs = np.append(ac[np.asarray(ts, dtype=int)], fin)
        lv = Levels(np.append(np.asarray(ts, float), np.nan if fin == 1 else 0.0), np.sqrt(acs), np.sqrt(1 - acs), ours)

        def level_of(j, t):
            return float(np.sqrt(ac[int(t)])), float(np.sqrt(1 - ac[int(t)]))
    scale = float(lv.alpha[0]) if cls in ("EulerDiscreteScheduler", "HeunDiscreteScheduler") else 1.0
    sample_t = torch.from_numpy(x / scale)
    for j, t in enumerate(sched.timesteps):
        inp = sched.scale_model_input(sample_t, t)
        eps, _ = target.predict(inp.numpy(), *level_of(j, t))
        sample_t = sched.step(torch.from_numpy(eps), t, sample_t).prev_sample
    theirs = sample_t.numpy() * float(lv.alpha[-1] if scale != 1.0 else 1.0)
    ref, _ = pf_ode(target, x, lv.at(0), [lv.at(lv.steps)], rtol=1e-10, atol=1e-10)
    e_theirs = float(np.mean(np.linalg.norm(theirs - ref[0], axis=1)))
    e_ours, n_ours = _err(target, x, lv, name, **opts)
    return e_theirs, e_ours, len(sched.timesteps), n_ours


def _steps_for(name: str, sch, budget: int) -> int:
    """Most steps whose NFE (with the final step to sigma = 0) stays within ``budget``."""
    probe = np.zeros((1, 2))
    target = make_target("ring8")
    best = 1
    for steps in range(1, budget + 1):
        _, n = sample(name, target, probe, levels(sch, step_times("uniform_t", sch, steps), denoise=True),
                      rng=np.random.default_rng(0))
        if n > budget:
            break
        best = steps
    return best


def accuracy(nfes: list[int], n_particles: int = 2000) -> dict:
    target = make_target("ring8")
    sch = VPDiscrete()
    x = np.random.default_rng(0).standard_normal((n_particles, 2))
    try:
        import diffusers  # noqa: F401
        have = True
    except ImportError:
        have = False
    side = []
    if have:
        for name in DIFFUSERS:
            for nfe in nfes:
                e_t, e_o, n_t, n_o = _diffusers_run(name, nfe, target, x)
                side.append(dict(sampler=name, nfe_budget=nfe, diffusers=e_t, explore=e_o, nfe_diffusers=n_t,
                                 nfe_explore=n_o))
    ours = []
    for name, info in SAMPLERS.items():
        if info.is_stochastic() or name.startswith("fm_"):
            continue
        for nfe in nfes:
            steps = _steps_for(name, sch, nfe)
            for ts_name in ("uniform_t", "logsnr", "karras", "quadratic", "beta", "optimal"):
                if ts_name == "optimal":
                    ts = optimal_times(target, sch, steps, sampler=name, seed=7)
                else:
                    ts = step_times(ts_name, sch, steps)
                lv = levels(sch, ts, denoise=True)
                e, n = _err(target, x, lv, name)
                ours.append(dict(sampler=name, timesteps=ts_name, nfe_budget=nfe, nfe=n, error=e))
    return dict(side_by_side=side, explore=ours)


def report(over, acc, nfes) -> str:
    lines = ["# Diffusion samplers: overhead and accuracy", ""]
    if over:
        lines += ["## Overhead (ring8, 100k particles class, 10 NFE)", "",
                  "| sampler | NFE | total (s) | in model (s) | overhead |", "|---|---|---|---|---|"]
        for r in over:
            flag = "" if r["overhead"] <= 0.2 else " ✗"
            lines.append(f"| {r['sampler']} | {r['nfe']} | {r['total_s']:.3f} | {r['model_s']:.3f} | "
                         f"{100 * r['overhead']:.1f} %{flag} |")
        lines.append("")
    if acc:
        side = acc["side_by_side"]
        if side:
            lines += ["## Next to diffusers (same levels, same noise; error vs reference)", "",
                      "| sampler | NFE | diffusers | Explore | Explore ≤ diffusers (1e-4 rel.) |", "|---|---|---|---|---|"]
            for r in side:
                ok = "yes" if r["explore"] <= r["diffusers"] * (1 + 1e-4) else "NO"
                lines.append(f"| {r['sampler']} | {r['nfe_diffusers']} | {r['diffusers']:.3e} | {r['explore']:.3e} | {ok} |")
            lines.append("")
        lines += ["## Explore: error by sampler × step schedule", ""]
        lines += ["Explore's rows below use its default options on its own step schedules, steps chosen so that",
                  "the NFE (including the final step to sigma = 0) stays within the budget.", ""]
        for nfe in nfes:
            rows = [r for r in acc["explore"] if r["nfe_budget"] == nfe]
            best = min(rows, key=lambda r: r["error"])
            lines.append(f"- NFE budget {nfe}: best {best['sampler']} + {best['timesteps']} "
                         f"({best['nfe']} NFE): {best['error']:.3e}")
            if side:
                theirs = [r for r in side if r["nfe_budget"] == nfe]
                tb = min(theirs, key=lambda r: r["diffusers"])
                lines.append(f"  diffusers' best: {tb['sampler']} ({tb['nfe_diffusers']} NFE): {tb['diffusers']:.3e}; "
                             f"ratio Explore/diffusers = {best['error'] / tb['diffusers']:.2f}")
        lines.append("")
        lines += ["| sampler | timesteps | NFE | error |", "|---|---|---|---|"]
        for r in acc["explore"]:
            lines.append(f"| {r['sampler']} | {r['timesteps']} | {r['nfe']} | {r['error']:.3e} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["overhead", "accuracy", "both"], default="both")
    ap.add_argument("--particles", type=int, default=100_000)
    ap.add_argument("--nfe", default="5,10,20")
    ap.add_argument("--out", default=str(RESULTS / "diffusion_speed"))
    args = ap.parse_args(argv)
    nfes = [int(v) for v in args.nfe.split(",")]
    over = overhead(args.particles) if args.part in ("overhead", "both") else []
    acc = accuracy(nfes) if args.part in ("accuracy", "both") else {}
    text = report(over, acc, nfes)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(dict(overhead=over, accuracy=acc), indent=1))
    print(text)


if __name__ == "__main__":
    main()
