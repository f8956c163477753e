"""Turn :class:`~explore.core.frame.Frame` contents into HoloViews elements, and keep them live.

Frames carry plain dataclasses (:class:`Curve`, :class:`Points`, :class:`Field`); this module is the
one place that maps them to HoloViews (``hv.Curve``, ``hv.Points``, ``hv.Image``). :class:`LivePlot`
wraps one ``DynamicMap`` fed by an ``hv.streams.Pipe`` (latest wins): the plot is updated in place,
so the browser keeps its tools and the plot is not rebuilt; it is rebuilt only when the kind of
object changes (say a spectrum switches from a curve to a point cloud). Updates write straight into
the Bokeh data sources HoloViews built (streaming new rows of convergence histories), which keeps a
live page as fast as a headless run.
"""
from __future__ import annotations

import time
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend without a notebook)
import numpy as np
import panel as pn

from explore.core.frame import Curve, Field, Points

#: default plot sizes (pixels); plots stretch to the width of their column
PLOT_HEIGHT = 280
SMALL_PLOT_HEIGHT = 200
#: pixels per legend entry (legends sit right of the plot, in a small font)
LEGEND_ROW_PX = 17
LEGEND_OPTS = {"label_text_font_size": "8pt", "spacing": 0, "padding": 4, "margin": 4, "glyph_height": 12,
               "glyph_width": 20, "label_height": 12, "click_policy": "hide"}
#: line dashes of the earlier runs overlaid on the convergence plot (one per run)
EARLIER_RUN_DASHES = ("dashed", "dotted", "dotdash", "dashdot", "4 4")
#: relative padding of axes that follow the data
PADDING = 0.05
#: a plot waits at least THROTTLE × (its measured update cost) between updates
THROTTLE = 4.0
#: how plots are drawn in the browser. HoloViews asks for WebGL; without a GPU (a headless or remote
#: browser, a VM) WebGL is emulated and each redraw copies it back onto the canvas, which took half
#: of the page's main thread when streaming a 256² image. A canvas draws these plots (≤ 512² pixels,
#: ≤ 10k points) fast everywhere.
OUTPUT_BACKEND = "canvas"
#: a cleared plot keeps showing its old data this long (milliseconds) before it is emptied in the page:
#: the new run's first frame (a preview of new parameters) usually comes sooner and simply replaces
#: it, which spares the browser drawing the empty plots in between
CLEAR_DELAY_MS = 300
#: a streamed image's colour range is moved when an end moves by more than this share of its span
#: (each move makes the browser colour-map the image again, once per changed end)
COLOR_RANGE_TOLERANCE = 0.01


#: on a log axis, values at or below this are gaps: an exact zero (an empty spectral bin) and the
#: smallest positive values alike (one spectral bin floored at 1e-300 stretched the axis over ~300
#: decades and hid the curve)
LOG_FLOOR = 1e-250


