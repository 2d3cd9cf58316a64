"""One group commit of deliveries: UIDs, rows, renames into new/, fsync, COMMIT.

The message files are already in `tmp/`, written but not flushed by the
callers' threads. Here: flush them all at once (group commit, see
nmail.durable), then under the folders' write lock allocate UIDs, insert
rows, rename each file to its final name, flush the target directories, commit.
If anything fails the renames are undone (files go back to `tmp/`), so the
caller can retry or discard, and no file is left in new/ without a row.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from nmail.db.tables import folders, messages
from nmail.durable import fsync_dir, sync_batch
from nmail.mailstore.model import StoredMessage, StoreError
from nmail.mailstore.names import disk_name, final_filename
from nmail.mailstore.writer import write_transaction

log = logging.getLogger(__name__)


class FolderGone(StoreError):
    """A folder row disappeared (its account was deleted) while a delivery waited."""


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A message written to tmp/ (not yet flushed), waiting for its UID and row."""

    account_id: int
    folder_id: int
    folder_dir: Path
    tmp_path: Path
    base: str
    size: int
    flags_text: str
    letters: str
    in_new: bool
    internal_date: int
    columns: dict[str, Any]  # summary columns (indexrow.summary_columns)


_update_folder = (
    update(folders)
    .where(folders.c.id == bindparam("b_id"))
    .values(
        next_uid=bindparam("b_next_uid"),
        highest_modseq=bindparam("b_modseq"),
        message_count=folders.c.message_count + bindparam("b_count"),
        total_size=folders.c.total_size + bindparam("b_size"),
    )
)


def deliver_batch(conn: Connection, items: list[PreparedMessage]) -> list[StoredMessage]:
    """Index and publish `items` all together, or raise leaving them in tmp/."""
    renamed: list[tuple[Path, Path]] = []
    sync_batch(files=[item.tmp_path for item in items])
    try:
        with write_transaction(conn):
            stored, moves = _index(conn, items)
            targets: set[Path] = set()
            for src, dst in moves:
                os.rename(src, dst)
                renamed.append((dst, src))
                targets.add(dst.parent)
            sync_batch(directories=targets)
        return stored
    except BaseException:
        _undo(renamed)
        raise


def _index(
    conn: Connection, items: list[PreparedMessage]
) -> tuple[list[StoredMessage], list[tuple[Path, Path]]]:
    folder_ids = sorted({item.folder_id for item in items})
    # Locks in id order, so two nodes delivering to the same folders cannot deadlock.
    locked = conn.execute(
        select(folders.c.id, folders.c.next_uid, folders.c.highest_modseq)
        .where(folders.c.id.in_(folder_ids))
        .order_by(folders.c.id)
        .with_for_update()
    ).all()
    state: dict[int, list[int]] = {}
    for fid, next_uid, modseq in locked:
        state[fid] = [int(next_uid), int(modseq) + 1, 0, 0]  # next uid, modseq, count, size
    missing = [fid for fid in folder_ids if fid not in state]
    if missing:
        raise FolderGone(f"folder {missing[0]} no longer exists")
    rows: list[dict[str, Any]] = []
    stored: list[StoredMessage] = []
    moves: list[tuple[Path, Path]] = []
    for item in items:
        st = state[item.folder_id]
        uid = st[0]
        st[0] += 1
        st[2] += 1
        st[3] += item.size
        filename = final_filename(item.base, uid, item.size)
        sub = "new" if item.in_new else "cur"
        path = item.folder_dir / sub / disk_name(filename, item.letters, item.in_new)
        row = dict(item.columns)
        row.update(
            folder_id=item.folder_id, uid=uid, modseq=st[1], filename=filename,
            in_new=item.in_new, flags=item.flags_text, size=item.size,
            internal_date=item.internal_date,
        )
        rows.append(row)
        stored.append(StoredMessage(item.account_id, item.folder_id, uid, item.size,
                                    item.base, path))
        moves.append((item.tmp_path, path))
    conn.execute(messages.insert(), rows)
    conn.execute(
        _update_folder,
        [
            {"b_id": fid, "b_next_uid": st[0], "b_modseq": st[1], "b_count": st[2],
             "b_size": st[3]}
            for fid, st in state.items()
        ],
    )
    return stored, moves


def _undo(renamed: list[tuple[Path, Path]]) -> None:
    directories: set[Path] = set()
    for published, tmp in reversed(renamed):
        directories.add(published.parent)
        try:
            os.rename(published, tmp)
        except OSError:
            try:
                os.unlink(published)
            except FileNotFoundError:
                pass
            except OSError:
                log.error("could not withdraw %s after a failed delivery", published)
    for directory in directories:
        try:
            fsync_dir(directory)
        except OSError:
            log.error("could not fsync %s after a failed delivery", directory)
