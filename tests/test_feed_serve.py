"""`nmail serve` as a command: a delivery over SMTP reaches feed subscribers and search."""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.directory import Directory
from nmail.mailstore.feed import Change, Resync, Subscription, ThreadFeed
from nmail.mailstore.feed_wire import feed_address
from nmail.mailstore.search import search
from nmail.servers.search_process import NICENESS
from serve_process import ServeProcess
from serve_setup import make_data
from support import free_port, wait_until

BODY = ("From: Kim <kim@remote.example>\r\nTo: bob@test.local\r\n"
        "Subject: =?utf-8?B?" + "7ZqM7J2Y66Gd7J2E" + "?=\r\n"  # 회의록을
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "견적서 attached, quarterly numbers\r\n").encode()


def _serve(tmp_path: Path, workers: int) -> Iterator[tuple[ServeProcess, int]]:
    data = make_data(tmp_path, "bob@test.local")
    port = free_port()
    srv = ServeProcess(data, f"smtp=127.0.0.1:{port}", workers=workers)
    yield srv, port
    if srv.proc.poll() is None:
        srv.stop()


@pytest.fixture(params=[1, 2], ids=["one-process", "workers"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServeProcess, int]]:
    yield from _serve(tmp_path, request.param)


@pytest.fixture
def served_workers(tmp_path: Path) -> Iterator[tuple[ServeProcess, int]]:
    """With workers, the index writer (and the hub) is a process of its own."""
    yield from _serve(tmp_path, 2)


def _data(srv: ServeProcess) -> Path:
    return Path(srv.proc.args[srv.proc.args.index("--data") + 1])  # type: ignore[union-attr]


def _account_id(data: Path) -> int:
    engine = make_engine(load_config(data).database_url)
    try:
        account = Directory(engine).get_account("bob@test.local")
        assert account is not None
        return account.id
    finally:
        engine.dispose()


def _send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("kim@remote.example", ["bob@test.local"], BODY)


def _sent(port: int) -> bool:
    """Whether a delivery was taken (refused with a 4xx: not yet)."""
    try:
        _send(port)
    except smtplib.SMTPException:
        return False
    return True


def _next_change(sub: Subscription, kind: str, deadline: float = 20) -> Change:
    end = time.monotonic() + deadline
    while (left := end - time.monotonic()) > 0:
        event = sub.get(left)
        if isinstance(event, Change) and event.kind == kind:
            return event
    raise AssertionError(f"no {kind} event within {deadline} s")


def _hub_pid(data: Path) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(feed_address(data))
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[0])
    finally:
        sock.close()


def test_a_delivery_reaches_subscribers_and_search(served: tuple[ServeProcess, int]) -> None:
    srv, port = served
    data = _data(srv)
    account = _account_id(data)
    feed = ThreadFeed(feed_address(data))
    try:
        sub = feed.subscribe(account)
        _send(port)
        change = _next_change(sub, "deliver")
        assert (change.account_id, change.folder, change.modseq > 1) == (account, "INBOX", True)
        engine = make_engine(load_config(data).database_url)
        try:
            wait_until(lambda: bool(search(engine, account, "회의 견적")), 30,
                       "the delivery in the search index")
            hits = search(engine, account, "회의 견적")
            assert [(h.folder, h.uid) for h in hits] == [("INBOX", 1)]
        finally:
            engine.dispose()
    finally:
        feed.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[1]) == pid:
                    found.append(int(entry))
    return found


def test_search_indexing_runs_in_a_low_priority_process_of_its_own(
    served_workers: tuple[ServeProcess, int],
) -> None:
    srv, port = served_workers
    data = _data(srv)
    account = _account_id(data)

    def searchers() -> list[int]:
        found = []
        for pid in _children(srv.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                if os.getpriority(os.PRIO_PROCESS, pid) == NICENESS:
                    found.append(pid)
        return found

    first = searchers()
    assert len(first) == 1  # the workers and the index writer keep the normal priority
    os.kill(first[0], signal.SIGKILL)
    wait_until(lambda: searchers() not in ([], first), 60, "a new search process")
    _send(port)
    engine = make_engine(load_config(data).database_url)
    try:
        wait_until(lambda: len(search(engine, account, "quarterly")) == 1, 30,
                   "the delivery in the search index")
    finally:
        engine.dispose()


def test_subscribers_resync_after_the_index_writer_restarts(
    served_workers: tuple[ServeProcess, int],
) -> None:
    srv, port = served_workers
    data = _data(srv)
    account = _account_id(data)
    feed = ThreadFeed(feed_address(data))
    try:
        sub = feed.subscribe(account)
        _send(port)
        first = _next_change(sub, "deliver")
        os.kill(_hub_pid(data), signal.SIGKILL)  # the index writer process
        end = time.monotonic() + 60
        event = None
        while time.monotonic() < end and not isinstance(event, Resync):
            event = sub.get(end - time.monotonic())
        assert event == Resync(account, {first.folder_id: first.modseq}, "reconnected")
        # Deliveries fail with 4xx until the writer is back: until one is taken.
        wait_until(lambda: _sent(port), 60, "a delivery taken once the writer is back")
        assert _next_change(sub, "deliver").modseq > first.modseq
    finally:
        feed.close()
