"""Seeing that a session of a test's server database is waiting for a row lock.

The lock-order tests pause one transaction at its dangerous point (a seam)
and start another beside it; they go on only once the second is seen waiting
for a lock, never after a sleep. (No tests here.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine

# InnoDB refills its information_schema.innodb_trx cache only when nobody read it
# for 100 ms (CACHE_MIN_IDLE_TIME in trx0i_s.cc): looks closer together see the
# same stale table until the deadline (test_mailbox_folder_crash found it).
_LOOK_PAUSE = {"mariadb": 0.15, "mysql": 0.15}


def lock_waiters(engine: Engine) -> int:
    """How many sessions of the engine's database wait for a lock now."""
    if engine.dialect.name == "postgresql":
        query = ("SELECT count(*) FROM pg_stat_activity"
                 " WHERE datname = current_database() AND wait_event_type = 'Lock'")
    elif engine.dialect.name in ("mysql", "mariadb"):
        query = ("SELECT count(*) FROM information_schema.innodb_trx t"
                 " JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id"
                 " WHERE t.trx_state = 'LOCK WAIT' AND p.db = DATABASE()")
    else:
        raise ValueError(f"no row locks to watch on {engine.dialect.name}")
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(query).scalar() or 0)


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
