"""The delivery's write transaction, on SQLite on the driver's connection directly.

SQLAlchemy's transaction and execution bookkeeping cost the index writer
about 100 µs a batch, more than SQLite's own work, so delivery_batch runs
its statements through an `Execute` callable: raw driver SQL on SQLite,
exec_driver_sql elsewhere. On SQLite a many-row INSERT ... VALUES goes in as
one statement (`execute_many`): run once per row it paid SQLite's statement
start and end (reset, a statement journal, VdbeHalt) and the driver's loop
for each row; as one statement, the index writer's instructions per
delivered message went from 314,006 to 283,427 in commits of 8
(bench/writer_instructions.py). Same rows, ids and order.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import chain
from typing import Any

from sqlalchemy import Connection

from nmail.mailstore.model import StoreError
from nmail.mailstore.write_lock import file_lock, write_transaction

# execute(sql, parameters, many) -> every row (many=False) or None; parameters from
# delivery_batch's compiled statements. The same shape as thread_index.Run.
Execute = Callable[[str, Any, bool], Any]


@contextmanager
def transaction(conn: Connection) -> Iterator[Execute]:
    """The delivery's write transaction.

    On SQLite it runs on the driver's connection directly: SQLAlchemy's
    transaction and execution bookkeeping cost about 100 µs a batch, more
    than SQLite's own work. Driver errors become StoreError.
    """
    if conn.dialect.name != "sqlite" or conn.in_transaction():
        with write_transaction(conn):

            def execute(sql: str, params: Any, many: bool) -> Any:
                result = conn.exec_driver_sql(sql, params)
                if many:
                    return None
                return result.all() if result.returns_rows else []

            yield execute
        return
    driver = conn.connection.dbapi_connection
    assert driver is not None
    errors = conn.dialect.loaded_dbapi.Error
    with file_lock(conn.engine.url.database):
        cursor = driver.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")

            def raw(sql: str, params: Any, many: bool) -> Any:
                if many:
                    execute_many(cursor, sql, params)
                    return None
                return cursor.execute(sql, params).fetchall()

            try:
                yield raw
            except BaseException:
                driver.rollback()
                raise
            driver.commit()
        except errors as exc:
            with contextlib.suppress(errors):
                driver.rollback()
            raise StoreError(f"index write failed: {exc}") from exc
        finally:
            cursor.close()


ROWS_PER_INSERT = 64  # rows in one multi-row INSERT at most (64 x 35 values)
_multi_row: dict[str, tuple[str, str, str] | None] = {}


def execute_many(cursor: Any, sql: str, rows: list[Any]) -> None:
    """executemany on the SQLite driver, an INSERT ... VALUES as one statement
    of many rows.

    An INSERT run once per row pays SQLite's statement start and end for each
    (reset, a statement journal, VdbeHalt) and the driver's per-row loop;
    one statement of 8 rows does it once. Rows go in in the same order, so
    they get the same ids as one at a time.
    """
    if sql in _multi_row:
        parts = _multi_row[sql]
    else:
        parts = _multi_row[sql] = split_values(sql)
    if parts is None or len(rows) < 2 or type(rows[0]) is not tuple:
        cursor.executemany(sql, rows)
        return
    head, group, tail = parts
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        cursor.execute(rows_sql(head, group, tail, len(chunk)),
                       list(chain.from_iterable(chunk)))


@functools.cache
def rows_sql(head: str, group: str, tail: str, count: int) -> str:
    return head + ", ".join([group] * count) + tail


def split_values(sql: str) -> tuple[str, str, str] | None:
    """(before, "(?, ?, ...)", after) of a one-row INSERT ... VALUES; None otherwise."""
    if not sql.startswith("INSERT ") or sql.count(" VALUES (") != 1:
        return None
    start = sql.index(" VALUES (") + len(" VALUES ")
    end = sql.index(")", start) + 1
    group = sql[start:end]
    if group.strip("(?, )"):
        return None  # anything but positional parameters
    return sql[:start], group, sql[end:]
