"""Where a Kelvin–Helmholtz step spends its time, on a backend: steps per second and a profile.

    python benchmarks/kh_profile.py [--backend cupy] [--t-end 1.0] [--top 25]

Runs the ``basic_shear`` preset (256 × 128) to ``--t-end`` twice: once untimed (on CuPy: kernels
compiled, FFT plans made), then timed under ``cProfile``. Prints the milliseconds per step and the
functions with the most own time. On a GPU a small grid is bound by kernel launches and host
synchronisations, which the profile shows as time in CuPy's Python entry points and in ``float`` /
``__float__`` (a copy to the host waits for the device).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

from explore.core import get_lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--preset", default="basic_shear")
    ap.add_argument("--t-end", type=float, default=1.0)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    make = lambda: get_lab("kelvin_helmholtz")(preset=args.preset, t_end=args.t_end, n_snapshots=10,
                                               backend=args.backend)
    make().run()  # warm-up
    lab = make()
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    ds = lab.run()
    prof.disable()
    wall = time.perf_counter() - start
    steps = int(ds.steps.values[-1])
    print(f"{args.preset} on {args.backend}: t_end {args.t_end}, {steps} steps in {wall:.3f} s: "
          f"{1e3 * wall / steps:.3f} ms/step (profiled: cProfile adds per-call overhead)")
    start = time.perf_counter()
    ds = make().run()
    wall = time.perf_counter() - start
    print(f"again without the profiler: {1e3 * wall / steps:.3f} ms/step, {wall:.3f} s")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
