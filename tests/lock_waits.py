"""Seeing that a session of a test's server database is waiting for a row lock.

The lock-order tests pause one transaction at its dangerous point (a seam)
and start another beside it; they go on only once the second is seen waiting
for a lock, never after a sleep. (No tests here.)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine

# InnoDB refills its information_schema.innodb_trx cache only when nobody read it
# for 100 ms (CACHE_MIN_IDLE_TIME in trx0i_s.cc). With several test runs polling
# one server that never happens, and every look saw the same stale table until
# the deadline. So InnoDB's waiters come from SHOW ENGINE INNODB STATUS, built
# on each call, and the live processlist says which database each belongs to.
_LOOK_PAUSE = {"mariadb": 0.05, "mysql": 0.05}
_THREAD = re.compile(r"(?:MariaDB|MySQL) thread id (\d+)")


def lock_waiters(engine: Engine) -> int:
    """How many sessions of the engine's database wait for a lock now."""
    with engine.connect() as conn:
        if engine.dialect.name in ("mysql", "mariadb"):
            return _innodb_waiters(conn)
        if engine.dialect.name != "postgresql":
            raise ValueError(f"no row locks to watch on {engine.dialect.name}")
        return int(conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'").scalar() or 0)


def _innodb_waiters(conn: Connection) -> int:
    status = str(conn.exec_driver_sql("SHOW ENGINE INNODB STATUS").one()[2])
    threads = set()
    for block in status.split("---TRANSACTION ")[1:]:
        found = _THREAD.search(block)
        if "LOCK WAIT" in block and found:
            threads.add(int(found.group(1)))
    if not threads:
        return 0
    listed = ",".join(str(thread) for thread in sorted(threads))
    return int(conn.exec_driver_sql(
        "SELECT count(*) FROM information_schema.processlist"
        f" WHERE db = DATABASE() AND id IN ({listed})").scalar() or 0)


def wait_for_lock_waiters(engine: Engine, count: int = 1, deadline: float = 30.0,
                          what: str = "", unless: Callable[[], bool] | None = None) -> None:
    """Return once `count` sessions wait for a lock (or `unless()` holds: the other
    side finished without waiting); AssertionError after `deadline`."""
    pause = _LOOK_PAUSE.get(engine.dialect.name, 0.01)
    end = time.monotonic() + deadline
    while not (unless is not None and unless()) and lock_waiters(engine) < count:
        if time.monotonic() > end:
            raise AssertionError(f"no session waited for a lock before the deadline: {what}")
        time.sleep(pause)
