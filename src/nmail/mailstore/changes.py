"""Changing stored messages: flags (renames in cur/) and expunge (unlink + rows).

Both run on the writer thread under the folder's write lock. Files change
first: an expunged file is unlinked before its row goes (a crash in between
leaves a row without a file, which dbsync drops; the other order could bring
a deleted message back), and flag renames are undone if the commit fails.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from nmail.db.tables import folders, messages
from nmail.durable import fsync_dir
from nmail.mailstore.layout import UidState, read_uid_state, write_uid_state
from nmail.mailstore.listing import message_rows_by_uid
from nmail.mailstore.messagefile import locate
from nmail.mailstore.model import StoreError
from nmail.mailstore.names import disk_name, flags_to_letters, format_flags, parse_flags
from nmail.mailstore.writer import write_transaction

log = logging.getLogger(__name__)


def _lock_folder(conn: Connection, account_id: int, name: str) -> Any:
    row = conn.execute(
        select(folders.c.id, folders.c.uidvalidity, folders.c.next_uid,
               folders.c.highest_modseq)
        .where(folders.c.account_id == account_id, folders.c.name == name)
        .with_for_update()
    ).first()
    if row is None:
        raise StoreError(f"no folder {name!r} for account {account_id}")
    return row


def expunge(conn: Connection, account_id: int, name: str, folder_dir: Path,
            uids: list[int]) -> int:
    """Delete the files and rows of `uids`; returns how many messages went."""
    with write_transaction(conn):
        folder = _lock_folder(conn, account_id, name)
        rows = message_rows_by_uid(conn, int(folder.id), uids)
        if not rows:
            return 0
        touched: set[Path] = set()
        for r in rows:
            path = locate(folder_dir, r.filename, bool(r.in_new), r.flags)
            if path is None:
                continue
            try:
                os.unlink(path)
                touched.add(path.parent)
            except FileNotFoundError:
                pass
        for directory in touched:
            fsync_dir(directory)
        ids = [int(r.id) for r in rows]
        for start in range(0, len(ids), 500):
            conn.execute(delete(messages).where(messages.c.id.in_(ids[start:start + 500])))
        conn.execute(
            update(folders).where(folders.c.id == folder.id).values(
                message_count=folders.c.message_count - len(rows),
                total_size=folders.c.total_size - sum(int(r.size) for r in rows),
                highest_modseq=folders.c.highest_modseq + 1,
            )
        )
        # Record the next UID beside the files, so a rebuilt index never hands
        # out the UID of a message some client saw expunged.
        state = read_uid_state(folder_dir)
        if state is None or state.next_uid < int(folder.next_uid):
            write_uid_state(folder_dir, UidState(int(folder.uidvalidity), int(folder.next_uid)))
        return len(rows)


def set_flags(conn: Connection, account_id: int, name: str, folder_dir: Path,
              uids: list[int], add: frozenset[str], remove: frozenset[str]) -> None:
    """Add/remove flags; files move to cur/ and carry the letters of the new flags."""
    renamed: list[tuple[Path, Path]] = []
    try:
        with write_transaction(conn):
            folder = _lock_folder(conn, account_id, name)
            rows = message_rows_by_uid(conn, int(folder.id), uids)
            modseq = int(folder.highest_modseq) + 1
            updates: list[dict[str, Any]] = []
            for r in rows:
                old = parse_flags(r.flags)
                new = (old | add) - remove
                if new == old:
                    continue
                text = format_flags(new)
                src = locate(folder_dir, r.filename, bool(r.in_new), r.flags)
                if src is None:
                    continue  # gone; dbsync will drop the row
                dst = folder_dir / "cur" / disk_name(r.filename, flags_to_letters(new), False)
                if src != dst:
                    os.rename(src, dst)
                    renamed.append((dst, src))
                updates.append({"b_id": r.id, "b_flags": text, "b_modseq": modseq})
            if updates:
                conn.execute(
                    update(messages).where(messages.c.id == bindparam("b_id")).values(
                        flags=bindparam("b_flags"), in_new=False, modseq=bindparam("b_modseq"),
                    ),
                    updates,
                )
                conn.execute(
                    update(folders).where(folders.c.id == folder.id).values(
                        highest_modseq=modseq
                    )
                )
    except BaseException:
        for now_at, was_at in reversed(renamed):
            try:
                os.rename(now_at, was_at)
            except OSError:
                log.error("could not undo the flag rename of %s", now_at)
        raise
