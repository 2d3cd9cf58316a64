"""Full-text search of an account's mail: by from, to, subject and body text.

    hits = search(engine, account_id, "회의 kim@example.com", folder_id=None)

Every word must match (in any of the chosen fields); a word matches as a
phrase of its terms, a one-term Latin word or one Hangul syllable as a
prefix (search_terms says how text becomes terms). Results come newest
arrival first (the message row's id, which every database orders from its
index, so a common word does not mean sorting every match). The index is
filled by a follower moments after each commit (search_indexer); expunged
messages are gone from results at once, as results are joined to the
messages that exist.

Blocking (SQL): call it from a thread, never on an event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nmail.mailstore.model import StoreError
from nmail.mailstore.search_sql import find
from nmail.mailstore.search_terms import ALL_FIELDS, FIELDS, QueryError, checked_fields, parse_query

__all__ = ["ALL_FIELDS", "FIELDS", "MAX_LIMIT", "QueryError", "SearchHit", "search"]

MAX_LIMIT = 500
MAX_OFFSET = 100_000


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One matching message."""

    folder_id: int
    folder: str  # the folder's name
    uid: int
    message_id: int  # the messages row's id


def search(
    engine: Engine,
    account_id: int,
    query: str,
    *,
    folder_id: int | None = None,
    fields: Iterable[str] = ALL_FIELDS,
    limit: int = 50,
    offset: int = 0,
) -> list[SearchHit]:
    """Messages of `account_id` (in `folder_id` if given) matching every word of `query`.

    [] for a query without words. QueryError (a message for the user) for a
    query too long, an unknown field, or a limit/offset out of range;
    StoreError when the database fails.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be 1 to {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise QueryError(f"offset must be 0 to {MAX_OFFSET}")
    chosen = checked_fields(fields)
    words = parse_query(query)
    if not words:
        return []
    try:
        with engine.connect() as conn:
            rows = find(conn, account_id, words, chosen, folder_id, limit, offset)
    except SQLAlchemyError as exc:
        raise StoreError(f"could not search: {exc}") from exc
    return [SearchHit(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
