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
blocking code. Both speak feed_wire's lines and keep their subscriptions'
queues by feed_fanout's rules; here are only the links and the waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import cast

from nmail.mailstore.feed_fanout import Event, Fanout, Resync, SubscriberQueue, handle_lines
from nmail.mailstore.feed_wire import Change, LineReader, WireError
from nmail.mailstore.index_wire import same_user

__all__ = ["AsyncFeed", "AsyncSubscription", "Change", "Event", "Resync", "Subscription",
           "ThreadFeed"]

log = logging.getLogger(__name__)

CONNECT_WAIT = 2.0  # how long subscribe() waits for a hub that is not connected yet
RETRY_FIRST = 0.02
RETRY_MAX = 1.0


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

    def __init__(self, feed: AsyncFeed, queue: SubscriberQueue) -> None:
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
            woken = handle_lines(self._feed._fanout, self._reader.feed(data))
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
        self._fanout = Fanout()
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
        queue = SubscriberQueue(int(account_id), None if folder_id is None else int(folder_id),
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

    def __init__(self, feed: ThreadFeed, queue: SubscriberQueue) -> None:
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
        self._fanout = Fanout()
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
            queue = SubscriberQueue(int(account_id), None if folder_id is None else int(folder_id),
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
                    if handle_lines(self._fanout, lines) or self._fanout.generation >= 0:
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
