"""Nodes sharing a PostgreSQL database see each other's changes: LISTEN/NOTIFY.

PostgreSQL already is the one thing every node talks to, and its
notifications are delivered to every listening session, in commit order,
only for committed transactions: no bus of our own to run or secure. Each
node's hub LISTENs on one channel and NOTIFYs its own commits there; a
payload carries the sender's origin id so a hub skips its own (it gave them
to its subscribers already, without the round trip).

Two connections of their own, each on a thread: the listener blocks in
`notifies()`, the sender drains a queue, so the committing thread only
appends to that queue. When the listening connection breaks, notifications
sent meanwhile are gone: once it listens again the hub tells every
subscriber to resync (`on_lost`), so the loss is never silent.

The NOTIFY follows the COMMIT, so changes can also be lost on the sending
side: the committing process dies between the two, or the database refuses
the NOTIFY after its retries. Both are made loud the same way: a hub's
relay announces itself with a `resync` notification when it first reaches
the database (a writer restarted after a crash is a new hub), and a relay
that gave up on a batch sends one as soon as it can send again; every other
node tells its subscribers to resync from the MODSEQ they last saw. A
NOTIFY inside the committing transaction would close the gap entirely but
puts a round trip into every group commit; a crashed writer is rare and
is always restarted, so the announcement costs nothing on the hot path.

MariaDB has nothing like it; with MariaDB or SQLite the feed is per node.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import make_url

from nmail.mailstore.feed_wire import Change, WireError, change_text, parse_change

log = logging.getLogger(__name__)

CHANNEL = "nmail_feed"
RESYNC = "resync"  # the payload's text when the sender may have lost changes
RETRY_FIRST = 0.1
RETRY_MAX = 5.0
_STOP = object()


def conninfo(url: str) -> str:
    """psycopg's connection string for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _connect(info: str) -> Any:
    import psycopg

    return psycopg.connect(info, autocommit=True, connect_timeout=5)


class PostgresRelay:
    """Sends this node's changes to the other nodes and hands theirs to `on_remote`."""

    def __init__(
        self,
        url: str,
        *,
        origin: str | None = None,
        on_remote: Callable[[list[Change]], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        announce: bool | None = None,
    ) -> None:
        """Without `on_remote` it only sends (a CLI process that commits).

        `announce` (default: when it listens, i.e. a hub) sends a `resync`
        notification once the database is first reached.
        """
        self.origin = origin or secrets.token_hex(8)
        self._owe_resync = on_remote is not None if announce is None else announce
        self.announced = threading.Event()
        self.resyncs_heard = 0
        self._info = conninfo(url)
        self._on_remote = on_remote
        self._on_lost = on_lost
        self._outgoing: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closing = threading.Event()
        self.listening = threading.Event()
        self._threads = [threading.Thread(target=self._send_loop, name="nmail-feed-notify",
                                          daemon=True)]
        if on_remote is not None:
            self._threads.append(threading.Thread(target=self._listen_loop,
                                                  name="nmail-feed-listen", daemon=True))
        for thread in self._threads:
            thread.start()
        if self._owe_resync:
            self._outgoing.put([])

    def send(self, changes: Sequence[Change]) -> None:
        """Queue a NOTIFY of `changes` (returns at once)."""
        if changes:
            self._outgoing.put(list(changes))

    def close(self) -> None:
        """Send what is queued, then stop both threads."""
        self._closing.set()
        self._outgoing.put(_STOP)
        for thread in self._threads:
            thread.join(10)

    # -- sending ------------------------------------------------------------------

    def _send_loop(self) -> None:
        conn: Any = None
        delay = RETRY_FIRST
        stopping = False
        while not stopping:
            try:  # a resync still owed is retried without waiting for a change
                item = self._outgoing.get(timeout=RETRY_MAX if self._owe_resync else None)
            except queue.Empty:
                item = []
            if item is _STOP:
                break
            batch: list[Change] = list(item)  # type: ignore[call-overload]
            while True:  # take whatever else is queued: one round trip for all
                try:
                    more = self._outgoing.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                batch.extend(more)  # type: ignore[arg-type]
            payloads = [f"{self.origin} {change_text(change)}" for change in batch]
            if self._owe_resync:
                payloads.insert(0, f"{self.origin} {RESYNC}")
            for _ in range(3):
                try:
                    if conn is None:
                        conn = _connect(self._info)
                    conn.execute(
                        "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p",
                        (CHANNEL, payloads),
                    )
                    delay = RETRY_FIRST
                    if self._owe_resync:
                        self._owe_resync = False
                        self.announced.set()
                    break
                except Exception as exc:
                    log.warning("change feed: NOTIFY failed (%s); retrying", exc)
                    _close(conn)
                    conn = None
                    if self._closing.wait(delay):
                        break
                    delay = min(delay * 2, RETRY_MAX)
            else:
                # Other nodes' subscribers miss these: the next batch that gets
                # through starts with a resync notice for them.
                log.error("change feed: %d changes not sent to other nodes yet; they will be"
                          " told to resync", len(batch))
                self._owe_resync = True
        _close(conn)

    # -- listening ------------------------------------------------------------------

    def _listen_loop(self) -> None:
        delay = RETRY_FIRST
        while not self._closing.is_set():
            conn: Any = None
            try:
                conn = _connect(self._info)
                conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                delay = RETRY_FIRST
                if self._on_lost is not None:
                    # Whatever other nodes sent before this LISTEN is not coming.
                    self._on_lost()
                while not self._closing.is_set():
                    # Each one on arrival: the generator returns only at its timeout.
                    for note in conn.notifies(timeout=0.5):
                        change = self._remote(note.payload)
                        if change is not None and self._on_remote is not None:
                            self._on_remote([change])
            except Exception as exc:
                if not self._closing.is_set():
                    log.warning("change feed: LISTEN connection lost (%s)", exc)
            finally:
                self.listening.clear()
                _close(conn)
            if self._closing.wait(delay):
                break
            delay = min(delay * 2, RETRY_MAX)

    def _remote(self, payload: str) -> Change | None:
        origin, _, text = payload.partition(" ")
        if origin == self.origin:
            return None
        if text == RESYNC:
            self.resyncs_heard += 1
            if self._on_lost is not None:
                self._on_lost()
            return None
        try:
            return parse_change(text)
        except WireError as exc:
            log.warning("change feed: ignored a notification: %s", exc)
            return None


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:
            log.debug("closing a feed connection", exc_info=True)
