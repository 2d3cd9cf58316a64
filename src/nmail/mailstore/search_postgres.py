"""Search on PostgreSQL: the scope's newest rows first, then the GIN index.

A GIN index cannot give its matches in id order: for a common word it
builds a bitmap of every match first (measured at 100,000 messages: 20 ms
for a 90% word before a single row is read), and a phrase or prefix match
then rechecks each row's tsvector. But a common word's newest matches are
among the newest messages, and checking one tsvector costs ~2-8 µs (cached
or read), so the plan is made here, step by step:

1. the scope's newest PG_WINDOW index rows, walked newest first through
   (account_id, message_id) or (folder_id, message_id) (migration 0014),
   each checked with `@@`, stopping at the page: a common word is done
   after a few dozen rows, a rare one pays the whole window (~4-8 ms);
2. below the window, the GIN index alone (the planner, left to itself, took
   1.3 s for a rare word checking every row newest first), up to PG_FEW
   matches of any account, kept if in the scope: a rare word ends here;
3. past PG_FEW (a word rare in recent mail but common before, or common in
   other accounts), the walk of step 1 goes on below the window to the page.

Measured at 100,000 messages: see bench/search.py and docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

PG_WINDOW = 1_000  # newest index rows of the scope checked before the GIN index
PG_FEW = 5_000  # matches fetched from the GIN index at most


def pg_find(conn: Connection, account_id: int, expression: str, folder_id: int | None,
            limit: int, offset: int) -> list[Any]:
    """(folder_id, folder name, uid, message id) rows, newest arrival first."""
    want = offset + limit
    if folder_id is not None:
        owner = conn.execute(text("SELECT account_id FROM folders WHERE id = :folder"),
                             {"folder": folder_id}).scalar()
        if owner != account_id:
            return []
        # Fixed fragments only; values are parameters.
        scope = "folder_id = :scope"
        params: dict[str, Any] = {"scope": folder_id}
    else:
        scope = "account_id = :scope"
        params = {"scope": account_id}
    params.update(q=expression, window=PG_WINDOW, want=want)
    ids = [int(r[0]) for r in conn.execute(text(
        "SELECT message_id FROM (SELECT message_id, terms FROM message_search "  # noqa: S608
        f"WHERE {scope} ORDER BY message_id DESC LIMIT :window) w "
        "WHERE terms @@ CAST(:q AS tsquery) ORDER BY message_id DESC LIMIT :want"), params)]
    if len(ids) < want:
        floor = conn.execute(text(
            f"SELECT message_id FROM message_search WHERE {scope} "  # noqa: S608
            "ORDER BY message_id DESC OFFSET :skip LIMIT 1"),
            {**params, "skip": PG_WINDOW - 1}).scalar()
        if floor is not None:  # more rows than the window: look below it
            ids += _below(conn, scope, {**params, "floor": int(floor), "need": want - len(ids)},
                          account_id, folder_id)
    ids = ids[offset:]
    if not ids:
        return []
    return list(conn.execute(text(
        "SELECT m.folder_id, f.name, m.uid, m.id FROM messages m "
        "JOIN folders f ON f.id = m.folder_id WHERE m.id = ANY(:ids) ORDER BY m.id DESC"
    ), {"ids": ids}).all())


def _below(conn: Connection, scope: str, params: dict[str, Any], account_id: int,
           folder_id: int | None) -> list[int]:
    """Up to params['need'] matches of the scope below params['floor'], newest first."""
    floor = params["floor"]
    # Only the GIN index may answer (no scan, no index walk), for this
    # transaction only; scope and floor are applied to what it gives.
    conn.execute(text("SELECT set_config('enable_seqscan', 'off', true), "
                      "set_config('enable_indexscan', 'off', true)"))
    hits = conn.execute(text(
        "SELECT message_id, account_id, folder_id FROM message_search "
        "WHERE terms @@ CAST(:q AS tsquery) LIMIT :few"), {**params, "few": PG_FEW + 1}).all()
    if len(hits) <= PG_FEW:
        found = sorted((int(r[0]) for r in hits
                        if int(r[0]) < floor and int(r[1]) == account_id
                        and (folder_id is None or int(r[2]) == folder_id)), reverse=True)
        return found[:params["need"]]
    # Common somewhere: walk the scope's rows below the window, newest first.
    conn.execute(text("SELECT set_config('enable_indexscan', 'on', true), "
                      "set_config('enable_bitmapscan', 'off', true)"))
    return [int(r[0]) for r in conn.execute(text(
        f"SELECT message_id FROM message_search WHERE {scope} "  # noqa: S608
        "AND message_id < :floor AND terms @@ CAST(:q AS tsquery) "
        "ORDER BY message_id DESC LIMIT :need"), params)]
