"""The delivery's INSERTs on SQLite as one statement of many rows (delivery_sql.execute_many)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from nmail.mailstore import delivery_sql
from nmail.mailstore.delivery_sql import execute_many, split_values


def _table(con: sqlite3.Connection) -> None:
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, UNIQUE (a))")


@pytest.mark.parametrize("count", [1, 2, 8, 63, 64, 65, 200])
def test_rows_go_in_as_one_at_a_time_would_put_them(count: int) -> None:
    """Same rows, same ids, same order, whatever the count (chunks of ROWS_PER_INSERT)."""
    rows = [(n * 7 % 1000, f"값 {n}") for n in range(count)]
    one, many = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for con in (one, many):
        _table(con)
        con.execute("INSERT INTO t (a, b) VALUES (?, ?)", (-1, "before"))
    one.executemany("INSERT INTO t (a, b) VALUES (?, ?)", rows)
    statements: list[str] = []
    many.set_trace_callback(statements.append)
    execute_many(many.cursor(), "INSERT INTO t (a, b) VALUES (?, ?)", rows)
    many.set_trace_callback(None)
    assert many.execute("SELECT * FROM t").fetchall() == one.execute("SELECT * FROM t").fetchall()
    chunks = -(-count // delivery_sql.ROWS_PER_INSERT)
    assert len(statements) == (count if count == 1 else chunks)


def test_a_conflict_fails_the_whole_statement_and_on_conflict_clauses_stay() -> None:
    con = sqlite3.connect(":memory:")
    _table(con)
    with pytest.raises(sqlite3.IntegrityError):
        execute_many(con.cursor(), "INSERT INTO t (a, b) VALUES (?, ?)", [(1, "x"), (1, "y")])
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    sql = "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
    execute_many(con.cursor(), sql, [(1, "x"), (2, "y"), (1, "z")])
    assert con.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [(1, "z"), (2, "y")]


def test_other_statements_run_row_by_row() -> None:
    assert split_values("UPDATE t SET b = ? WHERE a = ?") is None
    assert split_values("INSERT INTO t (a, b) SELECT a, b FROM t WHERE a = ?") is None
    assert split_values("INSERT INTO t (a, b) VALUES (?, 'x')") is None
    assert split_values("INSERT INTO t (a) VALUES (?) ON CONFLICT DO NOTHING") == (
        "INSERT INTO t (a) VALUES ", "(?)", " ON CONFLICT DO NOTHING")
    con = sqlite3.connect(":memory:")
    _table(con)
    con.executemany("INSERT INTO t (a, b) VALUES (?, ?)", [(1, "x"), (2, "y")])
    named: list[Any] = [{"b": "z", "a": 1}, {"b": "w", "a": 2}]
    execute_many(con.cursor(), "UPDATE t SET b = :b WHERE a = :a", named)
    execute_many(con.cursor(), "INSERT INTO t (a, b) VALUES (:a, :b)", [{"a": 3, "b": "v"},
                                                                         {"a": 4, "b": "u"}])
    assert con.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [
        (1, "z"), (2, "w"), (3, "v"), (4, "u")]
