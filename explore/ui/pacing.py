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
"""
from __future__ import annotations

import threading
import time
import weakref

#: fraction of the server's event loop that streaming pushes may use together
BUDGET = 0.5


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
        """Whether a view that last pushed at ``last_push`` (``time.monotonic()``) may push now."""
        return time.monotonic() - last_push >= self.interval(period)

    def record(self, seconds: float) -> None:
        """Fold the measured cost of one push into the moving average."""
        self.cost = 0.8 * self.cost + 0.2 * seconds


#: the pacer of this process
PACER = Pacer()

__all__ = ["PACER", "Pacer"]
