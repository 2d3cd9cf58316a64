"""Read-only index queries the webmail needs that the mailstore API lacks today.

A seam: sorted pages, unread counts and "is this folder id this account's"
are plain SELECTs on the index. When the mailbox API offers them, the
facade (web/facade.py) switches to it and this module goes. Nothing here
writes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, not_, select

from nmail.db.tables import folders, messages
from nmail.mailstore.model import FolderInfo, MessageRow
from nmail.mailstore.names import parse_flags

SORT_COLUMNS = {
    "date": messages.c.date,
    "from": messages.c.from_name,
    "subject": messages.c.subject,
    "size": messages.c.size,
}

_ROW_COLUMNS = (
    messages.c.uid, messages.c.modseq, messages.c.size, messages.c.flags,
    messages.c.internal_date, messages.c.date, messages.c.from_name, messages.c.from_addr,
    messages.c.to_addrs, messages.c.cc_addrs, messages.c.subject, messages.c.message_id,
    messages.c.in_reply_to, messages.c.thread_id, messages.c.has_attachments,
    messages.c.preview,
)


@dataclass(frozen=True, slots=True)
class FolderCounts:
    info: FolderInfo
    unseen: int


def row_of(r: object) -> MessageRow:
    g = r.__getattribute__
    return MessageRow(
        uid=int(g("uid")), modseq=int(g("modseq")), size=int(g("size")),
        flags=parse_flags(g("flags")), internal_date=int(g("internal_date")),
        date=int(g("date")), from_name=g("from_name"), from_addr=g("from_addr"),
        to_addrs=g("to_addrs"), cc_addrs=g("cc_addrs"), subject=g("subject"),
        message_id=g("message_id"), in_reply_to=g("in_reply_to"),
        thread_id=g("thread_id"), has_attachments=bool(g("has_attachments")),
        preview=g("preview"),
    )


def folder_of(conn: Connection, account_id: int, folder_id: int) -> FolderInfo | None:
    """The folder when it belongs to this account, else None (callers answer 404)."""
    row = conn.execute(
        select(folders).where(folders.c.id == folder_id, folders.c.account_id == account_id)
    ).first()
    if row is None:
        return None
    return FolderInfo(
        id=int(row.id), name=row.name, uidvalidity=int(row.uidvalidity),
        next_uid=int(row.next_uid), highest_modseq=int(row.highest_modseq),
        message_count=int(row.message_count), total_size=int(row.total_size),
    )


def page(conn: Connection, folder_id: int, sort: str, descending: bool,
         limit: int, offset: int) -> list[MessageRow]:
    """One page of a folder in the asked order (uid breaks ties, newest first)."""
    column = SORT_COLUMNS.get(sort, messages.c.date)
    order = (column.desc(), messages.c.uid.desc()) if descending else (
        column.asc(), messages.c.uid.asc())
    rows = conn.execute(
        select(*_ROW_COLUMNS).where(messages.c.folder_id == folder_id)
        .order_by(*order).limit(limit).offset(offset)
    ).all()
    return [row_of(r) for r in rows]


def rows_by_uid(conn: Connection, folder_id: int, uids: list[int]) -> list[MessageRow]:
    out: list[MessageRow] = []
    for start in range(0, len(uids), 500):
        chunk = uids[start:start + 500]
        out.extend(row_of(r) for r in conn.execute(
            select(*_ROW_COLUMNS).where(messages.c.folder_id == folder_id,
                                        messages.c.uid.in_(chunk))
        ).all())
    return out


def thread_rows(conn: Connection, folder_id: int, thread_id: str) -> list[MessageRow]:
    rows = conn.execute(
        select(*_ROW_COLUMNS).where(messages.c.folder_id == folder_id,
                                    messages.c.thread_id == thread_id)
        .order_by(messages.c.date.asc()).limit(500)
    ).all()
    return [row_of(r) for r in rows]


class UnseenCounts:
    """Unread counts, recounted only when a folder's highest MODSEQ moved.

    Every delivery, flag change and expunge bumps the folder's MODSEQ, so a
    cached count with the same MODSEQ is exact, and the folder tree costs
    one SELECT on `folders` per page.
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def counts(self, conn: Connection, account_id: int) -> list[FolderCounts]:
        rows = conn.execute(
            select(folders).where(folders.c.account_id == account_id).order_by(folders.c.id)
        ).all()
        out = []
        for row in rows:
            info = FolderInfo(
                id=int(row.id), name=row.name, uidvalidity=int(row.uidvalidity),
                next_uid=int(row.next_uid), highest_modseq=int(row.highest_modseq),
                message_count=int(row.message_count), total_size=int(row.total_size),
            )
            with self._lock:
                cached = self._cache.get(info.id)
            if cached is not None and cached[0] == info.highest_modseq:
                unseen = cached[1]
            else:
                unseen = int(conn.execute(
                    select(func.count()).select_from(messages).where(and_(
                        messages.c.folder_id == info.id,
                        not_(messages.c.flags.like("%\\Seen%")),
                    ))
                ).scalar_one())
                with self._lock:
                    self._cache[info.id] = (info.highest_modseq, unseen)
            out.append(FolderCounts(info, unseen))
        return out
