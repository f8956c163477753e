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
from dataclasses import dataclass
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the Bokeh backend without a notebook)
import numpy as np
import panel as pn
from bokeh.models import CDSView, CustomJSFilter, CustomJSTicker, CustomJSTickFormatter, Line, LogScale

from explore.core.frame import Curve, Field, Points

#: default plot sizes (pixels); plots stretch to the width of their column
PLOT_HEIGHT = 280
SMALL_PLOT_HEIGHT = 200
#: a sample drawn at its data's aspect (a field, a point cloud asking for equal axes) has a fixed frame
#: (its data area, pixels): the largest of the data's aspect inside this (width, height) box whose
#: shorter side is at most ``ASPECT_SHORT_SIDE``. A fixed frame keeps the aspect exact (the column's
#: width in the browser is not known here; a frame that stretched with it would need its height set
#: from the browser). With its axis, colour bar and toolbar (~160 px) a square field's plot is about as
#: wide as the other samples' 420-pixel panes (two side by side in the main column of a 1400-pixel-wide
#: window); a wide one (a 2:1 channel) takes the box's width, one a row there, two in a wider window
ASPECT_BOX = (400, 240)
ASPECT_SHORT_SIDE = 230
#: no side of such a frame is drawn thinner than this: a field of more extreme aspect is stretched to it
#: (a readable strip matters more there than the exact shape, which equal axes would shrink to a line)
MIN_FRAME_SIDE = 32
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
#: a curve's points that have no finite neighbour (a series with one value so far, a value between
#: gaps) draw no line: they get a marker of this size (pixels), drawn in the browser from the curve's
#: own data source, so streamed rows need nothing more
ISOLATED_MARKER_SIZE = 6
#: which rows of a line's source are isolated (``x``/``y``: the glyph's columns); a ``CustomJSFilter``
#: runs it whenever the source changes or streams
ISOLATED_JS = """
const xs = source.data[x], ys = source.data[y], n = ys.length, out = [];
const ok = (i) => i >= 0 && i < n && Number.isFinite(xs[i]) && Number.isFinite(ys[i]);
for (let i = 0; i < n; i++) {
  if (ok(i) && !ok(i - 1) && !ok(i + 1)) out.push(i);
}
return out;
"""


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


def _columns(dims, arrays) -> dict:
    """The Bokeh source columns HoloViews builds for ``dims``: each dimension's name, and for a name
    that is not an identifier (``mean density``, ``E(k)``) its sanitized twin too (the hover tool's)."""
    from holoviews.core.util import dimension_sanitizer

    columns = {}
    for dim, values in zip(dims, arrays):
        columns[dim.name] = columns[dimension_sanitizer(dim.name)] = values
    return columns


def curve_element(curve: Curve, label: str = "") -> hv.Curve:
    """An ``hv.Curve`` of ``curve``, on log axes where the curve asks for them (a vertical curve:
    its x up the page)."""
    kdim, vdim = _dims(curve.xlabel, curve.ylabel)
    x = np.asarray(curve.x, dtype=float)
    y = _positive(curve.y) if curve.logy else np.asarray(curve.y, dtype=float)
    if curve.logx:
        x = _positive(x)
    if curve.vertical:  # (HoloViews' log options name the screen's axes)
        return hv.Curve((x, y), kdim, vdim, label=label).opts(
            invert_axes=True, logx=curve.logy, logy=curve.logx, tools=["hover"])
    return hv.Curve((x, y), kdim, vdim, label=label).opts(logx=curve.logx, logy=curve.logy, tools=["hover"])


