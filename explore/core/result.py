"""Turn a run's frames into its result: plain arrays (:class:`ResultParts`), or an ``xarray.Dataset``.

Layout: dimension ``step`` (one entry per frame) with coordinates ``time``, ``progress``,
``nfe`` and ``steps``; one variable per convergence and diagnostic quantity (named after it);
``spectrum`` over (step, k); curve samples over (step, x); point clouds and fields at the last
frame; every lab parameter as a global attribute.

:class:`ResultParts` writes the same netCDF file as ``xarray`` would, without importing it: xarray
and what it probes for on first use (pandas, dask, dask.distributed) take ~1 s to import, as long as a
small run itself (`explore run` writes through this).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from explore.core.frame import Curve, Field, Frame, Points


def _variable(name: str, spec) -> tuple[tuple[str, ...], np.ndarray, dict]:
    """``(dims, values, attrs)`` of an entry as ``xarray.Dataset`` takes it: a bare array (a dimension's
    own coordinate), ``(dims, values)`` or ``(dims, values, attrs)``, ``dims`` a name or a tuple."""
    if not isinstance(spec, tuple):
        return (name,), np.asarray(spec), {}
    dims, values, *rest = spec
    return ((dims,) if isinstance(dims, str) else tuple(dims)), np.asarray(values), dict(rest[0] if rest else {})


@dataclass
class ResultParts:
    """A run's result as NumPy arrays: ``coords`` and ``data_vars`` map names to ``(dims, values, attrs)``,
    ``attrs`` holds the global attributes. :meth:`to_dataset` makes the ``xarray.Dataset``;
    :meth:`write_netcdf` writes the file that Dataset's ``to_netcdf(engine="h5netcdf")`` would."""

    coords: dict
    data_vars: dict
    attrs: dict

    def __post_init__(self):
        self.coords = {k: _variable(k, v) for k, v in self.coords.items()}
        self.data_vars = {k: _variable(k, v) for k, v in self.data_vars.items()}
        for name, (dims, values, attrs) in list(self.data_vars.items()):
            if dims == (name,):  # (xarray makes a variable named like its only dimension that dimension's coordinate)
                self.coords[name] = self.data_vars.pop(name)

    def to_dataset(self):
        import xarray as xr

        return xr.Dataset(data_vars=self.data_vars, coords=self.coords, attrs=self.attrs)

    def write_netcdf(self, path: str) -> None:
        """A netCDF-4 file through h5netcdf, as xarray writes one: every dimension with a size, each coordinate
        that is not a dimension's own named in the ``coordinates`` attribute of the data variables whose
        dimensions hold its own (CF; in the file's own ``coordinates`` attribute if there is none), and a
        NaN ``_FillValue`` on floating-point variables."""
        import h5netcdf

        variables = {**self.coords, **self.data_vars}
        sizes: dict[str, int] = {}
        for name, (dims, values, _) in variables.items():
            for dim, size in zip(dims, values.shape):
                if sizes.setdefault(dim, size) != size:
                    raise ValueError(f"result: dimension {dim!r} has sizes {sizes[dim]} and {size} ({name!r})")
        auxiliary = [name for name, (dims, _, _) in self.coords.items() if dims != (name,)]
        attached: set[str] = set()
        with h5netcdf.File(path, "w") as f:
            f.dimensions = sizes
            for name, (dims, values, attrs) in variables.items():
                if values.dtype.kind == "f":
                    var = f.create_variable(name, dims, values.dtype, data=values, fillvalue=np.nan)
                else:
                    var = f.create_variable(name, dims, values.dtype, data=values)
                extra = {}
                if name in self.data_vars:
                    held = [c for c in auxiliary if set(self.coords[c][0]) <= set(dims)]
                    attached.update(held)
                    if held:
                        extra["coordinates"] = " ".join(held)
                var.attrs.update({**attrs, **extra})
            loose = [c for c in auxiliary if c not in attached]
            f.attrs.update({**self.attrs, **({"coordinates": " ".join(loose)} if loose else {})})

    def last(self, name: str) -> float:
        """The last value of a variable over ``step`` (or of a coordinate: ``time``, ``nfe`` …)."""
        return float((self.data_vars.get(name) or self.coords[name])[1][-1])


def _coord_name(label: str, fallback: str) -> str:
    name = label.split(" ")[0]
    return name if name.isidentifier() else fallback


def _attr(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    return json.dumps(value, default=str)


def frames_to_dataset(frames: list[Frame], lab=None, extras: dict | None = None):
    """Stack ``frames`` into an ``xarray.Dataset``; ``lab`` supplies the attributes (and the names of its
    categorical diagnostics' codes), ``extras`` more variables."""
    return frames_to_parts(frames, lab, extras).to_dataset()


def frames_to_parts(frames: list[Frame], lab=None, extras: dict | None = None) -> ResultParts:
    """What :func:`frames_to_dataset` makes, as :class:`ResultParts` (no xarray)."""
    n = len(frames)
    steps = np.array([f.step for f in frames], dtype=np.int64)
    coords = {
        # the frames' own indices: a run resumed at frame 2 goes on 2, 3, 4 as the uninterrupted run did
        "step": steps if n and np.all(np.diff(steps) > 0) else np.arange(n),
        "time": ("step", np.array([f.time for f in frames], dtype=float),
                 {"long_name": lab.time_label if lab is not None else "time"}),
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
    attrs = {}
    if lab is not None:
        attrs.update({k: _attr(v) for k, v in lab.values().items()})
        attrs["lab"] = lab.lab_name
    import explore

    attrs["explore_version"] = explore.__version__
    parts = ResultParts(coords, data_vars, attrs)
    if lab is not None:
        for name, names in lab.categorical_diagnostics.items():
            if name in parts.data_vars:
                _, values, var_attrs = parts.data_vars[name]
                var_attrs.update(lab.flag_attributes(names, values.dtype))
    return parts
