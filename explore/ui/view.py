"""``LabView``: the generic dashboard of any :class:`~explore.core.lab.Lab`.

One view per session. The solver runs in a daemon worker thread on a *copy* of the lab
(``type(lab)(**lab.values())``) and puts frames into a bounded queue; the session's event loop
calls :meth:`LabView.drain` at a fixed rate (a periodic callback when served), which appends every
queued frame's convergence row and shows only the newest frame's spectrum and samples.
Errors (bad parameters, diverging runs) are shown in an alert; they never reach the server.
"""
from __future__ import annotations

import contextlib
import functools
import html
import math
import os
import queue
import re
import threading
import time
import weakref
from collections import deque
from typing import Any

import numpy as np
import panel as pn
import param
from panel.io.state import set_curdoc

from explore.core.frame import Curve, Frame, light_frame
from explore.core.lab import Lab, SolverDiverged
from explore.core.result import frames_to_dataset
from explore.ui.export import ExportMenu
from explore.ui.kernel import KernelPoller, guard_comms, with_echo_filter
from explore.ui.pacing import PACER
from explore.ui.plots import SMALL_PLOT_HEIGHT, Joined, LivePlot, convergence_overlay, sample_element

#: frames waiting between the worker and the UI; a full queue makes the worker wait
QUEUE_SIZE = 64
#: how often a served view drains its queue (milliseconds); a drain costs ~1-3 ms (data goes straight
#: into the Bokeh sources), so 25 Hz leaves the worker thread nearly all the CPU
DRAIN_PERIOD_MS = 40
#: seconds without a browser connection after which a served view stops its run (the page was closed)
ORPHAN_S = 1.5
#: how often a served view without a producing run looks at its queue and connection (milliseconds)
IDLE_PERIOD_MS = 1000
#: how long ``LabView.stop`` (session end) waits for the worker thread (seconds)
STOP_JOIN_S = 2.0
#: earlier runs kept for comparison
MAX_EARLIER_RUNS = 5
#: width (pixels) of a sample plot's pane; two side by side fill the main column of a laptop screen
SAMPLE_WIDTH = 420
#: the choices of the Diagnostics plot's y axis (label → scale, see ``explore.ui.plots.Y_SCALES``) and
#: the axis label of each: one large diagnostic (a kurtosis of ~900) flattens the others on a linear axis
DIAGNOSTICS_SCALES = {"linear": "linear", "log |value|": "abs_log", "÷ max |value|": "normalized"}
#: the choice of a button group filled, the others outlined (the default grey marks it too faintly to read)
TOGGLE_STYLE = dict(color="primary", variant="outline")
DIAGNOSTICS_YLABELS = {"linear": "diagnostics", "abs_log": "|diagnostics|", "normalized": "diagnostics / max |·|"}
#: how long the worker waits on a full queue / a paused state before re-checking for stop (seconds)
_POLL_S = 0.05

_FRAME, _DONE, _ERROR = "frame", "done", "error"

#: the heading of the page's alert about values a parameter refuses or that cannot run
INVALID_PARAMETERS = "**Invalid parameters.**"


#: about how many positions a number's slider has over its range (its step is a 1-2-5 value near
#: the range / this)
SLIDER_POSITIONS = 200


def _fenced(text: str, language: str) -> str:
    """``text`` as a Markdown code block whose fence is longer than any run of backticks in it (a value
    holding a line of three backticks closed a three-backtick fence, and what followed was markup)."""
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"


def _nice_step(span: float) -> float:
    """A 1-2-5 step about ``span / SLIDER_POSITIONS``: a slider's step, suited to its range."""
    raw = span / SLIDER_POSITIONS
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


#: the smallest arrow step Bokeh's number input takes: a link holding atol = 1e-20 (which the lab takes)
#: asked for 1e-21, and the page died building its controls
MIN_INPUT_STEP = 1e-16


def _input_step(smallest: float | None, lo: float | None, hi: float | None) -> float:
    """A number input's arrow step: a tenth of the decade of the smallest value it is known to hold
    (default, current, presets: 0.02 steps by 0.001, 1e-8 by 1e-9), but not below ``MIN_INPUT_STEP``,
    else a slider's step over its range, else 0.1."""
    if smallest:
        return max(10.0 ** (math.floor(math.log10(smallest)) - 1), MIN_INPUT_STEP)
    if lo is not None and hi is not None and hi > lo:
        return _nice_step(hi - lo)
    return 0.1


class _Box(param.Parameterized):
    """What the dashboard's number inputs add to Panel's (a mixin of :class:`_FloatBox`, :class:`_IntBox`).

    - An empty value goes to the browser as an empty box, showing its placeholder: Panel sends ``None``
      as NaN, and a cleared ``density_thickness`` (which may be ``None``) read "NaN".
    - A cleared box of a parameter that needs a number (``needs_number``) is not handed on as ``None``
      (the parameter refused it inside Panel's event handling: "only takes numeric values, not <class
      'NoneType'>", and the box could stay blank): the edit is dropped and ``cleared`` fires, on which the
      view puts the lab's value back in the box and names the parameter in its alert.
    """

    needs_number = param.Boolean(default=False, doc="The parameter takes no None: an empty box is refused.")
    cleared = param.Event(doc="The browser's box was emptied, and ``needs_number`` refused it.")

    _rename = {"needs_number": None, "cleared": None}

    def _process_param_change(self, params):
        params = super()._process_param_change(params)
        for key in ("value", "value_throttled"):
            if isinstance(params.get(key), float) and math.isnan(params[key]):
                params[key] = None  # (Bokeh's box takes null: an empty box)
        return params

    def _process_property_change(self, props):
        props = super()._process_property_change(props)  # (Panel's float input: NaN → None)
        emptied = [key for key in ("value", "value_throttled") if key in props and props[key] is None]
        if self.needs_number and emptied:
            for key in emptied:
                del props[key]
            self.param.trigger("cleared")
        return props


class _FloatBox(_Box, pn.widgets.FloatInput):
    """Panel's ``FloatInput`` with what :class:`_Box` adds."""


class _IntBox(_Box, pn.widgets.IntInput):
    """Panel's ``IntInput`` with what :class:`_Box` adds."""


def _typed_inputs(lab: Lab, names: list[str]) -> dict:
    """The widget of each number where Panel's own (a slider stepping by 0.1, its label rounded to two
    decimals) cannot work.

    - A number input where a slider cannot hold the value: one that may be ``None`` (a slider has no
      empty state; its placeholder says what empty means: the ``(default: …)`` of its doc, else
      "default"), an open range, a range spanning decades (tolerances, steps), or values (the default,
      the presets') finer than a slider's step over the range (Gray–Scott's d1 = 2e-5 in [0, 1]).
    - Otherwise a slider whose step suits its range (about ``SLIDER_POSITIONS`` positions) and whose
      label shows that step's digits.
    """
    out = {}
    for name in names:
        p = lab.param[name]
        if not isinstance(p, param.Number):
            continue
        integer = isinstance(p, param.Integer)
        lo, hi = p.get_soft_bounds()
        open_range = lo is None or hi is None or not hi > lo
        decades = not open_range and lo > 0 and (hi / lo > 1e3 if integer else hi / lo >= 100)  # (ints: grid sizes)
        values = [p.default, getattr(lab, name)] + [v[name] for v in type(lab).presets.values() if name in v]
        smallest = min((abs(v) for v in values if isinstance(v, (int, float)) and v), default=None)
        step = None if open_range or integer else _nice_step(hi - lo)
        fine = step is not None and smallest is not None and smallest < 10 * step
        if p.allow_None or open_range or decades or fine:
            widget = _IntBox if integer else _FloatBox
            # no limits in the browser: Panel gives a number input the soft ones, which silently refused
            # values the lab takes (t_end = 150 in the NLSE lab reverted at Run), and even the parameter's
            # own ones kept a typed -5 in the box while the lab went on with its old value; the parameter
            # itself refuses what it cannot take, and the page says so and puts the box back
            spec = {"type": widget, "start": None, "end": None, "needs_number": not p.allow_None}
            if not integer:  # its arrows change the second significant digit (Panel's step is 0.1)
                spec["step"] = _input_step(smallest, lo, hi)
            if p.allow_None:
                meaning = re.search(r"\(default: ([^)]*)\)", p.doc or "")
                spec["placeholder"] = meaning.group(1) if meaning else "default"
            out[name] = spec
        elif step is not None:
            digits = max(0, -math.floor(math.log10(step)))
            out[name] = {"type": pn.widgets.FloatSlider, "step": step,
                         "format": "0." + "0" * digits if digits else "0"}
    return out