def aspect_frame(xspan: float, yspan: float, box: tuple[int, int] = ASPECT_BOX) -> tuple[int, int, bool]:
    """(width, height) in pixels of the largest frame of aspect ``yspan / xspan`` inside ``box`` with its
    shorter side at most ``ASPECT_SHORT_SIDE``, and whether it has that aspect (``False``: a side was
    held at ``MIN_FRAME_SIDE``, the data stretched to it). A degenerate span counts as square."""
    if not (np.isfinite(xspan) and np.isfinite(yspan) and xspan > 0 and yspan > 0):
        xspan = yspan = 1.0
    # pixels per data unit
    scale = min(box[0] / xspan, box[1] / yspan, ASPECT_SHORT_SIDE / min(xspan, yspan))
    width, height = round(xspan * scale), round(yspan * scale)
    exact = min(width, height) >= MIN_FRAME_SIDE
    return max(MIN_FRAME_SIDE, width), max(MIN_FRAME_SIDE, height), exact


def _equal_scale(x: tuple[float, float], y: tuple[float, float], width: int, height: int):
    """The ranges around ``x`` and ``y`` (widened about their centres) in which a unit of x and a unit
    of y are equally long on a ``width`` × ``height`` pixel frame."""
    per_px = max((x[1] - x[0]) / width, (y[1] - y[0]) / height)
    if not per_px > 0:
        return x, y
    cx, cy, hw, hh = 0.5 * (x[0] + x[1]), 0.5 * (y[0] + y[1]), 0.5 * per_px * width, 0.5 * per_px * height
    return (cx - hw, cx + hw), (cy - hh, cy + hh)


def points_element(points: Points, label: str = "") -> hv.Points:
    """An ``hv.Points`` scatter of ``points``; on a square frame with equal axes if it asks for them."""
    kdim, vdim = _dims(points.xlabel, points.ylabel)
    xs, ys = np.asarray(points.x, float), np.asarray(points.y, float)
    # filled square markers without an outline: a canvas draws 10k of them with about a third less of the
    # page's main thread than circles (streaming benchmark: long tasks 37-43 % vs 61-62 %)
    element = hv.Points((xs, ys), [kdim, vdim], label=label).opts(size=4, line_color=None, marker="square")
    if points.equal_aspect:  # (a cloud's extent changes every frame: the frame stays, the ranges follow)
        width, height, _ = aspect_frame(1.0, 1.0)
        element = element.opts(data_aspect=1, frame_width=width, frame_height=height)
        # the padded ranges that streamed updates set (LivePlot._set_ranges), from the first drawing on:
        # HoloViews' own equal-aspect ranges leave no margin, so points on the extreme sat on the frame's
        # edge (a stability region drawn once and never streamed kept them)
        x, y = _padded(_finite_extent(xs)), _padded(_finite_extent(ys))
        if x is not None and y is not None:
            x, y = _equal_scale(x, y, width, height)
            element = element.opts(xlim=x, ylim=y)
    return element


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


def field_frame(field: Field) -> tuple[int, int, bool] | None:
    """The fixed frame of a field drawn at its domain's aspect (see :func:`aspect_frame`); ``None`` if
    the field does not ask for it."""
    if not field.equal_aspect:
        return None
    (l, r), (b, t) = _edges(np.asarray(field.x, float)), _edges(np.asarray(field.y, float))
    return aspect_frame(r - l, t - b)


def field_element(field: Field, label: str = "") -> hv.Image | hv.QuadMesh:
    """An ``hv.Image`` of ``field`` (an ``hv.QuadMesh`` when its coordinates are not evenly spaced),
    drawn at the aspect of its domain unless it says otherwise."""
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
    element = element.opts(cmap="viridis", colorbar=True)
    frame = field_frame(field)
    if frame is not None:
        width, height, exact = frame
        aspect = {"data_aspect": 1} if exact else {}  # (a side held at MIN_FRAME_SIDE: stretched instead)
        element = element.opts(frame_width=width, frame_height=height, **aspect)
    return element


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


@dataclass(frozen=True)
class Joined:
    """Curves drawn on one plot's axes: a sample, then the samples a lab joins to it
    (:attr:`~explore.core.lab.Lab.sample_overlays`), dashed; the legend names each by its y label."""

    curves: tuple[Curve, ...]


