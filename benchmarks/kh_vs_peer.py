#!/usr/bin/env python3
"""Explore's Kelvin–Helmholtz lab side by side with the published ``kh2d-solver`` package.

For each of the peer's four presets (same grid, same simulated time, 100 output frames) this runs,
each in its own fresh process and one after the other:

  (a) the peer's whole CLI run   ``kh2d-simulate --config cfg.txt --output-dir TMP --cores 1``
      (its default outputs: NetCDF and GIF; ``--peer-no-gif`` also times it without the GIF;
      ``--peer-cores all`` lets it use every core, its own default)
  (b) Explore's whole CLI run    ``explore run kelvin_helmholtz --preset P --set n_snapshots=100 --out TMP.nc``
      on each array backend of ``--backends`` (``numpy``, ``cupy``)

and reports whole-process wall time, CPU time and peak resident memory (``os.wait4``), plus, from
Explore's result, the rms divergence and mean-density drift (the peer's are 37–55 % of the rms
vorticity and up to 6 %, see ``shared/PEERS.md``).

The peer is installed from PyPI into ``benchmarks/.venv-kh`` (git-ignored) by :func:`ensure_peer_env`;
it is never a dependency of Explore and none of its code is used or copied. Its named scenarios look
for config files the wheel does not ship, so the script writes an explicit config with the preset's
parameters. Only the standard library is imported here.

Usage (from the repository root)::

    .venv/bin/python benchmarks/kh_vs_peer.py                           # all four presets
    .venv/bin/python benchmarks/kh_vs_peer.py --presets basic_shear     # one
    .venv/bin/python benchmarks/kh_vs_peer.py --explore-only            # skip the peer
    .venv/bin/python benchmarks/kh_vs_peer.py --presets forced --explore-set forcing_amplitude=0   # the peer's physics
    python3 benchmarks/kh_vs_peer.py --backends numpy,cupy --warm \
        --peer-cmd 'python3 -m kh2d_solver.cli' --explore-python python3   # a GPU host, packages importable
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import run_measured

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_VENV = HERE / ".venv-kh"
PEER_PACKAGE = "kh2d-solver"
PEER_CLI = PEER_VENV / "bin" / "kh2d-simulate"
EXPLORE_PY = ROOT / ".venv" / "bin" / "python"
N_SNAPSHOTS = 100

# The peer's presets (shared/PEERS.md), written as its TXT config keys.
_COMMON = dict(lx=2.0, lz=1.0, nx=256, nz=128, noise_amplitude=0.01, n_snapshots=N_SNAPSHOTS,
               save_netcdf=True, save_animation=True)
PEER_CONFIGS = {
    "basic_shear": dict(_COMMON, initial_condition="shear_layer", t_final=10.0, shear_thickness=0.05,
                        u_top=1.0, u_bot=-1.0, rho_top=1.0, rho_bot=1.2, reynolds=1000, richardson=0.25),
    "double_shear": dict(_COMMON, initial_condition="double_shear", t_final=15.0, shear_thickness=0.04,
                         separation=0.3, u_max=1.0, reynolds=2000, richardson=0.1),
    "rotating": dict(_COMMON, initial_condition="rotating", t_final=20.0, shear_thickness=0.05,
                     u_top=1.0, u_bot=-1.0, rho_top=1.0, rho_bot=1.3, rotation_rate=0.5,
                     reynolds=1500, richardson=0.3),
    "forced": dict(_COMMON, nx=384, nz=192, initial_condition="forced", t_final=30.0, shear_thickness=0.05,
                   u_top=1.0, u_bot=-1.0, rho_top=1.0, rho_bot=1.1, n_forcing_modes=5,
                   forcing_amplitude=0.1, reynolds=5000, richardson=0.15),
}


def ensure_peer_env() -> None:
    """Create ``benchmarks/.venv-kh`` and install the published peer from PyPI (once)."""
    if PEER_CLI.exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "-q", PEER_PACKAGE], check=True)


def peer_versions() -> str:
    """The versions of the peer and of the packages its cost depends on, in its environment (its GIF's
    share of the run moved with matplotlib: a fresh environment can time differently)."""
    names = ("kh2d-solver", "numpy", "numba", "matplotlib", "pillow", "netCDF4")
    code = ("import importlib.metadata as m\n"
            f"for n in {names!r}:\n"
            "    try: print(n, m.version(n))\n"
            "    except m.PackageNotFoundError: pass")
    out = subprocess.run([str(PEER_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return ", ".join(out.stdout.split("\n")[:-1]) if out.returncode == 0 else "unknown"


def peer_command(args) -> list[str]:
    return shlex.split(args.peer_cmd) if args.peer_cmd else [str(PEER_CLI)]


def run_peer(preset: str, tmp: Path, args, gif: bool = True, t_final: float | None = None) -> dict:
    cfg = dict(PEER_CONFIGS[preset], scenario_name=preset, save_animation=gif)
    if t_final is not None:  # a warm-up: Numba compiles (and caches) the peer's kernels
        cfg.update(t_final=t_final, n_snapshots=2)
    path = tmp / f"{preset}.txt"
    path.write_text("".join(f"{k} = {v}\n" for k, v in cfg.items()))
    out = tmp / f"peer_{preset}_{'gif' if gif else 'nogif'}"
    cores = [] if args.peer_cores == "all" else ["--cores", args.peer_cores]
    return run_measured([*peer_command(args), "--config", str(path), "--output-dir", str(out), *cores, "--quiet"], cwd=tmp)


def run_explore(preset: str, tmp: Path, args, backend: str = "numpy", t_end: float | None = None) -> dict:
    out = tmp / f"explore_{preset}_{backend}.nc"
    python = args.explore_python or str(EXPLORE_PY)
    sets = ["--set", f"n_snapshots={N_SNAPSHOTS}", *(a for kv in args.explore_set for a in ("--set", kv))]
    if t_end is not None:  # a warm-up: CuPy compiles (and caches on disk) its kernels
        sets = ["--set", "n_snapshots=2", "--set", f"t_end={t_end}"]
    env_cmd = [python, "-m", "explore.cli", "run", "kelvin_helmholtz", "--preset", preset, *sets,
               "--backend", backend, "--out", str(out), "--quiet"]
    res = run_measured(env_cmd, cwd=ROOT)
    if res["rc"] == 0 and t_end is None:
        probe = (
            "import json, xarray as xr\n"
            f"ds = xr.load_dataset({str(out)!r}, engine='h5netcdf')\n"
            "print(json.dumps({'divergence_max': float(ds.divergence.max()),"
            " 'mean_density_drift_max': float(ds.mean_density_drift.max()),"
            " 'energy_budget_residual': float(ds.energy_budget_residual[-1]),"
            " 'steps': int(ds.steps[-1]), 't_end': float(ds.time[-1])}))\n"
        )
        q = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=ROOT)
        res["accuracy"] = json.loads(q.stdout) if q.returncode == 0 else {"error": q.stderr[-500:]}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=",".join(PEER_CONFIGS))
    ap.add_argument("--backends", default="numpy", help="Explore's array backends, comma-separated (numpy,cupy)")
    ap.add_argument("--explore-only", action="store_true")
    ap.add_argument("--peer-no-gif", action="store_true", help="also time the peer without its GIF")
    ap.add_argument("--peer-cores", default="1", help="the peer's --cores (default 1; 'all': its default, every core)")
    ap.add_argument("--peer-cmd", help="command that runs the peer's CLI (default: the venv's kh2d-simulate; "
                                       "e.g. 'python3 -m kh2d_solver.cli' where it is importable)")
    ap.add_argument("--explore-set", action="append", default=[], metavar="NAME=VALUE",
                    help="an extra parameter of Explore's runs (repeatable), e.g. forcing_amplitude=0 to time "
                         "the forced grid without the body force the peer does not apply")
    ap.add_argument("--explore-python", help="Python that runs Explore (default: .venv/bin/python)")
    ap.add_argument("--warm", action="store_true",
                    help="first run each program once on a short time, untimed (Numba's and CuPy's kernel caches)")
    ap.add_argument("--out", default="results/kh_vs_peer", help="report stem (relative to benchmarks/, or absolute)")
    args = ap.parse_args(argv)
    presets = [p for p in args.presets.split(",") if p]
    backends = [b for b in args.backends.split(",") if b]
    if not args.explore_only and not args.peer_cmd:
        ensure_peer_env()
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.warm:
            for backend in backends:
                w = run_explore(presets[0], tmp, args, backend, t_end=0.05)
                print(f"warm-up Explore ({backend}): rc {w['rc']}, {w['wall_s']:.1f} s", flush=True)
                if w["rc"]:
                    print(w["stderr"], flush=True)
            if not args.explore_only:
                w = run_peer(presets[0], tmp, args, t_final=0.05)
                print(f"warm-up peer: rc {w['rc']}, {w['wall_s']:.1f} s", flush=True)
                if w["rc"]:
                    print(w["stderr"], flush=True)
        for preset in presets:
            row = {"preset": preset, "grid": f"{PEER_CONFIGS[preset]['nx']}x{PEER_CONFIGS[preset]['nz']}",
                   "t_end": PEER_CONFIGS[preset]["t_final"]}
            row["explore"] = {b: run_explore(preset, tmp, args, b) for b in backends}
            if not args.explore_only:
                row["peer"] = run_peer(preset, tmp, args)
                if args.peer_no_gif:
                    row["peer_nogif"] = run_peer(preset, tmp, args, gif=False)
            row["load_avg_1min"] = os.getloadavg()[0]
            rows.append(row)
            brief = lambda d: {kk: vv for kk, vv in d.items() if kk not in ("stdout", "stderr")}
            print(json.dumps({**{k: v for k, v in row.items() if k not in ("explore", "peer", "peer_nogif")},
                              "explore": {b: brief(e) for b, e in row["explore"].items()},
                              **{k: brief(row[k]) for k in ("peer", "peer_nogif") if k in row}}), flush=True)
            for name, res in [*row["explore"].items(), ("peer", row.get("peer", {}))]:
                if res.get("rc"):
                    print(f"{preset} {name} failed:\n{res['stderr']}", flush=True)
    cores = "every core" if args.peer_cores == "all" else f"--cores {args.peer_cores}"
    lines = [
        f"# Kelvin–Helmholtz: Explore vs kh2d-solver (load average {os.getloadavg()[0]:.2f}, "
        f"{os.cpu_count()} cores, peer with {cores})",
        "",
        *([f"Explore's runs also set: {', '.join(args.explore_set)}.", ""] if args.explore_set else []),
        *([f"Peer environment: {peer_versions()}.", ""] if not (args.explore_only or args.peer_cmd) else []),
        "| preset | grid | t | peer whole (s) | peer CPU (s) | peer RSS (MiB) | peer no GIF (s) | peer no GIF CPU (s) "
        "| Explore backend | Explore whole (s) | Explore CPU (s) | Explore RSS (MiB) | speedup (wall) | speedup (CPU) "
        "| Explore steps | Explore max rms div | Explore mean-density drift | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda d, k: (f"{d[k]:.1f}" if d.get("rc") == 0 else ("failed" if d else "–"))
    for r in rows:
        p, q = r.get("peer", {}), r.get("peer_nogif", {})
        for backend, e in r["explore"].items():
            acc = e.get("accuracy", {})
            ok = p.get("rc") == 0 and e["rc"] == 0
            speed = f"{p['wall_s'] / e['wall_s']:.2f}×" if ok else "–"
            speed_cpu = f"{p['cpu_s'] / e['cpu_s']:.2f}×" if ok and backend == "numpy" else "–"
            lines.append(
                f"| {r['preset']} | {r['grid']} | {r['t_end']:g} | {fmt(p, 'wall_s')} | {fmt(p, 'cpu_s')} | "
                f"{fmt(p, 'rss_mib')} | {fmt(q, 'wall_s')} | {fmt(q, 'cpu_s')} | {backend} | {fmt(e, 'wall_s')} | "
                f"{fmt(e, 'cpu_s')} | {fmt(e, 'rss_mib')} | {speed} | {speed_cpu} | {acc.get('steps', '–')} | "
                f"{acc.get('divergence_max', float('nan')):.1e} | {acc.get('mean_density_drift_max', float('nan')):.1e} | "
                f"{r.get('load_avg_1min', float('nan')):.1f} |"
            )
    report = "\n".join(lines) + "\n"
    stem = Path(args.out) if Path(args.out).is_absolute() else HERE / args.out
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(report)
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
