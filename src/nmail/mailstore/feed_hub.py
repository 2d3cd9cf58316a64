"""The change feed's hub: one per node, beside the index writer, fanning commits out.

The hub lives where commits happen for `nmail serve` (the index writer
process; the serve process itself with one worker), so a commit's events
leave with one non-blocking send per subscribing process, from the
committing thread itself: no queue, no thread hand-off, no GIL round trip
in the writer's hot path. A small thread of its own only accepts
connections and reads what clients send (a subscription, or changes that
another process committed: the CLI, a worker's own writer thread).

What a subscriber process has not read yet waits in its socket, then in a
buffer of at most MAX_PENDING bytes (a Unix socket takes only a few hundred
small writes: a burst of commits would otherwise cut a healthy subscriber
off); past that the hub drops the connection, and the process reconnects
and tells its subscriptions to resync (feed.py). Memory stays bounded
whatever a subscriber does.

With PostgreSQL a relay (feed_postgres) carries every commit to the other
nodes' hubs over LISTEN/NOTIFY and brings theirs in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from nmail.mailstore.feed import dial_hub
from nmail.mailstore.feed_wire import (
    RESYNC_LINE,
    Change,
    FolderChangeLike,
    LineReader,
    WireError,
    event_line,
    from_commit,
    hello_line,
    parse_change,
    publish_line,
)
from nmail.mailstore.index_wire import same_user

log = logging.getLogger(__name__)

MAX_PENDING = 1 << 20  # bytes queued for one subscriber process (~30,000 events)


class Relay(Protocol):
    """Carries this node's changes to the other nodes (feed_postgres.PostgresRelay)."""

    def send(self, changes: Sequence[Change]) -> None: ...

    def close(self) -> None: ...


