"""Several nodes on one server database: claims never overlap, each message goes once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from fixtures_outbound import Harness, message, wait_until
from nmail.db.engine import make_engine
from nmail.db.tables import queue_recipients
from nmail.queue import scheduler
from nmail.queue.outbound import OutboundQueue
from nmail.queue.store import DELIVERED, DELIVERING, QueueStore

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
