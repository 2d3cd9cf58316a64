"""Counting the scheduler's passes, and waiting for a quiet one.

The scheduler numbers each look at the queue. A pass is quiet when it
claimed nothing and ended with none of the node's deliveries in
progress. `QuietPasses.wait()` returns at the first quiet pass that began
after the call, so a caller (a test, mostly) can tell "nothing more will
happen at this clock time" without guessing how long the loop needs.
The bookkeeping costs one comparison per pass when nobody waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class SchedulerStopped(RuntimeError):
    """The scheduler stopped (or crashed) before the awaited quiet pass."""


class QuietPasses:
    """Pass numbers and the callers waiting for a quiet pass (one event loop)."""

    def __init__(self) -> None:
        self.begun = 0
        self.done = 0
        # (first pass number that may answer, its future)
        self._waiters: list[tuple[int, asyncio.Future[int]]] = []

    @property
    def waiting(self) -> int:
        """Callers still waiting for a quiet pass."""
        return len(self._waiters)

    def begin(self) -> int:
        """Number a pass that starts now."""
        self.begun += 1
        return self.begun

    def end(self, number: int, *, quiet: bool) -> None:
        """Record pass `number` as finished; answer the waiters if it was quiet."""
        self.done = number
        if not quiet or not self._waiters:
            return
        waiting: list[tuple[int, asyncio.Future[int]]] = []
        for first, waiter in self._waiters:
            if waiter.done():
                continue
            if first <= number:
                waiter.set_result(number)
            else:
                waiting.append((first, waiter))
        self._waiters = waiting

    async def wait(self, wake: Callable[[], None]) -> int:
        """The number of the first quiet pass begun after this call (`wake` starts one)."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        entry = (self.begun + 1, waiter)
        self._waiters.append(entry)
        wake()
        try:
            return await waiter
        finally:
            if entry in self._waiters:  # the caller gave up (cancelled)
                self._waiters.remove(entry)

    def abandon(self) -> None:
        """The scheduler ended: every waiter gets SchedulerStopped."""
        waiters, self._waiters = self._waiters, []
        for _, waiter in waiters:
            if not waiter.done():
                waiter.set_exception(SchedulerStopped("the queue scheduler stopped"))
