"""Issue 9 item 9: every flush behind a 250 is tested by breaking or holding it.

Over real sockets against a whole nmail: the flush of the `new/` directory
after the renames of a delivery batch, and the flush of a queued body
before its rows. An injected OSError must give the client 4xx (and leave
nothing half-stored); a held flush must hold the 250 until it returns.
"""

from __future__ import annotations

import select
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select

from fixtures_dns import DnsServer
from nmail.db.tables import messages, queue_messages
from nmail.mailstore import delivery_batch
from nmail.queue import enqueue_batch
from server_rig import RunningServer, make_data_dir
from smtp_rig import read_reply
from support import free_port, wait_until

pytestmark = pytest.mark.timeout(60)

LETTER = b"From: a@example.org\r\nTo: x\r\nSubject: durable\r\n\r\nkeep me\r\n"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    dns = DnsServer().start()
    dns.mx("remote.example", (10, "mx.remote.example"))
    dns.add("mx.remote.example", "A", "127.0.0.2")  # nobody listens there: mail waits
    data = make_data_dir(tmp_path)
    cfg = data / "nmail.toml"
    cfg.write_text(
        cfg.read_text()
        .replace('# nameservers = ["127.0.0.1"]', f'nameservers = ["{dns.address}"]')
        .replace("[queue]\n", f"[queue]\nremote_port = {free_port('127.0.0.2')}\n")
    )
    try:
        with RunningServer(data, listeners=("smtp",)) as server:
            server.add_user("bob@test.local")
            server.directory.add_alias("fwd@test.local", ["friend@remote.example"])
            yield server
    finally:
        dns.stop()


def count(srv: RunningServer, table: Any) -> int:
    with srv.runtime.engine.connect() as conn:
        return int(conn.execute(sql_select(func.count()).select_from(table)).scalar_one())


def send(srv: RunningServer, rcpt: str) -> tuple[int, bytes]:
    with srv.smtp("smtp") as client:
        client.ehlo("c.example.org")
        assert client.mail("a@example.org")[0] == 250
        assert client.rcpt(rcpt)[0] == 250
        return client.data(LETTER)


class FlushSpy:
    """Stands in for a module's sync_batch: sees, fails or holds the chosen flush."""

    def __init__(self, real: Callable[..., set[int]], wanted: Callable[[dict[str, Any]], bool]):
        self.real = real
        self.wanted = wanted
        self.fail: OSError | None = None
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.seen: list[dict[str, Any]] = []
        self.during: list[Any] = []  # what `probe` saw while the flush was held
        self.probe: Callable[[], Any] | None = None

    def __call__(self, files: Any = (), directories: Any = (), **kwargs: Any) -> set[int]:
        call = {"files": [str(f) for f in files], "directories": [str(d) for d in directories]}
        if self.wanted(call):
            self.seen.append(call)
            if self.probe is not None:
                self.during.append(self.probe())
            self.entered.set()
            assert self.hold.wait(30)
            if self.fail is not None:
                raise self.fail
        return self.real(files=files, directories=directories, **kwargs)


def new_dir_flush(call: dict[str, Any]) -> bool:
    return any(d.endswith("/new") for d in call["directories"])


def body_flush(call: dict[str, Any]) -> bool:
    return any(f.endswith(".tmp") for f in call["files"])


@pytest.fixture
def delivery_spy(monkeypatch: pytest.MonkeyPatch) -> FlushSpy:
    spy = FlushSpy(delivery_batch.sync_batch, new_dir_flush)
    monkeypatch.setattr(delivery_batch, "sync_batch", spy)
    return spy


@pytest.fixture
def queue_spy(monkeypatch: pytest.MonkeyPatch) -> FlushSpy:
    spy = FlushSpy(enqueue_batch.sync_batch, body_flush)
    monkeypatch.setattr(enqueue_batch, "sync_batch", spy)
    return spy


def test_new_directory_is_flushed_after_the_renames_and_before_commit(
    srv: RunningServer, delivery_spy: FlushSpy
) -> None:
    inbox = srv.maildir("bob@test.local")
    delivery_spy.probe = lambda: (len(list((inbox / "new").iterdir())), count(srv, messages))
    assert send(srv, "bob@test.local")[0] == 250
    assert [c["directories"] for c in delivery_spy.seen] == [[str(inbox / "new")]]
    # renamed into new/ already, its row not yet committed
    assert delivery_spy.during == [(1, 0)]
    assert count(srv, messages) == 1


