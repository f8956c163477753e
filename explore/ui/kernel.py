"""A view in a Jupyter kernel: which thread may touch its Bokeh document, and when.

ipykernel 7 can handle comm messages on *subshell* threads, each with its own event loop, and
JupyterLab 4.4+ sends comm messages to one (its ``commsOverSubshells`` setting, default
``perCommTarget``; until the subshell exists they go to the main shell). A displayed view then has
two threads: the cell's, where it was built and where its drains ran, and its comm's, where Panel
applies the browser's messages. A Bokeh document is not thread-safe, and one race froze a notebook's
plots mid-run: applying any browser message marks every model of the document as known to the
browser (``Document.apply_json_patch`` flushes its new models as synced), so a message applied
while a drain on the other thread had attached a new figure but not yet pushed it made the push
send that figure as a bare reference, and the browser refused the patch and every later one
("reference <id> isn't known").

The rules, kept by :class:`explore.ui.view.LabView`:

- one lock per view around everything that changes its document: drains, its own callbacks, and
  Panel's handling of each browser message (:func:`guard_comms` wraps the comm's handler), so a
  message is applied only between drains, when every change has been pushed;
- the periodic drain (:class:`KernelPoller`) runs on the thread that handles the view's comm (it
  moves there at the first message): the dashboard keeps streaming while the main shell runs
  another cell;
- the page sends the kernel only its own changes (:data:`ECHO_FILTER_JS`, added to the view's
  display): Panel's notebook ``CommManager`` also sent back every change the kernel had made, and a
  late echo naming a model the kernel had since replaced made Bokeh drop the whole message, with a
  click that travelled in it (Run after Reset did nothing); and the kernel applies what is still live
  of a message that names a dropped model (:func:`live_events`), so a click never goes with it.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import panel as pn


class KernelPoller:
    """Calls ``fn`` every ``period`` ms on the event loop of the thread that started it; :meth:`start`
    on another thread moves it there.

    Panel's ``PeriodicCallback`` restarts on the calling thread whenever its period changes and cancels
    its task from whichever thread stops it (asyncio is not thread-safe); this one changes its period
    in place and stops its task on the task's own loop.
    """

    def __init__(self, fn: Callable[[], object], period: int):
        self.fn = fn
        self._period = period
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: int | None = None
        self._task: asyncio.Task | None = None
        self._nudge: asyncio.Event | None = None

    @property
    def period(self) -> int:
        return self._period

    @period.setter
    def period(self, value: int) -> None:
        faster = value < self._period
        self._period = value
        if faster:
            self.wake()  # (not after the rest of a long idle wait)

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def here(self) -> bool:
        """Whether the poller runs on the calling thread."""
        return self.thread == threading.get_ident()

    def start(self) -> bool:
        """Run on the calling thread's event loop (stopping it where it ran before); ``False`` where the
        thread runs none (then nothing changes)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self.stop()
        self.loop, self.thread = loop, threading.get_ident()
        self._nudge = asyncio.Event()
        self._task = loop.create_task(self._repeat(self._nudge))
        return True

    async def _repeat(self, nudge: asyncio.Event) -> None:
        while True:
            nudge.clear()
            try:
                self.fn()
            except Exception:  # noqa: BLE001 - one failed call must not end the polling
                logging.getLogger(__name__).exception("the periodic call failed")
            try:  # the period, or until woken (then the next wait has the period set meanwhile)
                await asyncio.wait_for(nudge.wait(), self._period / 1000)
            except asyncio.TimeoutError:
                pass

    def wake(self) -> None:
        """Call ``fn`` on the poller's loop as soon as it can (from any thread)."""
        loop, task, nudge = self.loop, self._task, self._nudge
        if loop is None:
            return

        def call():
            if self._task is task:  # (not after a stop or a move)
                nudge.set()

        try:
            loop.call_soon_threadsafe(call)
        except RuntimeError:  # the loop is closed (the kernel is shutting down)
            pass

    def stop(self) -> None:
        """Stop calling ``fn`` (from any thread; the task is cancelled on its own loop)."""
        loop, task, here = self.loop, self._task, self.here
        self.loop = self.thread = self._task = None
        if task is None:
            return
        if here:
            task.cancel()
            return
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass


