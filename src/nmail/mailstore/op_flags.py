"""STORE: set, add or remove flags on a UID set, in one transaction.

Every message whose flags really change gets the commit's one new MODSEQ
(RFC 7162 lets the messages of one change share it), and the folder's
HIGHESTMODSEQ becomes it; a message that already had the flags is not
touched and keeps its MODSEQ. With UNCHANGEDSINCE, a message whose MODSEQ is
above it is left alone and reported (MODIFIED). Its file is renamed to
carry the new letters in cur/ before the commit (the Maildir stays the
truth for other tools); the renames are undone if the commit fails.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, update

from nmail.db.tables import folders, messages
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.keywords import KeywordLetters
from nmail.mailstore.messagefile import locate
from nmail.mailstore.model import BadFlag, FlagChange
from nmail.mailstore.names import SEEN_BIT, disk_name, flag_bits, format_flags, parse_flags
from nmail.mailstore.op_rows import folder_path, lock_folder, rows_in_ranges
from nmail.mailstore.operations import StoreFlags
from nmail.mailstore.writer import write_transaction

log = logging.getLogger(__name__)

_COLUMNS = (messages.c.id, messages.c.uid, messages.c.modseq, messages.c.filename,
            messages.c.in_new, messages.c.flags)
_update_row = (
    update(messages).where(messages.c.id == bindparam("b_id")).values(
        flags=bindparam("b_flags"), sysflags=bindparam("b_bits"), in_new=False,
        modseq=bindparam("b_modseq"))
)


def store_flags(conn: Connection, op: StoreFlags) -> tuple[FlagChange, list[FolderChange]]:
    """Apply `op`; the result and the commit's change (none when nothing changed)."""
    wanted = frozenset(op.flags)
    renamed: list[tuple[Path, Path]] = []
    try:
        with write_transaction(conn):
            folder = lock_folder(conn, op.account_id, op.folder_id)
            directory = folder_path(op.maildir, str(folder.name))
            modseq = int(folder.highest_modseq) + 1
            letters = KeywordLetters.load(directory)
            updates: list[dict[str, Any]] = []
            changed: list[tuple[int, int]] = []
            modified: list[int] = []
            unseen_delta = 0
            for r in rows_in_ranges(conn, op.folder_id, op.ranges, _COLUMNS):
                old = parse_flags(r.flags)
                new = _apply(op.mode, old, wanted)
                if new == old:
                    continue
                if op.unchanged_since and int(r.modseq) > op.unchanged_since:
                    modified.append(int(r.uid))
                    continue
                try:
                    text = format_flags(new)
                except ValueError as exc:
                    raise BadFlag(f"message {r.uid}: {exc}") from None
                src = _move(directory, r, old, new, letters, renamed)
                if src is None:
                    continue  # its file is gone: dbsync drops the row
                was, now = flag_bits(old), flag_bits(new)
                unseen_delta += (was & SEEN_BIT) - (now & SEEN_BIT)
                updates.append({"b_id": r.id, "b_flags": text, "b_bits": now,
                                "b_modseq": modseq})
                changed.append((int(r.uid), modseq))
            if not updates:
                return FlagChange(int(folder.highest_modseq), (), tuple(modified)), []
            conn.execute(_update_row, updates)
            conn.execute(
                update(folders).where(folders.c.id == op.folder_id).values(
                    highest_modseq=modseq, unseen_count=folders.c.unseen_count + unseen_delta)
            )
            letters.save()
    except BaseException:
        for now_at, was_at in reversed(renamed):
            try:
                os.rename(now_at, was_at)
            except OSError:
                log.error("could not undo the flag rename of %s", now_at)
        raise
    change = FolderChange(op.account_id, op.folder_id, str(folder.name), modseq, "flags")
    return FlagChange(modseq, tuple(changed), tuple(modified)), [change]


def _apply(mode: str, old: frozenset[str], flags: frozenset[str]) -> frozenset[str]:
    if mode == "add":
        return old | flags
    if mode == "remove":
        return old - flags
    return flags


def _move(directory: Path, row: Any, old: frozenset[str], new: frozenset[str],
          letters: KeywordLetters, renamed: list[tuple[Path, Path]]) -> Path | None:
    """Rename the file to carry `new` in cur/; its old path, None when it is gone."""
    filename = str(row.filename)
    in_new = bool(row.in_new)
    src = directory / ("new" if in_new else "cur") / disk_name(
        filename, letters.letters_of(old), in_new)
    dst = directory / "cur" / disk_name(filename, letters.letters_of(new, add=True), False)
    if src == dst:
        return src
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        # Another tool renamed it (its own flags): find it where it is.
        found = locate(directory, filename, in_new, row.flags)
        if found is None:
            return None
        src = found
        os.rename(src, dst)
    renamed.append((dst, src))
    return src
