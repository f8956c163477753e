"""Turn a run's frames into an ``xarray.Dataset`` (the ``Result`` of a lab).

Layout: dimension ``step`` (one entry per frame) with coordinates ``time``, ``progress``,
``nfe`` and ``steps``; one variable per convergence and diagnostic quantity (named after it);
``spectrum`` over (step, k); curve samples over (step, x); point clouds and fields at the last
frame; every lab parameter as a global attribute.
"""
from __future__ import annotations

import json

import numpy as np
import xarray as xr

from explore.core.frame import Curve, Field, Frame, Points

Result = xr.Dataset


def _coord_name(label: str, fallback: str) -> str:
    name = label.split(" ")[0]
    return name if name.isidentifier() else fallback


def _attr(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    return json.dumps(value, default=str)


def frames_to_dataset(frames: list[Frame], lab=None, extras: dict | None = None) -> xr.Dataset:
    """Stack ``frames`` into a Dataset; ``lab`` supplies the attributes (and the names of its categorical
    diagnostics' codes), ``extras`` more variables."""
    n = len(frames)
    steps = np.array([f.step for f in frames], dtype=np.int64)
    coords = {
        # the frames' own indices: a run resumed at frame 2 goes on 2, 3, 4 as the uninterrupted run did
        "step": steps if n and np.all(np.diff(steps) > 0) else np.arange(n),
        "time": ("step", np.array([f.time for f in frames], dtype=float)),
        "progress": ("step", np.array([f.progress for f in frames], dtype=float)),
        "nfe": ("step", np.array([f.nfe for f in frames], dtype=np.int64)),
        "steps": ("step", np.array([f.steps for f in frames], dtype=np.int64)),
    }
    data_vars: dict = {}
    for group in ("convergence", "diagnostics"):
        names = list(dict.fromkeys(k for f in frames for k in getattr(f, group)))
        for key in names:
            values = np.array([getattr(f, group).get(key, np.nan) for f in frames], dtype=float)
            data_vars[key] = ("step", values, {"group": group})

    def add_curve_series(var: str, curves: list[Curve | None]):
        last = next(c for c in reversed(curves) if c is not None)
        # a curve whose grid changed mid-run is kept only where it matches the last grid
        curves = [c if c is not None and np.array_equal(c.x, last.x) else None for c in curves]
        dim = _coord_name(last.xlabel, f"{var}_x")
        if dim in coords and not np.array_equal(coords[dim][1], last.x):
            dim = f"{var}_x"
        values = np.full((n, last.x.size), np.nan, dtype=float)
        for i, c in enumerate(curves):
            if c is not None:
                values[i] = np.asarray(c.y, dtype=float)
        coords[dim] = (dim, np.asarray(last.x, dtype=float))
        data_vars[var] = (("step", dim), values, {"long_name": last.ylabel, "x_label": last.xlabel})

    if any(f.spectrum is not None for f in frames):
        spectra = [f.spectrum for f in frames]
        if isinstance(next(s for s in spectra if s is not None), Curve):
            add_curve_series("spectrum", spectra)
    sample_keys = list(dict.fromkeys(k for f in frames for k in f.samples))
    for key in sample_keys:
        items = [f.samples.get(key) for f in frames]
        last = next(s for s in reversed(items) if s is not None)
        if isinstance(last, Curve):
            add_curve_series(key, items)
        elif isinstance(last, Points):
            dim = f"{key}_point"
            data_vars[f"{key}_x"] = (dim, np.asarray(last.x, dtype=float), {"long_name": last.xlabel})
            data_vars[f"{key}_y"] = (dim, np.asarray(last.y, dtype=float), {"long_name": last.ylabel})
        elif isinstance(last, Field):
            ydim, xdim = f"{key}_y", f"{key}_x"
            coords[xdim] = (xdim, np.asarray(last.x, dtype=float), {"long_name": last.xlabel})
            coords[ydim] = (ydim, np.asarray(last.y, dtype=float), {"long_name": last.ylabel})
            data_vars[key] = ((ydim, xdim), np.asarray(last.values, dtype=float), {"long_name": last.label})
    for key, value in (extras or {}).items():
        data_vars[key] = value
    ds = xr.Dataset(data_vars=data_vars, coords=coords)
    if lab is not None:
        ds.attrs.update({k: _attr(v) for k, v in lab.values().items()})
        ds.attrs["lab"] = lab.lab_name
        lab.flag_categories(ds)
    import explore

    ds.attrs["explore_version"] = explore.__version__
    return ds