def sample_element(obj: Curve | Points | Field | Joined, label: str = "") -> hv.Element:
    """Dispatch a frame sample or spectrum to its HoloViews element."""
    if isinstance(obj, Joined):
        return hv.Overlay([curve_element(c, c.ylabel).opts(line_dash="solid" if i == 0 else "dashed")
                           for i, c in enumerate(obj.curves)]).opts(legend_position="bottom_left")
    if isinstance(obj, Curve):
        return curve_element(obj, label)
    if isinstance(obj, Points):
        return points_element(obj, label)
    if isinstance(obj, Field):
        return field_element(obj, label)
    raise TypeError(f"cannot plot a {type(obj).__name__}; expected Curve, Points or Field")


def kind_of(obj: Any) -> str:
    """What decides on rebuilding a plot: the type of object, its axis labels and log scales, equal
    axes, and for fields whether they are drawn as an image (evenly spaced) or a mesh, and their frame
    (a field of another aspect needs another frame)."""
    name = type(obj).__name__
    if isinstance(obj, Joined):  # (drawn through HoloViews at every update: two curves, a few per run)
        return "|".join([name, *(kind_of(c) for c in obj.curves)])
    if isinstance(obj, Curve):
        return f"{name}|{obj.xlabel}|{obj.ylabel}|{obj.logx}|{obj.logy}|{'vertical' if obj.vertical else ''}"
    if isinstance(obj, Points):
        return f"{name}|{obj.xlabel}|{obj.ylabel}|{'equal' if obj.equal_aspect else 'free'}"
    if isinstance(obj, Field):
        x, y = np.asarray(obj.x), np.asarray(obj.y)
        mesh = x.size >= 2 and y.size >= 2 and not (_evenly_spaced(x) and _evenly_spaced(y))
        return f"{name}|{obj.xlabel}|{obj.ylabel}|{obj.label}|{field_frame(obj)}|{'mesh' if mesh else 'image'}"
    return name


def _colors() -> list[str]:
    """20 colours: Category10, then the light shades of Category20 (a lab may plot ~20 diagnostics)."""
    from bokeh.palettes import Category10_10, Category20_20

    return list(Category10_10) + list(Category20_20[1::2])


#: how a history overlay's y axis shows its curves: "log" (positive values on a log axis, the rest are
#: gaps: convergence quantities), "linear", "abs_log" (|value| on a log axis: every magnitude readable,
#: signs lost) and "normalized" (each curve divided by its largest |value| so far: every curve spans
#: the same height, whatever its size; the shapes, not the values, are read)
Y_SCALES = ("log", "linear", "abs_log", "normalized")


def _peak(y: np.ndarray) -> float:
    """The largest finite |value| of ``y`` (0 where there is none)."""
    a = np.abs(np.asarray(y, dtype=float))
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else 0.0


def _divisor(peak: float) -> float:
    """The scale of a "normalized" curve whose largest |value| is ``peak`` (1 for a curve of zeros)."""
    return peak if peak > 0 else 1.0


def _scaled(y: np.ndarray, scale: str, divisor: float = 1.0) -> np.ndarray:
    """The values of a curve as drawn on a y axis of ``scale`` (see ``Y_SCALES``)."""
    y = np.asarray(y, dtype=float)
    if scale == "log":
        return _positive(y)
    if scale == "abs_log":
        return _positive(np.abs(y))
    if scale == "normalized":
        return y / divisor
    return y


