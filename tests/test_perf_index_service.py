"""The delivery index writer as a service (what `nmail serve` runs as its own
process for the worker processes), on every database, over a real socket."""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, delete, select

from nmail.db.tables import folders, messages
from nmail.directory.model import Account
from nmail.mailstore import index_wire
from nmail.mailstore.delivery_batch import deliver_batch
from nmail.mailstore.index_client import LoopRemoteIndex, RemoteIndex
from nmail.mailstore.index_service import listen_socket, serve_index_writer
from nmail.mailstore.loop_future import LoopFuture
from nmail.mailstore.store import MailStore, StoreError
from nmail.mailstore.writer_connection import WAL_AUTOCHECKPOINT, writer_connection
from support import LoopThread
from test_mailstore_support import HOST, entries, folder_dir, make_account, message_rows, new


class WriterService:
    """serve_index_writer on a thread, listening on a fresh abstract socket."""

    def __init__(
        self, engine: Engine, deliver: Callable[..., list[Any]] | None = None
    ) -> None:
        self.address = f"\0nmail-test-{secrets.token_hex(8)}"
        self.listener = listen_socket(self.address)
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=serve_index_writer,
            args=(engine, self.listener),
            kwargs={"deliver": deliver or deliver_batch, "stop": self.stop, "poll": 0.05},
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.listener.close()
        assert not self.thread.is_alive()


@pytest.fixture
def service(engine: Engine) -> Iterator[WriterService]:
    svc = WriterService(engine)
    yield svc
    svc.close()


def worker_store(engine: Engine, root: Path, address: str) -> MailStore:
    """A MailStore as a worker process has it: deliveries go to the service."""
    return MailStore(engine, root, HOST, index_client=RemoteIndex(address))


def test_deliveries_of_two_workers_are_committed_by_the_service(
    engine: Engine, tmp_path: Path, service: WriterService
) -> None:
    alice = make_account(engine)
    root = tmp_path / "mail"
    one, two = (worker_store(engine, root, service.address) for _ in range(2))
    try:
        one.ensure_account(alice)
        two.ensure_account(alice)
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(
                    lambda n: (one if n % 2 else two).store([new(alice, subject=f"m{n}")]),
                    range(24),
                )
            )
        uids = sorted(r[0].uid for r in results)
        assert uids == list(range(1, 25))
        rows = message_rows(engine, alice)
        assert sorted(r["subject"] for r in rows) == sorted(f"m{n}" for n in range(24))
        inbox = folder_dir(root, alice, "INBOX")
        assert len(entries(inbox / "new")) == 24
        assert entries(inbox / "tmp") == []
        # submit(): the same through a Future, as the event loop uses it.
        pending = one.submit([new(alice, subject="async")])
        assert pending is not None
        assert pending.result(30)[0].uid == 25
    finally:
        one.close()
        two.close()


def test_a_vanished_folder_row_is_found_again(
    engine: Engine, tmp_path: Path, service: WriterService
) -> None:
    alice = make_account(engine)
    store = worker_store(engine, tmp_path / "mail", service.address)
    try:
        store.ensure_account(alice)
        store.store([new(alice, subject="first")])
        with engine.begin() as conn:  # the folder row goes (an admin's dbsync, say)
            conn.execute(delete(messages))
            conn.execute(delete(folders).where(folders.c.name == "INBOX"))
        # The service says FolderGone; the store looks the folder up again (its
        # files are the truth: the first message is indexed again) and stores.
        stored = store.store([new(alice, subject="second")])
        with engine.connect() as conn:
            names = conn.execute(select(folders.c.name)).scalars().all()
        assert "INBOX" in names
        assert [r["subject"] for r in message_rows(engine, alice)] == ["first", "second"]
        assert stored[0].path.exists()
    finally:
        store.close()


