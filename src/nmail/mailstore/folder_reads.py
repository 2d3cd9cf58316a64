"""The read queries of a FolderView: pages, summaries, changes since a MODSEQ.

Every page is one query walking one index: `(folder_id, <sort key>, id)` in
either direction (tables.py), LIMIT/OFFSET on top, so the first page of a
100,000-message folder reads 50 index entries and 50 rows. Ties break on
the row id (arrival order), the same way in both directions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from nmail.db.tables import folders, message_tombstones, messages
from nmail.mailstore.model import ChangeSet, MessageRef, MessageRow, NoSuchFolder, SortKey
from nmail.mailstore.names import parse_flags, uidl_of
from nmail.mailstore.op_rows import rows_in_ranges

ROW_COLUMNS = (  # what a MessageRow is made of (message_row)
    messages.c.uid, messages.c.modseq, messages.c.size, messages.c.flags,
    messages.c.internal_date, messages.c.date, messages.c.from_name, messages.c.from_addr,
    messages.c.to_addrs, messages.c.cc_addrs, messages.c.subject, messages.c.message_id,
    messages.c.in_reply_to, messages.c.thread_id, messages.c.has_attachments,
    messages.c.preview,
)
_SORT_COLUMNS = {
    "date": messages.c.date,
    "arrival": messages.c.internal_date,
    "from": messages.c.from_sort,
    "subject": messages.c.subject_sort,
    "size": messages.c.size,
}


def message_row(r: Any) -> MessageRow:
    """A MessageRow from a result row of exactly ROW_COLUMNS, in that order.

    Unpacked by position: by name (`r.uid`...) it cost ~7 µs a row here, a
    third of a 50-row page's SQL work; by position ~2.
    """
    (uid, modseq, size, flags, internal_date, date, from_name, from_addr, to_addrs, cc_addrs,
     subject, message_id, in_reply_to, thread_id, has_attachments, preview) = r
    return MessageRow(
        uid=int(uid), modseq=int(modseq), size=int(size), flags=parse_flags(flags),
        internal_date=int(internal_date), date=int(date), from_name=from_name,
        from_addr=from_addr, to_addrs=to_addrs, cc_addrs=cc_addrs, subject=subject,
        message_id=message_id, in_reply_to=in_reply_to, thread_id=thread_id,
        has_attachments=bool(has_attachments), preview=preview,
    )


def _order(sort: SortKey, descending: bool) -> tuple[Any, Any]:
    key = _SORT_COLUMNS[sort]
    return (key.desc(), messages.c.id.desc()) if descending else (key.asc(), messages.c.id.asc())


def page_query(folder_id: int, sort: SortKey, descending: bool, offset: int,
               limit: int) -> Select[Any]:
    """The page query: one walk of the sort's index."""
    return (select(*ROW_COLUMNS).where(messages.c.folder_id == folder_id)
            .order_by(*_order(sort, descending)).limit(limit).offset(offset))


@functools.cache
def _page_statement(sort: SortKey, descending: bool) -> Select[Any]:
    """page_query with the folder, limit and offset as parameters, built once per
    order: building and keying the statement anew for each page cost more than
    SQLite's own work (a 50-row page's execute 360-570 µs of CPU here, 200 with
    the statement kept)."""
    return (select(*ROW_COLUMNS).where(messages.c.folder_id == bindparam("folder_id"))
            .order_by(*_order(sort, descending))
            .limit(bindparam("limit")).offset(bindparam("offset")))


def page(conn: Connection, folder_id: int, sort: SortKey, descending: bool, offset: int,
         limit: int) -> list[MessageRow]:
    """One page of the folder in `sort` order."""
    rows = conn.execute(_page_statement(sort, descending),
                        {"folder_id": folder_id, "limit": limit, "offset": offset}).all()
    return [message_row(r) for r in rows]


