"""A server's `sleep` (servers/delays.py) that holds each delay until the test lets it go.

A test of "the reply waits for the delay" then needs no window of wall-clock
time: while the delay is held the reply cannot come, however slow or stalled
the test process is, and it must come once the delay is let go.
"""

from __future__ import annotations

import asyncio
import threading


class HeldDelays:
    """Records each delay asked for (`asked`, in seconds) and holds it until release()."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._held: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._lock = threading.Lock()  # the server's loop asks, the test's thread releases

    async def __call__(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        held: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self.asked.append(seconds)
            self._held.append((loop, held))
        await held

    def release(self) -> None:
        """End every delay held now (from any thread)."""
        with self._lock:
            held, self._held = self._held, []
        for loop, future in held:
            loop.call_soon_threadsafe(_end, future)


def _end(future: asyncio.Future[None]) -> None:
    if not future.done():  # a stop may have cancelled it meanwhile
        future.set_result(None)