def test_no_service_is_a_store_error_and_nothing_is_left(engine: Engine, tmp_path: Path) -> None:
    alice = make_account(engine)
    address = f"\0nmail-test-{secrets.token_hex(8)}"  # nobody listens
    # The mailbox exists (made while a writer was there: every write needs one).
    local = MailStore(engine, tmp_path / "mail", HOST)
    local.ensure_account(alice)
    local.close()
    store = worker_store(engine, tmp_path / "mail", address)
    try:
        store.ensure_account(alice)
        with pytest.raises(StoreError, match="index writer unavailable"):
            store.store([new(alice)])
        inbox = folder_dir(tmp_path / "mail", alice, "INBOX")
        assert entries(inbox / "tmp") == [] and entries(inbox / "new") == []
        assert message_rows(engine, alice) == []
        # Once the service is there, the same store reconnects.
        svc = WriterService.__new__(WriterService)
        svc.address = address
        svc.listener = listen_socket(address)
        svc.stop = threading.Event()
        svc.thread = threading.Thread(
            target=serve_index_writer,
            args=(engine, svc.listener),
            kwargs={"stop": svc.stop, "poll": 0.05},
            daemon=True,
        )
        svc.thread.start()
        try:
            assert store.store([new(alice)])[0].uid == 1
        finally:
            svc.close()
    finally:
        store.close()