def usage(conn: Connection, account_id: int) -> int:
    """Bytes stored for the account: the sum of its folders' kept sizes."""
    return int(conn.execute(
        select(func.coalesce(func.sum(folders.c.total_size), 0))
        .where(folders.c.account_id == account_id)).scalar_one())


def usage_by_account(conn: Connection, account_ids: Sequence[int] | None) -> dict[int, int]:
    """Bytes stored per account (kept folder sizes) in one query: of `account_ids`, or of
    every account (None: no IN list, which SQLite bounds at 32,766 values)."""
    query = (select(folders.c.account_id, func.coalesce(func.sum(folders.c.total_size), 0))
             .group_by(folders.c.account_id))
    if account_ids is not None:
        if not account_ids:
            return {}
        query = query.where(folders.c.account_id.in_(list(account_ids)))
    rows = conn.execute(query).all()
    return {int(account): int(total) for account, total in rows}


def summaries(conn: Connection, folder_id: int,
              ranges: Sequence[tuple[int, int]]) -> list[MessageRow]:
    """The rows of the UIDs in `ranges` that exist, ascending UID."""
    return [message_row(r) for r in rows_in_ranges(conn, folder_id, ranges, ROW_COLUMNS)]


def uids(conn: Connection, folder_id: int) -> list[int]:
    """Every UID of the folder, ascending (sequence number n is uids[n - 1])."""
    return [int(u) for (u,) in conn.execute(
        select(messages.c.uid).where(messages.c.folder_id == folder_id).order_by(messages.c.uid))]


def refs(conn: Connection, folder_id: int) -> list[MessageRef]:
    rows = conn.execute(
        select(messages.c.uid, messages.c.size, messages.c.filename, messages.c.flags,
               messages.c.dot_lines)
        .where(messages.c.folder_id == folder_id).order_by(messages.c.uid)
    ).all()
    # dot_lines NULL (a row from before it was kept): not known, so stuffed.
    return [MessageRef(int(uid), int(size), uidl_of(filename), parse_flags(flags),
                       dots is None or bool(dots))
            for uid, size, filename, flags, dots in rows]


def location(conn: Connection, folder_id: int, uid: int) -> tuple[str, bool, str] | None:
    """(filename, in_new, flags) of one message, None when there is no such UID."""
    row = conn.execute(
        select(messages.c.filename, messages.c.in_new, messages.c.flags).where(
            messages.c.folder_id == folder_id, messages.c.uid == uid)
    ).first()
    return None if row is None else (str(row.filename), bool(row.in_new), str(row.flags))


def changes_since(conn: Connection, folder_id: int, modseq: int) -> ChangeSet:
    """New UIDs, changed flags and vanished UIDs after `modseq` (one consistent read)."""
    folder = conn.execute(
        select(folders.c.highest_modseq, folders.c.next_uid).where(folders.c.id == folder_id)
    ).first()
    if folder is None:
        raise NoSuchFolder(f"folder {folder_id} no longer exists")
    rows = conn.execute(
        select(messages.c.uid, messages.c.modseq, messages.c.created_modseq, messages.c.flags)
        .where(messages.c.folder_id == folder_id, messages.c.modseq > modseq)
        .order_by(messages.c.uid)
    ).all()
    vanished = conn.execute(
        select(message_tombstones.c.uid).where(
            message_tombstones.c.folder_id == folder_id, message_tombstones.c.modseq > modseq)
        .order_by(message_tombstones.c.uid)
    ).all()
    # UID 0 records the highest MODSEQ whose tombstones were pruned (op_expunge).
    complete = not vanished or int(vanished[0][0]) != 0
    new = tuple(int(r.uid) for r in rows if int(r.created_modseq) > modseq)
    changed = tuple((int(r.uid), int(r.modseq), parse_flags(r.flags)) for r in rows
                    if int(r.created_modseq) <= modseq)
    return ChangeSet(int(folder.highest_modseq), int(folder.next_uid), new, changed,
                     tuple(int(u) for (u,) in vanished if u), complete)