def test_a_failed_directory_flush_gives_4xx_and_stores_nothing(
    srv: RunningServer, delivery_spy: FlushSpy
) -> None:
    delivery_spy.fail = OSError(5, "Input/output error")
    code, _ = send(srv, "bob@test.local")
    assert 400 <= code < 500
    assert delivery_spy.seen
    inbox = srv.maildir("bob@test.local")
    assert list((inbox / "new").iterdir()) == []
    assert count(srv, messages) == 0
    delivery_spy.fail = None
    assert send(srv, "bob@test.local")[0] == 250


def _held_data(srv: RunningServer, spy: FlushSpy, rcpt: str) -> None:
    """DATA while `spy` holds its flush: no reply until it is let go."""
    spy.hold.clear()
    sock = socket.create_connection(("127.0.0.1", srv.port("smtp")), timeout=20)
    buf = bytearray()
    try:
        assert read_reply(sock, buf).startswith("220")
        commands = f"HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
        sock.sendall(commands.encode())
        for code in ("250", "250", "250", "354"):
            assert read_reply(sock, buf).startswith(code)
        sock.sendall(LETTER + b".\r\n")
        assert spy.entered.wait(20), "the flush was never reached"
        readable, _, _ = select.select([sock], [], [], 0)
        assert readable == [] and not buf, "a reply left while the flush was held"
        spy.hold.set()
        assert read_reply(sock, buf).startswith("250")
    finally:
        spy.hold.set()
        sock.close()


def test_a_held_directory_flush_holds_the_250(
    srv: RunningServer, delivery_spy: FlushSpy
) -> None:
    _held_data(srv, delivery_spy, "bob@test.local")
    wait_until(lambda: count(srv, messages) == 1, what="the stored row")


def test_a_queued_body_is_flushed_before_its_rows(
    srv: RunningServer, queue_spy: FlushSpy
) -> None:
    queue_dir = srv.data_dir / "queue"
    queue_spy.probe = lambda: count(srv, queue_messages)
    assert send(srv, "fwd@test.local")[0] == 250
    assert len(queue_spy.seen) == 1 and queue_spy.during == [0]
    [body] = queue_spy.seen[0]["files"]
    assert Path(body).parent == queue_dir
    assert count(srv, queue_messages) == 1


def test_a_failed_body_flush_gives_4xx_and_queues_nothing(
    srv: RunningServer, queue_spy: FlushSpy
) -> None:
    queue_spy.fail = OSError(28, "No space left on device")
    code, _ = send(srv, "fwd@test.local")
    assert 400 <= code < 500
    assert count(srv, queue_messages) == 0
    assert [p.name for p in (srv.data_dir / "queue").iterdir() if p.is_file()] == []


def test_a_held_body_flush_holds_the_250(srv: RunningServer, queue_spy: FlushSpy) -> None:
    _held_data(srv, queue_spy, "fwd@test.local")
    assert count(srv, queue_messages) == 1


def test_smtplib_sees_the_same_promise(srv: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=10) as client:
        assert client.sendmail("a@example.org", ["bob@test.local", "fwd@test.local"], LETTER) == {}
    assert count(srv, messages) == 1 and count(srv, queue_messages) == 1


def test_a_failed_queueing_takes_back_the_local_copies(
    srv: RunningServer, queue_spy: FlushSpy
) -> None:
    """Local and remote recipients: 4xx when the queue fails, and no local copy left."""
    queue_spy.fail = OSError(28, "No space left on device")
    for _ in range(2):  # a retrying client must not pile up copies either
        with srv.smtp("smtp") as client:
            client.ehlo("c.example.org")
            assert client.mail("a@example.org")[0] == 250
            assert client.rcpt("bob@test.local")[0] == 250
            assert client.rcpt("fwd@test.local")[0] == 250
            code, _ = client.data(LETTER)
        assert 400 <= code < 500
    inbox = srv.maildir("bob@test.local")
    assert list((inbox / "new").iterdir()) == [] and list((inbox / "cur").iterdir()) == []
    assert count(srv, messages) == 0 and count(srv, queue_messages) == 0
    queue_spy.fail = None
    with srv.smtp("smtp") as client:
        assert client.sendmail("a@example.org", ["bob@test.local", "fwd@test.local"], LETTER) == {}
    assert count(srv, messages) == 1 and count(srv, queue_messages) == 1
