"""A worker process's side of the index writer process: deliveries sent, answers awaited.

`submit(prepared)` sends one request and returns a Future; the answers
come back in request order and complete the Futures. `LoopRemoteIndex` is
for a process with an event loop (an `nmail serve` worker): its socket
lives on the loop, so an answer wakes the loop directly. `RemoteIndex`
reads the answers on a thread of its own, for processes without one.

A lost connection fails every waiting delivery with StoreError (nothing is
known to be stored, so the client gets a 4xx and sends again); the next
submit connects again.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from nmail.mailstore.delivery_batch import FolderGone, PreparedMessage
from nmail.mailstore.index_wire import decode_stored, encode_items, frame, read_frames, same_user
from nmail.mailstore.loop_future import LoopFuture
from nmail.mailstore.model import STORE_ERRORS, StoredMessage, StoreError, StoreUnavailable
from nmail.mailstore.operations import Operation, decode_result, encode_operation

log = logging.getLogger(__name__)

Pending = Future[list[StoredMessage]]
# A request's Future and what turns its "ok" value into the result.
Waiting = tuple[Future[Any], Callable[[Any], Any]]


class IndexClient(Protocol):
    """What a MailStore needs to have its deliveries committed elsewhere."""

    def submit(self, items: list[PreparedMessage]) -> Pending: ...

    def submit_op(self, op: Operation) -> Future[Any]:
        """Send one operation; the Future gives its result (operations.decode_result)."""
        ...

    def can_wait(self) -> bool:
        """Whether this thread may block on a submitted Future (it would never finish)."""
        ...

    def close(self) -> None: ...


class _Link:
    """One connection to the writer process and the deliveries waiting on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.waiting: collections.deque[Waiting] = collections.deque()
        self.broken: BaseException | None = None


