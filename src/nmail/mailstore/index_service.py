"""The delivery index writer as a process of its own, for several worker processes.

In one Python process the index writer thread and the event loop take turns
on the GIL at every system call either makes (each SQLite step, rename,
fsync), and those hand-offs cost more CPU than the work. With worker
processes, one process does every delivery's index write instead:
`serve_index_writer` takes delivery batches from the workers over a local
stream socket, commits them together (group commit across workers: one
flush and one transaction for all) with `deliver_batch`, and answers each.
A worker's `MailStore` sends its deliveries there with
`index_client.RemoteIndex`; answers go back in request order.

The wire format is in index_wire (marshal: see there). The writer talks
only to processes of its own user (SO_PEERCRED, in _accept), who could do
anything it can anyway; that check is what makes marshal acceptable.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from nmail.mailstore.commit_hook import CommitHook, FolderChange, report
from nmail.mailstore.delivery_batch import (
    FolderGone,
    Piggyback,
    PreparedMessage,
    deliver_batch,
    parent_dir,
)
from nmail.mailstore.index_groups import commit_groups
from nmail.mailstore.index_wire import decode_request, frame, peer_uid, read_frames
from nmail.mailstore.model import StoreError
from nmail.mailstore.op_run import commit_group, run_after, run_operation
from nmail.mailstore.operations import Operation, encode_result
from nmail.mailstore.writer_connection import writer_connection

log = logging.getLogger(__name__)


def listen_socket(address: str) -> socket.socket:
    """The writer process's listening socket (made before the fork, so workers never wait)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(address)
        sock.listen(256)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(slots=True)
class _Client:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)

    def frames(self) -> list[list[PreparedMessage] | Operation]:
        """Complete requests received so far (raises ValueError on a bad frame)."""
        return read_frames(self.buffer, decode_request)


def serve_index_writer(
    engine: Engine,
    listener: socket.socket,
    *,
    deliver: Callable[..., list[Any]] = deliver_batch,
    stop: threading.Event | None = None,
    poll: float = 1.0,
    on_commit: CommitHook | None = None,
    on_failure: Callable[[], None] | None = None,
) -> None:
    """Commit the workers' deliveries and operations until `stop` is set, then return.

    Without `stop` (a process's main thread), SIGTERM stops it. `on_commit`
    hears of every commit (commit_hook) before the callers are answered;
    `on_failure` of each write that failed otherwise than by a refusal.
    `deliver` is called as deliver_batch with wire=True (the reply's tuples).
    """
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    handle_signals = stop is None
    stopping = stop or threading.Event()
    if handle_signals:
        previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.set_wakeup_fd(wake_write)
    clients: dict[int, _Client] = {}
    conn = writer_connection(engine)
    # Requests read during the last commit, and which of their files it flushed.
    carried: list[Request] = []
    flushed: set[int] = set()
    try:
        while not stopping.is_set():
            fds: list[Any] = [listener, wake_read, *(c.sock for c in clients.values())]
            readable, _, _ = select.select(fds, [], [], 0 if carried else poll)
            if listener in readable:
                _accept(listener, clients)
            if wake_read in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 512)
            requests = carried + _read_requests(readable, clients)
            if requests:
                commit = _Commit(conn, engine, deliver, clients, flushed, on_commit,
                                 on_failure)
                commit.run(requests)
                conn, carried, flushed = commit.conn, commit.early, commit.now_flushed
    finally:
        if handle_signals:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGTERM, previous)
        for client in clients.values():
            client.sock.close()
        conn.close()
        os.close(wake_read)
        os.close(wake_write)


def _accept(listener: socket.socket, clients: dict[int, _Client]) -> None:
    try:
        sock, _ = listener.accept()
    except OSError:
        return
    # Only our own user's processes: index_wire's marshal is not for anyone else's data.
    uid = peer_uid(sock)
    if uid != os.getuid():
        log.warning("index writer: refused a connection from uid %d", uid)
        sock.close()
        return
    # Blocking: it is only read when select() says it is readable, and a reply
    # is only sent to a worker thread that waits for it.
    clients[sock.fileno()] = _Client(sock)


