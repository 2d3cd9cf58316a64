"""The search index in each database's own full-text engine, fed with our terms.

One table everywhere, `message_search(message_id, account_id, folder_id,
terms)`, a row per indexed message (its foreign key drops the row with the
message: expunge, folder or account deletion), searched by each database's
engine:

- SQLite: an FTS5 table over it (external content, kept in step by
  triggers); the query is an FTS5 expression of quoted phrases, and FTS5
  walks its index newest first and stops at the page.
- PostgreSQL: `terms` is a tsvector with a GIN index, written as a tsvector
  literal (positions given, PostgreSQL's parser never runs) and matched by a
  tsquery literal with `<->` for phrases (the plan: search_postgres).
- MariaDB: `terms` is text under an InnoDB FULLTEXT index, with a space at
  either end; matched by LOCATE and by MATCH on one term (search_mariadb).

Every expression is written here from search_terms' terms, which hold only
letters and digits; quoting is still applied as if they could hold anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from nmail.mailstore.search_mariadb import mariadb_find
from nmail.mailstore.search_postgres import pg_find
from nmail.mailstore.search_terms import Word

MAX_POSITION = 16_383  # PostgreSQL keeps positions up to this


def terms_value(dialect: str, marked: Sequence[str]) -> str:
    """What `message_search.terms` holds for a message with these marked terms.

    MariaDB's has a space before and after, so search_mariadb's LOCATE finds
    ' zbmeet' and ' zb회의 zb의록 ' at either end as well.
    """
    if dialect == "mysql":
        return " " + " ".join(marked) + " "
    if dialect != "postgresql":
        return " ".join(marked)
    positions: dict[str, list[str]] = {}
    for position, term in enumerate(marked[:MAX_POSITION], start=1):
        positions.setdefault(term, []).append(str(position))
    return " ".join(f"{_pg_quote(term)}:{','.join(at)}" for term, at in positions.items())


def match_expression(dialect: str, words: Sequence[Word], fields: Sequence[str]) -> str:
    """The database's query text: every word, in any of `fields`."""
    if dialect == "sqlite":
        return " AND ".join(
            "(" + " OR ".join(_fts5_phrase(w, f) for f in fields) + ")" for w in words)
    return " & ".join(
        "(" + " | ".join(_pg_phrase(w, f) for f in fields) + ")" for w in words)


def _fts5_phrase(word: Word, field: str) -> str:
    quoted = '"' + " ".join(t.replace('"', '""') for t in word.marked(field)) + '"'
    return quoted + "*" if word.prefix else quoted


def _pg_quote(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def _pg_phrase(word: Word, field: str) -> str:
    quoted = [_pg_quote(t) for t in word.marked(field)]
    if word.prefix:
        quoted[-1] += ":*"
    return "(" + " <-> ".join(quoted) + ")"


def find(conn: Connection, account_id: int, words: Sequence[Word], fields: Sequence[str],
         folder_id: int | None, limit: int, offset: int) -> list[Any]:
    """(folder_id, folder name, uid, message id) rows, newest arrival first."""
    dialect = conn.dialect.name
    if dialect == "mysql":
        return mariadb_find(conn, account_id, words, fields, folder_id, limit, offset)
    expression = match_expression(dialect, words, fields)
    if dialect == "postgresql":
        return pg_find(conn, account_id, expression, folder_id, limit, offset)
    # FTS5 walks its index in rowid order and stops at the page.
    folder = "AND m.folder_id = :folder" if folder_id is not None else ""
    sql = (
        "SELECT m.folder_id, f.name, m.uid, m.id FROM message_fts "  # noqa: S608 (fixed)
        "JOIN messages m ON m.id = message_fts.rowid JOIN folders f ON f.id = m.folder_id "
        f"WHERE message_fts MATCH :q AND f.account_id = :account {folder} "
        "ORDER BY message_fts.rowid DESC LIMIT :limit OFFSET :offset"
    )
    params: dict[str, Any] = {"q": expression, "account": account_id, "limit": limit,
                              "offset": offset}
    if folder_id is not None:
        params["folder"] = folder_id
    return list(conn.execute(text(sql), params).all())


class SearchRow(NamedTuple):
    """One message's index row."""

    message_id: int
    account_id: int
    folder_id: int
    terms: str  # terms_value()


def insert_rows(conn: Connection, rows: Sequence[SearchRow]) -> None:
    """Add index rows; a row already there stays (another node indexed it)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        sql = ("INSERT INTO message_search (message_id, account_id, folder_id, terms) "
               "VALUES (:id, :account, :folder, CAST(:terms AS tsvector)) ON CONFLICT DO NOTHING")
    elif dialect == "mysql":
        sql = ("INSERT IGNORE INTO message_search (message_id, account_id, folder_id, terms) "
               "VALUES (:id, :account, :folder, :terms)")
    else:
        sql = ("INSERT OR IGNORE INTO message_search (message_id, account_id, folder_id, terms) "
               "VALUES (:id, :account, :folder, :terms)")
    conn.execute(text(sql), [{"id": r.message_id, "account": r.account_id,
                              "folder": r.folder_id, "terms": r.terms} for r in rows])
