"""A delivery batch the database picks as a deadlock's victim runs again.

The writers keep one lock order (docs/ARCHITECTURE.md, "Lock order"), but a
deadlock can still come from a writer that does not (another node's older
code, a bug): PostgreSQL and MariaDB then roll one transaction back. An
operation ran again (op_run.run_operation); a delivery batch failed, and
the SMTP client got 451 for a message it had to send again. Now
deliver_batch undoes its renames and runs the batch again, in the writer
thread of one process and in the index writer process alike.

The test makes a real deadlock: the delivery holds the INBOX row (paused
just after its folder locks) while another transaction takes the account's
row and waits for the INBOX row; the delivery then links the message's
thread (a foreign key to the account row) and closes the circle. The
delivery is the victim: PostgreSQL's check runs in the waiter whose
deadlock_timeout ends first, and the other's is a minute; InnoDB rolls back
the transaction that changed fewer rows, and the other inserted some.
SQLite lets one writer in at a time: no deadlock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from lock_waits import wait_for_lock_waiters
from nmail.db.tables import accounts, folders, login_failures, messages
from nmail.directory.model import Account
from nmail.mailstore import delivery_batch
from nmail.mailstore.index_client import RemoteIndex
from nmail.mailstore.store import MailStore
from test_lock_order import Background, Pause
from test_mailbox_writer_service import Service
from test_mailstore_support import HOST, make_account, new


@pytest.fixture
def server_engine(engine: Engine) -> Engine:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: no deadlock to be the victim of")
    return engine


@pytest.fixture(params=["writer-thread", "writer-process"])
def store(request: pytest.FixtureRequest, server_engine: Engine,
          tmp_path: Path) -> Iterator[MailStore]:
    """One process's store (its own writer thread), or a worker's: its deliveries
    committed by the index writer service (serve_index_writer, on a thread here)."""
    service = Service(server_engine) if request.param == "writer-process" else None
    client = RemoteIndex(service.address) if service is not None else None
    s = MailStore(server_engine, tmp_path / "mail", HOST, index_client=client)
    yield s
    s.close()
    if service is not None:
        service.close()


def _inbox(engine: Engine, account: Account) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(folders.c.id).where(
            folders.c.account_id == account.id, folders.c.name == "INBOX")).scalar_one())


def test_a_delivery_that_is_a_deadlocks_victim_is_stored_all_the_same(
    server_engine: Engine, store: MailStore, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice = make_account(server_engine)
    store.ensure_account(alice)
    inbox = _inbox(server_engine, alice)
    caplog.set_level(logging.WARNING)
    pause = Pause(monkeypatch, delivery_batch, "_resolve_threads")  # INBOX locked
    delivering = Background(lambda: store.store([new(alice, subject="twice lucky")]))
    assert pause.reached.wait(30)

    def other() -> None:
        with server_engine.connect() as conn, conn.begin():
            if server_engine.dialect.name == "postgresql":
                # Never this one's check first: the delivery's (1 s) finds the circle.
                conn.exec_driver_sql("SET LOCAL deadlock_timeout = '60s'")
            # Rows changed: InnoDB then rolls back the delivery, the lighter transaction.
            conn.execute(insert(login_failures), [
                {"key": f"weight-{n}", "failures": "", "last_failure": 0, "locked_until": 0}
                for n in range(50)])
            conn.execute(select(accounts.c.id).where(accounts.c.id == alice.id)
                         .with_for_update()).all()
            # Waits for the delivery, and gets the row once the delivery was rolled back.
            conn.execute(select(folders.c.id).where(folders.c.id == inbox)
                         .with_for_update()).all()
            conn.rollback()

    beside = Background(other)
    wait_for_lock_waiters(server_engine, what="the other transaction waits for INBOX")
    pause.go.set()  # the delivery links its thread: it waits for the account row
    beside.result()
    stored = delivering.result()  # before: StoreError (the client's 451)
    assert len(stored) == 1 and stored[0].path.is_file()
    assert "deadlock's victim" in caplog.text
    with server_engine.connect() as conn:
        assert conn.execute(select(messages.c.uid).where(messages.c.folder_id == inbox)
                            ).scalars().all() == [stored[0].uid]
    tmp = stored[0].path.parent.parent / "tmp"
    assert list(tmp.iterdir()) == []  # the first attempt's rename was undone, then made again
