"""Idle SMTP sessions kept open for the next job to the same destination.

Mail that trickles in makes jobs of one or two messages; opening a
connection for each (TCP, greeting, EHLO, often STARTTLS, then QUIT) costs
more than sending the message. Like Postfix's connection cache, a job that
is done parks its session here for `idle_seconds`, and the next job to the
same destination (Route.destination) takes it instead of connecting; a
session is not parked again once it is five minutes old, so a destination
busy all day still goes back to its preferred host now and then.

The limits still hold: a job opens a connection only when none is parked
for its destination, so a destination never has more connections than jobs
allowed at once; and before a job connects, `make_room` closes parked
sessions of other destinations until jobs plus parked sessions fit the
total limit. A parked session the server closed is noticed (it is no
longer `alive`) and dropped when taken.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable

from nmail.queue.smtp_client import RemoteSession

IDLE_SECONDS = 5.0  # how long a parked session waits for the next job
# A session older than this is not parked again: a destination that is busy
# all day would otherwise stay on the host it first reached (a backup MX, say).
MAX_AGE_SECONDS = 300.0


class SessionCache:
    """Parked sessions by destination, oldest first."""

    def __init__(
        self, idle_seconds: float = IDLE_SECONDS, max_age_seconds: float = MAX_AGE_SECONDS
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self._parked: dict[Hashable, list[tuple[float, RemoteSession]]] = {}
        self._count = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def __len__(self) -> int:
        return self._count

    def take(self, destination: Hashable) -> RemoteSession | None:
        """The most recently parked live session for `destination`, if any."""
        parked = self._parked.get(destination)
        found = None
        while parked and found is None:
            _, session = parked.pop()
            self._count -= 1
            if session.alive:
                found = session
            else:
                session.abort()
        if not parked:
            self._parked.pop(destination, None)
        return found

    def park(self, destination: Hashable, session: RemoteSession, limit: int) -> bool:
        """Keep `session` for the next job (at most `limit` per destination); False: closed
        by the caller instead."""
        loop = asyncio.get_running_loop()
        parked = self._parked.setdefault(destination, [])
        too_old = loop.time() - session.opened_at > self.max_age_seconds
        if self._closed or too_old or not session.alive or len(parked) >= limit:
            if not parked:
                del self._parked[destination]
            return False
        parked.append((loop.time(), session))
        self._count += 1
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.idle_seconds, self._sweep)
        return True

    async def make_room(self, in_use: int, limit: int) -> None:
        """Close the oldest parked sessions until `in_use` jobs and the parked fit
        `limit`; returns once they are closed, so a new connection never overlaps."""
        evicted: list[RemoteSession] = []
        while self._count and in_use + self._count > limit:
            oldest = min(self._parked, key=lambda d: self._parked[d][0][0])
            evicted.append(self._parked[oldest].pop(0)[1])
            if not self._parked[oldest]:
                del self._parked[oldest]
            self._count -= 1
        if evicted:
            await asyncio.gather(*(_quietly_close(session) for session in evicted))

    async def close(self, *, polite: bool = True) -> None:
        """Say QUIT to every parked session (a node stopping), or just hang up
        (`polite=False`: the scheduler was cancelled), and keep no more."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for parked in self._parked.values():
            for _, session in parked:
                if polite:
                    self._close_later(session)
                else:
                    session.abort()
        self._parked.clear()
        self._count = 0
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _sweep(self) -> None:
        """Close what has waited `idle_seconds`; come back for the rest."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - self.idle_seconds
        for destination in list(self._parked):
            parked = self._parked[destination]
            while parked and parked[0][0] <= cutoff:
                self._close_later(parked.pop(0)[1])
                self._count -= 1
            if not parked:
                del self._parked[destination]
        if self._count:
            oldest = min(p[0][0] for p in self._parked.values())
            self._sweeper = loop.call_later(
                max(oldest + self.idle_seconds - loop.time(), 0.01), self._sweep
            )

    def _close_later(self, session: RemoteSession) -> None:
        task = asyncio.get_running_loop().create_task(_quietly_close(session))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _quietly_close(session: RemoteSession) -> None:
    with contextlib.suppress(Exception):
        await session.close()
