"""Folder renames and deletes a crash cut short before their COMMIT, undone at start-up.

The crash ordering this relies on (op_folders): a rename or delete does its
directory work inside its transaction, before the COMMIT. A rename renames
the directory of the folder and of each subfolder (`.A`, `.A.B`: Maildir++
is flat); a delete moves each of them into `Maildir/nmail-deleted-<pid>-<n>`
(subfolders first). Then the Maildir is flushed, the rows change (renamed,
or deleted) and the transaction commits; only after the COMMIT is the
moved-aside tree removed. So after a kill -9 at any point the rows tell
whether the change committed:

- rows gone (delete) or under the new names (rename): it committed, and at
  most the moved-aside tree is left to remove (`finish_deletes`);
- rows still under the old names: it did not commit, and each directory it
  had moved, renamed or set aside is put back under its row's name.

A directory and a row are known to be one folder by the UIDVALIDITY each
holds (`nmail-uidvalidity` in the directory, `folders.uidvalidity`):
`new_uidvalidity` gives each new folder of an account a higher one than any
it has, so no two folders of an account share one. A parent folder a
rename was making (empty) stays, as a folder of its own, when its directory
was made before the crash.

Before this, repair took the disk as it found it: the rows of a half-renamed
subtree were dropped and made again under the new names (the folder's role
lost, half the subtree under each name), and a moved-aside tree was removed
with its rows, so a delete that never committed (the user was never told)
took some or all of the folder's messages (found by tests/test_serve_kill.py's
folder round; tests/test_mailbox_folder_crash.py kills a process at each
point).

Start-up repair and `nmail dbsync` both run it, through `settle` (one entry
point, Rebuilder._settle_folder_changes): dbsync run offline right after a
crash, as admins of the PHP suite run `mail_box_dbsync ALL` after trouble,
used to take the disk as the truth and drop the rows of a delete that never
committed. `settle` runs under the account's folder rows' lock, the one every
folder change holds from before its first directory move to its COMMIT
(op_folders._account_folders: FOR UPDATE in id order, BEGIN IMMEDIATE on
SQLite), so a directory it finds out of place belongs to a change that died,
not to one a running server (or another node) is making: dbsync beside
`nmail serve` waits for that change's COMMIT instead of undoing it. The
moved-aside trees are named under the lock and removed after it (a delete
in flight makes a new `nmail-deleted-<pid>-<n>`, never one of these).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqlalchemy import Connection, select

from nmail.db.tables import folders
from nmail.durable import fsync_dir
from nmail.mailstore.folder_names import INBOX, name_from_disk
from nmail.mailstore.layout import disk_folder_names, folder_dir, read_uid_state
from nmail.mailstore.write_lock import write_transaction

DELETED_PREFIX = "nmail-deleted-"  # what a delete moves aside until its commit


def settle(conn: Connection, account_id: int, maildir: Path) -> tuple[list[str], list[Path]]:
    """Under the account's folder rows' lock: undo the folder changes that did not
    commit (`undo_uncommitted`); the names put back and the trees committed deletes
    left, for `finish_deletes` to remove once the lock is released."""
    with write_transaction(conn):
        rows = conn.execute(
            select(folders.c.name, folders.c.uidvalidity)
            .where(folders.c.account_id == account_id)
            .order_by(folders.c.id).with_for_update()  # op_folders' order: no deadlock
        ).all()
        restored = undo_uncommitted(maildir, {r.name: int(r.uidvalidity) for r in rows})
        leftovers = [maildir / entry for entry in sorted(os.listdir(maildir))
                     if entry.startswith(DELETED_PREFIX)]
    return restored, leftovers


def undo_uncommitted(maildir: Path, index: Mapping[str, int]) -> list[str]:
    """Put back the directories of folder renames and deletes that did not commit
    (`index`: each folder row's name and UIDVALIDITY, read under the account's
    folder lock); the folder names restored."""
    on_disk = set(disk_folder_names(maildir))
    missing = {uidvalidity: name for name, uidvalidity in index.items()
               if name != INBOX and name not in on_disk}
    if not missing:
        return []
    candidates: list[Path] = []
    for entry in sorted(os.listdir(maildir)):
        path = maildir / entry
        if entry.startswith(DELETED_PREFIX) and path.is_dir():
            candidates += [path / inner for inner in sorted(os.listdir(path))]
        else:
            name = name_from_disk(entry)
            if name is not None and name not in index:
                candidates.append(path)
    restored: list[str] = []
    for path in candidates:
        state = read_uid_state(path)
        name = missing.get(state.uidvalidity) if state is not None else None
        if name is None:
            continue
        home = folder_dir(maildir, name)
        if home.exists():
            continue
        os.rename(path, home)
        del missing[state.uidvalidity]  # type: ignore[union-attr]
        restored.append(name)
    if restored:
        fsync_dir(maildir)  # durable before finish_deletes removes what is left
    return restored


def finish_deletes(leftovers: Iterable[Path]) -> None:
    """Remove what committed folder deletes moved aside (as `settle` named them)."""
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