def _positive(y: np.ndarray) -> np.ndarray:
    """Values for a log axis: entries at or below ``LOG_FLOOR`` (zero, negative, a lab's stand-in for
    zero) become NaN (a gap) instead of breaking the axis."""
    y = np.asarray(y, dtype=float)
    return np.where(y > LOG_FLOOR, y, np.nan)


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
    # filled square markers without an outline: a canvas draws 10k of them with about a third less of the
    # page's main thread than circles (streaming benchmark: long tasks 37-43 % vs 61-62 %)
    return hv.Points((np.asarray(points.x, float), np.asarray(points.y, float)), [kdim, vdim], label=label).opts(
        size=4, line_color=None, marker="square"
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


def image_data(field: Field) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The rows of ``field`` bottom-up (as a Bokeh image wants them, float32) and its (l, b, r, t) edges."""
    x, y = np.asarray(field.x, float), np.asarray(field.y, float)
    img = np.asarray(field.values)
    if y.size > 1 and y[0] > y[-1]:
        img = img[::-1]
    if x.size > 1 and x[0] > x[-1]:
        img = img[:, ::-1]
    (l, r), (b, t) = _edges(x), _edges(y)
    return np.ascontiguousarray(img, dtype=np.float32), (l, b, r, t)


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
    """What decides on rebuilding a plot: the type of object, its axis labels and log scales, and
    for fields whether they are drawn as an image (evenly spaced) or a mesh."""
    name = type(obj).__name__
    if isinstance(obj, Curve):
        return f"{name}|{obj.xlabel}|{obj.ylabel}|{obj.logx}|{obj.logy}"
    if isinstance(obj, Points):
        return f"{name}|{obj.xlabel}|{obj.ylabel}"
    if isinstance(obj, Field):
        x, y = np.asarray(obj.x), np.asarray(obj.y)
        mesh = x.size >= 2 and y.size >= 2 and not (_evenly_spaced(x) and _evenly_spaced(y))
        return f"{name}|{obj.xlabel}|{obj.ylabel}|{obj.label}|{'mesh' if mesh else 'image'}"
    return name


def _colors() -> list[str]:
    """20 colours: Category10, then the light shades of Category20 (a lab may plot ~20 diagnostics)."""
    from bokeh.palettes import Category10_10, Category20_20

    return list(Category10_10) + list(Category20_20[1::2])


def convergence_overlay(history: dict[str, np.ndarray], earlier: list[dict], logy: bool = True,
                        xlabel: str = "time", ylabel: str = "value") -> hv.Overlay:
    """All quantities of ``history`` (``'time'`` + one array per quantity) as curves vs time.

    ``earlier`` holds earlier runs, each ``{'label': str, 'history': {...}}``. A quantity has one
    colour in every run; the current run is solid and labelled by quantity, each earlier run has its
    own dash and one legend entry naming its differing parameters (so the legend grows by runs, not
    by runs × quantities).
    """
    kdim, vdim = hv.Dimension("time", label=xlabel), hv.Dimension("value", label=ylabel)
    fix = _positive if logy else (lambda y: np.asarray(y, dtype=float))
    names = list(dict.fromkeys(k for h in [history, *(r["history"] for r in earlier)] for k in h if k != "time"))
    palette = _colors()
    color = {k: palette[i % len(palette)] for i, k in enumerate(names)}
    curves = []
    for i, run in enumerate(earlier):
        h = run["history"]
        dash = EARLIER_RUN_DASHES[i % len(EARLIER_RUN_DASHES)]
        for key, y in h.items():
            if key == "time":
                continue
            curves.append(
                hv.Curve((h["time"], fix(y)), kdim, vdim, label=str(run["label"])).opts(
                    color=color[key], line_dash=dash, alpha=0.6, line_width=1.5
                )
            )
    for key, y in history.items():
        if key == "time":
            continue
        curves.append(hv.Curve((history["time"], fix(y)), kdim, vdim, label=key).opts(
            color=color[key], line_width=2))
    if not curves:  # an empty placeholder keeps the overlay's axes
        curves.append(hv.Curve(([], []), kdim, vdim))
    return hv.Overlay(curves).opts(logy=logy, legend_position="right", responsive=True,
                                   show_grid=True, title="", legend_opts=dict(LEGEND_OPTS))


def _finite_extent(*arrays: np.ndarray, log: bool = False) -> tuple[float, float] | None:
    """(min, max) of the finite (and, on a log axis, positive) values of ``arrays``; ``None`` if none."""
    lo, hi = np.inf, -np.inf
    for a in arrays:
        a = np.asarray(a, dtype=float)
        a = a[np.isfinite(a) & (a > LOG_FLOOR)] if log else a[np.isfinite(a)]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    return None if lo > hi else (lo, hi)


def _merged(a: tuple[float, float] | None, b: tuple[float, float] | None) -> tuple[float, float] | None:
    """The extent covering both ``a`` and ``b`` (either may be ``None``)."""
    if a is None or b is None:
        return a if b is None else b
    return min(a[0], b[0]), max(a[1], b[1])


def _padded(extent: tuple[float, float] | None, log: bool = False, padding: float = PADDING):
    if extent is None:
        return None
    lo, hi = extent
    if log:
        lo, hi = np.log10(lo), np.log10(hi)
    span = hi - lo
    if span == 0:
        span = abs(lo) if lo else 1.0
    lo, hi = lo - padding * span, hi + padding * span
    return (10**lo, 10**hi) if log else (lo, hi)


def _is_log(plot, axis: str) -> bool:
    """Whether the Bokeh figure of a HoloViews element plot has a log ``axis`` ('x' or 'y')."""
    from bokeh.models import LogScale

    figure = plot.handles.get("plot")
    return isinstance(getattr(figure, f"{axis}_scale", None), LogScale)


class LivePlot:
    """A HoloViews ``DynamicMap`` fed by a ``Pipe``, shown in a ``pn.pane.HoloViews``, updated cheaply.

    ``update(obj)`` shows ``obj`` (latest wins); ``render(obj)`` turns it into an element. HoloViews
    builds the plot (tools, axes, colour bar, legend) once per kind of object; after that the data
    goes straight into the Bokeh data sources the plot was built on (a hook records them), so an
    update costs ~1 ms instead of a HoloViews re-render of ~50 ms and zoom/pan survive:

    - a sample (curve, points, image) replaces its source's columns;
    - a history overlay (``{'history': ..., 'earlier': [...]}``) *streams* only the new rows of the
      current run's curves (``ColumnDataSource.stream``); a new set of curves (a new run, a new
      earlier run) goes through HoloViews once.

    Heavy plots are throttled adaptively: an update is deferred (latest wins) while less than
    ``throttle`` × its measured cost has passed since the previous one; :meth:`flush` sends it.
    """

    def __init__(self, render, title: str = "", height: int = PLOT_HEIGHT, follow: bool = True,
                 kind=None, name: str | None = None, throttle: float = THROTTLE):
        self._render = render
        self.title = title
        self.height = height
        self.follow = follow
        self._kind_fn = kind or kind_of
        #: the Bokeh data sources are named ``{name}`` (samples) or ``{name}:{label}`` (overlay curves)
        self.name = name
        self.throttle = throttle
        self.kind: str | None = None
        self.pipe: hv.streams.Pipe | None = None
        self.dmap: hv.DynamicMap | None = None
        self.pane = pn.pane.HoloViews(None, linked_axes=False, sizing_mode="stretch_width", height=height)
        self.updates = 0  # objects given to update()
        self.sent = 0  # objects that reached the plot (fast or full)
        self.full_updates = 0  # of which through HoloViews
        self._targets: dict[int, tuple[Any, str]] = {}  # id(plot) -> (HoloViews element plot, element label)
        self._rows_shown = 0
        self._signature = None
        self._pending = None
        self._has_pending = False
        self._last_sent = 0.0
        self._cost = 0.0
        self._cleared = False  # clear() emptied the sources of the built figure (no data until the next update)
        self._restream = False  # the history curves' sources were emptied: stream from the first row
        self._extents = None  # (logy, x extent, y extent) of the history curves drawn (streamed updates)
        self._empty_token = None  # a scheduled emptying of the sources (cancelled by any update)

    @property
    def data(self):
        """The newest object given to the plot (``None`` before the first)."""
        if self._has_pending:
            return self._pending
        return None if self.pipe is None or self._cleared else self.pipe.data

    # ------------------------------------------------------------------ building
    def _hook(self, plot, element) -> None:
        source = plot.handles.get("source")
        if source is not None and self.name:
            source.name = f"{self.name}:{element.label}" if getattr(plot, "overlaid", False) else self.name
        self._targets[id(plot)] = (plot, element.label)
        figure = plot.handles.get("plot")
        if figure is not None and hasattr(figure, "output_backend"):
            figure.output_backend = OUTPUT_BACKEND

    def _element(self, data):
        el = self._render(data)
        norm = dict(framewise=self.follow, axiswise=True)
        height = self.height
        if isinstance(el, hv.Overlay):
            # the legend sits to the right: make room for every entry (two columns past 14)
            entries = len({c.label for c in el})
            cols = 1 if entries <= 14 else 2
            height = max(height, min(LEGEND_ROW_PX * -(-entries // cols) + 70, 480))
            el = el.opts(legend_cols=cols)  # normalisation options only take effect on the overlaid elements
            for child in el:  # (axiswise=True on the children would freeze the ranges again)
                child.opts(framewise=self.follow, hooks=[self._hook])
            norm = {}
        else:
            el = el.opts(hooks=[self._hook])
        self.pane.height = height
        return el.opts(title=self.title, responsive=True, height=height, show_grid=True, **norm)

    def _build(self, obj) -> None:
        self._targets = {}
        self._empty_token = None
        self._cleared = self._restream = False
        self._extents = None
        self._signature = self._signature_of(obj)
        self._rows_shown = self._rows_of(obj)
        self.pipe = hv.streams.Pipe(data=obj)
        # memoize=False: a re-render (a new browser view, a resize) always shows the newest data
        self.dmap = hv.DynamicMap(hv.core.spaces.Callable(self._element, memoize=False), streams=[self.pipe])
        self.pane.object = self.dmap
        self.full_updates += 1

    @staticmethod
    def _signature_of(obj):
        if isinstance(obj, dict) and "history" in obj:
            return (tuple(k for k in obj["history"] if k != "time"),
                    tuple((run["label"], id(run["history"])) for run in obj.get("earlier", [])))
        return None

    @staticmethod
    def _rows_of(obj) -> int:
        if isinstance(obj, dict) and "history" in obj:
            return len(obj["history"].get("time", ()))
        return 0

    # ------------------------------------------------------------------ updating
    def update(self, obj, force: bool = False) -> None:
        """Show ``obj`` (replacing what was shown); deferred while the plot is throttled unless ``force``."""
        self.updates += 1
        kind = (self._kind_fn(obj), self._signature_of(obj))  # a new set of overlaid curves: a new plot
        if kind != self.kind and self._empty_run(obj, kind):
            return
        if self.pipe is None or kind != self.kind:
            self.kind = kind
            self._has_pending, self._pending = False, None
            self._build(obj)
            self.sent += 1
            self._last_sent = time.monotonic()
            return
        if not force and time.monotonic() - self._last_sent < self.throttle * self._cost:
            self._pending, self._has_pending = obj, True
            return
        self._send(obj)

    def flush(self, force: bool = True) -> bool:
        """Send a deferred update now (``force``) or when due; whether one was sent."""
        if not self._has_pending:
            return False
        if not force and time.monotonic() - self._last_sent < self.throttle * self._cost:
            return False
        obj, self._pending, self._has_pending = self._pending, None, False
        self._send(obj)
        return True

    def _send(self, obj) -> None:
        self._pending, self._has_pending = None, False
        self._empty_token = None  # a scheduled emptying would wipe this update
        t0 = time.perf_counter()
        fast = False
        if self._targets:  # rendered: write into its Bokeh sources
            try:
                fast = self._fast_update(obj)
            except Exception:  # anything unexpected: let HoloViews redraw
                fast = False
        if fast:
            self.pipe.update(data=obj)
            self._cleared = self._restream = False
            self._push()
        else:
            self._targets = {}
            self._cleared = self._restream = False
            self._extents = None
            self._signature = self._signature_of(obj)
            self._rows_shown = self._rows_of(obj)
            self.pipe.send(obj)
            self.full_updates += 1
        self.sent += 1
        cost = time.perf_counter() - t0
        self._cost = cost if not self._cost else 0.7 * self._cost + 0.3 * cost
        self._last_sent = time.monotonic()

    def _live_targets(self):
        return [(plot, label) for plot, label in self._targets.values()
                if plot.handles.get("source") is not None and plot.document is not None]

    def _fast_update(self, obj) -> bool:
        targets = self._live_targets()
        if not targets:
            return False
        if isinstance(obj, dict) and "history" in obj:
            return self._stream_history(obj, targets)
        if isinstance(obj, (Curve, Points)):
            xs, ys = np.asarray(obj.x, dtype=float), np.asarray(obj.y, dtype=float)
            if isinstance(obj, Curve):
                xs = _positive(xs) if obj.logx else xs
                ys = _positive(ys) if obj.logy else ys
            cols = [d.name for d in _dims(obj.xlabel, obj.ylabel)]
            if any(set(plot.handles["source"].data) != set(cols) for plot, _ in targets):
                return False
            for plot, _ in targets:
                plot.handles["source"].data = {cols[0]: xs, cols[1]: ys}
                if self.follow:
                    logx, logy = _is_log(plot, "x"), _is_log(plot, "y")
                    self._set_range(plot, "x_range", _padded(_finite_extent(xs, log=logx), logx))
                    self._set_range(plot, "y_range", _padded(_finite_extent(ys, log=logy), logy))
            return True
        if isinstance(obj, Field) and self.kind is not None and str(self.kind[0]).endswith("|image"):
            if any(set(plot.handles["source"].data) != {"image", "x", "y", "dw", "dh"} for plot, _ in targets):
                return False
            img, (l, b, r, t) = image_data(obj)
            extent = _finite_extent(img)
            for plot, _ in targets:
                rows = img[::-1] if getattr(plot, "invert_yaxis", False) else img
                plot.handles["source"].data = {"image": [rows], "x": [l], "y": [b], "dw": [r - l], "dh": [t - b]}
                if self.follow:
                    self._set_range(plot, "x_range", (l, r))
                    self._set_range(plot, "y_range", (b, t))
                    self._set_color_range(plot.handles.get("color_mapper"), extent)
            return True
        return False

    def _stream_history(self, obj, targets) -> bool:
        history, earlier = obj["history"], obj.get("earlier", [])
        if self._signature_of(obj) != self._signature or not (self._rows_shown or self._restream):
            return False
        n0, n1 = self._rows_shown, len(history["time"])
        if n1 < n0:
            return False
        keys = [k for k in history if k != "time"]
        by_label: dict[str, list] = {}
        for plot, label in targets:
            by_label.setdefault(label, []).append(plot)
        if any(k not in by_label for k in keys):
            return False
        logy = _is_log(targets[0][0], "y")
        if n1 > n0 or self._restream:
            t = np.asarray(history["time"][n0:n1], dtype=float)
            for key in keys:
                y = np.asarray(history[key][n0:n1], dtype=float)
                if logy:
                    y = _positive(y)
                for plot in by_label[key]:
                    if self._restream:  # the sources may still hold the previous run (emptied later)
                        plot.handles["source"].data = {"time": t, "value": y}
                    else:
                        plot.handles["source"].stream({"time": t, "value": y})
        self._rows_shown = n1
        if self.follow:
            # extents of everything drawn, kept up to date with the new rows only (not recomputed over
            # the whole history at every push: a long run has ~10^5 rows)
            if self._extents is None or self._extents[0] != logy:
                runs = [{k: v[:n0] for k, v in history.items()}, *(r["history"] for r in earlier)]
                self._extents = (logy, _finite_extent(*(h["time"] for h in runs)),
                                 _finite_extent(*(v for h in runs for k, v in h.items() if k != "time"), log=logy))
            if n1 > n0:
                new_x = _finite_extent(history["time"][n0:n1])
                new_y = _finite_extent(*(history[k][n0:n1] for k in keys), log=logy)
                self._extents = (logy, _merged(self._extents[1], new_x), _merged(self._extents[2], new_y))
            x, y = self._extents[1], self._extents[2]
            plot = targets[0][0]
            self._set_range(plot, "x_range", _padded(x, False))
            self._set_range(plot, "y_range", _padded(y, logy))
        return True

    @staticmethod
    def _set_color_range(mapper, extent, tolerance: float = COLOR_RANGE_TOLERANCE) -> None:
        """Follow the data's range with a colour mapper, ignoring moves below ``tolerance`` of the span."""
        if mapper is None or extent is None or not hasattr(mapper, "low"):
            return
        lo, hi = extent[0], max(extent[1], extent[0] + 1e-12)
        old_lo, old_hi = mapper.low, mapper.high
        if old_lo is not None and old_hi is not None:
            slack = tolerance * (hi - lo)
            if abs(old_lo - lo) <= slack and abs(old_hi - hi) <= slack:
                return
        mapper.update(low=lo, high=hi)

    @staticmethod
    def _set_range(plot, which: str, extent) -> None:
        rng = plot.handles.get(which)
        if extent is None or rng is None or not hasattr(rng, "start"):
            return
        lo, hi = extent
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        if rng.start != lo or rng.end != hi:
            rng.update(start=lo, end=hi)

    def _push(self) -> None:
        """In a notebook, send the changed Bokeh models through the plot's comm (the server does it itself)."""
        done = set()
        for plot, _ in self._targets.values():
            if plot.comm is None or id(plot.document) in done:
                continue
            done.add(id(plot.document))
            try:
                plot.push()
            except Exception:
                pass

    def set_follow(self, follow: bool) -> None:
        """Axes follow the newest data (``True``) or keep the user's zoom (``False``); rebuilds once."""
        if follow == self.follow:
            return
        self.follow = follow
        if self.pipe is not None:
            if self._cleared:  # nothing to show: the next update builds the plot
                self._forget()
            else:
                self._build(self.data)

    def clear(self) -> None:
        """Forget the data.

        A plot shown in a page keeps its figure (tools, axes, colour bar, legend) and has its data
        sources emptied (in a served page after ``CLEAR_DELAY_MS``, unless new data come first), so the
        next object of the same kind (a new run, the preview of new parameters) is a cheap update
        instead of a HoloViews re-render (~30-100 ms a plot); an object of another kind rebuilds it as
        usual. A plot not (yet) shown, or an overlay with earlier runs, is reset instead.
        """
        self._pending, self._has_pending = None, False
        targets = self._live_targets() if self._targets else []
        earlier = self._signature is not None and bool(self._signature[1])  # their curves would not come back
        if targets and self.kind is not None and not earlier:
            self._cleared = self._restream = True
            self._rows_shown = 0
            self._extents = None
            self._empty_later(None)
            return
        self._forget()

    def _empty_later(self, labels: set | None) -> None:
        """Empty the sources (of the curves labelled ``labels``; all if ``None``) now, or in a served
        page after ``CLEAR_DELAY_MS`` unless an update comes first."""
        def empty(token=None):
            if token is not None and token is not self._empty_token:
                return  # an update came first: it replaced the data
            self._empty_token = None
            for plot, label in self._live_targets():
                if labels is None or label in labels:
                    try:
                        source = plot.handles["source"]
                        source.data = {k: [] for k in source.data}
                    except Exception:  # noqa: BLE001 - a plot being torn down
                        pass
            self._push()

        doc = pn.state.curdoc
        if doc is None or getattr(doc, "session_context", None) is None:
            empty()
            return
        token = self._empty_token = object()
        try:
            doc.add_timeout_callback(lambda: empty(token), CLEAR_DELAY_MS)
        except Exception:  # noqa: BLE001
            empty()

    def _empty_run(self, obj, kind) -> bool:
        """A history overlay whose current run is empty (a new run starting) while the same earlier runs
        are drawn: empty the current run's curves instead of rebuilding the overlay without them (they
        come back with the next row). Whether it was handled so."""
        if (not (isinstance(obj, dict) and "history" in obj) or self.kind is None or self._signature is None
                or kind[0] != self.kind[0] or self._rows_of(obj) or not self._targets):
            return False
        signature = self._signature_of(obj)
        if signature[1] != self._signature[1] or any(k != "time" for k in obj["history"]):
            return False
        current = set(self._signature[0])
        if not any(label in current for _, label in self._live_targets()):
            return False
        self._pending, self._has_pending = None, False
        self._rows_shown = 0
        self._restream = True  # the current curves get their rows again from the first one
        self._extents = None
        self.pipe.update(data=obj)
        self._empty_later(current)
        return True

    def _forget(self) -> None:
        self._empty_token = None
        self.pipe = self.dmap = None
        self.kind = None
        self._targets = {}
        self._signature = None
        self._cleared = self._restream = False
        self._extents = None
        self._pending, self._has_pending = None, False
        self.pane.object = None
