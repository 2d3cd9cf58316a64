"""Folder create, rename (subfolders follow), delete and subscribe.

Each is one transaction under the account's folder rows' lock, with its
directory work done before the commit and undone if it fails. A folder is
one Maildir++ directory whatever its depth (`.A.B` beside `.A`), so a rename
renames the folder's directory and each of its subfolders'; a delete first
moves the directories into `Maildir/nmail-deleted-<n>` (no leading dot: no
Maildir tool takes it for a folder) and removes that after the commit.
Parents are made as needed (IMAP CREATE and RENAME do). An account has at
most MAX_FOLDERS folders, parents and defaults counted: each is a directory and
a row that every webmail page reads (the folder tree), and nothing else bounded
what one session's script could create (the webmail's /folders/create).

Crash ordering (what start-up repair relies on, mailstore/folder_undo.py):
directories renamed or moved aside -> Maildir flushed -> rows changed ->
COMMIT -> moved-aside tree removed. Killed before the COMMIT, the rows are
still under the old names, and repair puts each directory back under its
row's name (matched by UIDVALIDITY): the change did not happen, and no
message of a folder whose delete was never answered is lost. Killed after
it, the rows say the change happened and repair only removes the leftover
tree. A create makes its directory, then its row: killed before the COMMIT,
repair indexes the empty directory as a folder (a create that was not
answered may have happened).
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from nmail.db.tables import folders
from nmail.durable import fsync_dir
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.folder_names import INBOX, check_name, is_within, parent_of
from nmail.mailstore.folder_sync import new_uidvalidity
from nmail.mailstore.folder_undo import DELETED_PREFIX
from nmail.mailstore.folderscan import scan_messages
from nmail.mailstore.layout import UidState, make_dirs_at, read_uid_state, write_uid_state
from nmail.mailstore.model import (
    BadFolderName,
    FolderExists,
    FolderInfo,
    FolderNotEmpty,
    FolderProtected,
    NoSuchFolder,
    QuotaExceeded,
)
from nmail.mailstore.op_rows import folder_path
from nmail.mailstore.operations import CreateFolder, DeleteFolder, RenameFolder, Subscribe
from nmail.mailstore.thread_sweep import forget_gone, threads_in_folders
from nmail.mailstore.write_lock import write_transaction

log = logging.getLogger(__name__)
MAX_FOLDERS = 1000
_trash_counter = itertools.count()


def _account_folders(conn: Connection, account_id: int) -> dict[str, Any]:
    """The account's folder rows by name, locked."""
    rows = conn.execute(
        select(folders).where(folders.c.account_id == account_id)
        .order_by(folders.c.id).with_for_update()
    ).all()
    return {str(r.name): r for r in rows}


def info_of(row: Any) -> FolderInfo:
    return FolderInfo(
        id=int(row.id), name=str(row.name), uidvalidity=int(row.uidvalidity),
        next_uid=int(row.next_uid), highest_modseq=int(row.highest_modseq),
        message_count=int(row.message_count), total_size=int(row.total_size),
        unseen_count=int(row.unseen_count), role=row.role, subscribed=bool(row.subscribed),
    )


def create(conn: Connection, op: CreateFolder, now: float) -> tuple[FolderInfo, list[FolderChange]]:
    """Create the folder and any missing parents; FolderExists if it is there."""
    made: list[Path] = []
    try:
        with write_transaction(conn):
            existing = _account_folders(conn, op.account_id)
            if op.name in existing:
                raise FolderExists(f"folder {op.name!r} exists already")
            wanted = [*_missing_parents(op.name, existing), op.name]
            if len(existing) + len(wanted) > MAX_FOLDERS:
                raise QuotaExceeded(f"an account has at most {MAX_FOLDERS} folders")
            changes = _make_folders(conn, op, wanted, existing, now, made)
            row = conn.execute(select(folders).where(
                folders.c.id == changes[-1].folder_id)).one()
    except BaseException:
        for path in reversed(made):
            shutil.rmtree(path, ignore_errors=True)
        raise
    return info_of(row), changes


def _make_folders(conn: Connection, op: CreateFolder, names: list[str],
                  existing: dict[str, Any], now: float, made: list[Path]) -> list[FolderChange]:
    """Directories and rows of `names` (in the caller's transaction); the last gets op.role."""
    floor = max((int(r.uidvalidity) for r in existing.values()), default=0)
    changes: list[FolderChange] = []
    for name in names:
        path = folder_path(op.maildir, name)
        if scan_messages(path):
            raise FolderExists(f"folder {name!r} exists on disk with messages; "
                               "`nmail dbsync` indexes it")
        made.extend(make_dirs_at(path))
        state = read_uid_state(path)
        validity = new_uidvalidity(now, max(floor, state.uidvalidity if state else 0))
        floor = validity
        next_uid = state.next_uid if state else 1
        row_id = int(conn.execute(insert(folders).values(
            account_id=op.account_id, name=name, uidvalidity=validity,
            next_uid=next_uid, highest_modseq=1, names_modseq=1, message_count=0, unseen_count=0,
            total_size=0, subscribed=True,
            role=(op.role or None) if name == op.name else None,
        )).inserted_primary_key[0])  # type: ignore[index]
        write_uid_state(path, UidState(validity, next_uid))
        changes.append(FolderChange(op.account_id, row_id, name, 1, "folder-create"))
    return changes


