"""The queue's periodic sweeps, done at the start of a scheduler pass when due.

- every REAP_EVERY clock seconds: recipients whose lease expired (a node
  died while delivering) are queued again, and the notices the admin asked
  for (`nmail queue bounce`, state `bouncing`) are sent;
- every RECOVER_EVERY: bodies that lost their rows get them back, and a
  kill's leftovers go (queue/recovery.py);
- every PURGE_EVERY: rows of messages finished before `[queue]
  keep_finished` are forgotten.

Apart from scheduler.py (which claims and delivers) because none of this is
delivery: each is a blocking sweep over the whole queue, run in a worker
thread on its own timer, and the scheduler only asks "anything due?". The
timers read the scheduler's injectable clock, so tests move time instead of
sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nmail.config import QueueSettings
from nmail.queue.recovery import recover
from nmail.queue.spool import Spool
from nmail.queue.store import QueueStore

log = logging.getLogger("nmail.queue")

REAP_EVERY = 15  # clock seconds between sweeps for expired leases
PURGE_EVERY = 3600  # clock seconds between removals of long-finished messages
RECOVER_EVERY = 300  # clock seconds between looks for bodies that lost their rows


class Chores:
    """When each sweep last ran, and running the ones that are due."""

    def __init__(self, store: QueueStore, spool: Spool, settings: QueueSettings,
                 process_bounces: Callable[[], int]) -> None:
        self._store = store
        self._spool = spool
        self._settings = settings
        self._process_bounces = process_bounces  # blocking; sends the admin's bounces
        self._last_reap = float("-inf")
        self._last_purge = float("-inf")
        self._last_recover = float("-inf")

    def recovered(self, now: float) -> None:
        """The spool was recovered at `now` (at start): the next recovery is a period away."""
        self._last_recover = now

    async def run_due(self, now: float) -> None:
        """Run every sweep whose period has passed since it last ran."""
        if now - self._last_reap >= REAP_EVERY:
            self._last_reap = now
            reaped = await asyncio.to_thread(self._store.reap_expired, int(now))
            if reaped:
                log.warning("queue: %d recipient(s) with an expired lease are queued again", reaped)
            await asyncio.to_thread(self._process_bounces)
        if now - self._last_recover >= RECOVER_EVERY:
            self._last_recover = now
            await asyncio.to_thread(
                recover, self._spool, self._store, next_attempt=int(now),
                give_up_after=self._settings.give_up_after,
            )
        if now - self._last_purge >= PURGE_EVERY:
            self._last_purge = now
            cutoff = int(now) - self._settings.keep_finished
            purged = await asyncio.to_thread(self._store.purge_finished, cutoff)
            if purged:
                log.info("queue: forgot %d message(s) finished before the keep period", purged)
