"""Subscribing to the change feed: every committed change, per account or folder.

IMAP IDLE and the webmail's new-mail notice wait on this instead of polling
the database. A process holds one connection to its node's hub (feed_hub)
and hands each event to the subscriptions it matches. What a subscriber can
rely on:

- An event arrives only after its COMMIT, and only as a wake-up: what
  changed is read from the database ("changes since" the modseq you hold).
- Nothing is lost silently. Each subscription queues at most QUEUE_LIMIT
  events; one that falls further behind loses them and gets a single
  `Resync(reason="slow")` instead (memory stays bounded, whatever a stuck
  consumer does). When the link to the hub breaks (the index writer
  restarted) every subscription gets `Resync(reason="reconnected")` once the
  link is back; when the hub itself may have missed events (its PostgreSQL
  listener reconnected) they get `Resync(reason="lost")`. A Resync carries
  the last modseq the subscription delivered per folder.
- Events may repeat; compare modseqs.

`AsyncFeed` is for event loops (its socket lives on the loop, so an event
wakes the loop directly); `ThreadFeed` reads on a thread of its own, for
blocking code. Both speak feed_wire's lines.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import cast

from nmail.mailstore.feed_wire import Change, LineReader, WireError, parse_change
from nmail.mailstore.index_wire import same_user

__all__ = ["AsyncFeed", "AsyncSubscription", "Change", "Resync", "Subscription", "ThreadFeed"]

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256
CONNECT_WAIT = 2.0  # how long subscribe() waits for a hub that is not connected yet
RETRY_FIRST = 0.02
RETRY_MAX = 1.0


@dataclass(frozen=True, slots=True)
class Resync:
    """Events may have been lost: read the account's changes from the database."""

    account_id: int
    last_seen: Mapping[int, int]  # folder id -> the last modseq this subscription delivered
    reason: str  # "slow", "reconnected" or "lost"


Event = Change | Resync


@dataclass(slots=True)
class _Queue:
    """One subscription's filter, bounded queue and loss marker (no locking here)."""

    account_id: int  # 0: every account (subscribe_all)
    folder_id: int | None
    generation: int  # the hub connection it was registered on (-1: none)
    events: collections.deque[Change] = field(default_factory=collections.deque)
    last_seen: dict[int, int] = field(default_factory=dict)
    lost: str | None = None
    closed: bool = False

    def matches(self, change: Change) -> bool:
        return (change.account_id == self.account_id or not self.account_id) and (
            self.folder_id is None or change.folder_id == self.folder_id)

    def offer(self, change: Change) -> None:
        if len(self.events) >= QUEUE_LIMIT:
            self.events.clear()
            self.lost = "slow"
        self.events.append(change)

    def mark_lost(self, reason: str) -> None:
        self.events.clear()
        if self.lost != "slow":  # "slow" says the most: the consumer should hurry
            self.lost = reason

    def take(self) -> Event | None:
        if self.lost is not None:
            reason, self.lost = self.lost, None
            return Resync(self.account_id, dict(self.last_seen), reason)
        if not self.events:
            return None
        change = self.events.popleft()
        if change.modseq > self.last_seen.get(change.folder_id, 0):
            self.last_seen[change.folder_id] = change.modseq
        return change


class _Fanout:
    """The subscriptions of one feed connection and the state of the link."""

    def __init__(self) -> None:
        self.queues: list[tuple[_Queue, object]] = []  # (queue, its subscription)
        self.generation = -1  # counts hub connections; -1 while there is none
        self._connections = 0

    def connected(self) -> list[object]:
        """A hub said hello: subscriptions from before this link must resync."""
        self._connections += 1
        self.generation = self._connections
        woken = []
        for queue, sub in self.queues:
            if queue.generation != self.generation:
                queue.mark_lost("reconnected")
                queue.generation = self.generation
                woken.append(sub)
        return woken

    def disconnected(self) -> None:
        self.generation = -1

    def lost_all(self) -> list[object]:
        for queue, _ in self.queues:
            queue.mark_lost("lost")
        return [sub for _, sub in self.queues]

    def dispatch(self, change: Change) -> list[object]:
        woken = []
        for queue, sub in self.queues:
            if queue.matches(change):
                queue.offer(change)
                woken.append(sub)
        return woken

    def remove(self, queue: _Queue) -> None:
        self.queues = [(q, s) for q, s in self.queues if q is not queue]


