"""What the write operations share: the locked folder row and the rows of a UID set.

Every operation locks its folder rows first (FOR UPDATE on the servers,
BEGIN IMMEDIATE's lock on SQLite), in id order when it takes two, and checks
that each belongs to the operation's account: a folder id from a stale
FolderView (the folder was deleted, its id reused elsewhere) ends in
NoSuchFolder, never in a change to someone else's mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from nmail.db.tables import accounts, folders, messages
from nmail.directory.sizes import format_size
from nmail.mailstore.folder_names import disk_name
from nmail.mailstore.model import NoSuchFolder, QuotaExceeded, StoreError

RANGES_PER_QUERY = 200
FOLDER_COLUMNS = (  # what lock_folder reads
    folders.c.id, folders.c.account_id, folders.c.name, folders.c.uidvalidity,
    folders.c.next_uid, folders.c.highest_modseq, folders.c.names_modseq,
    folders.c.message_count,
    folders.c.unseen_count, folders.c.total_size,
)


def lock_folder(conn: Connection, account_id: int, folder_id: int) -> Any:
    """The folder's row, locked; NoSuchFolder unless it exists and is the account's."""
    row = conn.execute(
        select(*FOLDER_COLUMNS).where(folders.c.id == folder_id).with_for_update()
    ).first()
    if row is None or int(row.account_id) != account_id:
        raise NoSuchFolder(f"folder {folder_id} no longer exists")
    return row


def folder_path(maildir: str, name: str) -> Path:
    """A folder's directory from the account's Maildir and the folder's API name."""
    return Path(maildir + ("/" + disk_name(name) if disk_name(name) else ""))


def rows_in_ranges(
    conn: Connection, folder_id: int, ranges: Sequence[tuple[int, int]], columns: Sequence[Any]
) -> list[Any]:
    """`columns` of the folder's messages whose UID is in `ranges`, ascending UID."""
    out: list[Any] = []
    for start in range(0, len(ranges), RANGES_PER_QUERY):
        chunk = ranges[start:start + RANGES_PER_QUERY]
        out.extend(conn.execute(
            select(*columns).where(messages.c.folder_id == folder_id, uid_in_ranges(chunk))
            .order_by(messages.c.uid)
        ).all())
    return out


def uid_in_ranges(ranges: Sequence[tuple[int, int]]) -> Any:
    """The SQL condition "messages.uid is in one of `ranges`" (a UidSet's)."""
    return or_(*(
        messages.c.uid == low if low == high else and_(messages.c.uid >= low,
                                                        messages.c.uid <= high)
        for low, high in ranges
    ))


def quota_check(conn: Connection, account_id: int, adding: int, what: str) -> None:
    """QuotaExceeded when `adding` bytes would take the account over its quota."""
    quota = conn.execute(
        select(accounts.c.quota_bytes).where(accounts.c.id == account_id)
    ).scalar()
    if quota is None:
        raise StoreError(f"no account {account_id}")
    if not quota or adding <= 0:
        return
    used = int(conn.execute(
        select(func.coalesce(func.sum(folders.c.total_size), 0))
        .where(folders.c.account_id == account_id)
    ).scalar_one())
    if used + adding > int(quota):
        raise QuotaExceeded(
            f"over quota: {what} needs {format_size(adding)}, "
            f"{format_size(max(int(quota) - used, 0))} left of the {format_size(int(quota))} limit"
        )
