"""Several nodes on one server database: claims never overlap, each message goes once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from fixtures_outbound import Harness, message, wait_until
from lock_waits import wait_for_lock_waiters
from nmail.db.engine import make_engine
from nmail.db.tables import queue_recipients
from nmail.queue import scheduler
from nmail.queue.outbound import OutboundQueue
from nmail.queue.store import DELIVERED, DELIVERING, MessageInfo, NewRecipient, QueueStore

pytestmark = pytest.mark.timeout(90)


def server_only(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serves one node; this is about PostgreSQL/MariaDB")


def test_two_nodes_drain_one_queue_each_message_once(
    db_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_only(db_url)
    # Small claims so the two nodes interleave instead of one taking everything.
    monkeypatch.setattr(scheduler, "CLAIM_BATCH", 3)
    second_engine = make_engine(db_url)

    async def body() -> None:
        h = Harness(engine, tmp_path, max_connections_per_domain=2)
        try:
            h.dns.mx("remote.test", (10, "mx1.remote.test"))
            h.dns.add("mx1.remote.test", "A", "127.0.0.2")
            await h.start_sinks()
            node_a = h.make_queue(node_id="node-a")
            config = node_a.config
            node_b = OutboundQueue(
                second_engine, tmp_path / "queue", config, clock=h.clock,
                node_id="node-b", is_local_domain=lambda d: d == "nmail.test",
                local_bounce=lambda data, rcpt: h.bounces.append((data, rcpt)),
            )
            ids = [node_a.enqueue("alice@nmail.test", [f"u{i}@remote.test", f"v{i}@remote.test"],
                                  message(subject=f"n{i}")) for i in range(60)]
            tasks = [asyncio.create_task(node_a.run()), asyncio.create_task(node_b.run())]

            def done() -> bool:
                return all(r.state == DELIVERED for q in ids for r in node_a.show(q).recipients)

            await wait_until(done, within=60, what="all delivered")
            await node_a.stop()
            await node_b.stop()
            await asyncio.gather(*tasks)
            # Each (message, recipient) pair arrived exactly once. (A message's two
            # recipients may travel in two transactions when claims split them.)
            copies: Counter[tuple[str, str]] = Counter()
            for item in h.sinks[0].received:
                subject = next(x for x in item.data.split(b"\r\n") if x.startswith(b"Subject: "))
                copies.update((subject[9:].decode(), rcpt) for rcpt in item.rcpts)
            expected = {(f"n{i}", f"{who}{i}@remote.test") for i in range(60) for who in "uv"}
            assert set(copies) == expected
            assert set(copies.values()) == {1}
            assert h.bounces == []
        finally:
            await h.close()
            second_engine.dispose()

    asyncio.run(body())


def test_claim_skips_rows_locked_by_another_node(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    server_only(db_url)
    h = Harness(engine, tmp_path)
    try:
        queue = h.make_queue()
        for i in range(4):
            queue.enqueue("alice@nmail.test", [f"u{i}@remote.test"], message())
        store_b = QueueStore(make_engine(db_url))
        now = int(h.clock())
        rc = queue_recipients.c
        with engine.connect() as conn, conn.begin():
            # Node A is in the middle of its claim (the same query the store runs):
            # it holds row locks on two rows.
            locked = list(conn.execute(
                select(rc.id).where(rc.state == "queued", rc.next_attempt <= now)
                .order_by(rc.next_attempt).limit(2).with_for_update(skip_locked=True)
            ).scalars())
            assert len(locked) == 2
            result: dict[str, object] = {}

            def claim_b() -> None:
                result["claim"] = store_b.claim(now, 10, "node-b/x/1", now + 300)

            worker = threading.Thread(target=claim_b)
            worker.start()
            worker.join(timeout=10)
            assert not worker.is_alive(), "the claim must skip locked rows, not wait for them"
        claim = result["claim"]
        got = {r.id for r in claim.recipients}  # type: ignore[attr-defined]
        assert len(got) == 2 and not got & set(locked)
        # and a second claim finds only the two rows nobody holds
        again = QueueStore(engine).claim(now, 10, "node-a/x/2", now + 300)
        assert {r.id for r in again.recipients} == set(locked)
        assert QueueStore(engine).claim(now, 10, "node-a/x/3", now + 300).recipients == ()
        with engine.connect() as conn:
            states = set(conn.execute(select(queue_recipients.c.state)).scalars())
        assert states == {DELIVERING}
        store_b.engine.dispose()
    finally:
        h.dns.stop()


def test_two_nodes_record_one_pair_of_deliveries_in_opposite_orders(
    db_url: str, engine: Engine
) -> None:
    """Two nodes whose leases on the same two recipients ran out both delivered
    them, and finished them in opposite orders. mark_delivered_batch updated
    the rows in its batch's order: one node held the first row and waited for
    the second while the other held the second and waited for the first, and
    the database rolled one back (its deliveries unrecorded: sent again later).
    In id order the second waits for the first and both finish.

    A third transaction holds the first row, so the first node waits for it
    holding nothing while the second takes what it takes before that row."""
    server_only(db_url)
    store = QueueStore(engine)
    info = MessageInfo("lock-order-1", "alice@nmail.test", 10, 1_790_000_000, False,
                       None, None, False)
    store.insert(info, [NewRecipient("u@remote.test", "remote.test"),
                        NewRecipient("v@remote.test", "remote.test")], 1_790_000_000)
    rc = queue_recipients.c
    with engine.connect() as conn:
        first, second = conn.execute(select(rc.id).order_by(rc.id)).scalars().all()
    node_a, node_b = QueueStore(make_engine(db_url)), QueueStore(make_engine(db_url))
    outcomes: dict[str, object] = {}

    def record(name: str, node: QueueStore, ids: list[int]) -> threading.Thread:
        def run() -> None:
            try:
                node.mark_delivered_batch([([rid], "mx.remote.test", f"250 {name}")
                                           for rid in ids])
                outcomes[name] = "ok"
            except Exception as exc:  # the assertion below shows it
                outcomes[name] = exc

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    try:
        with engine.connect() as holder, holder.begin():
            holder.execute(select(rc.id).where(rc.id == first).with_for_update()).all()
            a = record("node-a", node_a, [first, second])
            wait_for_lock_waiters(engine, what="node a waits for the first row")
            b = record("node-b", node_b, [second, first])
            wait_for_lock_waiters(engine, count=2, what="node b waits for the first row")
        for thread in (a, b):
            thread.join(60)
            assert not thread.is_alive()
    finally:
        node_a.engine.dispose()
        node_b.engine.dispose()
    assert outcomes == {"node-a": "ok", "node-b": "ok"}
    with engine.connect() as conn:
        assert set(conn.execute(select(rc.state)).scalars()) == {DELIVERED}
