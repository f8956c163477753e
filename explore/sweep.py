"""Parameter sweeps on Dask: every point of a grid of parameter values is one task.

``sweep("nlse", {"integrator": ["ifrk4", "etdrk4"], "dt": [0.01, 0.005]}, preset="single_soliton")``
validates every point first (a bad value fails before any work), runs the points on a Dask
cluster (a local one by default, or ``scheduler="tcp://host:port"``) and gathers one
``xarray.Dataset`` with one dimension per swept parameter: for each convergence and diagnostic
quantity its final value and its maximum over the run, plus ``nfe``, ``steps`` and ``wall_time``.
A point whose run diverges (a step too large, say) has NaN values and is listed, with its message, in
the Dataset's ``failed_points`` attribute (JSON); the other points are kept.

Needs Dask (``pip install -e '.[sweep]'``). The local cluster starts worker processes, which import
the calling script again: call :func:`sweep` from a script under ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import signal
import threading
import time

import numpy as np
import xarray as xr

import explore
from explore.core import RunTooLarge, SolverDiverged, get_lab


class SweepUnavailable(ValueError):
    """Dask, which sweeps run on, is not installed."""


class ClusterUnavailable(RuntimeError):
    """The local Dask cluster did not start."""


#: the key of a point's summary that says it failed (its message): its values are NaN in the Dataset
FAILED = "__failed__"
#: the most points a sweep runs (a grid beyond this is more likely a typo than a study: each point is a run)
MAX_POINTS = 10_000
#: seconds to reach a Dask scheduler (``scheduler=``) before the sweep gives up on it, and the grace after
#: that for the client to report why
SCHEDULER_TIMEOUT_S = 30.0
SCHEDULER_GRACE_S = 10.0


def _describe(values: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _run_point(lab_name: str, preset: str | None, values: dict, swept: tuple = ()) -> dict:
    """One point's summary; a point whose run diverges or stops, or does not fit in its worker's memory,
    returns ``{FAILED: message}`` (the sweep keeps the others), any other error is raised naming the point
    (its swept values)."""
    lab = get_lab(lab_name)(preset=preset, **values)
    start = time.perf_counter()
    point = _describe({k: values[k] for k in swept}) if swept else _describe(values)
    try:
        ds = lab.run()
    except (SolverDiverged, RunTooLarge, ValueError) as exc:
        # (a point too large for its worker, or one its run refuses, such as a checkpoint of another grid or
        # a backend its worker lacks: the others are kept)
        return {FAILED: str(exc)}
    except Exception as exc:
        raise RuntimeError(f"sweep point {point}: {type(exc).__name__}: {exc}") from exc
    out = {"wall_time": time.perf_counter() - start, "nfe": int(ds.nfe[-1]), "steps": int(ds.steps[-1])}
    for key in ds.data_vars:
        if ds[key].dims == ("step",):
            out[key] = float(ds[key][-1])
            if key not in lab.categorical_diagnostics:  # (the largest code of a category means nothing)
                out[f"{key}_max"] = float(ds[key].max())
    return out


@contextlib.contextmanager
def _workers_ignore_interrupts():
    """Start the local cluster's processes with SIGINT ignored (they inherit it): a Ctrl-C in the
    terminal reaches the whole process group, and each worker printed its own KeyboardInterrupt
    traceback; the calling process alone handles it and closes the cluster, which stops them. (A
    Ctrl-C during the second or two the cluster takes to start is ignored.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _silence_distributed() -> None:
    """Raise this process's ``distributed`` loggers to CRITICAL. Run on a local cluster's workers once
    every result is in: a heartbeat still in flight when the scheduler closes is logged as an ERROR with
    a traceback (a race of distributed, its issue 7192), after a good run. Until then the workers log as
    usual (a memory warning, a restart, a killed worker: what a failed point's error refers to)."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _start_failure(exc: Exception) -> str:
    """The message of a local cluster that did not start; from a user's script, the likely cause (the
    script run without the ``__main__`` guard: each worker process imports it again)."""
    import __main__

    script = getattr(__main__, "__file__", None)
    from_script = (script is not None and getattr(__main__, "__spec__", None) is None
                   and not os.path.basename(script).startswith("explore"))
    hint = (" Called from a script: call sweep() under `if __name__ == \"__main__\":` (the cluster's worker "
            "processes import the script again)." if from_script else "")
    return f"sweep: the local Dask cluster did not start ({exc}).{hint}"


def checked_grid(grid) -> dict[str, list]:
    """``grid`` as a dict of lists: each parameter with at least one value and none twice (a point run
    twice, and a coordinate ``sel`` cannot tell apart), at most ``MAX_POINTS`` points in all."""
    if not isinstance(grid, dict) or not grid:
        raise ValueError("sweep: give at least one parameter to sweep (--grid NAME=V1,V2,...)")
    out = {}
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"sweep: the values of {name!r} must be a list, got {values!r}")
        values = list(values)
        if not values:
            raise ValueError(f"sweep: no values given for {name!r}")
        seen = set()
        for value in values:
            try:
                key = (type(value), value)  # (True and 1 are equal, but not the same value)
                twice = key in seen
            except TypeError:
                raise ValueError(f"sweep: a value of {name!r} must be a number, a string or a boolean, "
                                 f"got {value!r}") from None
            if twice:
                raise ValueError(f"sweep: {name!r} lists the value {value!r} twice")
            seen.add(key)
        out[name] = values
    n = math.prod(len(v) for v in out.values())
    if n > MAX_POINTS:
        raise ValueError(f"sweep: the grid has {n:,} points, more than {MAX_POINTS:,} (each is a run); "
                         "sweep fewer values, or split it into several sweeps")
    return out


def _check_address(scheduler) -> None:
    """``scheduler`` reads as ``[protocol://]host[:port]`` with a port of 1..65535 (Dask's own defaults
    fill in the rest), before any connection."""
    from urllib.parse import urlsplit

    text = str(scheduler)
    bad = ValueError(f"sweep: scheduler {scheduler!r} is not a Dask scheduler's address, such as tcp://host:8786")
    try:
        parts = urlsplit(text if "://" in text else f"tcp://{text}")
        port = parts.port
    except ValueError:  # (a port that is not a number, or beyond 65535)
        raise bad from None
    if not parts.hostname or port == 0 or parts.path or parts.query:
        raise bad


def _connect(client_class, scheduler: str):
    """A client of the Dask scheduler at ``scheduler``, or :class:`ClusterUnavailable` within about
    ``SCHEDULER_TIMEOUT_S``: whatever the reason, a message naming the address. (Connected to something
    that is not a scheduler, such as its dashboard's port, ``Client`` waits for a handshake that never
    comes, whatever its timeout: it is made on a thread the sweep stops waiting for.)"""
    made: dict = {}
    lock = threading.Lock()

    def connect():
        try:
            client = client_class(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except BaseException as exc:  # noqa: BLE001 (reported below, whatever it is)
            made["error"] = exc
            return
        with lock:
            late = made.setdefault("client", client) is not client
        if late:  # the sweep gave up on it: a client connected after all is closed, not left behind
            client.close()

    thread = threading.Thread(target=connect, name="explore-sweep-connect", daemon=True)
    thread.start()
    thread.join(SCHEDULER_TIMEOUT_S + SCHEDULER_GRACE_S)
    with lock:
        client = made.setdefault("client", None)  # (taken: a later connection closes itself)
    if client is not None:
        return client
    why = (f"{type(made['error']).__name__}: {made['error']}" if "error" in made
           else f"no answer within {SCHEDULER_TIMEOUT_S + SCHEDULER_GRACE_S:g} s: is it the scheduler's port, "
                "not its dashboard's?")
    raise ClusterUnavailable(f"sweep: cannot reach the Dask scheduler {scheduler!r} ({why})")


def _point_labs(cls, grid: dict[str, list], preset: str | None, fixed: dict | None):
    """``(values, lab)`` of each point of ``grid`` in grid order: the values given (``fixed`` with the
    point's own) and the lab they make."""
    for combo in itertools.product(*grid.values()):
        values = {**(fixed or {}), **dict(zip(grid, combo))}
        yield values, cls(preset=preset, **values)


def sweep_points(lab_name: str, grid: dict[str, list], preset: str | None = None,
                 fixed: dict | None = None) -> list[dict]:
    """All parameter combinations of ``grid`` (with ``fixed`` values), each validated up front."""
    return _planned(lab_name, grid, preset, fixed)[1]


def _planned(lab_name: str, grid, preset: str | None, fixed: dict | None,
             notices: dict | None = None) -> tuple[dict, list[dict], list[dict]]:
    """``(grid, points, labs' values)``: the grid checked, each point's given values (validated up front) and
    every parameter value of the lab it makes (what :func:`gather_dataset` records). ``notices``, if given,
    receives what the points' runs do that their values do not say (:meth:`~explore.core.lab.Lab.notices`),
    each once, with the points it concerns (their swept values)."""
    try:
        cls = get_lab(lab_name)
    except KeyError as exc:
        raise ValueError(f"sweep: {exc.args[0] if exc.args else exc}") from None
    grid = checked_grid(grid)
    points, labs, written = [], [], set()
    for values, lab in _point_labs(cls, grid, preset, fixed):
        lab.validate(memory=False)  # (whether a point fits is up to the machine it runs on)
        for name in cls.output_files:  # points writing one file would overwrite each other's
            path = getattr(lab, name)
            if path and os.path.realpath(path) in written:
                raise ValueError(f"sweep: more than one point would write '{name}' = {path!r}; leave it empty "
                                 "in a sweep, or sweep it (one file per point)")
            if path:
                written.add(os.path.realpath(path))
        points.append(values)
        labs.append(lab.values())
        if notices is not None:
            for text in lab.notices():
                notices.setdefault(text, []).append(_describe({k: values[k] for k in grid}))
    return grid, points, labs


def sweep(lab_name: str, grid: dict[str, list], preset: str | None = None, fixed: dict | None = None,
          scheduler: str | None = None, workers: int | None = None, notify=None) -> xr.Dataset:
    """Run the grid of parameter values as Dask tasks and gather the summary Dataset.

    What the points' runs do that their values do not say (a ``dt`` shortened to fill the frames: a swept
    ``dt`` may not be the step that ran) is in the Dataset's ``notices`` attribute (JSON: each notice with
    the points it concerns) and, before any point runs, handed to ``notify(notice, points)``."""
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"sweep: workers must be a whole number of at least 1, got {workers!r}")
    notices: dict[str, list[str]] = {}
    grid, points, point_values = _planned(lab_name, grid, preset, fixed, notices)
    if notify is not None:
        for text, where in notices.items():
            notify(text, where)
    if scheduler:
        _check_address(scheduler)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise SweepUnavailable("sweeps run on Dask, which is not installed: pip install -e '.[sweep]' "
                               f"(or dask[distributed]) ({exc})") from exc
    if scheduler:
        client, cluster = _connect(Client, scheduler), None
    else:
        try:
            with _workers_ignore_interrupts():
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
        except RuntimeError as exc:
            raise ClusterUnavailable(_start_failure(exc)) from exc
        client = Client(cluster)
    quiet = [logging.getLogger(name) for name in ("distributed", "asyncio")]
    levels = [log.level for log in quiet]
    try:
        n = len(points)
        futures = client.map(_run_point, [lab_name] * n, [preset] * n, points, [tuple(grid)] * n, pure=False)
        results = client.gather(futures)
        if cluster is not None:  # every result is in: the local cluster's shutdown may stay quiet
            client.run(_silence_distributed)
            _silence_distributed()
    except KeyboardInterrupt:  # (Ctrl-C: the cluster goes down with its tasks; their cancellations are not news)
        for log in quiet:
            log.setLevel(logging.CRITICAL)
        if cluster is not None:
            with contextlib.suppress(Exception):
                client.run(_silence_distributed)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        for log, level in zip(quiet, levels):  # (this process's logging as it was)
            log.setLevel(level)
    ds = gather_dataset(lab_name, grid, preset, results, fixed, point_values)
    if notices:
        ds.attrs["notices"] = json.dumps([{"notice": text, "points": where} for text, where in notices.items()])
    return ds