def _add_tooltips(lab: Lab, pane: pn.Param) -> None:
    """Every control shows its parameter's doc string: widgets with a ``description`` get it from
    ``pn.Param``; sliders and checkboxes have none, so a tooltip icon goes beside them."""
    by_widget = {id(w): name for name, w in pane._widgets.items()}
    objects = []
    for obj in pane.layout.objects:
        name = by_widget.get(id(obj))
        doc = lab.param[name].doc if name in lab.param else None
        if doc and "description" not in obj.param:
            obj = pn.Row(obj, pn.widgets.TooltipIcon(value=doc, margin=(18, 0, 0, -6)),
                         sizing_mode="stretch_width")
        objects.append(obj)
    pane.layout.objects = objects


#: ms a parameter widget's change from the browser waits on the server before it is processed. Panel
#: waits 50 ms (``Syncable._debounce``, to merge bursts of edits) — half of the 100 ms the whole
#: change → new plot round trip may take. Edits arriving within the wait are still merged, and the
#: preview of superseded values is abandoned anyway (a new worker per change, the old one stopped).
WIDGET_DEBOUNCE_MS = 5


#: ms after a parameter change before the page's secondary parts follow it (the URL, the code
#: snippet): each re-lays out the page, and done at once they held the new plot data back by ~50 ms
SECONDARY_DELAY_MS = 300


def _respond_quickly(pane: pn.Param) -> None:
    """Process the browser's edits of ``pane``'s widgets after ``WIDGET_DEBOUNCE_MS``, not 50 ms."""
    for widget in pane._widgets.values():
        widget._debounce = WIDGET_DEBOUNCE_MS  # Panel reads it per instance (a class default otherwise)


#: niceness added to a lab's worker thread (Linux): the server's event loop and the browser on the
#: same machine get the CPU first, the run every cycle they leave (it is not slowed on an idle machine)
WORKER_NICENESS = 5


def _lower_priority() -> None:
    """Lower the calling thread's scheduling priority by ``WORKER_NICENESS`` (where the OS allows it)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: the run keeps its priority
        pass


class _Worker:
    """Iterates ``lab.frames()`` in a daemon thread; pause, single steps and stop via a condition."""

    def __init__(self, lab: Lab, out: queue.Queue, running: bool = True, steps: int = 0, on_step=None):
        self.lab = lab
        self.out = out
        self._on_step = on_step  # called (from this thread) after a single step's frame is queued
        self._cond = threading.Condition()
        self._running = running
        self._steps = steps
        self._stop = threading.Event()
        self.busy = steps > 0  # computing a granted step (or about to)
        self.thread = threading.Thread(target=self._loop, name=f"explore-{lab.lab_name}", daemon=True)

    # -- control (UI thread)
    def start(self) -> None:
        self.thread.start()

    def resume(self) -> None:
        with self._cond:
            self._running = True
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._running = False

    def step(self) -> None:
        with self._cond:
            self._steps += 1
            self.busy = True
            self._cond.notify_all()

    def stop(self, timeout: float = 0.0) -> None:
        """Ask the thread to stop (it does at its next frame boundary); wait up to ``timeout`` s."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if timeout > 0 and self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    @property
    def paused(self) -> bool:
        return not self._running

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    # -- worker thread
    def _permitted(self) -> bool:
        """Wait until running or a single step is granted; ``False`` if stopped meanwhile."""
        with self._cond:
            while not self._stop.is_set():
                if self._running:
                    return True
                if self._steps > 0:
                    self._steps -= 1
                    return True
                self._cond.wait(_POLL_S)
        return False

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self.out.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _loop(self) -> None:
        _lower_priority()
        frames = None
        try:
            frames = self.lab.frames()
            while self._permitted():
                try:
                    frame = next(frames)
                except StopIteration:
                    self._put((_DONE, None))
                    return
                if not self._put((_FRAME, frame)):
                    return
                with self._cond:
                    stepped = not self._running
                    self.busy = self._steps > 0
                if stepped and self._on_step is not None:
                    self._on_step()
        except Exception as exc:  # shown in the page; never kills the session
            self._put((_ERROR, exc))
        finally:
            if frames is not None:
                try:
                    frames.close()
                except Exception:
                    pass


class _Columns:
    """Rows of named scalars stored column-wise (a name first seen late is NaN before)."""

    def __init__(self):
        self.time: list[float] = []
        self.cols: dict[str, list[float]] = {}

    def __len__(self) -> int:
        return len(self.time)

    def append(self, t: float, row: dict[str, float]) -> None:
        n = len(self.time)
        for k, v in row.items():
            col = self.cols.get(k)
            if col is None:
                col = self.cols[k] = [np.nan] * n
            col.append(v)
        self.time.append(t)
        for col in self.cols.values():
            if len(col) == n:
                col.append(np.nan)

    def any_values(self) -> bool:
        return bool(self.cols)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"time": np.array(self.time, dtype=float)}
        out.update({k: np.array(v, dtype=float) for k, v in self.cols.items()})
        return out


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where the view drains its queue on the kernel's loop)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _notebook_dist_url() -> str:
    """Where the Panel Jupyter server extension serves Panel's static files (``/panel-preview/…``
    under the server's base URL; JupyterHub puts the user's server under a prefix)."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return prefix.rstrip("/") + "/panel-preview/static/extensions/panel/"


def _hold():
    """Batch the Bokeh changes of one drain into one message when a document is active."""
    doc = pn.state.curdoc
    if doc is None:
        return contextlib.nullcontext()
    return pn.io.hold(doc)


def _format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


#: an earlier run's legend entry names at most this many of the parameters it differs in (a preset
#: change differs in many: listing them all squeezed the plot to a sliver beside its legend)
LABEL_PARAMETERS = 3


def _diff_label(values: dict, reference: dict) -> str:
    diff = [f"{k}={_format_value(v)}" for k, v in values.items() if reference.get(k, object()) != v]
    if len(diff) > LABEL_PARAMETERS:
        diff = diff[:LABEL_PARAMETERS] + [f"+{len(diff) - LABEL_PARAMETERS} more"]
    return ", ".join(diff)


def _serialized(method):
    """Run a method holding the view's lock: in a Jupyter kernel its document is changed from two
    threads (the cell's and the comm's, see ``explore.ui.kernel``); served, the lock is never contended."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._ui_lock:
            return method(self, *args, **kwargs)

    return wrapper