# One receive buffer for the process: a fresh 1 MB bytes per recv() would be
# mapped and unmapped by malloc each time.
_scratch = bytearray(1 << 20)
_scratch_view = memoryview(_scratch)


def _read_requests(readable: list[Any], clients: dict[int, _Client]) -> list[Request]:
    requests: list[Request] = []
    for fd, client in list(clients.items()):
        if client.sock not in readable:
            continue
        try:
            size = client.sock.recv_into(_scratch)
            if not size:
                raise ConnectionError("closed")
            client.buffer += _scratch_view[:size]
            requests.extend((client, items) for items in client.frames())
        except Exception as exc:  # a closed socket, or a frame that is not ours
            if not isinstance(exc, ConnectionError):
                log.error("index writer: dropping a worker connection: %s", exc)
            client.sock.close()
            del clients[fd]
    return requests


Request = tuple[_Client, list[PreparedMessage] | Operation]


class _Commit:
    """One group commit for every request read; if it fails, each request alone.

    While it flushes, the requests that arrived meanwhile are read (`early`):
    their files are written, so the flush makes them durable too, and the
    next commit does not flush them again (`now_flushed`, by id of item).
    """

    def __init__(
        self,
        conn: Connection,
        engine: Engine,
        deliver: Callable[..., list[Any]],
        clients: dict[int, _Client],
        flushed: set[int],
        on_commit: CommitHook | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self._on_commit = on_commit
        self._on_failure = on_failure
        self._engine = engine
        self._deliver = deliver
        self._clients = clients
        self._flushed = flushed
        self.early: list[Request] = []
        self.now_flushed: set[int] = set()
        self._devices: dict[str, int] = {}
        self._after: list[Callable[[], None]] = []  # run once the replies are sent

    def run(self, requests: list[Request]) -> None:
        replies: list[tuple[_Client, object]] = []
        for group in commit_groups(requests):
            if self._after:
                # An earlier change's renames come before the next change (its
                # mark says they are done): answer what is ready, then make them.
                self._send(replies)
                replies = []
                run_after(self._after)
            if not isinstance(group[0][1], list):
                replies.extend(self._operations(group))
                continue
            deliveries = [(client, batch) for client, batch in group
                          if isinstance(batch, list)]
            items = [item for _, batch in deliveries for item in batch]
            piggyback = Piggyback(self._read_early)
            changes: list[FolderChange] = []
            try:
                stored = self._deliver(
                    self.conn,
                    items,
                    flushed=lambda item: id(item) in self._flushed,
                    piggyback=piggyback,
                    changes=changes,
                    wire=True,
                )
            except Exception as exc:
                self._note_flushed(piggyback.devices)
                self.conn = self._fresh()
                replies.extend(self._one_by_one(deliveries, exc, len(items)))
                continue
            self._note_flushed(piggyback.devices)
            report(self._on_commit, changes)
            start = 0
            for client, batch in deliveries:
                replies.append((client, ("ok", stored[start : start + len(batch)])))
                start += len(batch)
        self._send(replies)
        run_after(self._after)

    def _operations(self, group: list[Request]) -> list[tuple[_Client, object]]:
        """Operations in one transaction, a savepoint each (op_run.commit_group);
        if it fails as a whole, each alone. Their replies."""
        ops = [(client, op) for client, op in group if not isinstance(op, list)]
        if len(ops) == 1:
            return [(ops[0][0], self._operation(ops[0][1]))]
        afters: list[list[Callable[[], None]]] = [[] for _ in ops]
        try:
            outcomes = commit_group(self.conn, [
                (functools.partial(_run, op), after) for (_, op), after in zip(ops, afters,
                                                                            strict=True)])
        except Exception as exc:
            log.warning("index writer: a group of %d mailbox changes failed (%s); one by one",
                        len(ops), exc)
            self.conn = self._fresh()
            return [(client, self._operation(op)) for client, op in ops]
        report(self._on_commit, [c for outcome in outcomes if not isinstance(outcome, StoreError)
                                 for c in outcome[1]])
        replies: list[tuple[_Client, object]] = []
        for (client, _), outcome, after in zip(ops, outcomes, afters, strict=True):
            if isinstance(outcome, StoreError):
                replies.append((client, ("refused", type(outcome).__name__, str(outcome))))
            else:
                replies.append((client, ("ok", encode_result(outcome[0]))))
                self._after.extend(after)
        return replies

    def _operation(self, op: Operation) -> object:
        """Run one operation in its own transaction; its reply."""
        try:
            result, changes = run_operation(self.conn, op, after=self._after)
        except StoreError as exc:
            return ("refused", type(exc).__name__, str(exc))
        except Exception as exc:
            log.error("index writer: %s failed", type(op).__name__, exc_info=exc)
            self.conn = self._fresh()
            return ("error", f"could not change the mail store: {exc}")
        report(self._on_commit, changes)
        return ("ok", encode_result(result))

    def _fresh(self) -> Connection:
        if self._on_failure is not None:
            self._on_failure()
        return _fresh(self.conn, self._engine)

    def _read_early(self) -> None:
        socks = [client.sock for client in self._clients.values()]
        if socks:
            ready, _, _ = select.select(socks, [], [], 0)
            self.early.extend(_read_requests(ready, self._clients))

    def _note_flushed(self, devices: set[int]) -> None:
        if not devices:
            return
        for _, batch in self.early:
            if not isinstance(batch, list):
                continue
            for item in batch:
                if id(item) not in self.now_flushed and self._device(item) in devices:
                    self.now_flushed.add(id(item))

    def _device(self, item: PreparedMessage) -> int:
        directory = parent_dir(item.tmp_path)
        device = self._devices.get(directory)
        if device is None:
            try:
                device = self._devices[directory] = os.stat(directory).st_dev
            except OSError:
                return -1
        return device

    def _one_by_one(
        self, group: list[tuple[_Client, list[PreparedMessage]]], exc: Exception, count: int
    ) -> list[tuple[_Client, object]]:
        if len(group) == 1:
            return [(group[0][0], _failure(exc))]
        log.warning("index batch of %d deliveries failed (%s); one by one", count, exc)
        replies: list[tuple[_Client, object]] = []
        for client, batch in group:
            try:
                changes: list[FolderChange] = []
                stored = self._deliver(self.conn, batch, changes=changes, wire=True)
                report(self._on_commit, changes)
                replies.append((client, ("ok", stored)))
            except Exception as single:
                self.conn = self._fresh()
                replies.append((client, _failure(single)))
        return replies

    def _send(self, replies: list[tuple[_Client, object]]) -> None:
        # One send per worker for all its answers (they stay in request order).
        out: dict[int, tuple[_Client, list[bytes]]] = {}
        for client, reply in replies:
            out.setdefault(id(client), (client, []))[1].append(frame(reply))
        for client, frames in out.values():
            try:
                client.sock.sendall(b"".join(frames))
            except OSError:
                client.sock.close()
                fd = next((fd for fd, c in self._clients.items() if c is client), -1)
                self._clients.pop(fd, None)


def _run(op: Operation, conn: Connection,
         after: list[Callable[[], None]]) -> tuple[Any, list[FolderChange]]:
    return run_operation(conn, op, after=after)


def _failure(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, FolderGone):
        return ("gone", str(exc))
    if not isinstance(exc, StoreError):
        log.error("index writer: a delivery batch failed", exc_info=exc)
    return ("error", f"could not store the message: {exc}")


def _fresh(conn: Connection, engine: Engine) -> Connection:
    # After an error the connection may be broken (a database restart): start afresh.
    with contextlib.suppress(Exception):
        conn.close()
    return writer_connection(engine)