def convergence_overlay(history: dict[str, np.ndarray], earlier: list[dict], logy: bool = True,
                        xlabel: str = "time", ylabel: str = "value", scale: str | None = None,
                        legend: str = "right", order: list[str] | None = None) -> hv.Overlay:
    """All quantities of ``history`` (``'time'`` + one array per quantity) as curves vs time.

    ``earlier`` holds earlier runs, each ``{'label': str, 'history': {...}}``. A quantity has one
    colour in every run; the current run is solid and labelled by quantity, each earlier run has its
    own dash and one legend entry naming its differing parameters (so the legend grows by runs, not
    by runs × quantities). ``scale`` (one of ``Y_SCALES``; default ``"log"`` if ``logy`` else
    ``"linear"``) says how the y axis shows them. ``legend``: ``"right"`` of the plot, or ``"bottom"``
    (below it, two columns: a plot that shares its row keeps its width for the curves). ``order``: the
    names whose positions pick the colours (all the quantities, when ``history`` holds some of them:
    a quantity keeps its colour whichever of them are drawn).
    """
    scale = scale or ("log" if logy else "linear")
    if scale not in Y_SCALES:
        raise ValueError(f"unknown y scale {scale!r}; choose one of {', '.join(Y_SCALES)}")
    logy = scale in ("log", "abs_log")
    kdim, vdim = hv.Dimension("time", label=xlabel), hv.Dimension("value", label=ylabel)

    def fix(y):
        return _scaled(y, scale, _divisor(_peak(y)) if scale == "normalized" else 1.0)

    names = list(dict.fromkeys(k for h in [history, *(r["history"] for r in earlier)] for k in h if k != "time"))
    palette = _colors()
    ranked = list(dict.fromkeys([*(order or []), *names]))
    color = {k: palette[i % len(palette)] for i, k in enumerate(ranked)}
    curves, drawn = [], []
    for i, run in enumerate(earlier):
        h = run["history"]
        dash = EARLIER_RUN_DASHES[i % len(EARLIER_RUN_DASHES)]
        for key, y in h.items():
            if key == "time":
                continue
            drawn.append(fix(y))
            curves.append(
                hv.Curve((h["time"], drawn[-1]), kdim, vdim, label=str(run["label"])).opts(
                    color=color[key], line_dash=dash, alpha=0.6, line_width=1.5, tools=["hover"]
                )
            )
    for key, y in history.items():
        if key == "time":
            continue
        drawn.append(fix(y))
        curves.append(hv.Curve((history["time"], drawn[-1]), kdim, vdim, label=key).opts(
            color=color[key], line_width=2, tools=["hover"]))  # (a value is read by pointing at it)
    if not curves:  # an empty placeholder keeps the overlay's axes
        curves.append(hv.Curve(([], []), kdim, vdim))
    # padded like the streamed ranges (``LivePlot._stream_history``): a marker at the last time is
    # not cut in half by the plot's edge
    overlay = hv.Overlay(curves).opts(logy=logy, legend_position=legend, responsive=True, padding=PADDING,
                                      show_grid=True, title="", legend_opts=dict(LEGEND_OPTS))
    # on a log axis the y range is given: HoloViews pads a single value (a first frame) down to 0 or
    # below on its own, and warns for the log axis
    y_range = _padded(_finite_extent(*drawn, log=True), log=True) if logy else None
    return overlay.opts(ylim=y_range) if y_range is not None else overlay


