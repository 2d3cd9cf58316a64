"""The queue's multi-row changes take their recipient rows in id order
(queue/row_locks.py; docs/ARCHITECTURE.md, "Lock order").

Each test makes two nodes change the same pair of rows: one with
`mark_delivered_batch` (in id order since 8aa1161) and the other with a
single statement over both rows. A third transaction holds the second row.
The single statement starts first and waits for that row. The batch then
takes the first row and waits too. When the holder lets go, a statement
that had reached the second row first (its plan's order, not id order) goes
on to the first row, which the batch holds, and the database rolls one of
them back. In id order the statement holds the first row and the batch
waits for it holding nothing, so both finish.

PostgreSQL and MariaDB. SQLite lets one writer in at a time, so two
transactions never hold rows the other wants.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select, update

from lock_waits import wait_for_lock_waiters
from nmail.db.engine import make_engine
from nmail.db.tables import queue_recipients
from nmail.queue.store import DELIVERED, DELIVERING, MessageInfo, NewRecipient, QueueStore

pytestmark = pytest.mark.timeout(90)
rc = queue_recipients.c
NOW = 1_790_000_000


def _server_only(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: no lock order to keep")


def _leased_pair(engine: Engine, *, lease_until: int, first_due: int) -> tuple[int, int]:
    """One message's two recipients, both leased to node A, as ids (first, second).

    The second row is set first and the first row last. On PostgreSQL the first
    row's new version then lies after the second's in the table, so a
    sequential scan meets the second row first. Its next_attempt is
    `first_due`, so an index scan on (state, next_attempt) meets it after the
    second row's (due NOW) when `first_due` is later.
    """
    store = QueueStore(engine)
    info = MessageInfo("row-order-1", "alice@nmail.test", 10, NOW, False, None, None, False)
    store.insert(info, [NewRecipient("u@remote.test", "remote.test"),
                        NewRecipient("v@remote.test", "remote.test")], NOW)
    with engine.begin() as conn:
        first, second = conn.execute(select(rc.id).order_by(rc.id)).scalars().all()
        for rid, due in ((second, NOW), (first, first_due)):
            conn.execute(update(queue_recipients).where(rc.id == rid).values(
                state=DELIVERING, lease_owner="node-a/run/1", lease_until=lease_until,
                next_attempt=due))
    return first, second


def _meet(db_url: str, engine: Engine, first: int, second: int,
          statement: Callable[[QueueStore], object]) -> dict[str, object]:
    """Node B runs `statement` and node A records both rows delivered, as the
    module docstring says; returns each node's outcome ("ok" or the error)."""
    node_a, node_b = QueueStore(make_engine(db_url)), QueueStore(make_engine(db_url))
    outcomes: dict[str, object] = {}

    def start(name: str, work: Callable[[], object]) -> threading.Thread:
        def run() -> None:
            try:
                work()
                outcomes[name] = "ok"
            except Exception as exc:  # the assertion shows it
                outcomes[name] = exc

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    try:
        with engine.connect() as holder, holder.begin():
            holder.execute(select(rc.id).where(rc.id == second).with_for_update()).all()
            b = start("node-b", lambda: statement(node_b))
            wait_for_lock_waiters(engine, what="node b's statement waits for the second row")
            a = start("node-a", lambda: node_a.mark_delivered_batch(
                [([first], "mx.remote.test", "250 a"), ([second], "mx.remote.test", "250 a")]))
            wait_for_lock_waiters(engine, count=2, what="node a's batch waits too")
        for thread in (a, b):
            thread.join(60)
            assert not thread.is_alive()
    finally:
        node_a.engine.dispose()
        node_b.engine.dispose()
    return outcomes


def test_a_settled_delivery_and_a_batch_over_one_pair_of_rows(
    db_url: str, engine: Engine
) -> None:
    """Node A's lease ran out and node B took the rows; both delivered. B settles
    its attempt through `mark_delivered` (one reply that is not a plain success,
    say a recipient asked for a success notice): one UPDATE ... WHERE id IN
    (...), which PostgreSQL runs as a sequential scan of the small table and so
    met the second row first. (MariaDB read that UPDATE's rows along the
    primary key, in id order, so it passed there before the fix too.)"""
    _server_only(db_url)
    first, second = _leased_pair(engine, lease_until=NOW + 300, first_due=NOW)
    outcomes = _meet(db_url, engine, first, second,
                     lambda node: node.mark_delivered([first, second], "mx.remote.test", "250 b"))
    assert outcomes == {"node-a": "ok", "node-b": "ok"}
    with engine.connect() as conn:
        assert set(conn.execute(select(rc.state)).scalars()) == {DELIVERED}


def test_a_reap_and_a_batch_over_one_pair_of_rows(db_url: str, engine: Engine) -> None:
    """Node A's lease ran out while it was still delivering: node B's reap puts the
    rows back in the queue while A records them delivered. The reap's one UPDATE
    went through the (state, next_attempt) index and so met the second row,
    due earlier, first."""
    _server_only(db_url)
    first, second = _leased_pair(engine, lease_until=NOW - 1, first_due=NOW + 60)
    outcomes = _meet(db_url, engine, first, second, lambda node: node.reap_expired(NOW))
    assert outcomes == {"node-a": "ok", "node-b": "ok"}
    with engine.connect() as conn:
        # Whichever came second found the rows changed: the reap finds nothing
        # to requeue once they are delivered, and the batch overwrites 'queued'.
        assert set(conn.execute(select(rc.state)).scalars()) == {DELIVERED}
