"""A deadlock's victim on PostgreSQL and MariaDB: knowing one, and how often it runs.

Every writer of the index takes its rows in one order (docs/ARCHITECTURE.md,
"Lock order"), so two of them do not deadlock. A deadlock may still come:
from a writer that does not keep the order (another node's older code, a
bug), or from InnoDB, which also picks victims among inserts of one key. The
database then rolls one transaction back whole. A client did nothing wrong,
so a writer that undoes its file changes when its COMMIT fails runs the
transaction again instead of answering an error: an operation
(op_run.run_operation), a delivery batch (delivery_batch.deliver_batch), a
dbsync step (rebuild), each up to DEADLOCK_TRIES times. SQLite lets one
writer in at a time and has no deadlocks to break.
"""

from __future__ import annotations

# Runs of one transaction chosen as a deadlock's victim before its error is the answer.
DEADLOCK_TRIES = 3


def is_deadlock(exc: BaseException) -> bool:
    """MariaDB/MySQL error 1213 or PostgreSQL's SQLSTATE 40P01 (a DBAPIError's driver error)."""
    orig = getattr(exc, "orig", None)
    code = orig.args[0] if orig is not None and orig.args else None
    return code == 1213 or getattr(orig, "sqlstate", None) == "40P01"