#: tick positions of a log axis (Bokeh's ``LogTicker`` puts linear ticks on a log axis spanning under
#: two decades: a curve between 1e-3 and 2e-2 had labels at 0.005, 0.01, 0.015, 0.02 only). Powers of
#: ten when the axis spans decades (every k-th: ~3–8 labels), 1-2-5 within about one to two decades,
#: more mantissas below that, and evenly spaced values on a span too short for those.
LOG_TICKS_JS = """
const lo = Math.min(cb_data.start, cb_data.end), hi = Math.max(cb_data.start, cb_data.end);
if (!(lo > 0) || !Number.isFinite(hi) || !(hi > lo)) return [];
const decades = Math.log10(hi / lo), ticks = [];
const e0 = Math.floor(Math.log10(lo)), e1 = Math.ceil(Math.log10(hi));
if (decades > 2.5) {
  const every = Math.max(1, Math.ceil(decades / 8));
  for (let e = e0; e <= e1; e++) {
    const t = Number(`1e${e}`);
    if (((e % every) + every) % every == 0 && t >= lo && t <= hi) ticks.push(t);
  }
  return ticks;
}
const mantissas = decades > 1 ? [1, 2, 5] : decades > 0.5 ? [1, 2, 3, 5, 7] : [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9];
for (let e = e0; e <= e1; e++)
  for (const m of mantissas) { const t = Number(`${m}e${e}`); if (t >= lo && t <= hi) ticks.push(t); }
if (ticks.length >= 3) return ticks;
const raw = (hi - lo) / 4, unit = Number(`1e${Math.floor(Math.log10(raw))}`);
const step = [1, 2, 5, 10].map((m) => m * unit).find((v) => v >= raw * (1 - 1e-9));
const out = [];
for (let k = Math.ceil(lo / step); k * step <= hi; k++) out.push(Number((k * step).toPrecision(12)));
return out;
"""
#: minor ticks of such an axis: 2–9 × each power of ten where the axis spans at most six decades
LOG_MINOR_TICKS_JS = """
const lo = Math.min(cb_data.start, cb_data.end), hi = Math.max(cb_data.start, cb_data.end);
if (!(lo > 0) || !Number.isFinite(hi) || !(hi > lo) || Math.log10(hi / lo) > 6) return [];
const out = [];
for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
  for (let m = 1; m <= 9; m++) { const t = Number(`${m}e${e}`); if (t >= lo && t <= hi) out.push(t); }
return out;
"""
#: labels of those ticks: 10⁻⁵ when every tick is a power of ten; otherwise 0.002 or 2e-5 (a
#: non-power labelled by its rounded exponent, as Bokeh's LogTickFormatter can, would be wrong)
LOG_TICK_LABELS_JS = """
const sup = {"-": "\u207b", "0": "\u2070", "1": "\u00b9", "2": "\u00b2", "3": "\u00b3", "4": "\u2074",
             "5": "\u2075", "6": "\u2076", "7": "\u2077", "8": "\u2078", "9": "\u2079"};
const power = (t) => Math.abs(t / Number(`1e${Math.round(Math.log10(t))}`) - 1) < 1e-9;
if (ticks.every(power)) {
  const e = Math.round(Math.log10(tick));
  return e == 0 ? "1" : e == 1 ? "10" : "10" + [...String(e)].map((c) => sup[c]).join("");
}
const a = Math.abs(tick);
return a >= 1e-3 && a < 1e4 ? String(Number(tick.toPrecision(6))) : Number(tick.toPrecision(6)).toExponential();
"""


def _log_ticks(figure) -> None:
    """Ticks and labels of the figure's log axes from ``LOG_TICKS_JS`` and ``LOG_TICK_LABELS_JS``."""
    for scale, axes in ((figure.x_scale, figure.xaxis), (figure.y_scale, figure.yaxis)):
        if not isinstance(scale, LogScale):
            continue
        for axis in axes:
            if isinstance(axis.ticker, CustomJSTicker):
                continue
            axis.ticker = CustomJSTicker(major_code=LOG_TICKS_JS, minor_code=LOG_MINOR_TICKS_JS)
            axis.formatter = CustomJSTickFormatter(code=LOG_TICK_LABELS_JS)


