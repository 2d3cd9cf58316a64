"""Login-failure records in SQL: one throttle for every process and node.

`nmail serve` answers port 25 from several worker processes, and several
nodes may share one PostgreSQL database; counts kept in one process's
memory would give a password guesser a fresh allowance on each. Rows live
in `login_failures`, times in integer milliseconds of the wall clock (the
throttle's clock must then be wall time, as the runtime's is).

Two processes failing at the same instant may each count from the same
row, so one failure of the two can go uncounted: the throttle slows and
locks out a guesser, it is not an exact ledger. Reads and writes are small
primary-key statements, made on the thread that checks the password.
"""

from __future__ import annotations

from collections import deque

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from nmail.db.tables import login_failures
from nmail.directory.throttle import Record

_T = login_failures
# Every this many writes, rows that no longer matter are removed.
SWEEP_EVERY = 256
# Failures kept per row: 25 times of 13 digits fit String(400).
KEEP = 25


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
            row = conn.execute(
                select(_T.c.failures, _T.c.last_failure, _T.c.locked_until).where(
                    _T.c.key == key[:200]
                )
            ).first()
        if row is None:
            return None
        failures = deque(int(t) / 1000 for t in row.failures.split())
        return Record(failures, row.last_failure / 1000, row.locked_until / 1000)

    def put(self, key: str, record: Record, now: float) -> None:
        # The newest failures (more than any lockout counts), to fit the column.
        values = {
            "failures": " ".join(str(_ms(t)) for t in list(record.failures)[-KEEP:]),
            "last_failure": _ms(record.last_failure),
            "locked_until": _ms(record.locked_until),
        }
        key = key[:200]
        with self._engine.begin() as conn:
            changed = conn.execute(update(_T).where(_T.c.key == key).values(**values)).rowcount
            if not changed:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(_T).values(key=key, **values))
                except IntegrityError:  # another process inserted it meanwhile
                    conn.execute(update(_T).where(_T.c.key == key).values(**values))
            self._writes += 1
            if self._writes % SWEEP_EVERY == 0:
                conn.execute(
                    delete(_T).where(
                        _T.c.locked_until <= _ms(now),
                        _T.c.last_failure <= _ms(now - self._window),
                    )
                )

    def drop(self, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(_T).where(_T.c.key == key[:200]))

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
            statement = delete(_T) if key is None else delete(_T).where(_T.c.key == key[:200])
            return int(conn.execute(statement).rowcount or 0)