def _missing_parents(name: str, existing: dict[str, Any]) -> list[str]:
    parents: list[str] = []
    parent = parent_of(name)
    while parent is not None and parent not in existing:
        parents.insert(0, parent)
        parent = parent_of(parent)
    return parents


def rename(conn: Connection, op: RenameFolder, now: float) -> tuple[None, list[FolderChange]]:
    """Rename the folder and its subfolders; parents of the new name are made."""
    if op.name == INBOX:
        raise FolderProtected("INBOX cannot be renamed")
    if is_within(op.new_name, op.name):
        raise BadFolderName(f"folder {op.name!r} cannot be moved inside itself")
    done: list[tuple[Path, Path]] = []
    made: list[Path] = []
    try:
        with write_transaction(conn):
            existing = _account_folders(conn, op.account_id)
            if op.name not in existing:
                raise NoSuchFolder(f"no folder {op.name!r}")
            if op.new_name in existing:
                raise FolderExists(f"folder {op.new_name!r} exists already")
            moving = sorted(n for n in existing if is_within(n, op.name))
            renames = {n: op.new_name + n[len(op.name):] for n in moving}
            for new in renames.values():
                if new in existing:
                    raise FolderExists(f"folder {new!r} exists already")
                check_name(new)  # the deeper names may now be too long
            changes: list[FolderChange] = []
            parents = [p for p in _missing_parents(op.new_name, existing)
                       if p not in renames.values()]
            if parents:
                changes.extend(_make_folders(
                    conn, CreateFolder(op.account_id, op.maildir, parents[-1], ""), parents,
                    existing, now, made))
            for old, new in renames.items():
                src, dst = folder_path(op.maildir, old), folder_path(op.maildir, new)
                if dst.exists():
                    raise FolderExists(f"folder {new!r} exists on disk; `nmail dbsync` "
                                       "indexes it")
                os.rename(src, dst)
                done.append((dst, src))
                row = existing[old]
                conn.execute(update(folders).where(folders.c.id == row.id).values(name=new))
                changes.append(FolderChange(op.account_id, int(row.id), new,
                                            int(row.highest_modseq), "folder-rename"))
            fsync_dir(Path(op.maildir))
    except BaseException:
        for dst, src in reversed(done):
            try:
                os.rename(dst, src)
            except OSError:
                log.error("could not undo the rename of %s", dst)
        for path in reversed(made):
            shutil.rmtree(path, ignore_errors=True)
        raise
    return None, changes


def delete_folder(conn: Connection, op: DeleteFolder) -> tuple[None, list[FolderChange]]:
    """Delete the folder (with its subfolders and messages only when forced)."""
    if op.name == INBOX:
        raise FolderProtected("INBOX cannot be deleted")
    trash = Path(op.maildir) / f"{DELETED_PREFIX}{os.getpid()}-{next(_trash_counter)}"
    done: list[tuple[Path, Path]] = []
    try:
        with write_transaction(conn):
            existing = _account_folders(conn, op.account_id)
            if op.name not in existing:
                raise NoSuchFolder(f"no folder {op.name!r}")
            going = sorted((n for n in existing if is_within(n, op.name)), reverse=True)
            messages = sum(int(existing[n].message_count) for n in going)
            if not op.force and (messages or len(going) > 1):
                raise FolderNotEmpty(
                    f"folder {op.name!r} holds {messages} messages and "
                    f"{len(going) - 1} subfolders; delete it with force to remove them")
            trash.mkdir(mode=0o700)
            for name in going:
                src = folder_path(op.maildir, name)
                if src.exists():
                    dst = trash / src.name
                    os.rename(src, dst)
                    done.append((dst, src))
            fsync_dir(Path(op.maildir))
            ids = [int(existing[n].id) for n in going]
            threads = threads_in_folders(conn, ids)
            conn.execute(delete(folders).where(folders.c.id.in_(ids)))
            forget_gone(conn, op.account_id, threads)  # conversations they alone held
    except BaseException:
        for dst, src in reversed(done):
            try:
                os.rename(dst, src)
            except OSError:
                log.error("could not undo the delete of %s", src)
        shutil.rmtree(trash, ignore_errors=True)
        raise
    shutil.rmtree(trash, ignore_errors=True)
    return None, [FolderChange(op.account_id, int(existing[n].id), n, 0, "folder-delete")
                  for n in going]


def subscribe(conn: Connection, op: Subscribe) -> tuple[None, list[FolderChange]]:
    with write_transaction(conn):
        row = conn.execute(
            select(folders.c.id, folders.c.highest_modseq).where(
                folders.c.account_id == op.account_id, folders.c.name == op.name)
            .with_for_update()
        ).first()
        if row is None:
            raise NoSuchFolder(f"no folder {op.name!r}")
        conn.execute(update(folders).where(folders.c.id == row.id).values(
            subscribed=op.subscribed))
    return None, [FolderChange(op.account_id, int(row.id), op.name, int(row.highest_modseq),
                               "subscribe")]
