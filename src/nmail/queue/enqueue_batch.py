"""Group commit for the queue's intake: messages arriving together share the flushes.

Queueing one message alone costs a flush of its body, a flush of the queue
directory and a transaction. Many SMTP sessions queue at once, each on a
thread of its own; here the first to arrive becomes the leader and commits
for everyone waiting at that moment: one flush of every body (syncfs when
several), the renames, one flush of the directory, one transaction. The
others wait on their entry and return when it is done, as durable as
before; whoever arrived during the commit is handed the lead next.

If the shared transaction fails, each message is tried alone, so one bad
message fails only its own caller. A failed message leaves no file behind.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nmail.durable import sync_batch
from nmail.message_source import MessageSource
from nmail.queue import envelope_line
from nmail.queue.rows import MessageInfo, NewRecipient
from nmail.queue.spool import Spool
from nmail.queue.store import QueueStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Entry:
    message: MessageInfo
    recipients: Sequence[NewRecipient]
    next_attempt: int
    tmp: Path
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # handed the lead instead of being finished
    error: BaseException | None = None


class EnqueueBatcher:
    """Commits queue entries in groups; `commit` returns once its entry is durable."""

    def __init__(self, spool: Spool, store: QueueStore) -> None:
        self._spool = spool
        self._store = store
        self._lock = threading.Lock()
        self._pending: list[_Entry] = []
        self._busy = False

    def commit(
        self, message: MessageInfo, recipients: Sequence[NewRecipient], next_attempt: int,
        body: MessageSource,
    ) -> None:
        """Store `body` and the rows durably, or raise having stored nothing."""
        # The envelope rides in the body's own flush: rows lost with the
        # last commits (power loss) are rebuilt from it (queue/recovery.py).
        envelope = envelope_line.encode(message, recipients)
        tmp = self._spool.write_unflushed(message.id, body, envelope)
        entry = _Entry(message, recipients, next_attempt, tmp)
        with self._lock:
            self._pending.append(entry)
            leading = not self._busy
            self._busy = True
        if not leading:
            entry.done.wait()
        if leading or entry.lead:
            self._lead()
        if entry.error is not None:
            raise entry.error

    def _lead(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            self._commit(batch)
        except BaseException as exc:  # never leave a waiter hanging
            for entry in batch:
                if entry.error is None:
                    entry.error = exc
                    self._discard(entry)
            raise
        finally:
            with self._lock:
                if self._pending:
                    following = self._pending[0]
                    following.lead = True
                    following.done.set()
                else:
                    self._busy = False
            for entry in batch:
                entry.done.set()

    def _commit(self, batch: list[_Entry]) -> None:
        try:
            sync_batch(files=[entry.tmp for entry in batch])
        except OSError as exc:
            self._fail(batch, exc)
            return
        published: list[_Entry] = []
        for entry in batch:
            try:
                self._spool.publish(entry.message.id)
                published.append(entry)
            except OSError as exc:
                self._fail([entry], exc)
        try:
            sync_batch(directories=[self._spool.directory])
        except OSError as exc:
            self._fail(published, exc)
            return
        try:
            self._store.insert_many([(e.message, e.recipients, e.next_attempt) for e in published])
        except Exception as exc:
            if len(published) == 1:
                self._fail(published, exc)
                return
            log.warning("queue: a batch of %d entries failed (%s); one by one", len(batch), exc)
            for entry in published:
                try:
                    self._store.insert(entry.message, entry.recipients, entry.next_attempt)
                except Exception as single:
                    self._fail([entry], single)

    def _fail(self, entries: list[_Entry], exc: BaseException) -> None:
        for entry in entries:
            entry.error = exc
            self._discard(entry)

    def _discard(self, entry: _Entry) -> None:
        with contextlib.suppress(OSError):
            entry.tmp.unlink(missing_ok=True)
        self._spool.remove(entry.message.id)