def test_garbage_on_one_connection_does_not_stop_the_service(
    engine: Engine, tmp_path: Path, service: WriterService
) -> None:
    alice = make_account(engine)
    store = worker_store(engine, tmp_path / "mail", service.address)
    try:
        store.ensure_account(alice)
        for junk in (b"\x00\x00\x00\x05hello", struct.pack(">I", 1 << 30) + b"x", b"[1,2"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bad:
                bad.settimeout(10)
                bad.connect(service.address)
                bad.sendall(junk)
                assert bad.recv(100) == b""  # dropped, without an answer
        assert store.store([new(alice)])[0].uid == 1
    finally:
        store.close()


def test_a_failing_batch_is_retried_request_by_request(engine: Engine, tmp_path: Path) -> None:
    alice = make_account(engine)
    root = tmp_path / "mail"
    held = threading.Event()
    release = threading.Event()

    def deliver(conn: Connection, items: list[Any], **options: Any) -> list[Any]:
        if any(item.base.startswith("poison") for item in items):
            raise RuntimeError("poisoned batch")
        if not held.is_set():
            held.set()
            release.wait(30)
        return deliver_batch(conn, items, **options)

    svc = WriterService(engine, deliver)
    store = MailStore(engine, root, HOST)  # only to make the folders and files
    try:
        store.ensure_account(alice)
        prepared = [_prepared(store, alice, base) for base in ("first.M1", "poison.M2", "good.M3")]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as first:
            first.settimeout(30)
            first.connect(svc.address)
            first.sendall(index_wire.frame(index_wire.encode_items([prepared[0]])))
            assert held.wait(30)  # the service is busy with the first request
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as two:
                two.settimeout(30)
                two.connect(svc.address)
                # Two requests in one go: they land in the same batch.
                two.sendall(
                    index_wire.frame(index_wire.encode_items([prepared[1]]))
                    + index_wire.frame(index_wire.encode_items([prepared[2]]))
                )
                release.set()
                assert _reply(first)[0] == "ok"
                poisoned, good = _reply(two), _reply(two)
        assert poisoned[0] == "error" and "poisoned" in poisoned[1]
        assert good[0] == "ok"
        assert sorted(r["filename"].split(",")[0] for r in message_rows(engine, alice)) == [
            "first.M1",
            "good.M3",
        ]
    finally:
        release.set()
        svc.close()
        store.close()


def _prepared(store: MailStore, account: Account, base: str) -> Any:
    from nmail.mailstore.preparing import prepare_all

    checked = store._check([new(account)], known_only=False)
    item = prepare_all(checked, "host", lambda: 1_000_000.0)[0]
    target = str(Path(item.tmp_path).with_name(base))
    Path(item.tmp_path).rename(target)
    return item._replace(tmp_path=target, base=base)


def test_a_delivery_for_the_wire_is_what_encode_stored_makes_of_it(
    engine: Engine, tmp_path: Path
) -> None:
    """deliver_batch(wire=True) (the writer process's) returns the reply's tuples
    themselves: the same values, types and order as encode_stored of the
    StoredMessages it returns otherwise."""
    alice = make_account(engine)
    store = MailStore(engine, tmp_path / "mail", HOST)
    try:
        store.ensure_account(alice)
        plain = [_prepared(store, alice, f"plain.M{n}") for n in range(2)]
        wired = [_prepared(store, alice, f"wired.M{n}") for n in range(2)]
        with engine.connect() as conn:
            stored = deliver_batch(conn, plain)
            sent = deliver_batch(conn, wired, wire=True)
    finally:
        store.close()
    assert [type(s).__name__ for s in stored] == ["StoredMessage"] * 2
    assert index_wire.decode_stored(sent) == [
        replace(s, uid=s.uid + 2, uidl=f"wired.M{n}",
                file=s.file.replace(f"plain.M{n},U={s.uid},", f"wired.M{n},U={s.uid + 2},"))
        for n, s in enumerate(stored)]
    assert sent == index_wire.encode_stored(index_wire.decode_stored(sent))
    assert all(type(row) is tuple for row in sent)


def _reply(sock: socket.socket) -> Any:
    (size,) = struct.unpack(">I", index_wire.recv_exact(sock, 4))
    return index_wire.loads(index_wire.recv_exact(sock, size))


def test_the_event_loop_client_sends_and_is_answered_on_the_loop(
    engine: Engine, tmp_path: Path
) -> None:
    alice = make_account(engine)
    root = tmp_path / "mail"
    svc = WriterService(engine)
    loop = LoopThread("uvloop")

    async def client() -> LoopRemoteIndex:
        return LoopRemoteIndex(svc.address, asyncio.get_running_loop())

    async def submitted(store: MailStore, subject: str) -> int:
        pending = store.submit([new(alice, subject=subject)])
        assert isinstance(pending, LoopFuture)  # made and completed on the loop: no lock
        return (await asyncio.wrap_future(pending))[0].uid

    first = MailStore(engine, root, HOST, index_client=loop.run(client()))
    second: MailStore | None = None
    try:
        first.ensure_account(alice)
        assert loop.run(submitted(first, "from the loop")) == 1

        async def blocking() -> None:
            first.store([new(alice, subject="blocks")])

        with pytest.raises(StoreError, match="event loop"):  # an error, not a hang
            loop.run(blocking())
        # From another thread the request is handed over to the loop.
        assert first.store([new(alice, subject="from a thread")])[0].uid == 2
        # The writer goes away: the delivery fails, and nothing was indexed for it.
        svc.close()
        with pytest.raises(StoreError, match="index writer unavailable"):
            first.store([new(alice, subject="lost")])
        assert [r["subject"] for r in message_rows(engine, alice)] == [
            "from the loop",
            "from a thread",
        ]
        # A writer again (a restarted process): a client connects anew.
        svc = WriterService(engine)
        second = MailStore(engine, root, HOST, index_client=loop.run(client()))
        second.ensure_account(alice)
        assert loop.run(submitted(second, "again")) == 3
    finally:
        first.close()
        if second is not None:
            second.close()
        svc.close()
        loop.close()
    assert entries(folder_dir(root, alice, "INBOX") / "tmp") == []


def test_the_wire_carries_every_summary_column() -> None:
    from nmail.mailstore.delivery_batch import _ROW_KEYS
    from nmail.mailstore.indexrow import SUMMARY_KEYS, summarize, summary_columns

    columns = summary_columns(summarize(b"Subject: x\r\n\r\nHello\r\n"), 1_700_000_000)
    assert tuple(columns) == SUMMARY_KEYS
    assert set(SUMMARY_KEYS) <= set(_ROW_KEYS)
    with pytest.raises(ValueError):  # a request that does not carry them all is refused
        index_wire.decode_items([[1, 2, "/d", "/d/tmp/x", "x", 1, "", "", True, 1, [1, 2]]])


def test_files_flushed_by_the_previous_commit_are_not_flushed_again(
    engine: Engine, tmp_path: Path
) -> None:
    """A request that arrives while a commit is under way rides on its flush."""
    alice = make_account(engine)
    root = tmp_path / "mail"
    calls: list[tuple[list[str], list[bool]]] = []
    second_request: list[bytes] = []
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    late.settimeout(30)

    def deliver(conn: Connection, items: list[Any], **options: Any) -> list[Any]:
        flushed = options.get("flushed")
        calls.append(([i.base for i in items], [bool(flushed and flushed(i)) for i in items]))
        piggyback = options.get("piggyback")
        if piggyback is not None and len(calls) == 1:
            original = piggyback.before_flush

            def arrive_then_read() -> None:
                late.sendall(second_request[0])  # in the socket buffer: readable now
                original()

            piggyback.before_flush = arrive_then_read
        return deliver_batch(conn, items, **options)

    svc = WriterService(engine, deliver)
    store = MailStore(engine, root, HOST)
    try:
        store.ensure_account(alice)
        first, second = (_prepared(store, alice, base) for base in ("early.M1", "rider.M2"))
        second_request.append(index_wire.frame(index_wire.encode_items([second])))
        late.connect(svc.address)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(svc.address)
            sock.sendall(index_wire.frame(index_wire.encode_items([first])))
            assert _reply(sock)[0] == "ok"
        assert _reply(late)[0] == "ok"
        assert calls == [(["early.M1"], [False]), (["rider.M2"], [True])]
        inbox = folder_dir(root, alice, "INBOX")
        assert len(entries(inbox / "new")) == 2 and entries(inbox / "tmp") == []
        assert len(message_rows(engine, alice)) == 2
    finally:
        late.close()
        svc.close()
        store.close()


def test_frames_of_the_wrong_shape_do_not_stop_the_service(
    engine: Engine, tmp_path: Path, service: WriterService
) -> None:
    alice = make_account(engine)
    store = worker_store(engine, tmp_path / "mail", service.address)
    try:
        store.ensure_account(alice)
        good = index_wire.encode_items([_prepared(store, alice, "good.M1")])[0]
        wrong = [
            index_wire.frame({"not": "a list"}),
            index_wire.frame([list(good)]),  # an item as a list
            index_wire.frame([(True, *good[1:])]),  # a bool for the account id
            index_wire.frame([(*good[:-1], good[-1][:-1])]),  # a column short
            index_wire.frame([good])[:-9],  # truncated: the worker goes away mid-frame
            index_wire.LENGTH.pack(40) + index_wire.frame([good])[4:44],  # value cut short
        ]
        for junk in wrong:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bad:
                bad.settimeout(10)
                bad.connect(service.address)
                bad.sendall(junk)
                bad.shutdown(socket.SHUT_WR)
                assert bad.recv(100) == b""  # dropped, without an answer
        assert message_rows(engine, alice) == []
        assert store.store([new(alice)])[0].uid == 1
    finally:
        store.close()


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "no-syncfs"])
def test_a_batch_of_files_is_flushed_with_or_without_syncfs(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: bool
) -> None:
    from nmail import durable

    if syncfs and durable._syncfs is None:
        pytest.skip("no syncfs here")
    if not syncfs:
        monkeypatch.setattr(durable, "_syncfs", None)
    flushed: list[Path] = []
    real_fsync_file = durable.fsync_file

    def fsync_file(path: str | Path) -> None:
        flushed.append(Path(path))
        real_fsync_file(path)

    monkeypatch.setattr(durable, "fsync_file", fsync_file)
    alice = make_account(engine)
    root = tmp_path / "mail"
    store = MailStore(engine, root, HOST)
    try:
        store.ensure_account(alice)
        stored = store.store([new(alice, subject=f"m{n}") for n in range(4)])
    finally:
        store.close()
    inbox = folder_dir(root, alice, "INBOX")
    assert sorted(s.path.name for s in stored) == entries(inbox / "new")
    if syncfs:
        assert flushed == []  # one syncfs for the four
    else:
        assert sorted(p.name for p in flushed) == sorted(s.uidl for s in stored)
        assert all(p.parent == inbox / "tmp" for p in flushed)


def test_the_writer_connection_checkpoints_late_and_compiles_first(engine: Engine) -> None:
    conn = writer_connection(engine)
    try:
        assert not conn.in_transaction()  # the first batch opens its own
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == (
                WAL_AUTOCHECKPOINT)
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        conn.close()
