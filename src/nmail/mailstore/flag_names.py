"""Maildir file names that follow the index's flags, after the commit.

A flag change commits its rows first and answers; its files get their new
`:2,` letters afterwards (op_flags, on the writer, right after the reply).
10,000 renames cost more than the 10,000-row commit itself, and a caller
needs the committed state, not the names. The Maildir stays the truth in a
defined way, through `folders.names_modseq`:

- every row with `modseq <= names_modseq` has a file whose name carries its
  index flags; above the mark a rename may still be pending for rows a flag
  change touched (`modseq > created_modseq`), and there the index's flags
  win over the file name's (rows no flag change touched got their names at
  their own commit: a different name there is another tool's change);
- a new folder starts with the mark at its HIGHESTMODSEQ (nothing pending);
- a flag change advances the mark, in its own transaction, to the folder's
  HIGHESTMODSEQ before it (the renames of earlier changes were done by this
  writer before it took the next job), unless this process failed some of
  those renames: then it finishes them first (`follow_index`, in the same
  transaction);
- start-up repair and `nmail dbsync` call `follow_index` on every folder
  before comparing names with rows, and set the mark to HIGHESTMODSEQ.

Crash ordering: COMMIT (rows + mark) -> answer -> renames. A crash before
COMMIT changes nothing (no rename was made yet). A crash after COMMIT and
before or during the renames leaves rows above the mark whose names are
old; repair renames them to the index's flags, so no acknowledged flag
change is lost and dbsync then finds nothing to fix. Readers find a file
whatever its letters (`messagefile.locate` by the permanent name, a retry
on ENOENT), so a name that lags or changes under them is no error.

One writer per database orders all this (the index writer process, or a
MailStore's writer thread). A second writer process changing flags in the
same folder (a CLI beside `nmail serve` on SQLite) could advance the mark
over renames the first one has not made yet; if the first then crashed,
dbsync would take those files' old letters (the behaviour before the mark).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, select, update

from nmail.db.tables import folders, messages
from nmail.mailstore.keywords import KeywordLetters
from nmail.mailstore.messagefile import locate
from nmail.mailstore.names import disk_name, parse_flags
from nmail.mailstore.write_lock import write_transaction

log = logging.getLogger(__name__)

# Folders whose renames this process could not finish (until a later change or
# repair finishes them): the mark must not pass them.
_unfinished: set[int] = set()
_unfinished_lock = threading.Lock()


class PlannedRename(NamedTuple):
    """One file to rename in a folder: from its old letters to the index's.
    (A tuple: a flag change of 10,000 messages makes 10,000 of them.)"""

    filename: str
    in_new: bool
    old_flags: str  # the old flags' text (locate() needs it)
    src: str  # entry name in new/ or cur/ (by in_new)
    dst: str  # entry name in cur/


def advance_mark(conn: Connection, folder: Any, directory: Path,
                 write: Callable[[int], object] | None = None) -> None:
    """In a flag change's transaction: the mark moves up to the folder's
    HIGHESTMODSEQ before the change, after finishing what this process left.
    `write(mark)` stores it (default: an UPDATE of the folder row)."""
    folder_id = int(folder.id)
    old = int(folder.highest_modseq)
    if int(folder.names_modseq) >= old:
        return
    with _unfinished_lock:
        behind = folder_id in _unfinished
    if behind:
        follow_index(conn, folder_id, directory, int(folder.names_modseq))
        with _unfinished_lock:
            _unfinished.discard(folder_id)
    if write is not None:
        write(old)
    else:
        conn.execute(update(folders).where(folders.c.id == folder_id).values(names_modseq=old))


def follow_index(conn: Connection, folder_id: int, directory: Path, mark: int) -> int:
    """Rename the files of rows above `mark` to their index flags; how many moved.

    Runs inside the caller's write transaction (the folder row locked), so no
    flag change of this folder runs meanwhile.
    """
    letters = KeywordLetters.load(directory)
    moved = 0
    rows = conn.execute(
        select(messages.c.filename, messages.c.in_new, messages.c.flags)
        .where(messages.c.folder_id == folder_id, messages.c.modseq > mark,
               messages.c.modseq > messages.c.created_modseq,
               messages.c.in_new.is_(False))
    ).all()
    # A flag change always leaves its rows in cur/ with a MODSEQ above the one
    # that made them; rows still in new/ (deliveries) and rows no change has
    # touched since (appends, copies, moves, dbsync's) got their names at
    # their commit, so a different name is another tool's doing, which
    # dbsync reads like any other (the index must not undo it).
    for filename, _, flags_text in rows:
        name = str(filename)
        flags = parse_flags(str(flags_text))
        want = directory / "cur" / disk_name(name, letters.letters_of(flags), False)
        if want.exists():
            continue
        found = locate(directory, name, False, str(flags_text), letters)
        if found is None:
            continue  # gone: the repair that follows drops the row
        os.rename(found, want)
        moved += 1
    return moved


def set_mark(conn: Connection, folder_id: int, modseq: int) -> None:
    """After `follow_index` (repair, dbsync): every name follows up to `modseq`."""
    conn.execute(update(folders).where(folders.c.id == folder_id).values(names_modseq=modseq))
    with _unfinished_lock:
        _unfinished.discard(folder_id)


def rename_all(folder_id: int, directory: Path, planned: Iterable[PlannedRename]) -> int:
    """Make the planned renames (after the commit); how many could not be made.

    A file renamed meanwhile by another tool is looked for by its permanent
    name; a file that is gone is left to repair (its row goes then). Any
    other failure marks the folder unfinished for the next change to finish.
    """
    failed = 0
    try:
        fds = {sub: os.open(directory / sub, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
               for sub in ("new", "cur")}
    except OSError as exc:
        log.error("flag renames in %s not made: %s", directory, exc)
        with _unfinished_lock:
            _unfinished.add(folder_id)
        return -1
    try:
        for p in planned:
            try:
                _rename_one(directory, fds, p)
            except OSError as exc:
                failed += 1
                log.error("flag rename of %s failed: %s", p.filename, exc)
    finally:
        for fd in fds.values():
            os.close(fd)
    if failed:
        with _unfinished_lock:
            _unfinished.add(folder_id)
    return failed


def _rename_one(directory: Path, fds: dict[str, int], p: PlannedRename) -> None:
    # renameat relative to open directories: one path component per file.
    src_fd = fds["new" if p.in_new else "cur"]
    try:
        os.rename(p.src, p.dst, src_dir_fd=src_fd, dst_dir_fd=fds["cur"])
        return
    except FileNotFoundError:
        pass
    found = locate(directory, p.filename, p.in_new, p.old_flags)
    if found is None:
        return  # gone (expunged by another tool): repair drops the row
    if found.parent.name == "cur" and found.name == p.dst:
        return
    os.rename(found.name, p.dst, src_dir_fd=fds[found.parent.name], dst_dir_fd=fds["cur"])


def finish_folder(conn: Connection, folder_id: int, directory: Path) -> int:
    """Repair and dbsync: finish pending renames of one folder and set its mark
    to HIGHESTMODSEQ, in one write transaction; how many files were renamed."""
    with write_transaction(conn):
        row = conn.execute(
            select(folders.c.highest_modseq, folders.c.names_modseq)
            .where(folders.c.id == folder_id).with_for_update()
        ).first()
        if row is None or int(row.names_modseq) >= int(row.highest_modseq):
            return 0
        moved = follow_index(conn, folder_id, directory, int(row.names_modseq))
        set_mark(conn, folder_id, int(row.highest_modseq))
        return moved


def names_behind(conn: Connection, folder_id: int) -> bool:
    """Whether the folder may have pending renames (read without a lock)."""
    row = conn.execute(
        select(folders.c.highest_modseq, folders.c.names_modseq).where(folders.c.id == folder_id)
    ).first()
    return row is not None and int(row.names_modseq) < int(row.highest_modseq)