def _guarded(method):
    """Run a UI callback (holding the view's lock); any exception is shown in the alert instead of
    reaching the server."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._ui_lock:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the page must survive anything
                self._show_error(exc)

    return wrapper


#: the lab view of each served page, by its Bokeh document: Panel reports an error in processing a browser's
#: edit with nothing but the exception (and the document as ``pn.state.curdoc``)
_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def report_refused_edits() -> None:
    """Have Panel hand the errors raised while it applies a browser's edit to the page's own view, which
    shows them (a value that its parameter refuses: a typed ``dt = 0`` raised in Panel's event handling,
    was logged on the server only, and the page went on showing a value the lab did not have). Installed
    once, unless another handler is; errors of pages without a view go to the log, as before."""
    if pn.config.exception_handler is None:
        pn.config.exception_handler = _on_refused_edit


def _on_refused_edit(exc: BaseException) -> None:
    doc = pn.state.curdoc
    view = _VIEWS.get(doc) if doc is not None else None
    if view is None:
        import logging

        logging.getLogger("explore.ui").error("error in a page's callback", exc_info=exc)
        return
    view._refused_edit(exc)


class LabView(pn.viewable.Viewer):
    """Dashboard for any lab: grouped controls with presets, run controls, three live plots, export.

    Parameters
    ----------
    lab
        The lab to show; its parameters are edited by the controls.
    poll
        Start a periodic callback that drains the frame queue (``None``: when served, i.e. a Bokeh
        document is active, or in a Jupyter kernel). Tests call :meth:`drain` themselves.
    """

    status = param.Selector(
        default="idle", objects=["idle", "running", "paused", "finished", "stopped", "error"],
        constant=True, doc="State of the current run.",
    )
    follow_data = param.Boolean(
        default=True, doc="Axes follow the newest data; switch off to keep your zoom while a run streams.",
    )
    diagnostics_scale = param.Selector(
        default="linear", objects=list(DIAGNOSTICS_SCALES.values()),
        doc="Y axis of the Diagnostics plot: the values (linear), their magnitudes on a log axis "
            "(abs_log), or each curve divided by its largest |value| (normalized), so that a large "
            "diagnostic does not flatten the others.",
    )
    diagnostics_shown = param.Selector(
        default="all", objects=["all"],
        doc="Which diagnostics the Diagnostics plot shows: all of them, or one of the lab's groups "
            "(Lab.diagnostic_groups: its energies, its budget …), each read more easily alone.",
    )
    preview = param.Boolean(
        default=None, allow_None=True,
        doc="Show the initial state (the run's first frame) as soon as a parameter changes "
            "(None: when the view is displayed, i.e. it drains its queue itself).",
    )

    def __init__(self, lab: Lab, poll: bool | None = None, preset: str | None = None, **params):
        """A dashboard of ``lab`` (an instance: ``LabView(NLSELab(preset="two_soliton"))``). ``preset``
        names the preset the lab's values come from, for the preset menu (a served page's link applied
        it); ``poll`` whether the view drains its run's frames itself (default: served or in a notebook)."""
        if not isinstance(lab, Lab):
            raise TypeError(f"LabView needs a lab instance, such as NLSELab(); got {lab!r}")
        if preset is not None and preset not in lab.presets:
            raise ValueError(f"LabView: unknown preset {preset!r}; presets of {lab.lab_name}: {', '.join(lab.presets)}")
        if "status" in params:  # (the view's own state: a fresh view said "running")
            raise TypeError("LabView: 'status' is the state of the view's run, not an argument")
        self._ui_lock = threading.RLock()  # (first: every callback takes it)
        shown = params.pop("diagnostics_shown", "all")
        super().__init__(**{"diagnostics_scale": lab.diagnostics_scale, **params})
        self.param.diagnostics_shown.objects = ["all", *lab.diagnostic_groups]  # (this view's own copy)
        self.diagnostics_shown = shown
        self.lab = lab
        self._initial_preset = preset
        self._initial = dict(lab.values())
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._worker: _Worker | None = None
        self._run_lab: Lab | None = None
        self._run_values: dict = {}
        self._run_id = 0
        self._archived_id: int | None = None
        self._frames: list[Frame] = []
        self._rows = _Columns()
        self._diag_rows = _Columns()
        self._categories: dict[str, float] = {}  # newest value of each categorical diagnostic
        self._earlier: deque = deque(maxlen=MAX_EARLIER_RUNS)
        self._started_at: float | None = None
        self._active_s = 0.0
        self._eta_origin: tuple[float, float] | None = None
        self._progress = 0.0
        self._suppress_param_events = False
        self._poll_cb = None
        self._layout = None
        self._unshown: Frame | None = None  # the newest frame, not yet pushed to the plots
        self._last_push = 0.0
        self._connected, self._disconnected_at = False, None
        self._previewing = False  # the worker only shows the initial state (no Run or Step yet)
        self._doc = None  # the served session's document (for draining on the next tick)
        self._soon_tokens: dict[str, object] = {}
        self._pending_history: Frame | None = None  # a single frame whose history plots follow next tick
        self._build_widgets()
        self._param_watcher = lab.param.watch(self._on_lab_param, lab.parameter_names())
        lab.param.watch(self._grey_out_inactive, lab.parameter_names())
        lab.param.watch(self._show_notices, lab.parameter_names())
        self._grey_out_inactive()
        self._show_notices()
        self.param.watch(self._on_follow, "follow_data")
        self.param.watch(self._on_diagnostics_scale, ["diagnostics_scale", "diagnostics_shown"])
        self._in_notebook = pn.state.curdoc is None and _in_notebook()
        self._notebook_css_done = False
        if pn.state.curdoc is not None and pn.state.curdoc.session_context:
            _VIEWS[pn.state.curdoc] = self
        if poll or (poll is None and (pn.state.curdoc is not None or self._in_notebook)):
            self.start_polling()

    # ================================================================= building
    def _build_widgets(self) -> None:
        lab = self.lab
        presets = list(lab.presets)
        # (the view's own preset; else the one the lab was built from: LabView(NLSELab(preset="two_soliton"))
        # showed the default preset's name over two_soliton's values)
        first = next((p for p in (self._initial_preset, lab.built_preset) if p in presets),
                     lab.default_preset)
        self.preset = pn.widgets.Select(
            label="Preset", options=presets, value=first if first in presets else
            (presets[0] if presets else None), visible=bool(presets),
            description="Named parameter set; choosing one resets the parameters to it.",
        )
        self.preset.param.watch(self._on_preset, "value")

        self.run_button = pn.widgets.Button(label="Run", color="primary", description="Start or resume the run.")
        self.pause_button = pn.widgets.Button(label="Pause", description="Pause the run (its state is kept).")
        self.step_button = pn.widgets.Button(label="Step", description="Advance exactly one frame.")
        self.reset_button = pn.widgets.Button(label="Reset", color="warning",
                                              description="Stop the run and return to the preset.")
        self.clear_button = pn.widgets.Button(label="Clear runs", description="Forget the earlier runs overlaid.")
        self.run_button.on_click(lambda e: self.run())
        self.pause_button.on_click(lambda e: self.pause())
        self.step_button.on_click(lambda e: self.step())
        self.reset_button.on_click(lambda e: self.reset())
        self.clear_button.on_click(lambda e: self.clear_runs())

        self.progress_bar = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width", height=16)
        self.progress_text = pn.pane.Markdown("Ready.", margin=(0, 10))
        #: the newest value of each categorical diagnostic of the lab, by name (a regime); shown from the
        #: start (with a dash) so that the controls below it do not jump down at the first frame
        self.category_text = pn.pane.Markdown("", margin=(0, 10), visible=bool(lab.categorical_diagnostics))
        self._update_categories()
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._alert_about_values = False  # (it says a value was refused or cannot run: a valid edit clears it)
        #: what the current values make a run do that they do not say (Lab.notices: a shortened dt)
        self.notice = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")

        # controls: one pn.Param per group (tooltips come from each parameter's doc)
        names = lab.parameter_names()
        grouped: dict[str, list[str]] = {}
        seen: set[str] = set()
        for group, members in lab.groups.items():
            members = [m for m in members if m in names and m not in seen]
            if members:
                grouped[group] = members
                seen.update(members)
        rest = [n for n in names if n not in seen]
        if rest:
            grouped["Other"] = rest
        self.param_panes = {
            group: pn.Param(lab.param, parameters=members, show_name=False, sizing_mode="stretch_width",
                            name=group, widgets=_typed_inputs(lab, members))
            for group, members in grouped.items()
        }
        for pane in self.param_panes.values():
            _add_tooltips(lab, pane)
            _respond_quickly(pane)
        for name, widget in self.widgets.items():
            if isinstance(widget, _Box):
                widget.param.watch(functools.partial(self._refuse_empty_box, name), "cleared")
        self.controls = pn.Accordion(*self.param_panes.values(), active=[0], sizing_mode="stretch_width",
                                     toggle=False)
        self.follow_toggle = pn.widgets.Checkbox.from_param(self.param.follow_data, label="Axes follow data")

        self.convergence_plot = LivePlot(
            # (its legend below it: beside the spectrum, a legend to its right left a third of the plot's
            # half row for the curves)
            lambda d: convergence_overlay(d["history"], d["earlier"], logy=True, xlabel=lab.time_label,
                                          ylabel=lab.convergence_title.lower(), legend="bottom"),
            title=lab.convergence_title, kind=lambda d: "overlay", name="convergence",
        )
        self.diagnostics_plot = LivePlot(
            lambda d: convergence_overlay(d["history"], [], scale=d["scale"], xlabel=lab.time_label,
                                          ylabel=DIAGNOSTICS_YLABELS[d["scale"]], order=d.get("order")),
            title="Diagnostics", height=SMALL_PLOT_HEIGHT, kind=lambda d: "overlay", name="diagnostics",
        )
        self.diagnostics_scale_toggle = pn.widgets.RadioButtonGroup.from_param(
            self.param.diagnostics_scale, options=DIAGNOSTICS_SCALES, name="", margin=(5, 10), align="center",
            **TOGGLE_STYLE,
        )
        self.diagnostics_group_toggle = pn.widgets.RadioButtonGroup.from_param(
            self.param.diagnostics_shown, name="", margin=(5, 10), align="center", **TOGGLE_STYLE,
        )
        self.diagnostics_controls = pn.Row(
            pn.pane.HTML("Diagnostics y axis:", margin=(0, 0, 0, 10), align="center"), self.diagnostics_scale_toggle,
            *([pn.pane.HTML("Show:", margin=(0, 0, 0, 20), align="center"), self.diagnostics_group_toggle]
              if lab.diagnostic_groups else []))
        self.spectrum_plot = LivePlot(sample_element, title="Spectrum", name="spectrum")
        self.sample_plots: dict[str, LivePlot] = {}
        self.samples_area = pn.FlexBox(sizing_mode="stretch_width")
        self._placeholder = pn.pane.Markdown("*Press **Run** or **Step** to see the samples.*")
        self.samples_area.objects = [self._placeholder]
        self._new_run_samples = False
        self._main = pn.Column(
            pn.Row(self.convergence_plot.pane, self.spectrum_plot.pane, sizing_mode="stretch_width"),
            self.diagnostics_controls,
            self.diagnostics_plot.pane,
            pn.pane.Markdown("### Samples"),
            self.samples_area,
            sizing_mode="stretch_width",
        )
        self.export = ExportMenu(lab.lab_name, self.export_bytes, self._show_error, plots=self._main)
        self.code = self.export.code
        self._update_code()
        self._send_convergence()

    @_serialized
    def _grey_out_inactive(self, *events) -> None:
        """Grey out the controls of the parameters the current values make irrelevant
        (:meth:`Lab.inactive_parameters`: Gray–Scott's feed under λ–ω, a fixed-step integrator's
        tolerances); a control named by the current values' refusal stays usable, to put it right."""
        try:
            inactive = set(self.lab.inactive_parameters())
            if inactive:
                try:
                    self.lab.validate(memory=False)
                except Exception as exc:  # noqa: BLE001 - any refusal: what it names is not greyed out
                    inactive -= set(re.findall(r"'(\w+)'", str(exc)))
        except Exception:  # noqa: BLE001 - a convenience: never break the page for it
            inactive = set()
        for name, widget in self.widgets.items():
            off = name in inactive
            if widget.disabled != off:  # (dimmed too: a disabled slider looks like any other)
                styles = {k: v for k, v in widget.styles.items() if k != "opacity"}
                widget.param.update(disabled=off, styles={**styles, "opacity": "0.45"} if off else styles)

    @_serialized
    def _show_notices(self, *events) -> None:
        """Say beside the controls what the current values make a run do that they do not say
        (:meth:`Lab.notices`)."""
        try:
            text = "\n\n".join(self.lab.notices())
        except Exception:  # noqa: BLE001 - a convenience: never break the page for it
            text = ""
        if self.notice.object != text or self.notice.visible != bool(text):
            self.notice.param.update(object=text, visible=bool(text))

    @property
    def widgets(self) -> dict[str, pn.widgets.Widget]:
        """The widget of each lab parameter, by parameter name."""
        out: dict[str, pn.widgets.Widget] = {}
        for pane in self.param_panes.values():
            out.update({k: w for k, w in pane._widgets.items() if k != "name"})
        return out

    @property
    def sidebar(self) -> pn.Column:
        """Controls, run buttons, progress, alert, export (the left column)."""
        self.__panel__()
        return self._sidebar

    @property
    def main(self) -> pn.Column:
        """The three live plot areas."""
        self.__panel__()
        return self._main

    def __panel__(self):
        if self._layout is None:
            lab = self.lab
            buttons = pn.Row(self.run_button, self.pause_button, self.step_button, self.reset_button,
                             sizing_mode="stretch_width")
            self._sidebar = pn.Column(
                pn.pane.Markdown(f"## {lab.title or lab.lab_name}\n{lab.description}"),
                self.preset, buttons, self.progress_bar, self.progress_text, self.category_text, self.alert,
                self.notice, self.controls,
                pn.Row(self.follow_toggle, self.clear_button),
                self.export,
                width=380,
            )
            self._layout = pn.Row(self._sidebar, self._main, sizing_mode="stretch_width")
            if self._poll_cb is None and pn.state.curdoc is not None and self._worker is None:
                self.start_polling()
        return self._layout

    # ================================================================= polling / lifetime
    def start_polling(self, period_ms: int = DRAIN_PERIOD_MS) -> None:
        """Drain the queue on the session's event loop; stop the worker with the session.

        The callback runs every ``period_ms`` while a run produces frames and every ``IDLE_PERIOD_MS``
        otherwise (then it only notices a closed page): twenty idle pages cost the server nothing.
        It is a background callback (no busy indicator, no log line per call). In a Jupyter kernel it
        runs on the thread that handles the view's comm once a message came (``explore.ui.kernel``).
        """
        if self._poll_cb is not None:
            return
        from panel.io.callbacks import PeriodicCallback

        self._doc = pn.state.curdoc if pn.state.curdoc is not None and pn.state.curdoc.session_context else None
        if self._doc is None and self._in_notebook:
            self._poll_cb = KernelPoller(self.drain, period_ms)
        else:
            self._poll_cb = PeriodicCallback(callback=self.drain, period=period_ms, background=True, log=False)
        self._poll_cb.start()
        self._fast_period = period_ms
        try:
            pn.state.on_session_destroyed(lambda ctx: self._shutdown())
        except Exception:  # not in a server session (notebook): nothing to hook
            pass

    def _wake(self) -> None:
        """From the worker thread: a single step's frame (Step, a preview) is ready; drain on the
        session's next tick instead of waiting for the periodic callback (the page answers a click or
        a parameter change as soon as the frame exists)."""
        if isinstance(self._poll_cb, KernelPoller):
            self._poll_cb.wake()
        else:
            self._later(self.drain)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = super()._repr_mimebundle_(include, exclude)
        self._guard_comms()
        return with_echo_filter(bundle)

    def _guard_comms(self) -> None:
        """In a notebook: the browser's messages to this view are applied holding its lock, and the
        periodic drain moves to the thread that handles them (see ``explore.ui.kernel``)."""
        if self._layout is not None:
            guard_comms(self._layout, self._ui_lock, self._follow_comm_thread)

    def _follow_comm_thread(self) -> None:
        poller = self._poll_cb
        if isinstance(poller, KernelPoller) and not poller.here:
            poller.start()

    def _later(self, fn, delay_ms: int = 0, doc=None) -> bool:
        """Run ``fn`` on the served session's event loop (its document current): at its next tick, or
        ``delay_ms`` from now. ``False`` where there is no served session (tests, nothing scheduled)."""
        doc = doc or self._doc
        if doc is None:
            return False

        @functools.wraps(fn)
        def call():
            with set_curdoc(doc):
                fn()

        try:
            if delay_ms:
                doc.add_timeout_callback(call, delay_ms)
            else:
                doc.add_next_tick_callback(call)
        except Exception:  # noqa: BLE001 - the session is gone: nothing to show
            pass
        return True

    def _active(self) -> bool:
        """Whether frames are coming: a run not paused, a granted step, or frames still queued."""
        worker = self._worker
        busy = worker is not None and worker.alive and (not worker.paused or worker.busy)
        return busy or not self._queue.empty()

    def _set_poll_rate(self) -> None:
        cb = self._poll_cb
        if cb is None:
            return
        period = self._fast_period if self._active() else IDLE_PERIOD_MS
        if cb.period != period:
            cb.period = period

    def stop(self) -> None:
        """Stop the run, if any (status "stopped"; its frames stay), waiting briefly for its thread, and
        the view's periodic callback."""
        active = self._worker is not None and self._worker.alive and not self._previewing
        self._shutdown()
        if active:  # (it stayed "running" for good, the progress line still counting down an ETA)
            with self._ui_lock:
                self._tick()
                self._set_status("stopped")
                self._update_progress(self._frames[-1] if self._frames else None, stopped=True)

    def _shutdown(self) -> None:
        """Stop the worker (waiting briefly for its thread) and the periodic callback: what a closed page
        needs (nothing in it is shown again)."""
        self._stop_worker(join=STOP_JOIN_S)
        PACER.streaming(self, False)
        if self._poll_cb is not None:
            try:
                self._poll_cb.stop()
            except Exception:
                pass
            self._poll_cb = None

    # ================================================================= run control
    @property
    def running(self) -> bool:
        """Whether a worker is alive and not paused."""
        return self._worker is not None and self._worker.alive and not self._worker.paused

    @property
    def worker_thread(self) -> threading.Thread | None:
        return None if self._worker is None else self._worker.thread

    @property
    def progress(self) -> float:
        """Progress of the current run in [0, 1]."""
        return self._progress

    @property
    def frames(self) -> list[Frame]:
        """Frames received from the current run (fields and point clouds kept for the newest only)."""
        return list(self._frames)

    def _set_status(self, value: str) -> None:
        with param.edit_constant(self):
            self.status = value

    def _start_worker(self, running: bool, steps: int, preview: bool = False) -> bool:
        if not preview:
            self._archive()
        lab = type(self.lab)(**self.lab.values())
        lab.validate()  # a bad value is reported before any work and before the old run is cleared
        if preview:  # a preview writes nothing: it would truncate the last run's snapshot file
            lab.param.update(**{name: "" for name in lab.output_files})
        self._stop_worker()
        # a queue per run: frames an abandoned worker still puts never reach the plots
        self._queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._previewing = preview
        self._run_lab = lab
        self._run_values = lab.values()
        self._run_id += 1
        self._clear_run_display()
        self._worker = _Worker(lab, self._queue, running=running, steps=steps, on_step=self._wake)
        self._worker.start()
        return True

    def _continues(self) -> bool:
        """Whether Run and Step go on with the worker there is: one that is alive, runs the values the
        controls show (an edit whose values cannot run together starts no preview, and left the worker of
        the values before it: Run ran those, silently), and is not a preview without the run's files."""
        return (self._worker is not None and self._worker.alive and self._run_values == self.lab.values()
                and not self._preview_without_files())

    @_guarded
    def run(self) -> None:
        """Start a run (or resume a paused one)."""
        self._clear_alert()
        if self._continues():
            self._worker.resume()
        else:
            self._start_worker(running=True, steps=0)
        self._previewing = False
        self._started_at = time.monotonic()
        self._set_status("running")
        # at once, not at the next frame (seconds away on a loaded machine or a large grid)
        self._update_progress(self._frames[-1] if self._frames else None)
        self._set_poll_rate()

    @_guarded
    def pause(self) -> None:
        """Pause the run; the solver state is kept and Run resumes it."""
        if self._worker is not None and self._worker.alive:
            self._worker.pause()
            self._set_status("paused")
            self._tick()
            self._update_progress(self._frames[-1] if self._frames else None)

    @_guarded
    def step(self) -> None:
        """Advance exactly one frame (starting a paused run if there is none)."""
        self._clear_alert()
        if self._continues():
            if not self._worker.paused:
                self._worker.pause()
                self._tick()
            self._worker.step()
        else:  # (after a preview that left out the files: its frame again, then the step)
            self._start_worker(running=False, steps=2 if self._previewing else 1)
        self._previewing = False
        self._set_status("paused")
        self._set_poll_rate()

    @_guarded
    def reset(self) -> None:
        """Stop the run, keep it for comparison, and return to the preset (or the initial values)."""
        self._stop_worker()
        self._drain_queue_discard()
        self._archive()
        self._suppress_param_events = True
        try:
            if self.preset.value is not None and self.preset.value in self.lab.presets:
                self.lab.apply_preset(self.preset.value)
            else:
                self.lab.param.update(**self._initial)
        finally:
            self._suppress_param_events = False
        self._run_lab = None
        self._clear_run_display()
        self._set_status("idle")  # (before the progress line: "Starting the run…" showed after a Reset)
        self._update_progress(None)
        self._clear_alert()
        self._update_code()
        self.show_initial_state()

    def _clear_run_display(self) -> None:
        """Forget the current run's frames and empty its plots (earlier runs stay overlaid)."""
        self._frames, self._rows, self._diag_rows = [], _Columns(), _Columns()
        self._categories = {}
        self._update_categories()
        self._unshown = self._pending_history = None
        self._progress, self._active_s, self._started_at = 0.0, 0.0, None
        self._eta_origin = None  # (active seconds, progress) at the first frame shown
        self.export.run_available = False
        # the sample plots stay (emptied): the next run's first frame of the same keys and kinds is a
        # cheap data update, not a HoloViews rebuild of every plot (~0.3-0.8 s in the page); plots whose
        # key the next run's first frame lacks are removed then (see _show_frame)
        for plot in self.sample_plots.values():
            plot.clear()
        self._new_run_samples = True
        self.spectrum_plot.clear()
        self.diagnostics_plot.clear()
        self._send_convergence()

    @_guarded
    def clear_runs(self) -> None:
        """Forget the earlier runs overlaid on the convergence plot."""
        self._earlier.clear()
        self._send_convergence()

    def _stop_worker(self, join: float = 0.0) -> None:
        """Tell the worker to stop; wait up to ``join`` seconds for its thread (0: do not block the
        event loop; it ends at its next frame boundary and its queue is dropped)."""
        if self._worker is not None:
            self._worker.stop(timeout=join)
            self._worker = None

    def _drain_queue_discard(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _tick(self) -> None:
        if self._started_at is not None:
            self._active_s += time.monotonic() - self._started_at
            self._started_at = None

    # ================================================================= draining
    def _orphaned(self) -> bool:
        """Whether this view's page was closed: its session had a connection and has had none for
        ``ORPHAN_S`` (Bokeh discards the session itself only after its unused-session lifetime)."""
        session = getattr(getattr(pn.state.curdoc, "session_context", None), "_session", None)
        count = getattr(session, "connection_count", None)
        if count is None:
            return False
        if count > 0:
            self._connected, self._disconnected_at = True, None
            return False
        if not self._connected:
            return False  # the page is still loading
        if self._disconnected_at is None:
            self._disconnected_at = time.monotonic()
        return time.monotonic() - self._disconnected_at > ORPHAN_S

    def _local_css_in_notebook(self) -> None:
        """In a notebook, components created after the first render (a new sample plot) would load
        Panel's stylesheets from its CDN (``pn.extension(inline=True)`` inlines only the first render):
        point the notebook document at the copies the Panel Jupyter server extension serves."""
        if self._notebook_css_done or self._layout is None:
            return
        docs = {id(m.document): m.document for m, _ in self._layout._models.values() if m.document is not None}
        for doc in docs.values():
            doc._template_variables.setdefault("dist_url", _notebook_dist_url())
        self._notebook_css_done = bool(docs)

    @_serialized
    def drain(self) -> int:
        """Move every queued frame into the plots; return the number of frames taken.

        Convergence and diagnostics rows of all frames are appended; spectrum and samples show the
        newest frame only. Runs on the session's event loop (or synchronously in tests). A view whose
        page was closed stops its worker here.
        """
        try:
            if self._orphaned():
                self._shutdown()
                return 0
            if self._in_notebook:
                self._local_css_in_notebook()
                self._guard_comms()  # (a layout the view is shown in, displayed after it)
            n = self._drain()
            self._set_poll_rate()
            return n
        except Exception as exc:  # noqa: BLE001
            self._show_error(exc)
            return 0

    def _drain(self) -> int:
        newest: Frame | None = None
        end: tuple[str, Any] | None = None
        n = 0
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind == _FRAME:
                if self._frames:
                    self._frames[-1] = light_frame(self._frames[-1])
                self._frames.append(payload)
                self._rows.append(payload.time, payload.convergence)
                self._append_diagnostics(payload)
                newest = payload
                n += 1
            else:
                end = (kind, payload)
                break
        # a paused or stepping run shows each frame at once; a streaming one is paced (see PACER)
        streaming = end is None and self.running
        PACER.streaming(self, streaming)
        if newest is not None:
            self._unshown = newest
        if streaming and not PACER.due(self._last_push, DRAIN_PERIOD_MS / 1000):
            return n
        # the push's cost in wall time: waiting for the GIL held by running labs' threads is loop time
        # too (no other page's callback runs meanwhile)
        t0 = time.perf_counter()
        shown = self._unshown is not None
        builds = self._builds()
        deferred = None
        with _hold():  # every change of this drain reaches the browser as one message
            if self._unshown is not None:
                frame, self._unshown = self._unshown, None
                if streaming or end is not None or self._doc is None:
                    self._show_frame(frame, force=not streaming)
                else:  # a single frame (a preview, a step): what it changes visibly goes first, with
                    # its status line (a few characters; left to the next tick with the history plots,
                    # it was still missing 30 s later once on a loaded CI machine)
                    self._show_frame(frame, force=True, history=False)
                    self._update_progress(frame)
                    deferred = frame
            else:
                for plot in self._plots():
                    plot.flush(force=not streaming)
            if end is not None:
                self._finish(*end)
        if streaming and shown:
            # a push that built new figures (a run's first frame) costs 10-100× a streamed one, once:
            # folded into the average it would space every streaming page's redraws by seconds
            if self._builds() == builds:
                PACER.record(time.perf_counter() - t0)
            self._last_push = time.monotonic()
        if deferred is not None:
            self._show_history_next_tick(deferred)
        return n

    def _show_history_next_tick(self, frame: Frame) -> None:
        """The convergence and diagnostics plots and the progress of ``frame`` as a second message on
        the session's next tick (unless another frame is shown first): the browser applies the
        samples' patch ~20-30 ms sooner without a dozen one-point history curves in it."""
        self._pending_history = frame

        def show():
            if self._pending_history is not frame:
                return  # a newer frame was shown (or the run's end showed it)
            self._pending_history = None
            with _hold():
                self._show_history(frame)

        self._later(show)

    def _append_diagnostics(self, frame: Frame) -> None:
        """Append ``frame``'s diagnostics to the plotted history; keep only the newest value of the
        categorical ones (a code, shown by name, would flatten the curves and mean nothing on an axis)."""
        categorical = self.lab.categorical_diagnostics
        self._diag_rows.append(frame.time, {k: v for k, v in frame.diagnostics.items() if k not in categorical})
        self._categories.update({k: v for k, v in frame.diagnostics.items() if k in categorical})

    def _plots(self) -> list[LivePlot]:
        return [self.convergence_plot, self.diagnostics_plot, self.spectrum_plot, *self.sample_plots.values()]

    def _builds(self) -> int:
        """New figures made so far by this view's plots."""
        return sum(plot.builds for plot in self._plots())

    def _show_history(self, frame: Frame, force: bool = True) -> None:
        self._send_convergence(force=force)
        self._send_diagnostics(force=force)
        self._update_progress(frame)

    def _send_diagnostics(self, force: bool = True) -> None:
        if self._diag_rows.any_values():
            self.diagnostics_plot.update({"history": self._shown_diagnostics(), "scale": self.diagnostics_scale,
                                          "order": list(self._diag_rows.cols)}, force=force)

    def _shown_diagnostics(self) -> dict[str, np.ndarray]:
        """The plotted history: every diagnostic, or those of the group shown (in the group's order)."""
        history = self._diag_rows.arrays()
        group = self.lab.diagnostic_groups.get(self.diagnostics_shown)
        if group is None:
            return history
        return {"time": history["time"], **{k: history[k] for k in group if k in history}}

    @_serialized
    def _on_diagnostics_scale(self, *events) -> None:
        """Redraw the Diagnostics plot on its new y axis, or with the group of diagnostics chosen
        (during a run the next rows stream onto it); once when both change together (one event each)."""
        try:
            if self.diagnostics_plot.data is not None:  # (a cleared plot gets the new axis with its next row)
                self._send_diagnostics()
        except Exception as exc:  # noqa: BLE001
            self._show_error(exc)

    def _show_frame(self, frame: Frame, force: bool = True, history: bool = True) -> None:
        self._pending_history = None
        self._progress = float(frame.progress)
        if history:
            self._show_history(frame, force=force)
        if frame.spectrum is not None:
            self.spectrum_plot.update(frame.spectrum, force=force)
        samples = self._joined_samples(frame.samples)
        if self._new_run_samples:
            self._drop_stale_sample_plots(samples)
        for key, sample in samples.items():
            plot = self.sample_plots.get(key)
            if plot is None:
                plot = self.sample_plots[key] = LivePlot(sample_element, title=self.lab.sample_title(key),
                                                         follow=self.follow_data,
                                                         name=f"sample:{key}", width=SAMPLE_WIDTH)
                if self._placeholder in self.samples_area.objects:
                    self.samples_area.objects = []
                self.samples_area.append(plot.pane)
            plot.update(sample, force=force)
        self.export.run_available = True

    def _joined_samples(self, samples: dict) -> dict:
        """The frame's samples as the plots show them: a sample the lab draws on another's axes
        (``sample_overlays``) joins that one's plot, where the frame has both curves."""
        out = dict(samples)
        for key, host in self.lab.sample_overlays.items():
            if isinstance(out.get(key), Curve) and isinstance(out.get(host), (Curve, Joined)):
                first = out[host]
                out[host] = Joined((*(first.curves if isinstance(first, Joined) else (first,)), out.pop(key)))
        return out

    def _drop_stale_sample_plots(self, samples: dict) -> None:
        """At a run's first frame: remove the kept sample plots of keys this run does not show."""
        self._new_run_samples = False
        stale = [key for key in self.sample_plots if key not in samples]
        if not stale:
            return
        panes = {id(self.sample_plots.pop(key).pane) for key in stale}
        kept = [obj for obj in self.samples_area.objects if id(obj) not in panes]
        self.samples_area.objects = kept or [self._placeholder]

    def _finish(self, kind: str, payload) -> None:
        if self._pending_history is not None:  # the last frame's history, before the end's own updates
            frame, self._pending_history = self._pending_history, None
            self._show_history(frame)
        self._tick()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        if kind == _DONE:
            self._progress = 1.0 if self._frames else self._progress
            self._update_progress(self._frames[-1] if self._frames else None, done=True)
            self._archive()
            self._set_status("finished")
        else:
            self._update_progress(self._frames[-1] if self._frames else None, stopped=True)
            self._show_error(payload)

    def _update_progress(self, frame: Frame | None, done: bool = False, stopped: bool = False) -> None:
        self.progress_bar.value = int(round(100 * min(max(self._progress, 0.0), 1.0)))
        self._update_categories()
        if frame is None:
            self.progress_text.object = "Starting the run…" if self.status == "running" else "Ready."
            return
        active = self._active_s + (time.monotonic() - self._started_at if self._started_at else 0.0)
        # (a frame is a snapshot the page shows; the solver's steps between frames are counted apart)
        text = (f"frame {frame.step} · {self.lab.time_symbol()} = {frame.time:.4g} · {frame.steps} solver steps · "
                f"{100 * self._progress:.0f}%")
        if done:
            text += f" · done in {active:.1f} s"
        elif stopped:  # (an error ended the run: no time left to estimate)
            text += " · stopped"
        elif self.status == "paused":
            text += " · paused"
        elif 0 < self._progress < 1 and active > 0:
            # the rate since the first frame shown: the set-up before it (building the operators of a large
            # grid) made the first estimates ~10x too long
            if self._eta_origin is None:
                self._eta_origin = (active, self._progress)
            seconds, start = self._eta_origin
            if self._progress > start and active > seconds:
                text += f" · ETA {(active - seconds) * (1 - self._progress) / (self._progress - start):.1f} s"
        if self.status == "running" and not (done or stopped) and " · ETA " not in text:
            text += " · running"  # (until a second frame gives a rate)
        self.progress_text.object = text

    def _update_categories(self) -> None:
        """Show the newest value of each categorical diagnostic by its name (its code if it has none;
        a dash before the first frame)."""
        parts = []
        for key in self.lab.categorical_diagnostics:
            value = self._categories.get(key)
            name = None if value is None else self.lab.category_name(key, value)
            shown = "–" if value is None else name if name is not None else _format_value(value)
            parts.append(f"{key}: **{shown}**")
        text = " · ".join(parts)
        if self.category_text.object != text:
            self.category_text.object = text

    # ================================================================= convergence history
    def convergence_history(self) -> dict[str, np.ndarray]:
        """The current run's convergence quantities vs time (``'time'`` + one array each)."""
        return self._rows.arrays()

    @property
    def earlier_runs(self) -> list[dict]:
        """Earlier runs kept for comparison: ``{'id', 'values', 'history'}`` each."""
        return list(self._earlier)

    def _preview_without_files(self) -> bool:
        """Whether the worker only previews a lab whose run writes files (which the preview left out):
        Run and Step then start the run afresh instead of continuing the preview."""
        return self._previewing and any(getattr(self.lab, name) for name in self.lab.output_files)

    def _archive(self) -> None:
        """Keep the current run for comparison (once; a preview is not a run)."""
        if not self._rows or self._archived_id == self._run_id or self._previewing:
            return
        self._archived_id = self._run_id
        self._earlier.append({"id": self._run_id, "values": dict(self._run_values),
                              "history": self.convergence_history()})

    def _send_convergence(self, force: bool = True) -> None:
        reference = self._run_values if self._rows else self.lab.values()
        earlier, seen = [], set()
        for i, run in enumerate(self._earlier):
            if run["id"] == self._run_id and self._rows:
                continue  # the run on screen is drawn solid
            label = _diff_label(run["values"], reference) or f"run {run['id']}"
            if label in seen:  # (shortened labels of two runs may coincide)
                label = f"{label} (run {run['id']})"
            seen.add(label)
            earlier.append({"label": label, "history": run["history"]})
        self.convergence_plot.update({"history": self._rows.arrays(), "earlier": earlier}, force=force)

    # ================================================================= parameters
    @_serialized
    def _on_lab_param(self, *events) -> None:
        try:
            self._soon("code", self._update_code)
            if self._suppress_param_events:
                return
            if self._alert_about_values:  # (a refused value, a link's problem: said of values now changed)
                try:
                    self.lab.validate(memory=False)
                    self._clear_alert()
                except ValueError as exc:
                    self._show_alert(f"{INVALID_PARAMETERS} {exc}", "danger", about_values=True)
            if self._worker is not None and self._worker.alive and not self._previewing:
                self._stop_worker()
                self._drain()
                self._archive()
                self._tick()
                self._set_status("stopped")
                names = ", ".join(sorted({e.name for e in events}))
                self._show_alert(f"Parameters changed ({names}): the run was stopped. Press Run to start a new one.",
                                 "info")
            elif not self._rows:
                self._send_convergence()  # refresh the labels of earlier runs
            if self._preview_enabled:
                self._show_preview()
        except Exception as exc:  # noqa: BLE001
            self._show_error(exc)

    @property
    def _preview_enabled(self) -> bool:
        return self.preview if self.preview is not None else self._poll_cb is not None

    def show_initial_state(self) -> None:
        """Draw the current values' initial state (the first frame of a paused run that Run continues), as a
        parameter change does: on opening a page and after Reset, instead of empty plots. Where the view
        is not displayed (no preview) nothing happens; an error is shown in the page."""
        if not self._preview_enabled:
            return
        try:
            self._show_preview()
        except Exception as exc:  # noqa: BLE001 - reported in the page, like any failed start
            self._show_error(exc)

    def _show_preview(self) -> None:
        """Compute the first frame of the current values in a paused worker: the plots show the new
        initial state at once, and Run continues from it (Step advances past it)."""
        if self._worker is not None and self._worker.alive and not self._previewing:
            return  # a run is going on: it was stopped above, or the change came from it
        if self.status == "error":
            self._clear_alert()
        self._start_worker(running=False, steps=1, preview=True)
        self._set_status("idle")
        self._set_poll_rate()

    @_guarded
    def _on_preset(self, event) -> None:
        if event.new is not None:
            self.lab.apply_preset(event.new)

    @_serialized
    def _on_follow(self, event) -> None:
        for plot in (self.convergence_plot, self.diagnostics_plot, self.spectrum_plot, *self.sample_plots.values()):
            plot.set_follow(event.new)

    def sync_location(self, location, rewrite_on_load: bool = False) -> None:
        """Keep ``location.search`` (a ``pn.state.location``) equal to the preset + changed parameters, and
        the page's ``theme`` (a dark page's link opened light); ``rewrite_on_load``: also once the page has
        loaded (a link with values the page ignored)."""
        from urllib.parse import parse_qs, urlencode

        from panel.theme.base import THEMES

        from explore.ui.urlstate import search_of

        def write(*events):
            try:
                search = search_of(self.lab, self.preset.value)
                theme = parse_qs((location.search or "").lstrip("?")).get("theme")
                if theme and theme[-1] in THEMES:  # (a name Panel knows: not whatever a link held)
                    search += ("&" if search else "?") + urlencode({"theme": theme[-1]})
                if location.search != search:
                    location.search = search
            except Exception:  # noqa: BLE001 - the URL is a convenience; never break the page for it
                pass

        self.lab.param.watch(lambda *events: self._soon("url", write), self.lab.parameter_names())
        self.preset.param.watch(lambda *events: self._soon("url", write), "value")
        write()
        if rewrite_on_load:
            # the browser reports its address once the page has loaded, which undoes the write above: a
            # link's ignored values stayed in the address bar until a control changed (a valid link is
            # left as it was typed). The report may come after the load event (a loaded host), so each
            # report is answered, not only the load
            location.param.watch(lambda *events: self._soon("url", write), "search")
            if pn.state.curdoc is not None and pn.state.curdoc.session_context:
                pn.state.onload(write)

    def _soon(self, key: str, fn) -> None:
        """Call ``fn`` ``SECONDARY_DELAY_MS`` from now in a served page (the latest call per ``key``
        wins), at once elsewhere: for what may lag a parameter change, not the plots."""
        token = self._soon_tokens[key] = object()

        def latest():
            if self._soon_tokens.get(key) is token:
                del self._soon_tokens[key]
                fn()

        served = pn.state.curdoc if pn.state.curdoc is not None and pn.state.curdoc.session_context else None
        if not self._later(latest, SECONDARY_DELAY_MS, doc=served):
            latest()

    def _update_code(self) -> None:
        """Show the snippet and CLI line of the current values (and give the snippet to "Copy code")."""
        try:
            python, cli = self.lab.to_code(), self.lab.to_cli()
        except Exception as exc:  # noqa: BLE001
            self.export.set_code(f"(cannot write code for these values: {exc})", "")
            return
        self.export.set_code(f"{_fenced(python, 'python')}\n\n{_fenced(cli, 'bash')}", python)

    # ================================================================= alerts
    def _show_alert(self, message: str, kind: str = "danger", about_values: bool = False) -> None:
        """Show ``message`` (Markdown; any HTML in it is shown as text: messages quote values from links
        and exceptions, which must never become markup in the page). ``about_values``: it says a value was
        refused or the values cannot run, and goes when an edit makes them runnable."""
        self._alert_about_values = about_values
        self.alert.alert_type = kind
        self.alert.object = html.escape(message, quote=False)
        self.alert.visible = True

    def _show_error(self, exc: BaseException) -> None:
        if isinstance(exc, SolverDiverged):
            # (a run stopped for taking too many steps did not diverge: t_end = 1e30 said it had)
            message = f"**{'The run stopped' if exc.what == 'stopped' else 'The solver diverged'}.** {exc}"
        elif isinstance(exc, ValueError):
            message = f"{INVALID_PARAMETERS} {exc}"
        else:
            message = f"**{type(exc).__name__}:** {exc}"
        self._tick()
        self._set_status("error")
        self._show_alert(message, "danger")

    def _refused_edit(self, exc: BaseException) -> None:
        """An edit from the page that raised (a value its parameter refuses): say why, and put every widget
        back to the lab's value, so the page shows what a run would use."""
        for pane in self.param_panes.values():
            for name, widget in pane._widgets.items():
                if name in self.lab.param and "value" in widget.param:
                    current = getattr(self.lab, name)
                    if widget.value is not current and widget.value != current:
                        widget.value = current
        if isinstance(exc, ValueError):
            self._show_alert(f"{INVALID_PARAMETERS} {exc} The value was not applied.", "danger", about_values=True)
        else:  # (another error in handling the page's event: said as it is)
            self._show_alert(f"**{type(exc).__name__}:** {exc}", "danger")

    @_serialized
    def _refuse_empty_box(self, name: str, *events) -> None:
        """The box of ``name``, a parameter that needs a number, was emptied in the page (the edit was not
        applied, see :class:`_Box`): show the lab's value in it again and say so."""
        widget = self.widgets[name]
        widget.param.trigger("value")  # (the browser's box is empty: it gets the unchanged value again)
        self._show_alert(f"{INVALID_PARAMETERS} {name} needs a number; it stays {getattr(self.lab, name)}.",
                         "danger", about_values=True)

    def _clear_alert(self) -> None:
        self._alert_about_values = False
        self.alert.object = ""
        self.alert.visible = False

    # ================================================================= export
    def to_dataset(self):
        """The frames received so far as an ``xarray.Dataset`` (see :func:`frames_to_dataset`)."""
        if not self._frames:
            raise ValueError("nothing to export yet: run the lab first")
        lab = self._run_lab or self.lab
        # the lab that ran adds what it keeps beyond the frames (its final full-resolution state), as
        # `explore run` writes it; none before the run's end, nor before its last frame has come (the
        # worker may have finished with frames still queued for the page: the state at t_end went out
        # beside a history that stopped earlier)
        ended = self._run_lab is not None and self._frames[-1].progress >= 1.0
        extras = self._run_lab.result_extras() if ended else None
        return frames_to_dataset(self._frames, lab, extras=extras)

    def export_bytes(self) -> bytes:
        """The run received so far as netCDF bytes (h5netcdf engine)."""
        return bytes(self.to_dataset().to_netcdf(engine="h5netcdf"))


__all__ = ["LabView"]
