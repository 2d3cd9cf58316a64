"""OutboundQueue.enqueue: durability, refusals, normal forms, DKIM, and smuggling."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest
from sqlalchemy import Engine, func, insert, select

from fixtures_outbound import Harness, message, outbound_config, wait_until
from nmail.db.tables import domains, queue_messages, queue_recipients
from nmail.delivery.envelope import ClientInfo
from nmail.queue import enqueue_batch
from nmail.queue.dkim import DkimKeys, public_record
from nmail.queue.errors import QueueInputError
from nmail.queue.outbound import OutboundQueue
from nmail.queue.store import DELIVERED
from support import wait_until as wait_for

pytestmark = pytest.mark.timeout(60)


def make_queue(engine: Engine, tmp_path: Path, **kwargs: object) -> OutboundQueue:
    config = outbound_config(tmp_path, "sqlite://", dns=None, port=25)
    return OutboundQueue(engine, tmp_path / "queue", config, **kwargs)  # type: ignore[arg-type]


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        msgs = conn.execute(select(func.count()).select_from(queue_messages)).scalar_one()
        rcpts = conn.execute(select(func.count()).select_from(queue_recipients)).scalar_one()
    return int(msgs), int(rcpts)


def test_enqueue_is_durable_and_returns_an_id(engine: Engine, tmp_path: Path) -> None:
    queue = make_queue(engine, tmp_path)
    client = ClientInfo(ip="192.0.2.7", auth_user="alice@nmail.test")
    qid = queue.enqueue(
        "alice@nmail.test", ["bob@remote.test", "carol@other.test"], message(),
        client=client, dsn_envid="env-1", dsn_ret="hdrs",
        notify=["SUCCESS,FAILURE", None], orcpt=["rfc822;bob@remote.test", None],
    )
    body_file = tmp_path / "queue" / f"{qid}.eml"
    # The envelope travels in the body's file (rebuilt from it after a crash).
    assert body_file.read_bytes().startswith(b"#nmail-envelope {")
    assert queue.spool.read(qid).startswith(b"From: Alice")
    entry = queue.show(qid)
    assert entry.message.sender == "alice@nmail.test"
    assert entry.message.size == len(queue.spool.read(qid))
    assert entry.message.client_ip == "192.0.2.7"
    assert entry.message.auth_user == "alice@nmail.test"
    assert entry.message.dsn_ret == "HDRS" and entry.message.dsn_envid == "env-1"
    rows = {r.address: r for r in entry.recipients}
    assert rows["bob@remote.test"].notify == "SUCCESS,FAILURE"
    assert rows["bob@remote.test"].orcpt == "rfc822;bob@remote.test"
    assert rows["carol@other.test"].domain == "other.test"
    assert {r.state for r in entry.recipients} == {"queued"}
    assert not list((tmp_path / "queue").glob(".*.tmp"))


@pytest.mark.parametrize(
    ("sender", "rcpt", "extra"),
    [
        ("alice@nmail.test\r\nRCPT TO:<evil@x.test>", "bob@remote.test", {}),
        ("alice@nmail.test", "bob@remote.test\r\nDATA", {}),
        ("alice@nmail.test", "bob@remote.test\n", {}),
        ("alice@nmail.test", "bob@remote.test\r", {}),
        ("alice@nmail.test", "bob\x00@remote.test", {}),
        ("alice@nmail.test", "bob@remote.test", {"dsn_envid": "x\r\nSubject: hi"}),
        ("alice@nmail.test", "bob@remote.test", {"orcpt": ["rfc822;a@b\r\nX: y"]}),
        ("alice@nmail.test", "bob@remote.test", {"notify": ["FAILURE\r\n"]}),
        ("alice@nmail.test", "bob@remote.test", {"notify": ["SOMETIMES"]}),
        ("alice@nmail.test", "bob@remote.test", {"notify": ["NEVER,FAILURE"]}),
        ("alice@nmail.test", "bob@remote.test", {"dsn_ret": "ALL"}),
        ("alice@nmail.test", "<bob@remote.test>", {}),
        ("alice@nmail.test", "bob remote.test", {}),
        ("alice@nmail.test", "bob@", {}),
        ("alice@nmail.test", "@remote.test", {}),
        ("alice", "bob@remote.test", {}),
        ("alice@nmail.test", "bob@remote.test", {"client": ClientInfo(auth_user="a\nb")}),
    ],
)
def test_bad_envelope_is_refused_and_stores_nothing(
    sqlite_engine: Engine, tmp_path: Path, sender: str, rcpt: str, extra: dict[str, object]
) -> None:
    queue = make_queue(sqlite_engine, tmp_path)
    with pytest.raises(QueueInputError):
        queue.enqueue(sender, [rcpt], message(), **extra)  # type: ignore[arg-type]
    assert counts(sqlite_engine) == (0, 0)
    assert [p.name for p in (tmp_path / "queue").iterdir()] == ["corrupt"]


def test_no_recipients_and_mismatched_lists_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    queue = make_queue(sqlite_engine, tmp_path)
    with pytest.raises(QueueInputError, match="no recipients"):
        queue.enqueue("alice@nmail.test", [], message())
    with pytest.raises(QueueInputError, match="notify"):
        queue.enqueue("alice@nmail.test", ["a@b.test", "c@d.test"], message(), notify=["NEVER"])
    assert counts(sqlite_engine) == (0, 0)


def test_line_endings_normalised_and_duplicates_collapsed(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    queue = make_queue(sqlite_engine, tmp_path)
    raw = b"From: a@nmail.test\nSubject: x\r\n\nline one\rline two\nlast"
    qid = queue.enqueue("", ["Bob@remote.test", "bob@REMOTE.test", "bob@remote.test"], raw)
    stored = queue.spool.read(qid)
    assert stored == b"From: a@nmail.test\r\nSubject: x\r\n\r\nline one\r\nline two\r\nlast\r\n"
    assert [r.address for r in queue.show(qid).recipients] == ["Bob@remote.test"]


def test_dkim_signs_hosted_sender_and_signature_verifies(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(insert(domains).values(name="nmail.test", created_at=0))
    keys = DkimKeys(sqlite_engine)
    pem = keys.ensure("nmail.test", "nmail")
    record = public_record(pem)
    queue = make_queue(sqlite_engine, tmp_path, is_local_domain=lambda d: d == "nmail.test",
                       dkim=keys)
    signed_id = queue.enqueue("alice@nmail.test", ["bob@remote.test"],
                              message(body="Hi.\n.\nBye\n"), sign_domain="nmail.test")
    plain_id = queue.enqueue("carol@other.test", ["bob@remote.test"],
                             message(sender="carol@other.test"), sign_domain="other.test")
    # The queue never signs on the strength of From: alone (issue 9: the
    # intake says whom a message may speak for).
    unvouched = queue.enqueue("alice@nmail.test", ["bob@remote.test"], message())
    assert b"DKIM-Signature" not in queue.spool.read(unvouched)
    signed = queue.spool.read(signed_id)
    plain = queue.spool.read(plain_id)
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=nmail.test")
    assert b"DKIM-Signature" not in plain

    lookups: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        lookups.append(name)
        return record.encode() if name == b"nmail._domainkey.nmail.test." else b""

    assert dkimpy.verify(signed, dnsfunc=dnsfunc)
    assert lookups == [b"nmail._domainkey.nmail.test."]
    tampered = signed.replace(b"Subject: hello", b"Subject: hellO")
    assert not dkimpy.verify(tampered, dnsfunc=dnsfunc)
    body_tampered = signed.replace(b"Bye", b"bye")
    assert not dkimpy.verify(body_tampered, dnsfunc=dnsfunc)
    # a hosted domain without a key is sent unsigned, not refused
    queue2 = make_queue(sqlite_engine, tmp_path, is_local_domain=lambda d: True, dkim=keys)
    other = queue2.enqueue("x@nokey.test", ["bob@remote.test"], message(sender="x@nokey.test"),
                           sign_domain="nokey.test")
    assert b"DKIM-Signature" not in queue2.spool.read(other)


def test_signed_message_verifies_as_received_by_the_sink(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(insert(domains).values(name="nmail.test", created_at=0))
    keys = DkimKeys(sqlite_engine)
    record = public_record(keys.ensure("nmail.test", "nmail"))

    async def body() -> None:
        h = Harness(sqlite_engine, tmp_path)
        try:
            h.dns.mx("remote.test", (10, "mx1.remote.test"))
            h.dns.add("mx1.remote.test", "A", "127.0.0.2")
            await h.start()
            qid = h.queue.enqueue("alice@nmail.test", ["bob@remote.test"],
                                  message(body="x\r\n.dotted line\r\n..two\r\n"),
                                  sign_domain="nmail.test")
            await wait_until(lambda: h.queue.show(qid).recipients[0].state == DELIVERED)
            got = h.sinks[0].received[0].data
            assert b"\r\n.dotted line\r\n..two\r\n" in got

            def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
                return record.encode() if name == b"nmail._domainkey.nmail.test." else b""

            assert dkimpy.verify(got, dnsfunc=dnsfunc)
        finally:
            await h.close()

    asyncio.run(body())


def test_body_with_bare_lf_dot_arrives_as_one_message(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    smuggle = (
        b"From: alice@nmail.test\r\nSubject: innocent\r\n\r\nfirst part\n.\r\n"
        b"MAIL FROM:<ceo@bank.test>\r\nRCPT TO:<victim@remote.test>\r\nDATA\r\n"
        b"From: ceo@bank.test\r\nSubject: smuggled\r\n\r\nwire money\r\n.\r\n"
        b"tail\r.\r\nend\r\n"
    )

    async def body() -> None:
        h = Harness(sqlite_engine, tmp_path)
        try:
            h.dns.mx("remote.test", (10, "mx1.remote.test"))
            h.dns.add("mx1.remote.test", "A", "127.0.0.2")
            await h.start()
            qid = h.queue.enqueue("alice@nmail.test", ["bob@remote.test"], smuggle)
            await wait_until(lambda: h.queue.show(qid).recipients[0].state == DELIVERED)
            sink = h.sinks[0]
            assert len(sink.received) == 1, "the sink must see exactly one message"
            got = sink.received[0]
            assert got.rcpts == ["bob@remote.test"] and got.mail_from == "alice@nmail.test"
            # The would-be end of data and the smuggled commands are inside the one message.
            assert b"first part\r\n.\r\nMAIL FROM:<ceo@bank.test>" in got.data
            assert b"Subject: smuggled" in got.data
            assert b"tail\r\n.\r\nend\r\n" in got.data
            assert "victim@remote.test" not in sink.rcpt_attempts
        finally:
            await h.close()

    asyncio.run(body())


def test_enqueue_is_thread_safe(sqlite_engine: Engine, tmp_path: Path) -> None:
    queue = make_queue(sqlite_engine, tmp_path)

    async def many() -> list[str]:
        return await asyncio.gather(*(
            asyncio.to_thread(queue.enqueue, "alice@nmail.test", [f"u{i}@remote.test"], message())
            for i in range(40)
        ))

    ids = asyncio.run(many())
    assert len(set(ids)) == 40
    assert counts(sqlite_engine) == (40, 40)
    assert len([p for p in os.listdir(tmp_path / "queue") if p.endswith(".eml")]) == 40
    assert not [p for p in os.listdir(tmp_path / "queue") if p.endswith(".tmp")]


def test_messages_queued_together_share_one_commit(engine: Engine, tmp_path: Path) -> None:
    """While one commit runs, later callers wait and then commit together."""
    queue = make_queue(engine, tmp_path)
    store = queue.store
    batches: list[int] = []
    first_running = threading.Event()
    release = threading.Event()
    original = store.insert_many

    def insert_many(entries: Any) -> None:
        batches.append(len(entries))
        if len(batches) == 1:
            first_running.set()
            assert release.wait(30)
        original(entries)

    store.insert_many = insert_many  # type: ignore[method-assign]
    with ThreadPoolExecutor(12) as pool:
        first = pool.submit(queue.enqueue, "alice@nmail.test", ["u0@remote.test"], message())
        assert first_running.wait(30)
        rest = [
            pool.submit(queue.enqueue, "alice@nmail.test", [f"u{i}@remote.test"], message())
            for i in range(1, 11)
        ]
        wait_for(lambda: len(queue._intake._pending) == 10, what="ten waiting callers")
        release.set()
        ids = [first.result(30)] + [f.result(30) for f in rest]
    assert batches == [1, 10]
    assert counts(engine) == (11, 11)
    assert sorted(p for p in os.listdir(tmp_path / "queue") if p.endswith(".eml")) == sorted(
        f"{qid}.eml" for qid in ids
    )


def test_a_bad_message_in_a_shared_commit_fails_alone(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    queue = make_queue(sqlite_engine, tmp_path)
    store = queue.store
    poisoned: list[str] = []
    original_many, original_one = store.insert_many, store.insert

    def insert_many(entries: Any) -> None:
        if len(entries) > 1:
            raise RuntimeError("the batch failed")
        original_many(entries)

    def insert(message_info: Any, recipients: Any, next_attempt: int) -> None:
        if recipients[0].address.startswith("poison"):
            poisoned.append(message_info.id)
            raise RuntimeError("this one is bad")
        original_one(message_info, recipients, next_attempt)

    store.insert_many = insert_many  # type: ignore[method-assign]
    store.insert = insert  # type: ignore[method-assign]
    # Hold the first commit so the next three share one.
    gate = threading.Event()
    started = threading.Event()
    real_sync = enqueue_batch.sync_batch

    def slow_sync(*args: Any, **kwargs: Any) -> set[int]:
        if not started.is_set():
            started.set()
            assert gate.wait(30)
        return real_sync(*args, **kwargs)

    enqueue_batch.sync_batch = slow_sync  # type: ignore[assignment]
    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(queue.enqueue, "alice@nmail.test", ["a@remote.test"], message())
            assert started.wait(30)
            rest = [
                pool.submit(queue.enqueue, "alice@nmail.test", [rcpt], message())
                for rcpt in ("b@remote.test", "poison@remote.test", "c@remote.test")
            ]
            wait_for(lambda: len(queue._intake._pending) == 3, what="three waiting callers")
            gate.set()
            first.result(30)
            outcomes = []
            for future in rest:
                try:
                    outcomes.append(future.result(30))
                except RuntimeError as exc:
                    outcomes.append(str(exc))
    finally:
        enqueue_batch.sync_batch = real_sync  # type: ignore[assignment]
    assert outcomes[1] == "this one is bad"
    assert counts(sqlite_engine) == (3, 3)
    files = [p for p in os.listdir(tmp_path / "queue") if p.endswith((".eml", ".tmp"))]
    assert len(files) == 3 and f"{poisoned[0]}.eml" not in files

