"""Changing many recipient rows at once: lock them in id order first.

Several nodes and `nmail queue` write queue_recipients at the same time. One
UPDATE or DELETE of many rows locks them in the order its plan reaches them.
On PostgreSQL that is heap order for a sequential or bitmap scan, which is
not id order once rows have been updated: a new version goes after its
neighbours. Through the (state, next_attempt) or message_id index it is that
index's order, and on InnoDB the same holds for a secondary index. Two such
statements over shared rows, meeting in other orders, deadlock, and the
victim's work is lost (deliveries recorded twice over, or sent again).

So every multi-row change of recipient rows first takes exactly those rows
with `SELECT id ... WHERE id IN (...) ORDER BY id FOR UPDATE` and then
changes the rows it got. PostgreSQL locks after the sort. On MariaDB/MySQL
the read is pinned to the primary key (FORCE INDEX), so InnoDB reads and
locks the rows in key order. A sweep whose condition names no ids (expired
leases, one message's rows, every queued row) first reads the matching ids
without locks. The locking read then checks the condition again on the
current rows, so a row that stopped matching in between is left alone, and
one that started matching waits for the next sweep.

Not here: `mark_delivered_batch` keeps one statement per row in id order
(executemany, the hot path). A claim skips locked rows and never waits, so
it cannot close a circle. SQLite has one writer at a time, so a change there
stays one statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, select, update

from nmail.queue.rows import r

T = TypeVar("T")
LOCK_CHUNK = 1000  # ids per locking read / update (bounded IN lists)


def chunks(items: Sequence[T], size: int) -> Iterable[list[T]]:
    """`items` in slices of at most `size` (bounded IN lists)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def row_locks(conn: Connection) -> bool:
    """True where rows are locked one by one (PostgreSQL, MariaDB/MySQL)."""
    return conn.dialect.name != "sqlite"


def lock_in_id_order(
    conn: Connection, where: Sequence[ColumnElement[bool]], ids: Iterable[int] | None = None
) -> list[int]:
    """Lock the recipient rows of `ids` (or, given None, of every id that matches
    `where` now) that match `where`, in ascending id order; returns their ids."""
    if ids is None:
        wanted = list(conn.execute(select(r.c.id).where(*where).order_by(r.c.id)).scalars())
    else:
        wanted = sorted(set(ids))
    locked: list[int] = []
    for chunk in chunks(wanted, LOCK_CHUNK):
        query = (
            select(r.c.id)
            .with_hint(r, "FORCE INDEX (PRIMARY)", "mysql")
            .with_hint(r, "FORCE INDEX (PRIMARY)", "mariadb")
            .where(r.c.id.in_(chunk), *where)
            .order_by(r.c.id)
            .with_for_update()
        )
        locked.extend(int(rid) for rid in conn.execute(query).scalars())
    return locked


def update_in_id_order(
    conn: Connection, where: Sequence[ColumnElement[bool]], values: dict[str, Any],
    ids: Iterable[int] | None = None,
) -> int:
    """UPDATE the rows `lock_in_id_order` takes; returns how many changed.

    One statement where there is no order to keep: on SQLite, and for one id.
    """
    id_list = None if ids is None else list(ids)
    if not row_locks(conn) or (id_list is not None and len(set(id_list)) <= 1):
        cond = list(where) if id_list is None else [r.c.id.in_(id_list), *where]
        return int(conn.execute(update(r).where(*cond).values(**values)).rowcount or 0)
    locked = lock_in_id_order(conn, where, id_list)
    for chunk in chunks(locked, LOCK_CHUNK):
        conn.execute(update(r).where(r.c.id.in_(chunk)).values(**values))
    return len(locked)
