"""Server-wide pacing of the live plots: every session of a server shares one event loop.

Each streaming page drains its frame queue every ``DRAIN_PERIOD_MS``; pushing the newest frame to
the browser (writing the Bokeh sources and serialising the patch) costs a few milliseconds of the
event loop. One page streams at the full rate; twenty pages at the full rate would need the whole
loop and more, and then every click and page load waits behind them. The :class:`Pacer` measures
the cost of a push (a moving average) and spaces each streaming page's pushes so that all of them
together use at most ``budget`` of the loop:

    interval = max(period, n_streaming × cost / budget)

Frames are still taken from the queues at the full rate (their convergence rows are cheap), so a
run never slows down because its page is paced; only the redraws are spaced.

A page that cannot keep up (a slow browser drawing a large image or point cloud) is not sent more:
while the server still holds unsent bytes of earlier pushes for that page's connection (the socket
is full), its view skips the push (the newest frame waits, latest wins). Without this the messages
queued up in the server's memory (~100 MB in 30 s streaming a 256² image) and the page fell
seconds behind the run.
"""
from __future__ import annotations

import threading
import time
import weakref

#: fraction of the server's event loop that streaming pushes may use together
BUDGET = 0.5
#: a page whose connection has more unsent bytes than this waits before its next push
MAX_BACKLOG_BYTES = 0


def backlog(doc=None) -> int:
    """Bytes of earlier messages the server has not yet handed to the network for the page of
    ``doc`` (default: the current session's document); 0 when unknown (no server session)."""
    if doc is None:
        import panel as pn

        doc = pn.state.curdoc
    session = getattr(getattr(doc, "session_context", None), "_session", None)
    total = 0
    for conn in list(getattr(session, "_subscribed_connections", None) or ()):
        stream = getattr(getattr(getattr(conn, "_socket", None), "ws_connection", None), "stream", None)
        if stream is None:
            continue
        size = getattr(stream, "_write_buffer_size", None)  # tornado's IOStream: bytes not yet written
        if not isinstance(size, int):
            try:
                size = 1 if stream.writing() else 0
            except Exception:  # noqa: BLE001 - unknown stream: no back-pressure
                size = 0
        total += size
    return total


class Pacer:
    """Decides when a streaming view may push its next frame (one per server process)."""

    def __init__(self, budget: float = BUDGET, initial_cost: float = 0.003):
        self.budget = budget
        self.cost = initial_cost
        self._streaming: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()

    def streaming(self, view, on: bool) -> None:
        """Count ``view`` among the streaming views (``on``) or not."""
        with self._lock:
            if on:
                self._streaming.add(view)
            else:
                self._streaming.discard(view)

    @property
    def n_streaming(self) -> int:
        with self._lock:
            return len(self._streaming)

    def interval(self, period: float) -> float:
        """Seconds between two pushes of one streaming view."""
        return max(period, self.n_streaming * self.cost / self.budget)

    def due(self, last_push: float, period: float) -> bool:
        """Whether a view that last pushed at ``last_push`` (``time.monotonic()``) may push now.

        A view drains every ``period`` and notes ``last_push`` when its push *ends*, so the next drain
        comes a little less than ``period`` after it: half a period of slack keeps an unpaced view at
        one push per drain (without it every other drain was skipped, halving the frame rate), and a
        paced one at the drain nearest to its interval.
        """
        if time.monotonic() - last_push < self.interval(period) - 0.5 * period:
            return False
        try:
            return backlog() <= MAX_BACKLOG_BYTES
        except Exception:  # noqa: BLE001 - back-pressure is best effort
            return True

    def record(self, seconds: float) -> None:
        """Fold the measured cost of one push (wall seconds of the event loop) into the moving average."""
        self.cost = 0.8 * self.cost + 0.2 * seconds


#: the pacer of this process
PACER = Pacer()

__all__ = ["PACER", "Pacer", "backlog"]
