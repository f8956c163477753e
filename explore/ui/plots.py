"""Turn :class:`~explore.core.frame.Frame` contents into HoloViews elements, and keep them live.

Frames carry plain dataclasses (:class:`Curve`, :class:`Points`, :class:`Field`); this module is the
one place that maps them to HoloViews (``hv.Curve``, ``hv.Points``, ``hv.Image``). :class:`LivePlot`
wraps one ``DynamicMap`` fed by an ``hv.streams.Pipe`` (latest wins): the plot is updated in place,
so the browser keeps its tools and the plot is not rebuilt; it is rebuilt only when the kind of
object changes (say a spectrum switches from a curve to a point cloud).
"""
from __future__ import annotations

from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend without a notebook)
import numpy as np
import panel as pn

from explore.core.frame import Curve, Field, Points

#: default plot sizes (pixels); plots stretch to the width of their column
PLOT_HEIGHT = 280
SMALL_PLOT_HEIGHT = 200
#: pixels per legend entry (legends sit right of the plot)
LEGEND_ROW_PX = 27
#: line dash of earlier runs overlaid on the convergence plot
EARLIER_RUN_DASH = "dashed"


def _positive(y: np.ndarray) -> np.ndarray:
    """Values for a log axis: non-positive entries become NaN (a gap) instead of breaking the axis."""
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)


def _dims(xlabel: str, ylabel: str) -> tuple[hv.Dimension, hv.Dimension]:
    # a dimension's name must differ between the axes even when the labels coincide
    if xlabel == ylabel:
        return hv.Dimension("x", label=xlabel), hv.Dimension("y", label=ylabel)
    return hv.Dimension(xlabel), hv.Dimension(ylabel)


def curve_element(curve: Curve, label: str = "") -> hv.Curve:
    """An ``hv.Curve`` of ``curve``, on log axes where the curve asks for them."""
    kdim, vdim = _dims(curve.xlabel, curve.ylabel)
    x = np.asarray(curve.x, dtype=float)
    y = _positive(curve.y) if curve.logy else np.asarray(curve.y, dtype=float)
    if curve.logx:
        x = _positive(x)
    return hv.Curve((x, y), kdim, vdim, label=label).opts(logx=curve.logx, logy=curve.logy)


def points_element(points: Points, label: str = "") -> hv.Points:
    """An ``hv.Points`` scatter of ``points``."""
    kdim, vdim = _dims(points.xlabel, points.ylabel)
    return hv.Points((np.asarray(points.x, float), np.asarray(points.y, float)), [kdim, vdim], label=label).opts(
        size=4
    )


def _evenly_spaced(a: np.ndarray) -> bool:
    if a.size < 3:
        return True
    d = np.diff(a)
    return bool(np.allclose(d, d[0], rtol=1e-6, atol=1e-12 * max(1.0, float(np.abs(a).max()))))


def _edges(c: np.ndarray) -> tuple[float, float]:
    """Outer edges of cells centred on the (evenly spaced) coordinates ``c``; width 1 for a single one."""
    lo, hi = float(np.min(c)), float(np.max(c))
    half = 0.5 * (hi - lo) / (c.size - 1) if c.size > 1 else 0.5 * (abs(lo) or 1.0)
    return lo - half, hi + half


def field_element(field: Field, label: str = "") -> hv.Image | hv.QuadMesh:
    """An ``hv.Image`` of ``field`` (an ``hv.QuadMesh`` when its coordinates are not evenly spaced)."""
    kx, ky = _dims(field.xlabel, field.ylabel)
    x, y = np.asarray(field.x, float), np.asarray(field.y, float)
    values = np.asarray(field.values, float)
    vdim = hv.Dimension(field.label if field.label not in (kx.name, ky.name) else "value", label=field.label)
    data = (x, y, values)
    if x.size < 2 or y.size < 2:  # a single row or column (e.g. a space-time plot at its first frame)
        (l, r), (b, t) = _edges(x), _edges(y)
        rows = values if y.size < 2 or y[0] > y[-1] else values[::-1]  # an array Image's first row is its top
        element = hv.Image(np.ascontiguousarray(rows), [kx, ky], vdim, bounds=(l, b, r, t), label=label)
    elif _evenly_spaced(x) and _evenly_spaced(y):
        element = hv.Image(data, [kx, ky], vdim, label=label)
    else:
        element = hv.QuadMesh(data, [kx, ky], vdim, label=label)
    return element.opts(cmap="viridis", colorbar=True)


