"""Read queries on the index: folders, POP3/IMAP references, webmail listings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, func, select

from nmail.db.tables import folders, messages
from nmail.mailstore.model import FolderInfo, MessageRef, MessageRow, StoreError
from nmail.mailstore.names import parse_flags, uidl_of

_FOLDER_COLUMNS = (
    folders.c.id, folders.c.name, folders.c.uidvalidity, folders.c.next_uid,
    folders.c.highest_modseq, folders.c.message_count, folders.c.total_size,
)
_ROW_COLUMNS = (
    messages.c.uid, messages.c.modseq, messages.c.size, messages.c.flags,
    messages.c.internal_date, messages.c.date, messages.c.from_name, messages.c.from_addr,
    messages.c.to_addrs, messages.c.cc_addrs, messages.c.subject, messages.c.message_id,
    messages.c.in_reply_to, messages.c.thread_id, messages.c.has_attachments,
    messages.c.preview,
)


def _folder_info(row: Any) -> FolderInfo:
    return FolderInfo(
        id=int(row.id), name=row.name, uidvalidity=int(row.uidvalidity),
        next_uid=int(row.next_uid), highest_modseq=int(row.highest_modseq),
        message_count=int(row.message_count), total_size=int(row.total_size),
    )


def folder_info(conn: Connection, account_id: int, name: str) -> FolderInfo:
    row = conn.execute(
        select(*_FOLDER_COLUMNS).where(
            folders.c.account_id == account_id, folders.c.name == name
        )
    ).first()
    if row is None:
        raise StoreError(f"no folder {name!r} for account {account_id}")
    return _folder_info(row)


def folder_infos(conn: Connection, account_id: int) -> list[FolderInfo]:
    rows = conn.execute(
        select(*_FOLDER_COLUMNS).where(folders.c.account_id == account_id).order_by(folders.c.id)
    ).all()
    return [_folder_info(row) for row in rows]


def usage(conn: Connection, account_id: int) -> int:
    total = conn.execute(
        select(func.coalesce(func.sum(folders.c.total_size), 0)).where(
            folders.c.account_id == account_id
        )
    ).scalar_one()
    return int(total)


def _folder_id_subquery(account_id: int, name: str) -> Any:
    return (
        select(folders.c.id)
        .where(folders.c.account_id == account_id, folders.c.name == name)
        .scalar_subquery()
    )


def _require_folder(conn: Connection, account_id: int, name: str) -> None:
    found = conn.execute(
        select(folders.c.id).where(folders.c.account_id == account_id, folders.c.name == name)
    ).first()
    if found is None:
        raise StoreError(f"no folder {name!r} for account {account_id}")


def refs(conn: Connection, account_id: int, name: str) -> list[MessageRef]:
    rows = conn.execute(
        select(messages.c.uid, messages.c.size, messages.c.filename, messages.c.flags)
        .where(messages.c.folder_id == _folder_id_subquery(account_id, name))
        .order_by(messages.c.uid)
    ).all()
    if not rows:
        _require_folder(conn, account_id, name)
    return [
        MessageRef(int(uid), int(size), uidl_of(filename), parse_flags(flags))
        for uid, size, filename, flags in rows
    ]


def listing_query(account_id: int, name: str, limit: int, offset: int) -> Select[Any]:
    """The page query: the folder's rows by date, newest first."""
    # id breaks ties: SQLite and InnoDB keep the primary key in every index, so
    # (folder_id, date, id) is still read straight from ix_messages_folder_date.
    return (
        select(*_ROW_COLUMNS)
        .where(messages.c.folder_id == _folder_id_subquery(account_id, name))
        .order_by(messages.c.date.desc(), messages.c.id.desc())
        .limit(limit)
        .offset(offset)
    )


def list_messages(
    conn: Connection, account_id: int, name: str, limit: int, offset: int
) -> list[MessageRow]:
    """Newest first: one query walking ix_messages_folder_date backwards."""
    if limit < 0 or offset < 0:
        raise StoreError("limit and offset must not be negative")
    rows = conn.execute(listing_query(account_id, name, limit, offset)).all()
    if not rows:
        _require_folder(conn, account_id, name)
    return [
        MessageRow(
            uid=int(r.uid), modseq=int(r.modseq), size=int(r.size), flags=parse_flags(r.flags),
            internal_date=int(r.internal_date), date=int(r.date), from_name=r.from_name,
            from_addr=r.from_addr, to_addrs=r.to_addrs, cc_addrs=r.cc_addrs,
            subject=r.subject, message_id=r.message_id, in_reply_to=r.in_reply_to,
            thread_id=r.thread_id, has_attachments=bool(r.has_attachments), preview=r.preview,
        )
        for r in rows
    ]


def message_location(
    conn: Connection, account_id: int, name: str, uid: int
) -> tuple[str, bool, str] | None:
    """(filename, in_new, flags) of one message, None when there is no such UID."""
    row = conn.execute(
        select(messages.c.filename, messages.c.in_new, messages.c.flags).where(
            messages.c.folder_id == _folder_id_subquery(account_id, name),
            messages.c.uid == uid,
        )
    ).first()
    if row is None:
        _require_folder(conn, account_id, name)
        return None
    return str(row.filename), bool(row.in_new), str(row.flags)


def message_rows_by_uid(
    conn: Connection, folder_id: int, uids: Sequence[int]
) -> list[Any]:
    """id, uid, filename, in_new, flags, size of the given UIDs (chunked IN lists)."""
    out: list[Any] = []
    for start in range(0, len(uids), 500):
        chunk = uids[start:start + 500]
        out.extend(
            conn.execute(
                select(
                    messages.c.id, messages.c.uid, messages.c.filename, messages.c.in_new,
                    messages.c.flags, messages.c.size,
                )
                .where(messages.c.folder_id == folder_id, messages.c.uid.in_(chunk))
                .order_by(messages.c.uid)
            ).all()
        )
    return out
