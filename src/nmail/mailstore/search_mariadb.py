"""Search on MariaDB: the scope's newest rows by substring first, MATCH on one rare term after.

InnoDB's FULLTEXT computes a MATCH's whole result before any ORDER BY or
LIMIT, at ~60-100 µs a posting: measured at 100,000 messages, one common
term (90% of messages) took 5-7 s, a term in 8% 0.8 s, and a phrase holding
a common bigram 3.5 s (it re-reads documents to place the phrase), for a
page of 50. A rare term costs under 20 ms. So MATCH is only given one term
that looks rare, and everything else is checked with LOCATE(BINARY ...) on
the stored terms, which have a space at either end (search_sql.terms_value):
' zbmeet' finds a term starting with it, ' zb회의 zb의록 ' the phrase
(binary: terms are case-folded already, and the collation's compare cost
3x more). A check costs ~3-6 µs a row:

1. the scope's newest MY_WINDOW rows, walked newest first through
   (account_id, message_id) or (folder_id, message_id) (migration 0014),
   stopping at the page: a common word is done after a few dozen rows;
2. otherwise each query term is counted in that window (one pass), and the
   one seen least is given to MATCH, below the window, with the LOCATE
   checks for the rest, unless its count says MATCH would read more
   postings than walking on below the window would read rows: then
   3. the walk goes on below the window to the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from nmail.mailstore.search_terms import MARKS, Word

MY_WINDOW = 1_000  # newest rows of the scope checked before MATCH
MY_SAMPLE = 250  # newest rows in which each term of a query is counted
POSTING_COST = 15  # a MATCH posting costs about this many LOCATE-checked rows


def _needle(params: dict[str, Any], value: str) -> str:
    name = f"n{len(params)}"
    params[name] = value
    return f"LOCATE(BINARY :{name}, s.terms) > 0"


def _condition(words: Sequence[Word], fields: Sequence[str], params: dict[str, Any]) -> str:
    """LOCATE tests for every word in any of `fields`."""
    groups = []
    for w in words:
        tests = [_needle(params, " " + w.marked(f)[0] if w.prefix
                         else " " + " ".join(w.marked(f)) + " ") for f in fields]
        test = "(" + " OR ".join(tests) + ")"
        if len(fields) > 1:
            # Each term unmarked first (the word's in no field without them):
            # a row without one is turned away by one LOCATE per term rather
            # than one per field, and a LOCATE that finds stops there.
            ahead = [_needle(params, t if w.prefix else t + " ") for t in w.terms]
            test = "(" + " AND ".join([*ahead, test]) + ")"
        groups.append(test)
    return " AND ".join(groups)


def _hits(source: str, where: str) -> str:
    """The rows of index rows `source` (as s) matching `where`, newest first, up to :want.

    Messages by key, then folders: left to itself, MariaDB read every message
    of the account's folders through (folder_id, uid) (40-90 ms at 100,000).
    """
    return (f"SELECT m.folder_id, f.name, m.uid, m.id FROM {source} "  # noqa: S608
            "STRAIGHT_JOIN messages m FORCE INDEX (PRIMARY) ON m.id = s.message_id "
            "STRAIGHT_JOIN folders f ON f.id = m.folder_id "
            f"WHERE {where} AND f.account_id = :account "
            "ORDER BY s.message_id DESC LIMIT :want")


def mariadb_find(conn: Connection, account_id: int, words: Sequence[Word],
                 fields: Sequence[str], folder_id: int | None, limit: int,
                 offset: int) -> list[Any]:
    """(folder_id, folder name, uid, message id) rows, newest arrival first."""
    # Fixed fragments only; values are parameters. Each step is one statement
    # (on a loaded machine every round trip waits for a time slice).
    if folder_id is not None:
        scope, index = "folder_id = :scope", "ix_message_search_folder"
    else:
        scope, index = "account_id = :scope", "ix_message_search_account"
    walk = f"message_search s FORCE INDEX ({index})"
    params: dict[str, Any] = {"scope": account_id if folder_id is None else folder_id,
                              "account": account_id, "want": offset + limit}
    nth = (f"(SELECT message_id FROM message_search FORCE INDEX ({index}) "  # noqa: S608
           f"WHERE {scope} ORDER BY message_id DESC LIMIT 1 OFFSET {{}})")
    # Where the window and the sample end (None: the scope is smaller), and the
    # highest id (standing for the FULLTEXT index's rows, every account's). A
    # constant for the walk's range: as a subquery in it, MariaDB walked every
    # row of the account (3-5 s for a rare word).
    floor, sample_floor, top = conn.execute(text(
        f"SELECT {nth.format(':window')}, {nth.format(':sample')}, "  # noqa: S608
        "(SELECT MAX(message_id) FROM message_search)"),
        {**params, "window": MY_WINDOW - 1, "sample": MY_SAMPLE - 1}).one()
    condition = _condition(words, fields, params)
    rows = list(conn.execute(text(_hits(
        walk, f"s.{scope} AND s.message_id >= :window_floor AND {condition}")),
        {**params, "window_floor": int(floor or 0)}).all())
    if len(rows) == params["want"] or floor is None:  # a page, or the whole scope seen
        return rows[offset:]
    params.update(floor=int(floor), sample_floor=int(sample_floor or 0),
                  want=params["want"] - len(rows))
    below = f"s.{scope} AND s.message_id < :floor AND {condition}"
    if _match_is_cheaper(conn, f"{walk} WHERE s.{scope}", words, fields, params, len(rows),
                         int(top or 0)):
        rows += conn.execute(text(_hits(
            "message_search s", f"MATCH (s.terms) AGAINST (:q IN BOOLEAN MODE) AND {below}")),
            params).all()
    else:
        rows += conn.execute(text(_hits(walk, below)), params).all()
    return rows[offset:]


def _match_is_cheaper(conn: Connection, walk: str, words: Sequence[Word],
                      fields: Sequence[str], params: dict[str, Any], seen: int,
                      top: int) -> bool:
    """Whether MATCH on the query's rarest term beats walking on below the window.

    Sets params['q'] to that MATCH. `seen`: the query's matches in the window;
    `top`: the highest message id.
    """
    # Every term of the query, counted in the newest MY_SAMPLE rows (a term
    # ends at a space unless it is a prefix): the fewest is MATCH's.
    candidates = [(t, w.prefix) for w in words for t in dict.fromkeys(w.terms)]
    rate = [seen / MY_WINDOW]
    if len(candidates) > 1:
        sums = ", ".join(
            f"SUM({_needle(params, t if prefix else t + ' ')})" for t, prefix in candidates)
        row = conn.execute(text(f"SELECT {sums} FROM {walk} "  # noqa: S608
                                "AND s.message_id >= :sample_floor"), params).one()
        rate = [int(c or 0) / MY_SAMPLE for c in row]
    best = min(range(len(candidates)), key=lambda i: rate[i])
    term, prefix = candidates[best]
    params["q"] = "+(" + " ".join(
        MARKS[f] + term + ("*" if prefix else "") for f in fields) + ")"
    rows_to_walk = params["want"] * MY_WINDOW / seen if seen else float("inf")
    return rate[best] * top * POSTING_COST <= rows_to_walk