def displays(layout: pn.viewable.Viewable) -> list[tuple]:
    """(comm, document) of each notebook display of ``layout`` (its own, or that of a layout it is
    shown in): the comm on which the browser sends that display's messages, the document they change."""
    out = []
    for ref in list(getattr(layout, "_models", {})):
        shown = pn.state._views.get(ref)
        if shown is None:
            continue
        pair = getattr(shown[0], "_comms", {}).get(ref)
        if pair is not None and pair[1] is not None:
            out.append((pair[1], shown[2]))
    return out


def guard_comms(layout: pn.viewable.Viewable, lock, on_message: Callable[[], object]) -> None:
    """Wrap the message handler of each comm of ``layout``'s notebook displays (once): it holds
    ``lock`` while Panel applies the message and calls ``on_message`` first (on the comm's thread).
    Each display's document applies the live events of a message that also names dropped models
    (:func:`keep_live_events`)."""
    for comm, doc in displays(layout):
        keep_live_events(doc)
        handler = getattr(comm, "_on_msg", None)
        if handler is None or getattr(handler, "explore_guarded", False):
            continue

        def guarded(msg, _handler=handler):
            with lock:
                on_message()
                return _handler(msg)

        guarded.explore_guarded = True
        comm._on_msg = guarded


def _names_dropped(doc, value) -> bool:
    """Whether the JSON ``value`` refers (``{"id": …}``) to a model ``doc`` had and has since dropped."""
    if isinstance(value, dict):
        ref = value.get("id")
        if len(value) == 1 and isinstance(ref, str):
            return ref not in doc.models and doc.models.seen(ref)
        return any(_names_dropped(doc, v) for v in value.values())
    if isinstance(value, list):
        return any(_names_dropped(doc, v) for v in value)
    return False


def live_events(doc, patch_json):
    """``patch_json`` (a browser's patch, JSON or ``Serialized``) without its events that name a model
    ``doc`` has dropped since: Bokeh refuses a whole patch for one such reference ("previously known
    reference"), and the notebook's CommManager sends a click in one patch with whatever else the page
    changed meanwhile (a size of a figure that a drain had just replaced, say): the click was lost."""
    from bokeh.core.serialization import Serialized

    content = patch_json.content if isinstance(patch_json, Serialized) else patch_json
    events = content.get("events") if isinstance(content, dict) else None
    if not isinstance(events, list) or len(events) < 2:
        return patch_json
    live = [event for event in events if not _names_dropped(doc, event)]
    if len(live) == len(events):
        return patch_json
    content = {**content, "events": live}
    return Serialized(content, patch_json.buffers) if isinstance(patch_json, Serialized) else content


def keep_live_events(doc) -> None:
    """Make ``doc`` apply browser patches through :func:`live_events` (once)."""
    if getattr(doc, "_explore_live_events", False):
        return
    apply = doc.apply_json_patch

    def apply_live(patch_json, *args, **kwargs):
        return apply(live_events(doc, patch_json), *args, **kwargs)

    doc.apply_json_patch = apply_live
    doc._explore_live_events = True


#: Run by the page with a view's notebook display: Panel's notebook ``CommManager`` (Panel 1.9) sends
#: the kernel every change of the page's document, including those the kernel's own messages made
#: (Bokeh marks them ``sync = false``; its server session skips them). Those echoes double the traffic,
#: hold the manager's queue while the kernel applies them, and can arrive after the kernel has replaced
#: a model they name: Bokeh then drops the whole message as stale ("previously known reference"),
#: with any click queued in it. This filter skips them, as Bokeh's own session does.
ECHO_FILTER_JS = """
(function install(tries) {
  const Bokeh = window.Bokeh;
  const CM = Bokeh && Bokeh.Models && Bokeh.Models.get("panel.models.comm_manager.CommManager");
  if (CM == null) {  // Bokeh or Panel still loading: try again
    if (tries > 0) setTimeout(() => install(tries - 1), 100);
    return;
  }
  if (CM.prototype.__explore_echo_filter) return;
  const changed = CM.prototype._document_changed;
  CM.prototype._document_changed = function (event) {
    if (event.sync === false) return;  // a change the kernel made: it has it already
    return changed.call(this, event);
  };
  CM.prototype.__explore_echo_filter = true;
})(300);
"""


def with_echo_filter(bundle):
    """``bundle`` (a ``_repr_mimebundle_`` result: data, or (data, metadata)) with
    :data:`ECHO_FILTER_JS` run after its HTML's own scripts (JupyterLab runs each script of the HTML)."""
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    if isinstance(data, dict) and isinstance(data.get("text/html"), str):
        data["text/html"] += f'\n<script type="application/javascript">{ECHO_FILTER_JS}</script>'
    return bundle