def _null_as_text(value):
    """A grid value as a result file's attributes store it: ``None`` as ``"null"``, numbers as their text
    (:meth:`~explore.core.lab.Lab.from_attrs` reads both back)."""
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value)


def gather_dataset(lab_name: str, grid: dict[str, list], preset: str | None, results: list[dict],
                   fixed: dict | None = None, point_values: list[dict] | None = None) -> xr.Dataset:
    """Stack per-point summaries (in grid order) into a Dataset with one dimension per parameter.

    A summary named like a swept parameter (``steps``, KH's ``dt``) is stored as ``NAME_final``. The
    attributes hold the lab, the preset and every parameter that has one value at all points; a
    parameter that is not swept but differs between points (set by a swept alias, or derived by a fixed
    one from a swept parameter: KH's ``N`` with ``Lz`` swept gives each point its ``nz``) is a variable
    over the grid, as netCDF stores attributes (``None`` as ``"null"``). So the file says how to run any
    point again. A swept parameter whose values include ``None`` has them as that text in its coordinate.
    ``point_values``: each point's lab's values, where the caller has them (:func:`sweep` made every
    point's lab to validate it); made here otherwise."""
    from explore.core.result import _attr

    shape = tuple(len(v) for v in grid.values())
    failed = [{"point": _describe(dict(zip(grid, combo))), "error": r[FAILED]}
              for combo, r in zip(itertools.product(*grid.values()), results) if FAILED in r]
    keys = list(dict.fromkeys(k for r in results for k in r if k != FAILED))
    data = {(f"{k}_final" if k in grid else k):
            (tuple(grid), np.array([r.get(k, np.nan) for r in results], dtype=float).reshape(shape))
            for k in keys}
    # (None has no place in a numeric coordinate: it became NaN, which no run accepts back)
    coords = {name: [_null_as_text(v) for v in values] if any(v is None for v in values) else list(values)
              for name, values in grid.items()}
    cls = get_lab(lab_name)
    ds = cls.flag_categories(xr.Dataset(data, coords=coords))
    per_point = point_values or [lab.values() for _, lab in _point_labs(cls, grid, preset, fixed)]
    for name in per_point[0]:
        if name in grid:
            continue
        values = [_attr(v[name]) for v in per_point]
        if all(v == values[0] for v in values):
            ds.attrs[name] = values[0]
        else:
            var = name if name not in ds.variables else f"{name}_parameter"
            ds[var] = (tuple(grid), np.array(values).reshape(shape),
                       {"long_name": f"parameter {name} at each point (not swept: set from a swept one)"})
    ds.attrs.update(lab=lab_name, preset=preset or "", explore_version=explore.__version__)
    if failed:  # (their values are NaN)
        ds.attrs["failed_points"] = json.dumps(failed)
    return ds