class FeedHub:
    """Accepts subscribers at `address` and sends them every published change."""

    def __init__(self, address: str) -> None:
        self.hub_id = secrets.token_hex(8)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(address)
            self._listener.listen(128)
        except OSError:
            self._listener.close()
            raise
        self._lock = threading.Lock()
        self._subscribers: dict[int, socket.socket] = {}
        self._pending: dict[int, bytearray] = {}  # fd -> what its socket did not take yet
        self._readers: dict[int, tuple[socket.socket, LineReader]] = {}
        self._relay: Relay | None = None
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="nmail-feed-hub", daemon=True)
        self._thread.start()

    def set_relay(self, relay: Relay) -> None:
        """Send every change published here to other nodes too."""
        self._relay = relay

    # -- publishing (any thread) ----------------------------------------------------

    def publish(self, changes: Sequence[FolderChangeLike]) -> None:
        """The mail store's commit hook: send `changes` to every subscriber; never blocks."""
        self.publish_changes([from_commit(change) for change in changes])

    def publish_changes(self, changes: Sequence[Change], *, relay: bool = True) -> None:
        """Send `changes` here (and, if `relay`, to the other nodes)."""
        if not changes:
            return
        self._send(b"".join(event_line(change) for change in changes))
        if relay and self._relay is not None:
            self._relay.send(changes)

    def resync_all(self) -> None:
        """Tell every subscriber that events may have been lost (the relay's link broke)."""
        self._send(RESYNC_LINE)

    def _send(self, data: bytes) -> None:
        with self._lock:
            dropped = []
            backlog = False
            for fd, sock in self._subscribers.items():
                pending = self._pending.get(fd)
                if pending is not None:
                    if len(pending) + len(data) > MAX_PENDING:
                        dropped.append(fd)  # it reconnects and its subscriptions resync
                    else:
                        pending += data
                    continue
                try:
                    sent = sock.send(data, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    dropped.append(fd)
                    continue
                if sent < len(data):
                    self._pending[fd] = bytearray(data[sent:])
                    backlog = True
            for fd in dropped:
                self._drop(fd)
        if backlog:
            self._wake()

    def _flush(self, fd: int) -> None:
        """Send what waits for a subscriber whose socket has room again."""
        with self._lock:
            pending = self._pending.get(fd)
            sock = self._subscribers.get(fd)
            if pending is None or sock is None:
                return
            try:
                sent = sock.send(pending, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                self._drop(fd)
                return
            del pending[:sent]
            if not pending:
                del self._pending[fd]

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_write, b"\0")

    # -- the thread: accept, read ----------------------------------------------------

    def _run(self) -> None:
        while not self._closing:
            with self._lock:
                socks = {sock.fileno(): sock for sock, _ in self._readers.values()}
                backlogged = list(self._pending)
            listener = self._listener.fileno()
            try:
                ready, writable, _ = select.select(
                    [listener, self._wake_read, *socks], backlogged, [])
            except (OSError, ValueError):
                continue  # a socket closed by a publishing thread meanwhile: look again
            for fd in writable:
                self._flush(fd)
            if self._wake_read in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_read, 64)
            if listener in ready:
                self._accept()
            for fd in ready:
                if fd in socks:
                    self._read(socks[fd])

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        if not same_user(sock):
            log.warning("change feed: refused a connection from another user")
            sock.close()
            return
        with self._lock:
            self._readers[sock.fileno()] = (sock, LineReader())

    def _read(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        entry = self._readers.get(fd)
        if entry is None or entry[0] is not sock:
            return
        try:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            lines = entry[1].feed(data)
        except (OSError, WireError) as exc:
            if isinstance(exc, WireError):
                log.warning("change feed: dropping a client: %s", exc)
            with self._lock:
                self._drop(fd)
            return
        published: list[Change] = []
        for letter, rest in lines:
            if letter == "S":
                with self._lock:
                    if fd in self._readers:
                        self._subscribers[fd] = sock
                        # Under the lock: no event can reach it before its hello.
                        with contextlib.suppress(OSError):
                            sock.send(hello_line(self.hub_id), socket.MSG_DONTWAIT)
            elif letter == "P":
                try:
                    published.append(parse_change(rest))
                except WireError as exc:
                    log.warning("change feed: a bad published change: %s", exc)
            else:
                log.warning("change feed: unknown line %r from a client", letter)
        if published:
            # The publisher relayed them to other nodes itself (FeedPublisher).
            self.publish_changes(published, relay=False)

    def _drop(self, fd: int) -> None:
        """Forget a connection (the lock is held)."""
        self._subscribers.pop(fd, None)
        self._pending.pop(fd, None)
        entry = self._readers.pop(fd, None)
        if entry is not None:
            entry[0].close()
            self._wake()

    def close(self) -> None:
        """Stop accepting, close every connection (subscribers will resync elsewhere)."""
        self._closing = True
        self._wake()
        self._thread.join(5)
        if self._relay is not None:
            self._relay.close()
        with self._lock:
            for fd in list(self._readers):
                self._drop(fd)
        self._listener.close()
        os.close(self._wake_read)
        os.close(self._wake_write)


class FeedPublisher:
    """A process that commits but is not the hub's (the CLI) sends its changes to the hub.

    If no hub answers, no server runs on this node and nobody subscribes
    here; the changes are dropped (a server that starts later reads the
    database). With PostgreSQL the relay's NOTIFY reaches every node's hub,
    this one's included, so nothing goes over the socket.
    """

    def __init__(self, address: str, relay: Relay | None = None) -> None:
        self._address = address
        self._relay = relay
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def publish(self, changes: Sequence[FolderChangeLike]) -> None:
        """A commit hook: hand `changes` over, never raise, block only briefly."""
        converted = [from_commit(change) for change in changes]
        if not converted:
            return
        if self._relay is not None:
            # Every hub, this node's too, hears it from the database.
            self._relay.send(converted)
            return
        data = b"".join(publish_line(change) for change in converted)
        with self._lock:
            for _ in range(2):  # a link the hub closed (restarted) is dialled again once
                try:
                    if self._sock is None:
                        self._sock = dial_hub(self._address, timeout=1.0)
                    self._sock.sendall(data)
                    return
                except OSError:
                    self._close_sock()
            log.debug("change feed: no hub at this node; %d changes not sent", len(converted))

    def _close_sock(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self._close_sock()
        if self._relay is not None:
            self._relay.close()


CommitHook = Callable[[Sequence[FolderChangeLike]], None]
