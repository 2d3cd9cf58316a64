"""COPY and MOVE of a UID set to another folder of the same account.

Atomic on disk and in the index. A move renames each file into the target
(same file system: one rename, so at every instant the message is in
exactly one directory), named with its new UID and keeping its permanent
base (its POP3 UIDL follows it); a copy hard-links the file under a fresh
base. The target directories (and the source's, for a move) are flushed
before the commit. A crash before the commit leaves the files in the target
without rows and the source rows without files: start-up repair indexes
the former (their U= is at or above the target's next UID, so kept) and
drops the latter, so the message is then in the target alone.

Keywords the target has no letter for yet get one in its `dovecot-keywords`
first, saved durably before the first rename: repair reads a row-less
file's keywords back from its letters, and a letter the file does not
explain would be lost (the order delivery_batch keeps for the same reason).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, update

from nmail.db.tables import folders, messages
from nmail.durable import fsync_dir
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.keywords import KeywordLetters
from nmail.mailstore.messagefile import locate
from nmail.mailstore.model import CopyResult, StoreError
from nmail.mailstore.names import disk_name, final_filename, new_base, parse_flags, uidl_of
from nmail.mailstore.op_expunge import record_next_uid, remove_rows, unseen_among
from nmail.mailstore.op_rows import folder_path, lock_folder, quota_check, rows_in_ranges
from nmail.mailstore.operations import CopyMessages
from nmail.mailstore.thread_index import ThreadIndex
from nmail.mailstore.write_lock import write_transaction

log = logging.getLogger(__name__)

_SKIP = frozenset({"id", "folder_id", "uid", "modseq", "created_modseq", "filename"})
_COPIED = tuple(c for c in messages.c if c.name not in _SKIP)


def transfer(conn: Connection, op: CopyMessages, host: str,
             now: float) -> tuple[CopyResult, list[FolderChange]]:
    """Copy or move; the COPYUID answer and the changes (target, and source for a move)."""
    if op.move and op.target_id == op.folder_id:
        raise StoreError("a folder cannot be moved into itself")
    done: list[tuple[Path, Path | None]] = []  # (made, moved from) to undo
    try:
        with write_transaction(conn):
            first, second = sorted({op.folder_id, op.target_id})
            locked = {first: lock_folder(conn, op.account_id, first)}
            if second != first:
                locked[second] = lock_folder(conn, op.account_id, second)
            source, target = locked[op.folder_id], locked[op.target_id]
            rows = rows_in_ranges(conn, op.folder_id, op.ranges,
                                  (messages.c.id, messages.c.uid, messages.c.filename, *_COPIED))
            if not rows:
                return CopyResult(int(target.uidvalidity), ()), []
            if not op.move:
                quota_check(conn, op.account_id, sum(int(r.size) for r in rows),
                            f"copying {len(rows)} messages")
            src_dir = folder_path(op.maildir, str(source.name))
            dst_dir = folder_path(op.maildir, str(target.name))
            result, new_rows = _files(op, rows, source, target, src_dir, dst_dir, host, done)
            _flush(done, move=op.move)
            target_modseq = int(target.highest_modseq) + 1
            for row in new_rows:
                row["modseq"] = row["created_modseq"] = target_modseq
            conn.execute(insert(messages), new_rows)
            # Threads are per account: a copy or a move keeps its thread id.
            ThreadIndex.on(conn).added((op.target_id, str(r["thread_id"]), int(r["date"]))
                                       for r in new_rows)
            conn.execute(update(folders).where(folders.c.id == op.target_id).values(
                next_uid=int(target.next_uid) + len(new_rows),
                highest_modseq=target_modseq,
                message_count=folders.c.message_count + len(new_rows),
                unseen_count=folders.c.unseen_count + unseen_among(rows),
                total_size=folders.c.total_size + sum(int(r.size) for r in rows),
            ))
            changes = [FolderChange(op.account_id, op.target_id, str(target.name),
                                    target_modseq, "move" if op.move else "copy")]
            if op.move:
                source_modseq = int(source.highest_modseq) + 1
                remove_rows(conn, op.folder_id, rows, source_modseq, now)
                conn.execute(update(folders).where(folders.c.id == op.folder_id).values(
                    highest_modseq=source_modseq,
                    message_count=folders.c.message_count - len(rows),
                    unseen_count=folders.c.unseen_count - unseen_among(rows),
                    total_size=folders.c.total_size - sum(int(r.size) for r in rows),
                ))
                record_next_uid(src_dir, int(source.uidvalidity), int(source.next_uid))
                changes.insert(0, FolderChange(op.account_id, op.folder_id, str(source.name),
                                               source_modseq, "move"))
            record_next_uid(dst_dir, int(target.uidvalidity),
                            int(target.next_uid) + len(new_rows))
    except BaseException:
        _undo(done)
        raise
    return result, changes


def _files(op: CopyMessages, rows: list[Any], source: Any, target: Any, src_dir: Path,
           dst_dir: Path, host: str,
           done: list[tuple[Path, Path | None]]) -> tuple[CopyResult, list[dict[str, Any]]]:
    src_letters = KeywordLetters.load(src_dir)
    dst_letters = KeywordLetters.load(dst_dir)
    for text in {r.flags for r in rows}:
        dst_letters.letters_of(parse_flags(text), add=True)
    dst_letters.save()  # before any file carries a letter it gives (see above)
    uid = int(target.next_uid)
    pairs: list[tuple[int, int]] = []
    new_rows: list[dict[str, Any]] = []
    copied: list[Any] = []
    # Plain strings, names relative to each directory: pathlib per file cost more
    # than the rename itself.
    src_base, dst_base = str(src_dir), str(dst_dir)
    for r in rows:
        flags = parse_flags(r.flags)
        sub = "new" if r.in_new else "cur"
        src = f"{src_base}/{sub}/{disk_name(r.filename, src_letters.letters_of(flags), r.in_new)}"
        base = uidl_of(r.filename) if op.move else new_base(host)
        filename = final_filename(base, uid, int(r.size))
        dst = f"{dst_base}/{sub}/" + disk_name(
            filename, dst_letters.letters_of(flags, add=True), bool(r.in_new))
        try:
            _place(src, dst, op.move)
        except FileNotFoundError:
            found = locate(src_dir, r.filename, bool(r.in_new), r.flags, src_letters)
            if found is None:
                continue  # its file is gone: dbsync drops the row
            src = str(found)
            _place(src, dst, op.move)
        done.append((Path(dst), Path(src) if op.move else None))
        row = {c.name: getattr(r, c.name) for c in _COPIED}
        row.update(folder_id=op.target_id, uid=uid, filename=filename)
        new_rows.append(row)
        copied.append(r)
        pairs.append((int(r.uid), uid))
        uid += 1
    if not new_rows:
        raise StoreError("none of the messages' files could be found; run nmail dbsync")
    rows[:] = copied  # the caller counts what was copied (a row without a file stays)
    return CopyResult(int(target.uidvalidity), tuple(pairs)), new_rows


def _place(src: str, dst: str, move: bool) -> None:
    if move:
        os.rename(src, dst)
    else:
        os.link(src, dst)


def _flush(done: list[tuple[Path, Path | None]], *, move: bool) -> None:
    directories = {made.parent for made, _ in done}
    if move:
        directories |= {src.parent for _, src in done if src is not None}
    for directory in directories:
        fsync_dir(directory)


def _undo(done: list[tuple[Path, Path | None]]) -> None:
    for made, moved_from in reversed(done):
        try:
            if moved_from is None:
                os.unlink(made)
            else:
                os.rename(made, moved_from)
        except OSError:
            log.error("could not undo the copy or move of %s", made)
    for directory in {made.parent for made, _ in done} | {
            src.parent for _, src in done if src is not None}:
        try:
            fsync_dir(directory)
        except OSError:
            log.error("could not flush %s after an undone copy", directory)