def sample_element(obj: Curve | Points | Field, label: str = "") -> hv.Element:
    """Dispatch a frame sample or spectrum to its HoloViews element."""
    if isinstance(obj, Curve):
        return curve_element(obj, label)
    if isinstance(obj, Points):
        return points_element(obj, label)
    if isinstance(obj, Field):
        return field_element(obj, label)
    raise TypeError(f"cannot plot a {type(obj).__name__}; expected Curve, Points or Field")


def kind_of(obj: Any) -> str:
    """The kind of a plottable object ('Curve', 'Points', 'Field'), used to decide on rebuilding."""
    return type(obj).__name__


def convergence_overlay(history: dict[str, np.ndarray], earlier: list[dict], logy: bool = True,
                        xlabel: str = "time", ylabel: str = "value") -> hv.Overlay:
    """All quantities of ``history`` (``'time'`` + one array per quantity) as curves vs time.

    ``earlier`` holds earlier runs, each ``{'label': str, 'history': {...}}``, drawn dashed and
    labelled ``quantity (label)``.
    """
    kdim, vdim = hv.Dimension("time", label=xlabel), hv.Dimension("value", label=ylabel)
    fix = _positive if logy else (lambda y: np.asarray(y, dtype=float))
    curves = []
    for run in earlier:
        h = run["history"]
        for key, y in h.items():
            if key == "time":
                continue
            curves.append(
                hv.Curve((h["time"], fix(y)), kdim, vdim, label=f"{key} ({run['label']})").opts(
                    line_dash=EARLIER_RUN_DASH, alpha=0.6, line_width=1.5
                )
            )
    for key, y in history.items():
        if key == "time":
            continue
        curves.append(hv.Curve((history["time"], fix(y)), kdim, vdim, label=key).opts(line_width=2))
    if not curves:  # an empty placeholder keeps the overlay's axes
        curves.append(hv.Curve(([], []), kdim, vdim))
    return hv.Overlay(curves).opts(logy=logy, legend_position="right", responsive=True,
                                   show_grid=True, title="")


class LivePlot:
    """A HoloViews ``DynamicMap`` fed by a ``Pipe``, shown in a ``pn.pane.HoloViews``.

    ``update(obj)`` sends ``obj`` down the pipe (latest wins); ``render(obj)`` turns it into an
    element. The pane is rebuilt only when the kind of object changes.
    """

    def __init__(self, render, title: str = "", height: int = PLOT_HEIGHT, follow: bool = True,
                 kind=kind_of):
        self._render = render
        self.title = title
        self.height = height
        self.follow = follow
        self._kind_fn = kind
        self.kind: str | None = None
        self.pipe: hv.streams.Pipe | None = None
        self.dmap: hv.DynamicMap | None = None
        self.pane = pn.pane.HoloViews(None, linked_axes=False, sizing_mode="stretch_width", height=height)
        self.updates = 0

    @property
    def data(self):
        """The newest object sent to the plot (``None`` before the first)."""
        return None if self.pipe is None else self.pipe.data

    def _element(self, data):
        el = self._render(data)
        norm = dict(framewise=self.follow, axiswise=True)
        height = self.height
        if isinstance(el, hv.Overlay):
            # the legend sits to the right: make room for every entry (two columns past 12)
            entries = len(el)
            cols = 1 if entries <= 12 else 2
            height = max(height, min(LEGEND_ROW_PX * -(-entries // cols) + 80, 520))
            el = el.opts(legend_cols=cols)  # normalisation options only take effect on the overlaid elements
            for child in el:  # (axiswise=True on the children would freeze the ranges again)
                child.opts(framewise=self.follow)
            norm = {}
        self.pane.height = height
        return el.opts(title=self.title, responsive=True, height=height, show_grid=True, **norm)

    def _build(self, obj) -> None:
        self.pipe = hv.streams.Pipe(data=obj)
        self.dmap = hv.DynamicMap(self._element, streams=[self.pipe])
        self.pane.object = self.dmap

    def update(self, obj) -> None:
        """Show ``obj`` (replacing what was shown)."""
        kind = self._kind_fn(obj)
        if self.pipe is None or kind != self.kind:
            self.kind = kind
            self._build(obj)
        else:
            self.pipe.send(obj)
        self.updates += 1

    def set_follow(self, follow: bool) -> None:
        """Axes follow the newest data (``True``) or keep the user's zoom (``False``); rebuilds once."""
        if follow == self.follow:
            return
        self.follow = follow
        if self.pipe is not None:
            self._build(self.pipe.data)

    def clear(self) -> None:
        """Forget the data (the plot is rebuilt by the next update)."""
        self.pipe = self.dmap = None
        self.kind = None
        self.pane.object = None
