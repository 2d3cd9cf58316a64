"""A clock for deadlines that moves only when the test moves it (nmail/timers.py).

Given to a server or client in place of its event loop's clock, it makes a
timeout test independent of how fast the machine is: no deadline passes
while the test process is stalled, and one passes exactly when the test
moves the time past it. The callbacks run on the event loop, as the loop's
own timers would.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable


class ManualTimer:
    """One callback set for a time; what call_at returns (as asyncio.TimerHandle)."""

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self._when = when
        self.callback = callback
        self.cancelled = False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimers:
    """time(), call_at() and call_later() of an event loop, on a clock moved by advance()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, start: float = 1_000.0) -> None:
        self.loop = loop
        self.now = start
        self._due: list[tuple[float, int, ManualTimer]] = []
        self._order = itertools.count()  # equal times run in the order they were set

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> ManualTimer:
        timer = ManualTimer(when, callback)
        heapq.heappush(self._due, (when, next(self._order), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[[], object], /) -> ManualTimer:
        return self.call_at(self.now + delay, callback)

    def pending(self) -> int:
        """How many timers are set and not cancelled."""
        return sum(1 for _, _, timer in self._due if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move the clock on and run every callback now due, on the loop.

        Called on the loop's thread, the callbacks have run when it returns;
        from another thread, it waits until they have."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._advance(seconds)
            return

        async def on_the_loop() -> None:
            self._advance(seconds)

        asyncio.run_coroutine_threadsafe(on_the_loop(), self.loop).result(timeout=30)

    def _advance(self, seconds: float) -> None:
        self.now += seconds
        while self._due and self._due[0][0] <= self.now:
            _, _, timer = heapq.heappop(self._due)
            if not timer.cancelled:
                timer.callback()  # it may set timers of its own: due ones run too