class RemoteIndex:
    """Commits deliveries through the index writer process at `address`; thread-safe."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._lock = threading.Lock()  # the link and its queue (the reader takes it too)
        self._sending = threading.Lock()  # one request on the wire at a time, in queue order
        self._link: _Link | None = None
        self._closed = False

    def submit(self, items: list[PreparedMessage]) -> Pending:
        """Send `items` (one all-or-nothing group); the Future gives their StoredMessages."""
        future: Pending = Future()
        self._request(frame(encode_items(items)), future, decode_stored)
        return future

    def submit_op(self, op: Operation) -> Future[Any]:
        """Send one operation; the Future gives its result."""
        future: Future[Any] = Future()
        self._request(frame(encode_operation(op)), future, decode_result)
        return future

    def _request(self, data: bytes, future: Future[Any], decode: Callable[[Any], Any]) -> None:
        with self._sending:
            with self._lock:
                if self._closed:
                    raise StoreError("mail store is closed")
                try:
                    link = self._connected()
                except OSError as exc:
                    future.set_exception(StoreUnavailable(f"index writer unavailable: {exc}"))
                    return
                link.waiting.append((future, decode))
            # Not under _lock: if the socket is full, the reader must still be able
            # to take answers, or neither side would move.
            try:
                link.sock.sendall(data)
            except OSError as exc:
                with self._lock:
                    self._fail(link, exc)

    def can_wait(self) -> bool:
        return True

    def close(self) -> None:
        """Close the connection; deliveries still waiting fail with StoreError."""
        with self._lock:
            self._closed = True
            link, self._link = self._link, None
        if link is not None:
            with contextlib.suppress(OSError):
                link.sock.shutdown(socket.SHUT_RDWR)
            link.sock.close()

    # -- the connection -----------------------------------------------------------

    def _connected(self) -> _Link:
        if self._link is None:
            link = self._link = _Link(_dial(self._address))
            threading.Thread(
                target=self._read, args=(link,), name="nmail-index-replies", daemon=True
            ).start()
        return self._link

    def _fail(self, link: _Link | None, exc: BaseException) -> None:
        """Drop `link` (call with the lock held): its waiting deliveries fail."""
        if link is None:
            return
        if self._link is link:
            self._link = None
        if link.broken is None:
            link.broken = exc
            with contextlib.suppress(OSError):
                link.sock.shutdown(socket.SHUT_RDWR)
        error = StoreUnavailable(f"index writer unavailable: {exc}")
        while link.waiting:
            waiting, _ = link.waiting.popleft()
            if not waiting.done():
                waiting.set_exception(error)

    def _read(self, link: _Link) -> None:
        buffer = bytearray()
        try:
            while True:
                chunk = link.sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("the index writer closed the connection")
                buffer += chunk
                for reply in _frames(buffer):
                    with self._lock:
                        if not link.waiting:
                            raise ConnectionError("an answer nobody asked for")
                        future, decode = link.waiting.popleft()
                    _complete(future, decode, reply)
        except Exception as exc:
            with self._lock:
                self._fail(link, exc)
        finally:
            link.sock.close()


def _frames(buffer: bytearray) -> list[Any]:
    """The complete answers in `buffer`, taken out of it (ValueError: not ours)."""
    return read_frames(buffer, _as_is)


def _as_is(reply: Any) -> Any:
    return reply


def _complete(future: Future[Any], decode: Callable[[Any], Any], reply: Any) -> None:
    if future.done():
        return
    try:
        if type(reply) is tuple and len(reply) == 3 and reply[0] == "refused":
            error = STORE_ERRORS.get(str(reply[1]), StoreError)
            future.set_exception(error(str(reply[2])))
            return
        kind, value = reply
        if kind == "ok":
            future.set_result(decode(value))
        elif kind == "gone":
            future.set_exception(FolderGone(str(value)))
        else:
            future.set_exception(StoreError(str(value)))
    except (TypeError, ValueError) as exc:
        future.set_exception(StoreError(f"bad answer from the index writer: {exc}"))


class EventLoop(Protocol):
    """The parts of an asyncio event loop LoopRemoteIndex uses."""

    def add_reader(self, fd: int, callback: Callable[[], object]) -> None: ...

    def remove_reader(self, fd: int) -> bool: ...

    def add_writer(self, fd: int, callback: Callable[[], object]) -> None: ...

    def remove_writer(self, fd: int) -> bool: ...

    def call_soon(self, callback: Callable[..., object], *args: Any) -> Any: ...

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> Any: ...


class LoopRemoteIndex:
    """RemoteIndex for a process with an event loop: the socket lives on the loop.

    The answers wake the event loop itself (no reader thread to schedule,
    then the loop), which matters most when other programs compete for the
    CPU. Every socket operation runs on the loop's thread; submit() from
    another thread hands its request over with call_soon_threadsafe. Sends
    never block the loop: what the socket does not take waits for it to be
    writable. Construct it on the loop's thread.
    """

    def __init__(self, address: str, loop: EventLoop) -> None:
        self._address = address
        self._loop = loop
        self._thread = threading.get_ident()
        self._sock: socket.socket | None = None
        self._out = bytearray()
        self._in = bytearray()
        self._waiting: collections.deque[Waiting] = collections.deque()
        self._writing = False
        self._flush_soon = False
        self._closed = False

    def submit(self, items: list[PreparedMessage]) -> Pending:
        """Send `items` (one all-or-nothing group); the Future gives their StoredMessages.

        Called on the loop's thread, the Future is a LoopFuture (loop_future.py):
        made, completed and read there only, without a lock.
        """
        data = frame(encode_items(items))
        if threading.get_ident() == self._thread:
            future: Pending = LoopFuture()
            self._send(data, (future, decode_stored))
        else:
            future = Future()
            self._hand_over(data, (future, decode_stored))
        return future

    def submit_op(self, op: Operation) -> Future[Any]:
        """Send one operation; the Future gives its result (a LoopFuture on the loop's thread)."""
        data = frame(encode_operation(op))
        if threading.get_ident() == self._thread:
            future: Future[Any] = LoopFuture()
            self._send(data, (future, decode_result))
        else:
            future = Future()
            self._hand_over(data, (future, decode_result))
        return future

    def _hand_over(self, data: bytes, waiting: Waiting) -> None:
        """From another thread: the request goes out on the loop's."""
        try:
            self._loop.call_soon_threadsafe(self._send, data, waiting)
        except RuntimeError:  # the loop is closed
            waiting[0].set_exception(StoreError("mail store is closed"))

    def can_wait(self) -> bool:
        # The answers are read by the loop: blocking it on one would wait forever.
        return threading.get_ident() != self._thread

    def close(self) -> None:
        """Close the connection; deliveries still waiting fail with StoreError."""
        if threading.get_ident() != self._thread:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.close)
            return
        self._closed = True
        self._drop(StoreError("mail store is closed"))

    # -- on the loop's thread -------------------------------------------------------

    def _send(self, data: bytes, waiting: Waiting) -> None:
        if self._closed:
            waiting[0].set_exception(StoreError("mail store is closed"))
            return
        if self._sock is None:
            try:
                self._connect()
            except OSError as exc:
                waiting[0].set_exception(StoreUnavailable(f"index writer unavailable: {exc}"))
                return
        self._waiting.append(waiting)
        self._out += data
        if not self._flush_soon and not self._writing:
            # Requests made in the same turn of the loop (sessions finishing DATA
            # together) leave in one send: one wake-up of the writer, not one each.
            self._flush_soon = True
            self._loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_soon = False
        self._flush()

    def _connect(self) -> None:
        # Connecting to a local socket does not wait (the supervisor keeps it
        # listening even while the writer process restarts).
        sock = _dial(self._address)
        sock.setblocking(False)
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._readable)

    def _flush(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sent = sock.send(self._out)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._drop(StoreUnavailable(f"index writer unavailable: {exc}"))
            return
        del self._out[:sent]
        if self._out and not self._writing:
            self._loop.add_writer(sock.fileno(), self._flush)
            self._writing = True
        elif not self._out and self._writing:
            self._loop.remove_writer(sock.fileno())
            self._writing = False

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the index writer closed the connection")
            self._in += chunk
            replies = _frames(self._in)
        except BlockingIOError:
            return
        except (OSError, ValueError) as exc:
            self._drop(StoreUnavailable(f"index writer unavailable: {exc}"))
            return
        for reply in replies:
            if not self._waiting:
                self._drop(StoreUnavailable("index writer: an answer nobody asked for"))
                return
            future, decode = self._waiting.popleft()
            _complete(future, decode, reply)

    def _drop(self, error: StoreError) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            if self._writing:
                self._loop.remove_writer(sock.fileno())
            sock.close()
        self._writing = False
        self._out.clear()
        self._in.clear()
        while self._waiting:
            waiting, _ = self._waiting.popleft()
            if not waiting.done():
                waiting.set_exception(error)


def _dial(address: str) -> socket.socket:
    """A stream connection to the index writer at `address` (OSError if none)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
        # Its answers are marshal data (index_wire): only from our own user.
        if not same_user(sock):
            raise PermissionError(f"{address!r} is not this user's index writer")
    except OSError:
        sock.close()
        raise
    return sock
