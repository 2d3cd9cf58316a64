"""Group commit for successful deliveries.

Most outcomes are "delivered". Recording each in its own transaction, from
many threads, makes the database the bottleneck (SQLite has one writer),
so deliveries are handed to one task that commits whatever accumulated
while the previous commit ran, then deletes the bodies of finished
messages. The SMTP session moves on to the next message meanwhile; a crash
before the commit means a second delivery later, never a lost one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nmail.queue.spool import Spool
from nmail.queue.store import QueueStore

log = logging.getLogger("nmail.queue")


@dataclass(frozen=True, slots=True)
class _Delivered:
    message_id: str
    ids: tuple[int, ...]
    remote_host: str | None
    reply: str
    done: asyncio.Future[None]


class DeliveryRecorder:
    """Commits deliveries in batches from one worker at a time."""

    def __init__(self, store: QueueStore, spool: Spool) -> None:
        self._store = store
        self._spool = spool
        self._pending: list[_Delivered] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    def add(
        self, message_id: str, ids: Sequence[int], remote_host: str | None, reply: str
    ) -> asyncio.Future[None]:
        """Queue one delivery for the next commit; the future settles after it."""
        assert self._wake is not None, "start() first"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Delivered(message_id, tuple(ids), remote_host, reply, done))
        self._wake.set()
        return done

    async def close(self) -> None:
        """Commit what is pending, then stop."""
        if self._task is None:
            return
        if self._pending:
            await self._commit_pending()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def abandon(self) -> None:
        """A crash: drop what is pending (those recipients will be delivered again)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for item in self._pending:
            item.done.cancel()
        self._pending = []

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending:
                await self._commit_pending()

    async def _commit_pending(self) -> None:
        batch, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self._commit, batch)
        except Exception as exc:
            log.error("queue: could not record %d deliveries: %s", len(batch), exc)
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        for item in batch:
            if not item.done.done():
                item.done.set_result(None)

    def _commit(self, batch: list[_Delivered]) -> None:
        self._store.mark_delivered_batch([(b.ids, b.remote_host, b.reply) for b in batch])
        for message_id in self._store.finished([b.message_id for b in batch]):
            self._spool.remove(message_id)
