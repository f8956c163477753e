"""A view in a Jupyter kernel whose comm is handled on another thread (ipykernel 7's subshells, used by
JupyterLab 4.4+ for comms): its drains move to the comm's thread, and the browser's messages are applied
holding the view's lock (``explore.ui.kernel``)."""
from __future__ import annotations

import asyncio
import threading
import time

import panel as pn
import pytest

from explore.labs.nlse import NLSELab
from explore.ui import view as view_module
from explore.ui.kernel import ECHO_FILTER_JS, KernelPoller, displays, keep_live_events, live_events, with_echo_filter
from explore.ui.view import LabView


class LoopThread:
    """A thread running an asyncio event loop (as the kernel's main shell and each subshell do)."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, fn, timeout: float = 30.0):
        """Run ``fn`` on this thread's loop (inside a task: the loop is running); return its value."""
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loops():
    made = [LoopThread("main-shell"), LoopThread("subshell")]
    yield made
    for lt in made:
        lt.close()


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_poller_calls_on_the_thread_that_started_it_and_moves_when_started_elsewhere(loops):
    main, sub = loops
    calls: list[str] = []
    poller = KernelPoller(lambda: calls.append(threading.current_thread().name), period=10)
    assert main.call(poller.start)
    assert wait_until(lambda: calls.count("main-shell") >= 3)
    assert not poller.here  # (asked from the test's thread)
    assert main.call(lambda: poller.here)

    assert sub.call(poller.start)  # the move: stopped on the main shell's loop, started here
    n_main = calls.count("main-shell")
    assert wait_until(lambda: calls.count("subshell") >= 3)
    time.sleep(0.1)
    assert calls.count("main-shell") <= n_main + 1  # (at most a call already under way at the move)
    assert sub.call(lambda: poller.here)

    poller.stop()  # from a third thread: cancelled on the poller's own loop
    time.sleep(0.05)
    n = len(calls)
    time.sleep(0.15)
    assert len(calls) == n
    assert not poller.running


def test_poller_wake_and_a_shorter_period_call_at_once(loops):
    main, _ = loops
    calls: list[float] = []
    poller = KernelPoller(lambda: calls.append(time.monotonic()), period=60_000)
    main.call(poller.start)
    assert wait_until(lambda: len(calls) == 1)
    poller.wake()  # (from another thread, as the solver's worker does after a single step)
    assert wait_until(lambda: len(calls) == 2, timeout=2.0)
    poller.period = 10  # a run starts: drains at the fast rate now, not after the idle wait
    assert wait_until(lambda: len(calls) >= 5, timeout=2.0)
    poller.stop()
    n = len(calls)
    poller.wake()  # a stopped poller calls nothing
    time.sleep(0.1)
    assert len(calls) == n


def test_poller_goes_on_after_a_failed_call(loops):
    main, _ = loops
    calls: list[int] = []

    def fn():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the first call fails")

    poller = KernelPoller(fn, period=10)
    main.call(poller.start)
    assert wait_until(lambda: len(calls) >= 3)
    poller.stop()


def test_poller_outside_an_event_loop_does_not_start():
    """(In a thread of its own: in the test session's main thread Playwright's loop may be running.)"""
    poller = KernelPoller(lambda: None, period=10)
    started: list[bool] = []
    thread = threading.Thread(target=lambda: started.append(poller.start()))
    thread.start()
    thread.join(10)
    assert started == [False]
    assert not poller.running


def test_view_in_a_kernel_drains_on_its_comms_thread_and_applies_messages_holding_its_lock(loops, monkeypatch):
    """Built and displayed on the main shell's thread (a cell); the browser's messages arrive on a
    subshell's: from the first message on, every drain runs there, and a message is applied holding
    the lock that drains hold (a drain and a click never change the document at the same time)."""
    main, sub = loops
    pn.extension()
    monkeypatch.setattr(view_module, "_in_notebook", lambda: True)
    drains: list[str] = []
    shown_before = set(pn.state._views)
    try:
        def build():
            view = LabView(NLSELab(preset="single_soliton", N=64, t_end=0.5), preview=False)
            view._drain = lambda: drains.append(threading.current_thread().name) or 0
            view._repr_mimebundle_()  # displayed by the cell
            return view

        view = main.call(build)
        assert isinstance(view._poll_cb, KernelPoller)
        assert wait_until(lambda: "main-shell" in drains)
        comms = [comm for comm, _ in displays(view._layout)]
        assert len(comms) == 1

        comm = comms[0]
        assert getattr(comm._on_msg, "explore_guarded", False)  # Panel's handler, guarded at display
        applied: list[tuple[str, bool]] = []
        comm._on_msg = lambda msg: applied.append((threading.current_thread().name, view._ui_lock._is_owned()))
        view._guard_comms()  # (a recorder in place of Panel's handler, guarded as Panel's was)

        sub.call(lambda: comm._on_msg({"content": {}}))  # a click: the browser's message, on the subshell
        assert applied == [("subshell", True)]
        drains.clear()
        assert wait_until(lambda: drains.count("subshell") >= 3)
        time.sleep(0.1)
        assert set(drains) == {"subshell"}, drains
        view._guard_comms()  # guarding again wraps nothing twice
        sub.call(lambda: comm._on_msg({"content": {}}))
        assert applied[-1] == ("subshell", True) and len(applied) == 2
        view.stop()
    finally:
        for ref in set(pn.state._views) - shown_before:
            pn.state._views.pop(ref, None)