def _handle_lines(fanout: _Fanout, lines: list[tuple[str, str]]) -> list[object]:
    """Apply a batch of hub lines; the subscriptions to wake."""
    woken: list[object] = []
    for letter, rest in lines:
        if letter == "E":
            woken.extend(fanout.dispatch(parse_change(rest)))
        elif letter == "H":
            woken.extend(fanout.connected())
        elif letter == "R":
            woken.extend(fanout.lost_all())
        else:
            raise WireError(f"unknown feed line {letter!r}")
    return woken


def dial_hub(address: str, timeout: float | None = None) -> socket.socket:
    """A connection to the hub at `address`; PermissionError if another user holds it.

    The address is an abstract socket named after the data directory: no file
    permission guards it, so any local user could bind it first (while no
    server runs, or while the index writer restarts) and would then read what
    the CLI publishes (account ids, folder names) and feed us events.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
        if not same_user(sock):
            raise PermissionError(f"change feed: {address!r} is held by another user")
    except OSError:
        sock.close()
        raise
    return sock


# -- asyncio -------------------------------------------------------------------------


class AsyncSubscription:
    """Events of one account (or one folder) for a coroutine: `async for event in sub`."""

    def __init__(self, feed: AsyncFeed, queue: _Queue) -> None:
        self._feed = feed
        self._queue = queue
        self._ready = asyncio.Event()

    def _wake(self) -> None:
        self._ready.set()

    async def get(self, wait: float | None = None) -> Event | None:
        """The next event; None after `wait` seconds without one (or once closed)."""
        deadline = None if wait is None else time.monotonic() + wait
        while not self._queue.closed:
            event = self._queue.take()
            if event is not None:
                return event
            self._ready.clear()
            if deadline is None:
                await self._ready.wait()
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), left)
        return None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        while (event := await self.get()) is not None:
            yield event

    def close(self) -> None:
        """Stop receiving; a waiting get() returns None."""
        self._queue.closed = True
        self._feed._fanout.remove(self._queue)
        self._ready.set()

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()


class _AsyncLink(asyncio.Protocol):
    def __init__(self, feed: AsyncFeed) -> None:
        self._feed = feed
        self._reader = LineReader()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport: no isinstance.
        # The hub's user was checked when the socket was dialled (dial_hub).
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(b"S\n")

    def data_received(self, data: bytes) -> None:
        try:
            woken = _handle_lines(self._feed._fanout, self._reader.feed(data))
        except (WireError, ValueError) as exc:
            log.error("change feed: dropping the hub link: %s", exc)
            if self.transport is not None:
                self.transport.close()
            return
        for sub in woken:
            assert isinstance(sub, AsyncSubscription)
            sub._wake()
        if self._feed._fanout.generation >= 0:
            self._feed._up.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class AsyncFeed:
    """This event loop's link to the hub at `address`, shared by its subscriptions."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._fanout = _Fanout()
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._closing = False
        self._link: _AsyncLink | None = None

    async def subscribe(self, account_id: int, folder_id: int | None = None,
                        *, wait: float = CONNECT_WAIT) -> AsyncSubscription:
        """Events of `account_id` (one folder if `folder_id`), from now on.

        Waits up to `wait` seconds for the hub; without it the subscription
        still works and its first event is a Resync once the hub answers.
        Read your starting state from the database after this returns.
        """
        if self._closing:
            raise RuntimeError("the change feed is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        if not self._up.is_set() and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), wait)
        queue = _Queue(int(account_id), None if folder_id is None else int(folder_id),
                       self._fanout.generation)
        sub = AsyncSubscription(self, queue)
        self._fanout.queues.append((queue, sub))
        return sub

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RETRY_FIRST
        while not self._closing:
            try:
                # Dialled here: uvloop refuses abstract socket names (a leading
                # NUL) as a path; a local connect does not block.
                sock = dial_hub(self._address, timeout=1.0)  # PermissionError: not our user
                sock.setblocking(False)
                _, link = await loop.create_unix_connection(lambda: _AsyncLink(self), sock=sock)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            self._link = link
            await link.closed
            self._link = None
            self._up.clear()
            self._fanout.disconnected()
            delay = RETRY_FIRST
            if not self._closing:
                await asyncio.sleep(delay)

    async def close(self) -> None:
        """Drop the link; every subscription's get() returns None."""
        self._closing = True
        for _, sub in list(self._fanout.queues):
            assert isinstance(sub, AsyncSubscription)
            sub.close()
        if self._link is not None and self._link.transport is not None:
            self._link.transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# -- threads ---------------------------------------------------------------------------


class Subscription:
    """Events of one account (or folder) for blocking code: `sub.get(timeout)`, or iterate."""

    def __init__(self, feed: ThreadFeed, queue: _Queue) -> None:
        self._feed = feed
        self._queue = queue

    def get(self, wait: float | None = None) -> Event | None:
        """The next event; None after `wait` seconds without one (or once closed)."""
        cond = self._feed._cond
        deadline = None if wait is None else time.monotonic() + wait
        with cond:
            while not self._queue.closed:
                event = self._queue.take()
                if event is not None:
                    return event
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                cond.wait(left)
        return None

    def __iter__(self) -> Iterator[Event]:
        while (event := self.get()) is not None:
            yield event

    def close(self) -> None:
        with self._feed._cond:
            self._queue.closed = True
            self._feed._fanout.remove(self._queue)
            self._feed._cond.notify_all()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class ThreadFeed:
    """A link to the hub read by a daemon thread, for blocking subscribers."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._fanout = _Fanout()
        self._cond = threading.Condition()
        self._closing = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def subscribe(self, account_id: int, folder_id: int | None = None,
                  *, wait: float = CONNECT_WAIT) -> Subscription:
        """As AsyncFeed.subscribe, blocking up to `wait` seconds for the hub."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the change feed is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nmail-feed",
                                                daemon=True)
                self._thread.start()
            deadline = time.monotonic() + wait
            while self._fanout.generation < 0 and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            queue = _Queue(int(account_id), None if folder_id is None else int(folder_id),
                           self._fanout.generation)
            sub = Subscription(self, queue)
            self._fanout.queues.append((queue, sub))
            return sub

    def subscribe_all(self, *, wait: float = CONNECT_WAIT) -> Subscription:
        """Every account's events (for followers such as the search indexer).

        Its Resync events carry account_id 0 and last_seen of all folders.
        """
        return self.subscribe(0, wait=wait)

    def _run(self) -> None:
        delay = RETRY_FIRST
        while not self._closing:
            try:
                sock = dial_hub(self._address)
            except OSError:
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            with self._cond:
                if self._closing:
                    sock.close()
                    return
                self._sock = sock
            try:
                self._read(sock)
            finally:
                with self._cond:
                    self._sock = None
                    self._fanout.disconnected()
                sock.close()

    def _read(self, sock: socket.socket) -> None:
        reader = LineReader()
        try:
            sock.sendall(b"S\n")
            while data := sock.recv(65536):
                lines = reader.feed(data)
                with self._cond:
                    if _handle_lines(self._fanout, lines) or self._fanout.generation >= 0:
                        self._cond.notify_all()
        except (OSError, ValueError) as exc:
            if not self._closing:
                log.warning("change feed: link to the hub lost: %s", exc)

    def close(self) -> None:
        """Drop the link and the thread; every subscription's get() returns None."""
        with self._cond:
            self._closing = True
            for queue, _ in self._fanout.queues:
                queue.closed = True
            self._fanout.queues = []
            sock = self._sock
            self._cond.notify_all()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
