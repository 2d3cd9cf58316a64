"""Login-failure records in SQL: one throttle for every process and node.

`nmail serve` answers port 25 from several worker processes, and several
nodes may share one PostgreSQL database; counts kept in one process's
memory would give a password guesser a fresh allowance on each. Rows live
in `login_failures`, times in integer milliseconds of the wall clock (the
throttle's clock must then be wall time, as the runtime's is).

Every count is one transaction that holds the row's lock from its read to
its write (`SELECT ... FOR UPDATE` on PostgreSQL and MariaDB, `BEGIN
IMMEDIATE` on SQLite), so attempts made at the same instant by several
processes are all counted: ten allowed tries stay ten. Reads and writes are
small primary-key statements, made on the thread that checks the password.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from nmail.db.tables import login_failures
from nmail.directory.throttle import Record, RecordChange

log = logging.getLogger(__name__)

_T = login_failures
# Every this many writes, rows that no longer matter are removed.
SWEEP_EVERY = 256
# Failures kept per row: 25 times of 13 digits fit String(400).
KEEP = 25


def _storable(key: str) -> str:
    """The key as every database can keep it: at most 200 characters, a NUL
    (PostgreSQL text refuses it) as "\\x00", a lone surrogate (no encoding has
    one) as "\\udcff". A login name comes from outside (POP3 `USER a\\0b`):
    refused by the database, the attempt was an error with a traceback in the
    log and counted on no account."""
    if not key.isprintable():  # rare: control characters, surrogates
        key = key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\0", "\\x00")
    return key[:200]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class SqlRecords:
    """ThrottleRecords in the `login_failures` table."""

    def __init__(self, engine: Engine, window: float = 15 * 60.0) -> None:
        self._engine = engine
        self._window = window
        self._writes = 0

    def get(self, key: str) -> Record | None:
        with self._engine.connect() as conn:
            row = conn.execute(_select(_storable(key))).first()
        return None if row is None else _record(row)

    def update(self, key: str, change: RecordChange, now: float) -> Record | None:
        key = _storable(key)
        for _ in range(3):
            try:
                return self._update(key, change, now)
            except IntegrityError:  # another process inserted the row meanwhile: again
                continue
        return self._update(key, change, now)

    def _update(self, key: str, change: RecordChange, now: float) -> Record | None:
        with self._engine.connect() as conn, _row_locking(conn):
            row = conn.execute(_select(key).with_for_update()).first()
            new = change(None if row is None else _record(row))
            if new is None:
                if row is not None:
                    conn.execute(delete(_T).where(_T.c.key == key))
                return None
            values = _values(new)
            if row is None:
                conn.execute(insert(_T).values(key=key, **values))
            else:
                conn.execute(update(_T).where(_T.c.key == key).values(**values))
            self._writes += 1
            sweep = self._writes % SWEEP_EVERY == 0
        if sweep:
            self._sweep(now)
        return new

    def _sweep(self, now: float) -> None:
        """Remove the rows that no longer matter, in a transaction of its own.

        Not in the count's transaction: holding its row while locking the stale
        ones, it deadlocked with another process's count doing the same, each
        row stale in the other's snapshot (tests/test_lock_order.py), and a
        login failed. A sweep that fails is left to the next one.
        """
        try:
            with self._engine.connect() as conn, _row_locking(conn):
                conn.execute(delete(_T).where(_T.c.locked_until <= _ms(now),
                                              _T.c.last_failure <= _ms(now - self._window)))
        except DBAPIError as exc:
            log.warning("login throttle: stale rows not removed this time (%s)", exc)

    def put(self, key: str, record: Record, now: float) -> None:
        """Store the record as it is (replacing any)."""
        self.update(key, lambda _: record, now)

    def drop(self, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(_T).where(_T.c.key == _storable(key)))

    def __len__(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_T)).scalar_one())

    def entries(self) -> list[tuple[str, int, float, float]]:
        """Every record: (key, failures in the row, last failure, locked until)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_T.c.key, _T.c.failures, _T.c.last_failure, _T.c.locked_until).order_by(
                    _T.c.key
                )
            ).all()
        return [
            (row.key, len(row.failures.split()), row.last_failure / 1000, row.locked_until / 1000)
            for row in rows
        ]

    def clear(self, key: str | None = None) -> int:
        """Forget one record (or all with None); returns how many went."""
        with self._engine.begin() as conn:
            statement = delete(_T) if key is None else delete(_T).where(_T.c.key == _storable(key))
            return int(conn.execute(statement).rowcount or 0)


def _select(key: str) -> Any:
    return select(_T.c.failures, _T.c.last_failure, _T.c.locked_until).where(_T.c.key == key)


def _record(row: Any) -> Record:
    failures = deque(int(t) / 1000 for t in row.failures.split())
    return Record(failures, row.last_failure / 1000, row.locked_until / 1000)


def _values(record: Record) -> dict[str, object]:
    # The newest failures (more than any lockout counts), to fit the column.
    return {
        "failures": " ".join(str(_ms(t)) for t in list(record.failures)[-KEEP:]),
        "last_failure": _ms(record.last_failure),
        "locked_until": _ms(record.locked_until),
    }


@contextmanager
def _row_locking(conn: Connection) -> Iterator[None]:
    """A transaction in which the row read is locked until the commit.

    FOR UPDATE does that on PostgreSQL and MariaDB; SQLite ignores it, and
    BEGIN IMMEDIATE takes its one write lock before the read instead.
    """
    with conn.begin():
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield
