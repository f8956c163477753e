"""CuPy backend check: every lab on NumPy and on CuPy, same parameters, side by side.

Run on a machine with an NVIDIA GPU and CuPy:  python benchmarks/gpu_check.py [--quick] [--out results/gpu.json]
For each case it prints the wall time of ``lab.run()`` on both backends (after one warm-up run
on CuPy, so kernel compilation is not counted) and the largest difference between the two
results: every convergence/diagnostic variable (relative) and the final full-resolution state.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from explore.core import get_lab

CASES = [
    ("nlse", dict(preset="single_soliton", integrator="split_step6", dt=0.015, t_end=5.0, n_snapshots=10)),
    ("nlse", dict(preset="two_soliton", integrator="dop853", t_end=2.0, n_snapshots=4)),
    ("nlse", dict(preset="modulation_instability", N=16384, L=400.0, integrator="etdrk4", dt=5e-3,
                  t_end=2.0, n_snapshots=4)),
    ("reaction_diffusion", dict(preset="stable_spiral", N=128, t_end=5.0)),  # (the co-rotating frame)
    ("reaction_diffusion", dict(preset="pattern_decay", integrator="if_dop853", rtol=1e-9, atol=1e-12, t_end=5.0)),
    ("reaction_diffusion", dict(preset="stable_spiral", N=1024, L=160.0, t_end=1.0)),
    ("kelvin_helmholtz", dict(preset="basic_shear", t_end=0.5, n_snapshots=5)),
    ("kelvin_helmholtz", dict(preset="basic_shear", nx=1024, nz=512, t_end=0.1, n_snapshots=2)),
    ("diffusion", dict(preset="ring8", n_samples=100_000)),
]


def is_large(params: dict) -> bool:
    """A case that measures speed on a large grid (skipped by ``--quick``)."""
    return max(params.get("N", 0), params.get("nx", 0)) >= 1024


def run(name: str, params: dict, backend: str):
    lab = get_lab(name)(**params, backend=backend)
    start = time.perf_counter()
    ds = lab.run()
    return ds, time.perf_counter() - start


def compare(a, b) -> dict:
    worst_scalar, worst_array, which = 0.0, 0.0, ""
    for key in a.data_vars:
        if key not in b:
            continue
        x, y = np.asarray(a[key].values, dtype=float), np.asarray(b[key].values, dtype=float)
        if x.shape != y.shape or not np.isfinite(x).any():
            continue
        ok = np.isfinite(x) & np.isfinite(y)
        # quantities at round-off level (drifts ~1e-15) are compared on an absolute 1e-8 floor
        scale = max(np.max(np.abs(x[ok])), 1e-8) if ok.any() else 1.0
        diff = float(np.max(np.abs(x[ok] - y[ok])) / scale) if ok.any() else 0.0
        if a[key].dims == ("step",):
            if diff > worst_scalar:
                worst_scalar, which = diff, key
        else:
            worst_array = max(worst_array, diff)
    return {"max_rel_diff_history": worst_scalar, "worst": which, "max_rel_diff_arrays": worst_array}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", help="write the table as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="only the small cases (agreement of the backends; the large grids measure speed)")
    args = parser.parse_args()
    rows = []
    for name, params in CASES:
        if args.quick and is_large(params):
            continue
        ds_np, t_np = run(name, params, "numpy")
        run(name, params, "cupy")  # warm-up: FFT plans, kernel compilation
        ds_cp, t_cp = run(name, params, "cupy")
        row = {"lab": name, "params": params, "numpy_s": t_np, "cupy_s": t_cp, "speedup": t_np / t_cp,
               **compare(ds_np, ds_cp)}
        rows.append(row)
        print(f"{name:20s} {json.dumps(params)[:70]:70s} numpy {t_np:8.3f} s  cupy {t_cp:8.3f} s  "
              f"x{t_np / t_cp:6.2f}  rel.diff history {row['max_rel_diff_history']:.1e} ({row['worst']}) "
              f"arrays {row['max_rel_diff_arrays']:.1e}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1, default=str)


if __name__ == "__main__":
    main()
