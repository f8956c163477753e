"""Command line: ``explore list | run | sweep | serve``.

    explore list [LAB]                       labs, presets and parameters (with their docs)
    explore run LAB [--preset P] [--set NAME=VALUE ...] [--backend numpy|cupy] [--out FILE.nc]
    explore sweep LAB --grid NAME=V1,V2 [--grid ...] [--preset P] [--set ...] [--scheduler tcp://HOST:PORT]
    explore serve [--address 127.0.0.1] [--port 5006] [--show]

Values given with ``--set`` are parsed by the parameter's type (never evaluated). Exit status: 2 for
a bad lab, preset, parameter, value or option (the message names it); 3 for a run that diverges (a
sweep: when every point does); 1 for a result that cannot be written or a cluster that cannot be
reached; 130 when interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import param

from explore.core import SolverDiverged, get_lab, lab_classes
from explore.core.backend import BackendUnavailable
from explore.core.files import check_netcdf_name, check_output_file, write_netcdf


class UsageError(Exception):
    """A user mistake on the command line (exit status 2)."""


# ---------------------------------------------------------------------- parameter parsing
def parse_value(lab_cls, name: str, text: str):
    """Convert ``text`` to the type of parameter (or alias) ``name`` of ``lab_cls`` (no eval)."""
    alias = lab_cls.aliases.get(name)
    if alias is not None and name not in lab_cls.parameter_names():
        try:
            return alias.kind(text)
        except ValueError:
            kind = "integer" if alias.kind is int else "number"
            raise UsageError(f"{lab_cls.lab_name}: {name}={text!r} is not a valid {kind}") from None
    if name not in lab_cls.parameter_names():
        extra = f"; other names: {', '.join(lab_cls.aliases)}" if lab_cls.aliases else ""
        raise UsageError(
            f"{lab_cls.lab_name}: unknown parameter {name!r}; known: {', '.join(lab_cls.parameter_names())}{extra}"
        )
    p = lab_cls.param[name]
    if p.allow_None and text.strip().lower() in ("none", "null", ""):  # (a None-able parameter's "unset")
        return None
    try:
        if isinstance(p, param.Boolean):
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if isinstance(p, param.Selector):
            for obj in p.objects:
                if str(obj) == text:
                    return obj
            raise UsageError(
                f"{lab_cls.lab_name}: {name}={text!r} is not one of: {', '.join(map(str, p.objects))}"
            )
        if isinstance(p, param.Integer):
            return int(text)
        if isinstance(p, param.Number):
            return float(text)
        return text
    except ValueError:
        kind = type(p).__name__.lower()
        raise UsageError(f"{lab_cls.lab_name}: {name}={text!r} is not a valid {kind}") from None


def parse_sets(lab_cls, items: list[str]) -> dict:
    values = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set expects NAME=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        if name.strip() in values:  # (the last one won without a word)
            raise UsageError(f"--set {name.strip()} is given twice; give it once")
        values[name.strip()] = parse_value(lab_cls, name.strip(), text.strip())
    return values


def describe_parameter(p) -> str:
    """Type, choices or range, and default of parameter ``p``: a range is an interval whose brackets say
    whether its ends are allowed (``(0, ∞)``: any positive number; ``[0, 2]``: 0 and 2 too)."""
    bits = [type(p).__name__]
    if isinstance(p, param.Selector):
        bits.append("{" + ", ".join(map(str, p.objects)) + "}")
    elif getattr(p, "bounds", None):
        lo, hi = p.bounds
        lo_in, hi_in = getattr(p, "inclusive_bounds", (True, True))
        left = "(-∞" if lo is None else f"{'[' if lo_in else '('}{lo}"
        right = "∞)" if hi is None else f"{hi}{']' if hi_in else ')'}"
        bits.append(f"{left}, {right}")
    return " ".join(bits) + f", default {p.default!r}"


# ---------------------------------------------------------------------- commands
def _lab_class(name: str):
    try:
        return get_lab(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def cmd_list(args) -> int:
    classes = lab_classes()
    if args.lab is not None:  # (an empty name is an unknown lab, not "all of them")
        classes = {args.lab: _lab_class(args.lab)}
    for name, cls in classes.items():
        print(f"{name}: {cls.title}")
        print(f"  {cls.description}")
        print(f"  presets: {', '.join(cls.presets) or '-'}" + (f" (default {cls.default_preset})" if cls.default_preset else ""))
        if args.lab is not None or args.verbose:
            print("  parameters:")
            for pname in cls.parameter_names():
                p = cls.param[pname]
                print(f"    {pname:<14} {describe_parameter(p)}")
                if p.doc:
                    print(f"    {'':<14} {p.doc}")
            if cls.aliases:
                print("  other names (--set, sweeps):")
                for aname, alias in cls.aliases.items():
                    print(f"    {aname:<14} {alias.kind.__name__}: {alias.doc}")
        print()
    return 0


class _Progress:
    """One status line on stderr: frame, time, ETA and the headline convergence numbers. On a terminal
    it is rewritten in place at every frame; into a file or a pipe (a log) it is written as a line of its
    own at every tenth of the run, so the log does not become one line of carriage returns."""

    def __init__(self, stream, enabled: bool, time_symbol: str = "t"):
        self.stream, self.enabled, self.start = stream, enabled, time.perf_counter()
        self.time_name = time_symbol  # (a sampler's frames count NFE)
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.next_tenth = 0

    def __call__(self, frame) -> None:
        if not self.enabled:
            return
        if not self.tty:
            if frame.progress < 1.0 and frame.progress < self.next_tenth / 10:
                return
            self.next_tenth = math.floor(10 * frame.progress) + 1
        elapsed = time.perf_counter() - self.start
        eta = (f"{elapsed * (1 - frame.progress) / frame.progress:5.1f}s" if frame.progress > 0
               else "    -")  # unknown until the first frame after the start
        conv = "  ".join(f"{k}={v:.2e}" for k, v in list(frame.convergence.items())[:4])
        bar = "#" * int(20 * frame.progress)
        line = (f"[{bar:<20}] {100 * frame.progress:5.1f}%  {self.time_name}={frame.time:.4g}  steps={frame.steps}"
                f"  ETA {eta}  {conv}")
        if self.tty:  # (cut to the terminal's width: a wrapped line is not rewritten in place, it piles up)
            width = max(shutil.get_terminal_size().columns - 1, 40)  # (0 columns: a terminal that does not say)
            line = line[:width].ljust(width)
        self.stream.write(f"\r{line}" if self.tty else line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")


def cmd_run(args) -> int:
    lab_cls = _lab_class(args.lab)
    values = parse_sets(lab_cls, args.set or [])
    if args.backend:
        values["backend"] = args.backend
    if args.preset is not None and args.preset not in lab_cls.presets:
        raise UsageError(f"{args.lab}: unknown preset {args.preset!r}; presets: {', '.join(lab_cls.presets)}")
    lab = lab_cls(preset=args.preset, **values)
    if args.out is not None:  # refused now, not after the run
        _check_out(lab, args.out)
    if not args.quiet:
        for line in lab.notices():
            print(f"note: {line}", file=sys.stderr)
    progress = _Progress(sys.stderr, not args.quiet, lab.time_symbol())
    start = time.perf_counter()
    try:  # (plain arrays, written as xarray would: importing xarray and what it probes takes ~1 s)
        result = lab.collect(callback=progress)
    finally:
        progress.done()
    wall = time.perf_counter() - start
    print(f"{args.lab}: {result.coords['step'][1].size} frames, {lab.time_symbol()} = {result.last('time'):.6g}, "
          f"{int(result.last('steps'))} steps, {int(result.last('nfe'))} evaluations, {wall:.2f} s")
    history = {key: values for key, (dims, values, attrs) in result.data_vars.items()
               if dims == ("step",) and attrs.get("group") == "convergence"}
    width = max([16, *map(len, history)])
    for key, values in history.items():
        finite = values[~np.isnan(values)]  # (the largest value that is a number, as xarray's max)
        largest = float(finite.max()) if finite.size else math.nan
        print(f"  {key:<{width}} final {float(values[-1]):.3e}   max {largest:.3e}")
    if args.out is not None:
        _write(result, args.out)
    return 0


def _check_out(lab, path: str, grid: dict | None = None) -> None:
    """``--out`` names a netCDF file that can be written and is not one of the run's own files (a
    snapshot stream written to the same name was replaced by the summary), nor, in a sweep, one that a
    point of ``grid`` writes or reads."""
    check_output_file(lab.lab_name, "--out", path)
    check_netcdf_name(lab.lab_name, "--out", path)
    for name in lab.file_parameters():
        for other in (getattr(lab, name), *(grid or {}).get(name, ())):
            if other and os.path.realpath(other) == os.path.realpath(path):
                raise UsageError(f"{lab.lab_name}: --out {path!r} is also '{name}'"
                                 f"{' in --grid' if other != getattr(lab, name) else ''}; give the result another name")


def _write(ds, path: str) -> None:
    try:
        write_netcdf(ds, path)
    except OSError as exc:
        raise OutputFailed(f"could not write --out {path!r} ({exc}); any earlier file there is unchanged") from None
    print(f"wrote {path}")


def cmd_sweep(args) -> int:
    from explore.sweep import sweep

    lab_cls = _lab_class(args.lab)
    grid = {}
    for item in args.grid or []:
        if "=" not in item:
            raise UsageError(f"--grid expects NAME=V1,V2,..., got {item!r}")
        name, text = item.split("=", 1)
        if name.strip() in grid:  # (the second would replace the first)
            raise UsageError(f"--grid {name.strip()} is given twice; list all its values in one --grid")
        grid[name.strip()] = [parse_value(lab_cls, name.strip(), v.strip()) for v in text.split(",")]
    fixed = parse_sets(lab_cls, args.set or [])
    both = [name for name in grid if name in fixed]
    if both:  # (the grid's values won without a word)
        raise UsageError(f"{', '.join(both)} is both swept (--grid) and fixed (--set); give it once")
    if args.preset is not None and args.preset not in lab_cls.presets:
        raise UsageError(f"{args.lab}: unknown preset {args.preset!r}; presets: {', '.join(lab_cls.presets)}")
    if args.out is not None:
        _check_out(lab_cls(preset=args.preset, **fixed), args.out, grid)
    try:  # (caught here, not in main(): explore.sweep is imported only by this command)
        ds = sweep(args.lab, grid, preset=args.preset, fixed=fixed, scheduler=args.scheduler, workers=args.workers,
                   notify=functools.partial(_print_sweep_notice, math.prod(map(len, grid.values()))))
    except RuntimeError as exc:  # (a ClusterUnavailable: one that did not start; a point's error, named)
        print(f"explore: error: {exc}", file=sys.stderr)
        return 1
    print(ds)
    failed = json.loads(ds.attrs.get("failed_points", "[]"))
    for item in failed:
        print(f"explore: point {item['point']} failed: {item['error']}", file=sys.stderr)
    if args.out is not None:
        _write(ds, args.out)
    return 3 if failed and len(failed) == math.prod(len(v) for v in grid.values()) else 0


def _print_sweep_notice(n_points: int, text: str, points: list[str]) -> None:
    """A sweep's notice as ``explore run`` says it, with the points it concerns (a few named)."""
    where = "every point" if len(points) == n_points else (
        "; ".join(points[:3]) + (f" and {len(points) - 3} more" if len(points) > 3 else ""))
    print(f"note ({where}): {text}", file=sys.stderr)


