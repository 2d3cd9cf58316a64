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
point). Only start-up repair does this: while a server runs, a directory
moved aside belongs to an operation in flight.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from nmail.durable import fsync_dir
from nmail.mailstore.folder_names import INBOX, name_from_disk
from nmail.mailstore.folder_sync import FolderIndex
from nmail.mailstore.layout import disk_folder_names, folder_dir, read_uid_state

log = logging.getLogger(__name__)
DELETED_PREFIX = "nmail-deleted-"  # what a delete moves aside until its commit


def undo_uncommitted(maildir: Path, index: Mapping[str, FolderIndex]) -> list[str]:
    """Put back the directories of folder renames and deletes that did not commit;
    the folder names restored."""
    on_disk = set(disk_folder_names(maildir))
    missing = {f.uidvalidity: name for name, f in index.items()
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
        log.warning("%s: folder change(s) not committed before a crash undone: %s",
                    maildir, ", ".join(sorted(restored)))
    return restored


def finish_deletes(maildir: Path) -> None:
    """Remove what committed folder deletes moved aside (undo_uncommitted first)."""
    for entry in os.listdir(maildir):
        if entry.startswith(DELETED_PREFIX):
            shutil.rmtree(maildir / entry, ignore_errors=True)
