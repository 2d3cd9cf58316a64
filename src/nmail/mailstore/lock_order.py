"""The lock order's two ways out on PostgreSQL and MariaDB: locking again, and
a deadlock's victim.

Every writer of the index takes folder rows in id order, then their
messages, then rows that only name the account (docs/ARCHITECTURE.md,
"Lock order"), so two writers do not deadlock. Two things are here.

A writer may learn only under its locks that it needs a folder below one it
holds: a conversation merge (thread_index) renames the losing thread's
messages wherever they are, found once the delivery or dbsync step holds
its own folders. Locking that folder then would break the order, so it
raises LockFirst naming the folders it lacks; its caller rolls back (a
delivery undoes its renames) and runs the transaction again with them
locked first, in id order with its own. Each run holds more folders than
the last, of one account's bounded set, so the runs end; merges are rare,
and one needing a lower folder rarer, so this costs nothing otherwise.

A deadlock may still come: from a writer that does not keep the order
(another node's older code, a bug), or from InnoDB, which also picks victims
among inserts of one key. The database then rolls one transaction back
whole. A client did nothing wrong, so a writer that undoes its file changes
when its COMMIT fails runs the transaction again instead of answering an
error: an operation (op_run.run_operation), a delivery batch
(delivery_batch.deliver_batch), a dbsync step (rebuild), each up to
DEADLOCK_TRIES times. SQLite lets one writer in at a time and needs
neither.
"""

from __future__ import annotations

from collections.abc import Iterable

# Runs of one transaction chosen as a deadlock's victim before its error is the answer.
DEADLOCK_TRIES = 3


class LockFirst(Exception):
    """The transaction needs these folders' rows, below one it holds: roll it back
    and run it again with them locked first (in id order with its own)."""

    def __init__(self, folder_ids: Iterable[int]) -> None:
        self.folder_ids = frozenset(folder_ids)
        super().__init__(f"lock folders {sorted(self.folder_ids)} first")


def is_deadlock(exc: BaseException) -> bool:
    """MariaDB/MySQL error 1213 or PostgreSQL's SQLSTATE 40P01 (a DBAPIError's driver error)."""
    orig = getattr(exc, "orig", None)
    code = orig.args[0] if orig is not None and orig.args else None
    return code == 1213 or getattr(orig, "sqlstate", None) == "40P01"
