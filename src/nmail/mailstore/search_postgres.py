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


# Each row's message and folder, looked up by key: a LATERAL subquery with a
# LIMIT is run per row (without it the planner pulled it up and, with stale
# statistics, merge-joined every message of the account: 250 ms).
_ROW = ("CROSS JOIN LATERAL (SELECT m.folder_id, f.name, m.uid, m.id FROM messages m "
        "JOIN folders f ON f.id = m.folder_id WHERE m.id = {}.message_id "
        "AND f.account_id = :account LIMIT 1) x")


def pg_find(conn: Connection, account_id: int, expression: str, folder_id: int | None,
            limit: int, offset: int) -> list[Any]:
    """(folder_id, folder name, uid, message id) rows, newest arrival first."""
    # Fixed fragments only; values are parameters. Each step is one statement
    # (on a loaded machine every round trip waits for a time slice).
    scope = "account_id = :scope" if folder_id is None else "folder_id = :scope"
    params: dict[str, Any] = {"scope": account_id if folder_id is None else folder_id,
                              "account": account_id, "q": expression,
                              "window": PG_WINDOW, "want": offset + limit}
    rows = list(conn.execute(text(
        "SELECT x.* FROM (SELECT message_id, terms FROM message_search "  # noqa: S608
        f"WHERE {scope} ORDER BY message_id DESC LIMIT :window) w {_ROW.format('w')} "
        "WHERE w.terms @@ CAST(:q AS tsquery) ORDER BY w.message_id DESC LIMIT :want"),
        params).all())
    if len(rows) == params["want"]:
        return rows[offset:]
    # Where the window ends (None: it held the whole scope); and from here on
    # only the GIN index may answer (no scan, no index walk), for this
    # transaction only.
    floor = conn.execute(text(
        f"SELECT (SELECT message_id FROM message_search WHERE {scope} "  # noqa: S608
        "ORDER BY message_id DESC OFFSET :skip LIMIT 1), "
        "set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)"),
        {**params, "skip": PG_WINDOW - 1}).scalar()
    if floor is None:
        return rows[offset:]
    params.update(floor=int(floor), want=params["want"] - len(rows), few=PG_FEW + 1)
    # Up to PG_FEW matches of any account from the GIN index; those of the
    # scope below the window, and how many it gave (the last row).
    found = conn.execute(text(
        "WITH g AS MATERIALIZED (SELECT message_id, account_id, folder_id "  # noqa: S608
        "FROM message_search WHERE terms @@ CAST(:q AS tsquery) LIMIT :few) "
        f"(SELECT x.*, 0 FROM g {_ROW.format('g')} WHERE g.{scope} AND g.message_id < :floor "
        "ORDER BY g.message_id DESC LIMIT :want) "
        "UNION ALL SELECT NULL, NULL, NULL, NULL, count(*) FROM g"), params).all()
    if int(found[-1][4]) <= PG_FEW:
        return [*rows, *(r[:4] for r in found[:-1])][offset:]
    # Common somewhere: walk the scope's rows below the window, newest first.
    conn.execute(text("SELECT set_config('enable_indexscan', 'on', true), "
                      "set_config('enable_bitmapscan', 'off', true)"))
    rows += conn.execute(text(
        f"SELECT x.* FROM message_search s {_ROW.format('s')} "  # noqa: S608
        f"WHERE s.{scope} AND s.message_id < :floor AND s.terms @@ CAST(:q AS tsquery) "
        "ORDER BY s.message_id DESC LIMIT :want"), params).all()
    return rows[offset:]
