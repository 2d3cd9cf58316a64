"""Search on MariaDB: the newest messages by substring first, then the FULLTEXT index.

InnoDB computes a MATCH's whole result before any ORDER BY or LIMIT, and
verifies phrases by reading documents: measured at 100,000 messages, a
common word took 11 s and a common Korean phrase 30 s, for a page of 50.
But a common word's newest matches are among the newest messages, so those
are tried first: the account's newest MY_WINDOW messages (1,000: a LOCATE
over a message's terms costs ~0.2 ms, so a rare word pays ~150 ms before
MATCH, where a larger window cost a second), each checked in the server
with LOCATE for the same marked terms (every stored term is
followed by a space, so " zbmeet" finds a term starting with it, and
" zb회의 zb의록 " the phrase). If they hold a page, that is the answer;
otherwise the word is rare among recent mail and MATCH, whose cost follows
its number of matches, answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from nmail.mailstore.search_terms import Word

MY_WINDOW = 1_000


def _condition(words: Sequence[Word], fields: Sequence[str],
               params: dict[str, Any]) -> str:
    """LOCATE tests on ' ' + terms + ' ' for every word in any field."""
    groups = []
    for w in words:
        tests = []
        for f in fields:
            marked = w.marked(f)
            name = f"n{len(params)}"
            params[name] = " " + marked[0] if w.prefix else " " + " ".join(marked) + " "
            tests.append(f"LOCATE(:{name}, CONCAT(' ', s.terms, ' ')) > 0")
        groups.append("(" + " OR ".join(tests) + ")")
    return " AND ".join(groups)


def mariadb_find(conn: Connection, account_id: int, words: Sequence[Word],
                 fields: Sequence[str], expression: str, folder_id: int | None,
                 limit: int, offset: int) -> list[Any]:
    """(folder_id, folder name, uid, message id) rows, newest arrival first."""
    want = offset + limit
    scope = ("folder_id = :folder" if folder_id is not None
             else "folder_id IN (SELECT id FROM folders WHERE account_id = :account)")
    params: dict[str, Any] = {"account": account_id, "folder": folder_id, "want": want,
                              "window": MY_WINDOW}
    condition = _condition(words, fields, params)
    recent = (
        "SELECT w.id FROM (SELECT id FROM messages "  # noqa: S608 (fixed fragments)
        f"WHERE {scope} ORDER BY id DESC LIMIT :window) w "
        "JOIN message_search s ON s.message_id = w.id "
        f"WHERE {condition} ORDER BY w.id DESC LIMIT :want"
    )
    rows = conn.execute(text(recent), params).all()
    window_full = _window_full(conn, scope, params)
    if len(rows) >= want or not window_full:
        ids = [int(r[0]) for r in rows]
    else:
        ids = [int(r[0]) for r in conn.execute(text(
            "SELECT s.message_id FROM message_search s JOIN messages m "  # noqa: S608
            "ON m.id = s.message_id WHERE MATCH (s.terms) AGAINST (:q IN BOOLEAN MODE) "
            f"AND m.{scope} ORDER BY s.message_id DESC LIMIT :want"
        ), {**params, "q": expression})]
    ids = ids[offset:]
    if not ids:
        return []
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    return list(conn.execute(text(
        "SELECT m.folder_id, f.name, m.uid, m.id FROM messages m "  # noqa: S608
        f"JOIN folders f ON f.id = m.folder_id WHERE m.id IN ({marks}) ORDER BY m.id DESC"
    ), {f"i{n}": value for n, value in enumerate(ids)}).all())


def _window_full(conn: Connection, scope: str, params: dict[str, Any]) -> bool:
    """Whether the account (or folder) has more messages than the window holds."""
    count = conn.execute(text(
        f"SELECT COUNT(*) FROM (SELECT id FROM messages WHERE {scope} "  # noqa: S608
        "LIMIT :beyond) x"), {**params, "beyond": MY_WINDOW + 1}).scalar()
    return int(count or 0) > MY_WINDOW