def _mark_isolated(figure, renderer, source) -> None:
    """Give a line's isolated points (a finite value with no finite neighbour, which a line cannot
    draw) a marker of the line's colour: a renderer on the same source, filtered in the browser by
    ``ISOLATED_JS``, shown and hidden with the line (its legend entry). Once per line."""
    glyph = renderer.glyph
    if not isinstance(glyph, Line) or not isinstance(glyph.x, str) or not isinstance(glyph.y, str):
        return
    name = f"isolated:{renderer.id}"
    if any(r.name == name for r in figure.renderers):
        return
    markers = figure.scatter(
        x=glyph.x, y=glyph.y, source=source, size=ISOLATED_MARKER_SIZE, name=name,
        color=glyph.line_color, alpha=glyph.line_alpha, visible=renderer.visible,
        view=CDSView(filter=CustomJSFilter(code=ISOLATED_JS, args={"x": glyph.x, "y": glyph.y})))
    renderer.js_link("visible", markers, "visible")


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
    - a history overlay (``{'history': ..., 'earlier': [...], 'scale': ...}``, ``scale`` one of
      ``Y_SCALES``) *streams* only the new rows of the current run's curves
      (``ColumnDataSource.stream``); on a "normalized" axis a curve whose largest |value| grew is
      replaced whole instead. A new set of curves (a new run, a new earlier run) or another scale goes
      through HoloViews once; curves the user hid from the legend stay hidden.

    An element with a fixed frame (a sample drawn at its data's aspect, see ``aspect_frame``) keeps
    it, and its ranges keep a unit of x as long as a unit of y on screen when they follow the data.

    Heavy plots are throttled adaptively: an update is deferred (latest wins) while less than
    ``throttle`` × its measured cost has passed since the previous one; :meth:`flush` sends it.
    """

    def __init__(self, render, title: str = "", height: int = PLOT_HEIGHT, follow: bool = True,
                 kind=None, name: str | None = None, throttle: float = THROTTLE, width: int | None = None):
        self._render = render
        self.title = title
        self.height = height
        #: the pane's fixed width (pixels); ``None``: it stretches to its column. An element with a fixed
        #: frame (drawn at its data's aspect) sizes the pane itself
        self.width = width
        self.follow = follow
        self._kind_fn = kind or kind_of
        #: the Bokeh data sources are named ``{name}`` (samples) or ``{name}:{label}`` (overlay curves)
        self.name = name
        self.throttle = throttle
        self.kind: str | None = None
        self.pipe: hv.streams.Pipe | None = None
        self.dmap: hv.DynamicMap | None = None
        self.pane = pn.pane.HoloViews(None, linked_axes=False, height=height,
                                      **({"sizing_mode": "stretch_width"} if width is None
                                         else {"sizing_mode": "fixed", "width": width}))
        self.updates = 0  # objects given to update()
        self.sent = 0  # objects that reached the plot (fast or full)
        self.full_updates = 0  # of which through HoloViews
        self.builds = 0  # new plots (a new figure: the first frame of a run, a new set of curves)
        self._targets: dict[int, tuple[Any, str]] = {}  # id(plot) -> (HoloViews element plot, element label)
        self._rows_shown = 0
        self._signature = None
        self._pending = None
        self._has_pending = False
        self._last_sent = 0.0
        self._cost = 0.0
        self._cleared = False  # clear() emptied the sources of the built figure (no data until the next update)
        self._restream = False  # the history curves' sources were emptied: stream from the first row
        self._extents = None  # (scale, x extent, y extent) of the history curves drawn (streamed updates)
        self._peaks: dict[str, float] = {}  # largest |value| drawn of each "normalized" history curve
        self._hidden: set[str] = set()  # labels of the curves hidden from the legend (kept when rebuilt)
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
        renderer = plot.handles.get("glyph_renderer")
        if renderer is not None and element.label and element.label in self._hidden:
            renderer.visible = False  # hidden from the legend before a rebuild: stays hidden
            # and keeps its (greyed) legend entry, to be clicked back: HoloViews leaves out the entry of
            # a curve whose renderers are all invisible unless tagged so
            renderer.tags = [*renderer.tags, "hv_legend"]
        figure = plot.handles.get("plot")
        if figure is not None and hasattr(figure, "output_backend"):
            figure.output_backend = OUTPUT_BACKEND
        if renderer is not None and source is not None and figure is not None:
            _mark_isolated(figure, renderer, source)
        if figure is not None and hasattr(figure, "x_scale"):
            _log_ticks(figure)

    def _remember_hidden(self) -> None:
        """Note which overlaid curves the user hid from the legend, before the plot is rebuilt."""
        for plot, label in self._targets.values():
            renderer = plot.handles.get("glyph_renderer")
            if renderer is not None and label and getattr(plot, "overlaid", False):
                (self._hidden.add if not renderer.visible else self._hidden.discard)(label)

    def _element(self, data):
        el = self._render(data)
        norm = dict(framewise=self.follow, axiswise=True)
        height = self.height
        if isinstance(el, hv.Overlay):
            entries = len({c.label for c in el if c.label})  # (an empty overlay's placeholder has none)
            if el.opts.get("plot").kwargs.get("legend_position") == "bottom":
                # below the plot, in two columns: the figure grows by the legend's rows
                cols = max(1, min(entries, 2))
                height += LEGEND_ROW_PX * -(-entries // cols) + 10 if entries else 0
            else:  # to the right: make room for every entry (two columns past 14)
                cols = 1 if entries <= 14 else 2
                height = max(height, min(LEGEND_ROW_PX * -(-entries // cols) + 70, 480))
            el = el.opts(legend_cols=cols)  # normalisation options only take effect on the overlaid elements
            for child in el:  # (axiswise=True on the children would freeze the ranges again)
                child.opts(framewise=self.follow, hooks=[self._hook])
            norm = {}
        else:
            el = el.opts(hooks=[self._hook])
        opts = el.opts.get("plot").kwargs
        if opts.get("frame_width") and opts.get("frame_height"):
            # drawn at its data's aspect: the frame is fixed, and the figure (so the pane) fits around it; a
            # pane that stretched would stretch the figure too, and its fixed frame was then clipped
            self.pane.param.update(width=None, height=None, sizing_mode="fixed")
            return el.opts(title=self.title, responsive=False, show_grid=True, **norm)
        self.pane.param.update(width=self.width, height=height,
                               sizing_mode="stretch_width" if self.width is None else "fixed")
        return el.opts(title=self.title, responsive=True, height=height, show_grid=True, **norm)

    def _redraw_state(self, obj) -> None:
        """Before ``obj`` goes through HoloViews (a new plot, or a redraw of this one): forget the old
        figure's handles and what was streamed into it, keeping which curves the user hid."""
        self._remember_hidden()
        self._targets = {}
        self._cleared = self._restream = False
        self._extents = None
        self._signature = self._signature_of(obj)
        self._rows_shown = self._rows_of(obj)
        self._peaks = self._peaks_of(obj)

    def _build(self, obj) -> None:
        self._redraw_state(obj)
        self._empty_token = None
        self.pipe = hv.streams.Pipe(data=obj)
        # memoize=False: a re-render (a new browser view, a resize) always shows the newest data
        self.dmap = hv.DynamicMap(hv.core.spaces.Callable(self._element, memoize=False), streams=[self.pipe])
        self.pane.object = self.dmap
        self.full_updates += 1
        self.builds += 1

    @staticmethod
    def _signature_of(obj):
        if isinstance(obj, dict) and "history" in obj:
            return (tuple(k for k in obj["history"] if k != "time"),
                    tuple((run["label"], id(run["history"])) for run in obj.get("earlier", [])),
                    obj.get("scale"))
        return None

    @staticmethod
    def _peaks_of(obj) -> dict[str, float]:
        """The largest |value| of each curve of a "normalized" history overlay (what it is divided by)."""
        if not (isinstance(obj, dict) and "history" in obj and obj.get("scale") == "normalized"):
            return {}
        return {k: _peak(v) for k, v in obj["history"].items() if k != "time"}

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
            self._redraw_state(obj)
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
            columns = _columns(_dims(obj.xlabel, obj.ylabel), (xs, ys))
            if any(set(plot.handles["source"].data) != set(columns) for plot, _ in targets):
                return False
            across, up = (ys, xs) if getattr(obj, "vertical", False) else (xs, ys)  # (on the screen)
            for plot, _ in targets:
                plot.handles["source"].data = dict(columns)  # (a dict of its own for each view)
                if self.follow:
                    logx, logy = _is_log(plot, "x"), _is_log(plot, "y")
                    self._set_ranges(plot, _padded(_finite_extent(across, log=logx), logx),
                                     _padded(_finite_extent(up, log=logy), logy))
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
                    self._set_ranges(plot, (l, r), (b, t))
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
        scale = obj.get("scale") or ("log" if _is_log(targets[0][0], "y") else "linear")
        logy = scale in ("log", "abs_log")
        normalized = scale == "normalized"
        rescaled = False  # a "normalized" curve's largest |value| grew: it is drawn again whole
        if n1 > n0 or self._restream:
            for key in keys:
                start = n0
                if normalized:
                    old = 0.0 if self._restream else self._peaks.get(key, 0.0)
                    self._peaks[key] = peak = max(old, _peak(history[key][n0:n1]))
                    if peak != old and not self._restream:
                        start, rescaled = 0, True
                t = np.asarray(history["time"][start:n1], dtype=float)
                y = _scaled(history[key][start:n1], scale, _divisor(self._peaks.get(key, 0.0)))
                for plot in by_label[key]:
                    if self._restream or start == 0:  # (after a clear the sources may still hold the previous run)
                        plot.handles["source"].data = {"time": t, "value": y}
                    else:
                        plot.handles["source"].stream({"time": t, "value": y})
        self._rows_shown = n1
        if self.follow:
            def divisor(key, run=None):
                if not normalized:
                    return 1.0
                return _divisor(self._peaks.get(key, 0.0) if run is None else _peak(run[key]))

            # extents of everything drawn, kept up to date with the new rows only (not recomputed over
            # the whole history at every push: a long run has ~10^5 rows), unless a curve was rescaled
            if self._extents is None or self._extents[0] != scale or rescaled:
                times = [history["time"][:n0], *(r["history"]["time"] for r in earlier)]
                drawn = [_scaled(history[k][:n0], scale, divisor(k)) for k in keys]
                drawn += [_scaled(v, scale, divisor(k, r["history"])) for r in earlier
                          for k, v in r["history"].items() if k != "time"]
                self._extents = (scale, _finite_extent(*times), _finite_extent(*drawn, log=logy))
            if n1 > n0:
                new_x = _finite_extent(history["time"][n0:n1])
                new_y = _finite_extent(*(_scaled(history[k][n0:n1], scale, divisor(k)) for k in keys), log=logy)
                self._extents = (scale, _merged(self._extents[1], new_x), _merged(self._extents[2], new_y))
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

    @classmethod
    def _set_ranges(cls, plot, x, y) -> None:
        """Set both ranges of an element plot; on a plot with equal axes (a fixed frame and HoloViews'
        ``data_aspect``), widen one so that a unit of x is as long as a unit of y on screen."""
        figure = plot.handles.get("plot")
        width, height = getattr(figure, "frame_width", None), getattr(figure, "frame_height", None)
        if getattr(plot, "data_aspect", None) and width and height and x is not None and y is not None:
            x, y = _equal_scale(x, y, width, height)
        cls._set_range(plot, "x_range", x)
        cls._set_range(plot, "y_range", y)

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
        if signature[1:] != self._signature[1:] or any(k != "time" for k in obj["history"]):
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
        self._remember_hidden()
        self._empty_token = None
        self.pipe = self.dmap = None
        self.kind = None
        self._targets = {}
        self._signature = None
        self._cleared = self._restream = False
        self._extents = None
        self._pending, self._has_pending = None, False
        self.pane.object = None
