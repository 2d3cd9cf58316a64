"""EXPUNGE of a UID set: files unlinked, rows gone, tombstones left.

Files go first (an unlinked file is flushed out of its directory before its
row goes: a crash in between leaves a row without a file, which repair
drops; the other order could bring a deleted message back). Each expunged
UID leaves a tombstone (uid, MODSEQ of the expunge) so "changes since"
reports it as vanished (QRESYNC); tombstones older than the store's
`tombstone_days` are pruned by the next expunge of the folder. The next UID
is written beside the files so a rebuilt index never reuses an expunged UID.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from nmail.db.tables import folders, message_tombstones, messages
from nmail.durable import fsync_dir
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.layout import UidState, read_uid_state, write_uid_state
from nmail.mailstore.messagefile import locate
from nmail.mailstore.names import SEEN_BIT
from nmail.mailstore.op_rows import folder_path, lock_folder, rows_in_ranges
from nmail.mailstore.operations import ExpungeMessages
from nmail.mailstore.thread_index import ThreadIndex
from nmail.mailstore.thread_sweep import forget_gone
from nmail.mailstore.write_lock import write_transaction

_COLUMNS = (messages.c.id, messages.c.uid, messages.c.filename, messages.c.in_new,
            messages.c.flags, messages.c.sysflags, messages.c.size, messages.c.thread_id)
CHUNK = 500
PRUNED_MARK = 0  # the tombstone "UID" that records how far tombstones were pruned


def expunge(conn: Connection, op: ExpungeMessages,
            now: float) -> tuple[tuple[int, ...], list[FolderChange]]:
    """Expunge the UIDs of `op` that exist; returns them (ascending) and the change."""
    with write_transaction(conn):
        folder = lock_folder(conn, op.account_id, op.folder_id)
        directory = folder_path(op.maildir, str(folder.name))
        rows = rows_in_ranges(conn, op.folder_id, op.ranges, _COLUMNS)
        if not rows:
            return (), []
        unlink_files(directory, rows)
        modseq = int(folder.highest_modseq) + 1
        remove_rows(conn, op.folder_id, rows, modseq, now)
        # A conversation whose last message this was: its links go too (thread_sweep).
        forget_gone(conn, op.account_id, (str(r.thread_id) for r in rows))
        prune_tombstones(conn, op.folder_id, int(now) - op.keep_tombstones, now)
        conn.execute(
            update(folders).where(folders.c.id == op.folder_id).values(
                message_count=folders.c.message_count - len(rows),
                unseen_count=folders.c.unseen_count - unseen_among(rows),
                total_size=folders.c.total_size - sum(int(r.size) for r in rows),
                highest_modseq=modseq,
            )
        )
        record_next_uid(directory, int(folder.uidvalidity), int(folder.next_uid))
    uids = tuple(int(r.uid) for r in rows)
    return uids, [FolderChange(op.account_id, op.folder_id, str(folder.name), modseq,
                               "expunge")]


def prune_tombstones(conn: Connection, folder_id: int, before: int, now: float) -> None:
    """Drop tombstones expunged before `before`; remember the highest MODSEQ dropped.

    The memory is a row with UID 0 (never a message's): "changes since" an
    older MODSEQ then says its list of vanished UIDs may be incomplete.
    """
    t = message_tombstones.c
    pruned = conn.execute(select(func.max(t.modseq)).where(
        t.folder_id == folder_id, t.uid > 0, t.expunged_at < before)).scalar()
    if pruned is None:
        return
    conn.execute(delete(message_tombstones).where(
        t.folder_id == folder_id, t.uid > 0, t.expunged_at < before))
    conn.execute(delete(message_tombstones).where(t.folder_id == folder_id, t.uid == 0))
    conn.execute(insert(message_tombstones).values(
        folder_id=folder_id, uid=PRUNED_MARK, modseq=int(pruned), expunged_at=int(now)))


def unlink_files(directory: Path, rows: list[Any]) -> None:
    touched: set[Path] = set()
    for r in rows:
        path = locate(directory, r.filename, bool(r.in_new), r.flags)
        if path is None:
            continue
        try:
            os.unlink(path)
            touched.add(path.parent)
        except FileNotFoundError:
            pass
    for parent in touched:
        fsync_dir(parent)


def remove_rows(conn: Connection, folder_id: int, rows: list[Any], modseq: int,
                now: float) -> None:
    """Delete the rows (each with its thread_id) and leave their tombstones (MODSEQ
    `modseq`); their conversations' rows in the folder follow."""
    ids = [int(r.id) for r in rows]
    for start in range(0, len(ids), CHUNK):
        conn.execute(delete(messages).where(messages.c.id.in_(ids[start:start + CHUNK])))
    ThreadIndex.on(conn).refresh((folder_id, str(r.thread_id)) for r in rows)
    uids = [int(r.uid) for r in rows]
    # A tombstone of the same UID can exist only after an index rebuild reused it.
    for start in range(0, len(uids), CHUNK):
        conn.execute(delete(message_tombstones).where(
            message_tombstones.c.folder_id == folder_id,
            message_tombstones.c.uid.in_(uids[start:start + CHUNK])))
    conn.execute(insert(message_tombstones), [
        {"folder_id": folder_id, "uid": uid, "modseq": modseq, "expunged_at": int(now)}
        for uid in uids
    ])


def unseen_among(rows: list[Any]) -> int:
    return sum(1 for r in rows if not int(r.sysflags) & SEEN_BIT)


def record_next_uid(directory: Path, uidvalidity: int, next_uid: int) -> None:
    state = read_uid_state(directory)
    if state is None or state.next_uid < next_uid:
        write_uid_state(directory, UidState(uidvalidity, next_uid))
