"""The search follower and the index writer take rows in one order.

Every writer locks a folder's row before its messages' rows. The follower's
batch once inserted its index rows first (the foreign key share-locks each
message row) and its `search_folders` mark after (which share-locks the
folder row): an expunge that had the folder locked and waited for a
message row then deadlocked with it on PostgreSQL (CI: a POP3 QUIT failed
with "Some deleted messages were not removed") and could on MariaDB.

The test holds the follower's transaction open just after its index rows
went in, starts an expunge of the same message beside it, waits until the
database shows the expunge waiting for a lock, and lets the follower go on.
In the one order both finish, with no deadlock and no retry; in the other,
one of them is the deadlock's victim. SQLite queues its writers on one lock
and has no row locks to order.

And an operation that does end up a deadlock's victim runs again
(op_run.run_operation), so the user does not see it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import OperationalError

from lock_waits import wait_for_lock_waiters
from nmail.db.tables import message_search
from nmail.directory.model import Account
from nmail.mailstore import op_run, search_indexer
from nmail.mailstore.operations import Subscribe
from nmail.mailstore.store import MailStore
from test_mailstore_support import alice, mail_root, new, store

__all__ = ["alice", "mail_root", "store"]  # fixtures

DEADLINE = 30.0


def test_an_expunge_beside_a_search_batch_waits_its_turn(
    engine: Engine, store: MailStore, alice: Account, mail_root: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite's writers queue on one lock: no row lock order to keep")
    store.ensure_account(alice)
    [stored] = store.store([new(alice, subject="quarterly figures")])
    indexer = search_indexer.SearchIndexer(engine, mail_root)
    real_insert: Callable[..., Any] = search_indexer.insert_rows
    expunged: list[Any] = []

    def expunge() -> None:
        try:
            expunged.append(store.expunge(alice.id, "INBOX", [stored.uid]))
        except Exception as exc:  # the assertion below shows it
            expunged.append(exc)

    expunger = threading.Thread(target=expunge)

    def held_open(conn: Connection, rows: Any) -> None:
        real_insert(conn, rows)
        if not rows:
            return  # another folder (the defaults are made empty)
        # The index row is in, the transaction open: the expunge comes now.
        expunger.start()
        wait_for_lock_waiters(engine, deadline=DEADLINE, what="the expunge")

    monkeypatch.setattr(search_indexer, "insert_rows", held_open)
    caplog.set_level(logging.WARNING)
    try:
        indexed = indexer.catch_up()
    finally:
        if expunger.is_alive() or expunger.ident is not None:
            expunger.join(DEADLINE)
    assert not expunger.is_alive()
    assert indexed == 1
    assert expunged == [1], expunged  # one message expunged
    assert "deadlock" not in caplog.text
    with engine.connect() as conn:
        assert conn.execute(select(message_search.c.message_id)).all() == []


class _Deadlock(Exception):
    """A driver error as PostgreSQL's deadlock victim sees it."""

    sqlstate = "40P01"


class _Other(Exception):
    sqlstate = "23505"


def _flaky(monkeypatch: pytest.MonkeyPatch, failures: list[Exception]) -> list[int]:
    """run_operation's dispatch fails with `failures` first, then does the work."""
    calls: list[int] = []
    real = op_run._dispatch

    def dispatch(conn: Connection, op: Any, at: float, after: Any) -> Any:
        calls.append(len(after) if after is not None else -1)
        if after is not None:
            after.append(lambda: None)  # queued by the attempt, then lost with it
        if failures:
            raise OperationalError("DELETE ...", {}, failures.pop(0))
        return real(conn, op, at, after)

    monkeypatch.setattr(op_run, "_dispatch", dispatch)
    return calls


def test_a_deadlock_victim_runs_again(
    engine: Engine, store: MailStore, alice: Account, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store.ensure_account(alice)
    op = Subscribe(alice.id, "", "INBOX", True)
    calls = _flaky(monkeypatch, [_Deadlock("deadlock detected"), _Deadlock("again")])
    after: list[Callable[[], None]] = []
    caplog.set_level(logging.WARNING)
    with engine.connect() as conn:
        op_run.run_operation(conn, op, after=after)
    assert calls == [0, 0, 0]  # each attempt started with nothing queued by the last
    assert len(after) == 1
    assert caplog.text.count("deadlock's victim") == 2


def test_a_deadlock_every_time_is_the_answer_in_the_end(
    engine: Engine, store: MailStore, alice: Account, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.ensure_account(alice)
    failures: list[Exception] = [_Deadlock(f"deadlock {n}") for n in range(op_run.DEADLOCK_TRIES)]
    calls = _flaky(monkeypatch, failures)
    with engine.connect() as conn, pytest.raises(OperationalError, match="deadlock 2"):
        op_run.run_operation(conn, Subscribe(alice.id, "", "INBOX", True), after=[])
    assert len(calls) == op_run.DEADLOCK_TRIES


def test_other_database_errors_are_not_run_again(
    engine: Engine, store: MailStore, alice: Account, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.ensure_account(alice)
    calls = _flaky(monkeypatch, [_Other("duplicate key")])
    with engine.connect() as conn, pytest.raises(OperationalError, match="duplicate"):
        op_run.run_operation(conn, Subscribe(alice.id, "", "INBOX", True), after=[])
    assert len(calls) == 1