def test_a_drain_waits_for_a_message_being_applied(loops, monkeypatch):
    """The lock: while the subshell applies a message, a drain on another thread waits for it."""
    main, sub = loops
    monkeypatch.setattr(view_module, "_in_notebook", lambda: True)
    view = main.call(lambda: LabView(NLSELab(preset="single_soliton", N=64, t_end=0.5), preview=False))
    order: list[str] = []
    view._drain = lambda: order.append("drain") or 0
    entered = threading.Event()

    def apply_message():
        with view._ui_lock:
            entered.set()
            time.sleep(0.2)
            order.append("message")

    applier = threading.Thread(target=apply_message)
    applier.start()
    entered.wait(5)
    order.clear()
    view.drain()
    applier.join(5)
    assert order[:2] == ["message", "drain"]
    view.stop()


def test_notebook_display_carries_the_echo_filter_after_its_own_scripts():
    """A view's notebook HTML ends with the script that keeps Panel's CommManager from sending the
    kernel's own changes back (the browser test shows what it fixes: Run after Reset)."""
    view = LabView(NLSELab(preset="single_soliton", t_end=1.0), poll=False)
    data, _ = view._repr_mimebundle_()
    html = data["text/html"]
    embed, echo = html.find("docs_json"), html.rfind(ECHO_FILTER_JS)
    assert 0 <= embed < echo and html.rstrip().endswith("</script>")
    assert "event.sync === false" in ECHO_FILTER_JS and "panel.models.comm_manager.CommManager" in ECHO_FILTER_JS
    # a bundle without HTML (or a dict alone) passes through
    assert with_echo_filter({"text/plain": "x"}) == {"text/plain": "x"}
    assert with_echo_filter({"text/html": "<div></div>"})["text/html"].endswith("</script>")


def test_a_click_is_applied_even_when_its_message_names_a_dropped_model():
    """Bokeh drops a whole patch that refers to a model the document had and dropped; the notebook's
    CommManager sends a click in one patch with the page's other changes (a size of a figure a drain
    had just replaced), so the click was lost. A guarded document applies the live events."""
    from bokeh.core.serialization import Serialized
    from bokeh.document import Document
    from bokeh.models import Button, Column, Div

    def setup():
        doc, button, div = Document(), Button(label="Run"), Div(text="a")
        clicks = []
        button.on_event("button_click", lambda event: clicks.append(event))
        column = Column(button, div)
        doc.add_root(column)
        column.children = [button]  # the div is replaced: the document has seen it, and dropped it
        assert div.id not in doc.models and doc.models.seen(div.id)
        click = {"kind": "MessageSent", "msg_type": "bokeh_event",
                 "msg_data": {"type": "event", "name": "button_click",
                              "values": {"type": "map", "entries": [["model", {"id": button.id}]]}}}
        stale = {"kind": "ModelChanged", "model": {"id": div.id}, "attr": "text", "new": "b"}
        return doc, clicks, Serialized({"events": [stale, click]}, [])

    doc, clicks, patch = setup()
    doc.apply_json_patch(patch)
    assert clicks == []  # Bokeh alone: the click went with the stale event
    doc, clicks, patch = setup()
    keep_live_events(doc)
    keep_live_events(doc)  # (once)
    doc.apply_json_patch(patch)
    assert len(clicks) == 1 and clicks[0].model is not None
    # a patch that names no dropped model is passed on as it is
    fresh = Serialized({"events": [patch.content["events"][1], patch.content["events"][1]]}, [])
    assert live_events(doc, fresh) is fresh
