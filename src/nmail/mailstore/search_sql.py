"""The search index in each database's own full-text engine, fed with our terms.

One table everywhere, `message_search(message_id, terms)`, a row per
indexed message (its foreign key drops the row with the message: expunge,
folder or account deletion), searched by each database's engine:

- SQLite: an FTS5 table over it (external content, kept in step by
  triggers); the query is an FTS5 expression of quoted phrases.
- PostgreSQL: `terms` is a tsvector with a GIN index, written as a tsvector
  literal (positions given, PostgreSQL's parser never runs) and matched by a
  tsquery literal with `<->` for phrases.
- MariaDB: `terms` is text under an InnoDB FULLTEXT index, matched in
  boolean mode (`+(...)`, quoted phrases).

Every expression is written here from search_terms' terms, which hold only
letters and digits; quoting is still applied as if they could hold anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from nmail.mailstore.search_mariadb import mariadb_find
from nmail.mailstore.search_terms import Word

MAX_POSITION = 16_383  # PostgreSQL keeps positions up to this


def terms_value(dialect: str, marked: Sequence[str]) -> str:
    """What `message_search.terms` holds for a message with these marked terms."""
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
    if dialect == "postgresql":
        return " & ".join(
            "(" + " | ".join(_pg_phrase(w, f) for f in fields) + ")" for w in words)
    return " ".join("+(" + " ".join(_innodb_phrase(w, f) for f in fields) + ")" for w in words)


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


def _innodb_phrase(word: Word, field: str) -> str:
    marked = [t.replace('"', "") for t in word.marked(field)]
    if word.prefix:
        return marked[0] + "*"  # prefix words are single terms
    if len(marked) == 1:
        return marked[0]
    return '"' + " ".join(marked) + '"'


# (the indexed rows joined to messages as m, the match condition, the id to order by)
_MATCH = {
    "sqlite": ("message_fts JOIN messages m ON m.id = message_fts.rowid",
               "message_fts MATCH :q", "message_fts.rowid"),
    "postgresql": ("message_search s JOIN messages m ON m.id = s.message_id",
                   "s.terms @@ CAST(:q AS tsquery)", "s.message_id"),
    "mysql": ("message_search s JOIN messages m ON m.id = s.message_id",
              "MATCH (s.terms) AGAINST (:q IN BOOLEAN MODE)", "s.message_id"),
}


def find(conn: Connection, account_id: int, words: Sequence[Word], fields: Sequence[str],
         folder_id: int | None, limit: int, offset: int) -> list[Any]:
    """(folder_id, folder name, uid, message id) rows, newest arrival first."""
    expression = match_expression(conn.dialect.name, words, fields)
    if conn.dialect.name == "postgresql":
        return _pg_find(conn, account_id, expression, folder_id, limit, offset)
    if conn.dialect.name == "mysql":
        return mariadb_find(conn, account_id, words, fields, expression, folder_id, limit,
                            offset)
    source, where, order = _MATCH[conn.dialect.name]
    folder = "AND m.folder_id = :folder" if folder_id is not None else ""
    # Only fixed fragments from _MATCH go into the text; the query is a parameter.
    sql = (
        f"SELECT m.folder_id, f.name, m.uid, m.id FROM {source} "  # noqa: S608
        "JOIN folders f ON f.id = m.folder_id "
        f"WHERE {where} AND f.account_id = :account {folder} "
        f"ORDER BY {order} DESC LIMIT :limit OFFSET :offset"
    )
    params: dict[str, Any] = {"q": expression, "account": account_id, "limit": limit,
                              "offset": offset}
    if folder_id is not None:
        params["folder"] = folder_id
    return list(conn.execute(text(sql), params).all())


PG_FEW = 5_000  # matches fetched from the GIN index at most (PostgreSQL)
PG_CHUNK_MAX = 4_000  # newest messages checked at a time when a word is common


def _pg_find(conn: Connection, account_id: int, expression: str, folder_id: int | None,
             limit: int, offset: int) -> list[Any]:
    """PostgreSQL cannot walk a GIN index in id order and guesses a tsquery's
    matches badly (left to itself it took 1.3 s for a rare word, checking
    every row newest first, and hashed all the account's messages for a
    handful of matches), so the plan is made here, step by step. The GIN
    index gives up to PG_FEW matches (a few µs each); if that was all of
    them, their rows are looked up by id. Otherwise the word is common, and
    the account's newest messages are checked in growing chunks until enough
    match (a check reads a tsvector, ~100 µs; a common word's first chunk
    is enough)."""
    want = offset + limit
    if folder_id is not None:
        scope = [folder_id]
    else:
        scope = [int(r[0]) for r in conn.execute(
            text("SELECT id FROM folders WHERE account_id = :account"),
            {"account": account_id})]
    # The GIN index, whatever the planner guesses (with a LIMIT it prefers a
    # sequential scan that reads every tsvector); for this transaction only.
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    hits = [int(r[0]) for r in conn.execute(text(
        "SELECT message_id FROM message_search WHERE terms @@ CAST(:q AS tsquery) LIMIT :few"
    ), {"q": expression, "few": PG_FEW + 1})]
    if len(hits) <= PG_FEW:
        ids = [int(r[0]) for r in conn.execute(text(
            "SELECT id FROM messages WHERE id = ANY(:ids) AND folder_id = ANY(:scope) "
            "ORDER BY id DESC LIMIT :want"), {"ids": hits, "scope": scope, "want": want})]
    else:
        ids = _pg_newest_first(conn, expression, scope, want)
    ids = ids[offset:]
    if not ids:
        return []
    return list(conn.execute(text(
        "SELECT m.folder_id, f.name, m.uid, m.id FROM messages m "
        "JOIN folders f ON f.id = m.folder_id WHERE m.id = ANY(:ids) ORDER BY m.id DESC"
    ), {"ids": ids}).all())


def _pg_newest_first(conn: Connection, expression: str, scope: list[int],
                     want: int) -> list[int]:
    newest = text("SELECT id FROM messages WHERE folder_id = ANY(:scope) AND id < :below "
                  "ORDER BY id DESC LIMIT :chunk")
    check = text("SELECT message_id FROM message_search WHERE message_id = ANY(:ids) "
                 "AND terms @@ CAST(:q AS tsquery) ORDER BY message_id DESC")
    found: list[int] = []
    below = 2**63 - 1
    size = 2 * want
    while len(found) < want:
        chunk = [int(r[0]) for r in conn.execute(
            newest, {"scope": scope, "below": below, "chunk": size})]
        if not chunk:
            break
        found.extend(int(r[0]) for r in conn.execute(check, {"ids": chunk, "q": expression}))
        below = chunk[-1]
        size = min(size * 2, PG_CHUNK_MAX)
    return found[:want]


def insert_rows(conn: Connection, rows: Sequence[tuple[int, str]]) -> None:
    """Add index rows (message id, terms value); a row already there stays (another node)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        sql = ("INSERT INTO message_search (message_id, terms) "
               "VALUES (:id, CAST(:terms AS tsvector)) ON CONFLICT DO NOTHING")
    elif dialect == "mysql":
        sql = "INSERT IGNORE INTO message_search (message_id, terms) VALUES (:id, :terms)"
    else:
        sql = "INSERT OR IGNORE INTO message_search (message_id, terms) VALUES (:id, :terms)"
    conn.execute(text(sql), [{"id": mid, "terms": terms} for mid, terms in rows])