def cmd_serve(args) -> int:
    from explore.ui.serve import serve

    try:
        serve(address=args.address, port=args.port, show=args.show)
    except OSError as exc:  # a port in use, an address this machine does not have or cannot resolve
        raise UsageError(f"cannot serve on {args.address}:{args.port}: {exc.strerror or exc}") from None
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="explore", description="Live labs for numerical methods.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list labs, presets and parameters")
    p.add_argument("lab", nargs="?", help="show one lab's parameters in full")
    p.add_argument("-v", "--verbose", action="store_true", help="show every lab's parameters")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("run", help="run a lab headless and save the history as netCDF")
    p.add_argument("lab")
    p.add_argument("--preset", help="named parameter set (see `explore list LAB`)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="set a parameter (repeatable)")
    p.add_argument("--backend", choices=["numpy", "cupy"], help="array backend")
    p.add_argument("--out", help="netCDF file to write (convergence history, spectra, snapshots)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("sweep", help="run a grid of parameter values as Dask tasks")
    p.add_argument("lab")
    p.add_argument("--grid", action="append", metavar="NAME=V1,V2,...", help="a swept parameter (repeatable)")
    p.add_argument("--preset")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a fixed parameter (repeatable)")
    p.add_argument("--scheduler", help="address of a Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=_positive, help="local cluster size (default: one per core)")
    p.add_argument("--out", help="netCDF file for the gathered summary")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("serve", help="serve the gallery and every lab")
    p.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=5006)
    p.add_argument("--show", action="store_true", help="open a browser")
    p.set_defaults(func=cmd_serve)
    return parser


class OutputFailed(RuntimeError):
    """The run finished but its result could not be written."""


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # (a console that cannot show ψ or λ gets escapes, not an error)
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (explore list | head): stop quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OutputFailed as exc:
        print(f"explore: error: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"explore: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, BackendUnavailable) as exc:
        print(f"explore: error: {exc}", file=sys.stderr)
        return 2
    except SolverDiverged as exc:
        print(f"explore: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("explore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
