#!/usr/bin/env python3
"""Explore's reaction-diffusion lab side by side with the published ``rd-spiral`` solver.

For each of rd-spiral's three presets (stable_spiral, turbulent_spiral, pattern_decay) this runs,
each in its own fresh process, for the same simulated time and the same output cadence (a snapshot
of u and v every 0.1 time units, written to netCDF):

  peer     ``rd-spiral CONFIG`` (its CLI: scipy RK45 at rtol 1e-6 / atol 1e-9, full complex FFTs,
           every snapshot held in memory, compressed netCDF at the end)
  Explore  ``explore run reaction_diffusion --preset P --set snapshot_file=SNAP.nc --out RESULT.nc``
           (ETDRK4 at the preset's dt, real FFTs, snapshots streamed to netCDF as the run goes),
           and for the two non-chaotic presets a second run at a setting whose time error is at
           most the peer's (``EQUAL_ACCURACY``), so the speed-up is also quoted at equal accuracy

and reports whole-process wall time, CPU time and peak resident memory (``os.wait4``). For the two
non-chaotic presets it also measures accuracy: the maximum difference of the final u, v from a
reference computed by Explore on the same grid and initial condition with DOP853 at rtol 1e-10 (the
time-stepping error of each side), and reads the peer's snapshots from its netCDF file.

rd-spiral is installed from its public source into ``benchmarks/.venv-rd`` (git-ignored) by
:func:`ensure_peer_env`; it is never a dependency of Explore and none of its code is copied. Its
solver writes ``rd_outputs/`` next to its package folder, so every peer run uses a throw-away copy
of the installed package inside a temporary directory.

Usage (from the repository root)::

    .venv/bin/python benchmarks/rd_vs_peer.py                         # all three presets
    .venv/bin/python benchmarks/rd_vs_peer.py --presets pattern_decay
    .venv/bin/python benchmarks/rd_vs_peer.py --turbulent-fraction 0.2  # turbulent at 1/5 length

The turbulent preset (t = 500, 256², ~55 min and 10+ GB for the peer) runs by default at 1/10 of
its length on both sides (t = 50, same cadence); the table says so.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import run_measured

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_VENV = HERE / ".venv-rd"
PEER_PY = PEER_VENV / "bin" / "python"
EXPLORE_PY = ROOT / ".venv" / "bin" / "python"
PEER_DEPS = ["numpy", "scipy", "pandas", "xarray", "netCDF4"]
PEER_SOURCES = [os.environ.get("RD_SPIRAL_SRC", ""), "/work/.mirror/sandyherho+rd_spiral/repo",
                "git+https://github.com/sandyherho/rd_spiral.git"]

# rd-spiral's configs (configs/*.txt in its repository), restated here.
PRESETS = {
    "stable_spiral": dict(d1=0.1, d2=0.1, beta=1.0, L=20.0, n=128, t_end=200.0, num_spiral_arms=1),
    "turbulent_spiral": dict(d1=0.03, d2=0.20, beta=0.65, L=50.0, n=256, t_end=500.0, num_spiral_arms=4),
    "pattern_decay": dict(d1=0.5, d2=0.5, beta=1.0, L=10.0, n=64, t_end=100.0, num_spiral_arms=1),
}
OUTPUT_DT = 0.1
#: Explore settings whose time error at t_end is at most rd-spiral's (measured: 7.1e-8 on stable_spiral,
#: 1.3e-11 on pattern_decay). stable_spiral's preset needs none: in the frame co-rotating with the
#: spiral (``frame="auto"``) ETDRK4 at its Δt = 0.1 leaves 4e-8 (2.4e-5 in the fixed frame, which needed
#: Δt = 0.02, five times the steps). On pattern_decay the peer's explicit steps are pinned by diffusion far
#: below what its tolerance asks (error 1e-11); ETDRK4 would need dt ≈ 0.002, and Explore's explicit
#: Dormand–Prince 5(4) is pinned the same way (rtol 1e-8: 88 000 evaluations). Lawson's integrating-factor
#: DOP853 (``if_dop853``) is not: 2.5e-12 with 22 000 evaluations at rtol 1e-9 (its error is not monotone
#: in rtol here: 6.6e-11 at 1e-8 and at 3e-9, across the cores' annihilation).
EQUAL_ACCURACY = {
    "pattern_decay": {"integrator": "if_dop853", "rtol": 1e-9, "atol": 1e-12},
}


def ensure_peer_env() -> None:
    """Create ``benchmarks/.venv-rd`` with rd-spiral and its dependencies (once)."""
    probe = [str(PEER_PY), "-c", "import rd_spiral, netCDF4"]
    if PEER_PY.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_PY), "-m", "pip", "install", "-q", *PEER_DEPS], check=True)
    for src in filter(None, PEER_SOURCES):
        if src.startswith("git+"):
            target = src
        elif Path(src, "HEAD").exists() or Path(src, ".git").exists():  # a git directory: export HEAD
            target = str(Path(tempfile.mkdtemp()) / "rd_spiral")
            os.makedirs(target)
            git = ["git", f"--git-dir={src}"] if Path(src, "HEAD").exists() else ["git", "-C", src]
            archive = subprocess.run([*git, "archive", "HEAD"], capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
        elif Path(src).is_dir():
            target = src
        else:
            continue
        if subprocess.run([str(PEER_PY), "-m", "pip", "install", "-q", "--no-deps", target]).returncode == 0:
            break
    subprocess.run(probe, check=True)


def measure(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    """Run ``cmd``: wall seconds, CPU seconds, peak RSS (MiB), exit code, output tail."""
    r = run_measured(cmd, cwd=cwd, env=env)
    return {**{k: r[k] for k in ("wall_s", "cpu_s", "rss_mib", "rc")}, "tail": (r["stdout"] + r["stderr"])[-1500:]}


def peer_config(preset: str, t_end: float) -> str:
    p = dict(PRESETS[preset], t_end=t_end)
    lines = [f"{k} = {v}" for k, v in p.items()] + [
        "t_start = 0.0", f"dt = {OUTPUT_DT}", "method = RK45", "rtol = 1e-6", "atol = 1e-9",
        "save_netcdf = true", f"check_equilibrium = {'false' if preset == 'turbulent_spiral' else 'true'}",
        "save_checkpoints = false",
    ]
    return "\n".join(lines) + "\n"


def run_peer(preset: str, t_end: float, work: Path) -> dict:
    import_dir = subprocess.run([str(PEER_PY), "-c", "import rd_spiral, os; print(os.path.dirname(rd_spiral.__file__))"],
                                capture_output=True, text=True, check=True).stdout.strip()
    pkg_parent = work / "peer" / "pkg"  # the solver writes to work/peer/rd_outputs
    shutil.copytree(import_dir, pkg_parent / "rd_spiral")
    cfg = work / f"{preset}.txt"
    cfg.write_text(peer_config(preset, t_end))
    env = dict(os.environ, PYTHONPATH=str(pkg_parent))
    res = measure([str(PEER_PY), "-c", "import sys; from rd_spiral.cli import main; sys.argv = ['rd-spiral', sys.argv[1]]; main()",
                   str(cfg)], env=env, cwd=str(work))
    out = work / "peer" / "rd_outputs" / preset
    status = (out / "simulation_status.txt").read_text() if (out / "simulation_status.txt").exists() else ""
    res["status"] = status.splitlines()[0] if status else "no status file"
    res["solution"] = str(out / "solution.nc") if (out / "solution.nc").exists() else None
    res["ok"] = res["rc"] == 0 and res["solution"] is not None and "COMPLETE" in status
    return res


def run_explore(preset: str, t_end: float, work: Path, extra: dict | None = None) -> dict:
    snap, result = work / f"explore_{preset}_snap.nc", work / f"explore_{preset}.nc"
    sets = {"t_end": t_end, "snapshot_dt": OUTPUT_DT, "snapshot_file": str(snap), **(extra or {})}
    if preset == "turbulent_spiral":
        sets["frame_dt"] = 2.0 if t_end % 2 == 0 else OUTPUT_DT * 10
    cmd = [str(EXPLORE_PY), "-m", "explore.cli", "run", "reaction_diffusion", "--preset", preset, "-q",
           "--out", str(result)]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    res = measure(cmd, cwd=str(ROOT))
    res["ok"] = res["rc"] == 0 and snap.exists()
    res["result"], res["snapshots"] = str(result), str(snap)
    return res


# ------------------------------------------------------------------ accuracy (Explore's venv)
def final_fields_peer(path: str):
    import xarray as xr

    # only the last snapshot is read: ``ds.u.values[...]`` loaded all 2001 (0.5 GB), and the Explore
    # process started next inherited that peak in its os.wait4 RSS (627 MiB reported, 165 MiB its own)
    with xr.open_dataset(path) as ds:  # dims (x, y, time) as the peer labels them; values are [row, col]
        return ds.u[:, :, -1].values.copy(), ds.v[:, :, -1].values.copy(), int(ds.time.size)


def reference(preset: str, t_end: float):
    """Explore's DOP853 at rtol 1e-10 on the same grid and initial condition (time error ≲ 1e-10), in the
    fixed frame (independent of the co-rotating frame the presets step in)."""
    sys.path.insert(0, str(ROOT))
    from explore.labs.reaction_diffusion import ReactionDiffusionLab

    ds = ReactionDiffusionLab(preset=preset, t_end=t_end, integrator="dop853", rtol=1e-10, atol=1e-12,
                              frame="fixed", frame_dt=t_end).run()
    return ds.u_final.values, ds.v_final.values


def snapshot_count(path: str) -> int:
    import h5netcdf

    with h5netcdf.File(path, "r") as f:
        return int(f.dimensions["time"].size)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--turbulent-fraction", type=float, default=0.1,
                    help="run turbulent_spiral at this fraction of its t = 500 on both sides (default 0.1)")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--reference-dir", default="",
                    help="keep the DOP853 reference solutions here (ref_PRESET_TEND.npy) and reuse them")
    ap.add_argument("--explore-only", action="store_true",
                    help="skip rd-spiral (no peer columns, errors against the reference only)")
    ap.add_argument("--out", default=str(HERE / "results" / "rd_vs_peer.json"))
    args = ap.parse_args(argv)
    if not args.explore_only:
        ensure_peer_env()
    import numpy as np

    rows = []
    for preset in args.presets.split(","):
        t_end = PRESETS[preset]["t_end"] * (args.turbulent_fraction if preset == "turbulent_spiral" else 1.0)
        settings = [("preset", {})]
        if preset in EQUAL_ACCURACY and not args.no_accuracy:
            settings.append(("equal accuracy", EQUAL_ACCURACY[preset]))
        with tempfile.TemporaryDirectory(prefix=f"rd_{preset}_") as tmp:
            work = Path(tmp)
            peer = ({"wall_s": float("nan"), "cpu_s": float("nan"), "rss_mib": float("nan"), "ok": False, "status": "skipped",
                     "tail": ""} if args.explore_only else run_peer(preset, t_end, work))
            pu = pv = None
            peer_row = {k: peer[k] for k in ("wall_s", "cpu_s", "rss_mib", "ok", "status")}
            if not peer["ok"]:
                peer_row["tail"] = peer["tail"]
            else:
                pu, pv, count = final_fields_peer(peer["solution"])
                peer_row["snapshots"] = count
                peer_row["netcdf_mib"] = os.path.getsize(peer["solution"]) / 2**20
            ref = None
            for label, extra in settings:
                mine = run_explore(preset, t_end, work, extra)
                row = {"preset": preset, "t_end": t_end, "explore_setting": label, "explore_extra": extra,
                       "peer": dict(peer_row),
                       "explore": {k: mine[k] for k in ("wall_s", "cpu_s", "rss_mib", "ok")},
                       "load_avg_1min": os.getloadavg()[0]}
                if not mine["ok"]:
                    row["explore"]["tail"] = mine["tail"]
                else:
                    row["explore"]["snapshots"] = snapshot_count(mine["snapshots"])
                    row["explore"]["netcdf_mib"] = os.path.getsize(mine["snapshots"]) / 2**20
                if mine["ok"] and not args.no_accuracy and preset != "turbulent_spiral":
                    import xarray as xr

                    with xr.open_dataset(mine["result"], engine="h5netcdf") as ds:
                        eu, ev = ds.u_final.values, ds.v_final.values
                    if ref is None:
                        cache = Path(args.reference_dir, f"ref_{preset}_{t_end:g}.npy") if args.reference_dir else None
                        if cache is not None and cache.exists():
                            ref = tuple(np.load(cache))
                        else:
                            t0 = time.perf_counter()
                            ref = reference(preset, t_end)
                            row["reference_s"] = time.perf_counter() - t0
                            if cache is not None:
                                cache.parent.mkdir(parents=True, exist_ok=True)
                                np.save(cache, np.stack(ref))
                    ru, rv = ref
                    if pu is not None:
                        row["peer"]["error"] = float(max(np.abs(pu - ru).max(), np.abs(pv - rv).max()))
                    row["explore"]["error"] = float(max(np.abs(eu - ru).max(), np.abs(ev - rv).max()))
                p, e = row["peer"], row["explore"]
                row["speedup"] = p["wall_s"] / e["wall_s"]
                row["cpu_speedup"] = p["cpu_s"] / e["cpu_s"] if p["cpu_s"] and e["cpu_s"] else None
                rows.append(row)
                print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print("\n| preset | Explore setting | simulated t | snapshots | rd-spiral wall / CPU (s) | rd-spiral RSS (MiB) | "
          "Explore wall / CPU (s) | Explore RSS (MiB) | speedup wall / CPU | error rd-spiral | error Explore |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p, e = r["peer"], r["explore"]
        err = lambda d: f"{d['error']:.1e}" if "error" in d else "–"  # noqa: E731
        setting = r["explore_setting"] + "".join(f", {k} {v}" for k, v in r["explore_extra"].items())
        print(f"| {r['preset']} | {setting} | {r['t_end']:g} | {p.get('snapshots', '?')} / {e.get('snapshots', '?')} | "
              f"{p['wall_s']:.1f} / {p['cpu_s']:.1f}{'' if p['ok'] else ' (failed)'} | {p['rss_mib']:.0f} | "
              f"{e['wall_s']:.1f} / {e['cpu_s']:.1f} | {e['rss_mib']:.0f} | {r['speedup']:.1f}× / {r['cpu_speedup'] or float('nan'):.1f}× | "
              f"{err(p)} | {err(e)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
