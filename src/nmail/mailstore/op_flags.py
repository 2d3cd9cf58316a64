"""STORE: set, add or remove flags on a UID set, in one transaction.

Every message whose flags really change gets the commit's one new MODSEQ
(RFC 7162 lets the messages of one change share it), and the folder's
HIGHESTMODSEQ becomes it; a message that already had the flags is not
touched and keeps its MODSEQ. With UNCHANGEDSINCE, a message whose MODSEQ is
above it is left alone and reported (MODIFIED).

The files are renamed to carry the new letters in cur/ after the COMMIT and
after the caller has its answer (`after` hands the renames to the writer,
which makes them once it replied): the order is COMMIT -> answer -> renames,
and `folders.names_modseq` says up to where names follow the index, so a
crash in between loses nothing (flag_names.py gives the whole argument).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from nmail.db.tables import folders, messages
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.delivery_batch import Statement, compile_statement
from nmail.mailstore.flag_names import PlannedRename, advance_mark, rename_all
from nmail.mailstore.keywords import KeywordLetters
from nmail.mailstore.model import BadFlag, FlagChange, NoSuchFolder
from nmail.mailstore.names import SEEN_BIT, flag_bits, format_flags, parse_flags
from nmail.mailstore.op_rows import FOLDER_COLUMNS, folder_path, rows_in_ranges, uid_in_ranges
from nmail.mailstore.operations import StoreFlags
from nmail.mailstore.write_lock import write_transaction

_COLUMNS = (messages.c.id, messages.c.uid, messages.c.modseq, messages.c.filename,
            messages.c.in_new, messages.c.flags)
_update_row = (
    update(messages).where(messages.c.id == bindparam("b_id")).values(
        flags=bindparam("b_flags"), sysflags=bindparam("b_bits"),
        in_new=bindparam("b_in_new"), modseq=bindparam("b_modseq"))
)
_ROW_KEYS = ("b_flags", "b_bits", "b_in_new", "b_modseq", "b_id")  # an update's values
# The statements of a small flag change (one message marked read: the common
# case), compiled once per dialect and run through the driver: building and
# caching SQLAlchemy statements cost about as much as SQLite's own work here.
_HOT: dict[str, Any] = {
    "row": _update_row,
    "lock": select(*FOLDER_COLUMNS).where(folders.c.id == bindparam("b_id")).with_for_update(),
    "range": select(*_COLUMNS).where(
        messages.c.folder_id == bindparam("b_folder"), messages.c.uid >= bindparam("b_low"),
        messages.c.uid <= bindparam("b_high")).order_by(messages.c.uid),
    "mark": update(folders).where(folders.c.id == bindparam("b_id")).values(
        names_modseq=bindparam("b_mark")),
    "folder": update(folders).where(folders.c.id == bindparam("b_id")).values(
        highest_modseq=bindparam("b_modseq"),
        unseen_count=folders.c.unseen_count + bindparam("b_delta")),
}
_compiled: dict[tuple[str, str, str], Statement] = {}
_SET_RANGES = 50  # at most this many UID ranges ...
_SET_TEXTS = 8  # ... and old flag texts for the set-based UPDATEs ...
_SET_ROWS = 32  # ... on more rows than this


def _statement(conn: Connection, name: str) -> Statement:
    key = (conn.dialect.name, conn.dialect.paramstyle, name)
    found = _compiled.get(key)
    if found is None:
        found = _compiled[key] = compile_statement(conn, _HOT[name])
    return found


def _run(conn: Connection, name: str, **values: Any) -> Any:
    """Run hot statement `name` with its parameters (b_ names) through the driver."""
    statement = _statement(conn, name)
    return conn.exec_driver_sql(statement.sql,
                                statement.maker(tuple(values))(tuple(values.values())))


def _lock_folder(conn: Connection, account_id: int, folder_id: int) -> Any:
    """op_rows.lock_folder through the driver."""
    row = _run(conn, "lock", b_id=folder_id).first()
    if row is None or int(row.account_id) != account_id:
        raise NoSuchFolder(f"folder {folder_id} no longer exists")
    return row


def _rows(conn: Connection, op: StoreFlags) -> list[Any]:
    if len(op.ranges) == 1:
        low, high = op.ranges[0]
        return list(_run(conn, "range", b_folder=op.folder_id, b_low=low, b_high=high).all())
    return rows_in_ranges(conn, op.folder_id, op.ranges, _COLUMNS)


def store_flags(
    conn: Connection, op: StoreFlags, after: list[Callable[[], None]] | None = None
) -> tuple[FlagChange, list[FolderChange]]:
    """Apply `op`; the result and the commit's change (none when nothing changed).

    The file renames go to `after` (run them once the caller is answered);
    without it they are made here, right after the COMMIT.
    """
    wanted = frozenset(op.flags)
    planned: list[PlannedRename] = []
    with write_transaction(conn):
        folder = _lock_folder(conn, op.account_id, op.folder_id)
        directory = folder_path(op.maildir, str(folder.name))
        modseq = int(folder.highest_modseq) + 1
        letters = KeywordLetters.load(directory)
        updates: list[tuple[Any, ...]] = []
        changed: list[tuple[int, int]] = []
        modified: list[int] = []
        unseen_delta = 0
        # Most messages share a handful of flag texts: work each out once.
        outcomes: dict[str, _Outcome | None] = {}
        for row_id, uid, row_modseq, filename, in_new, text in _rows(conn, op):
            if text in outcomes:
                outcome = outcomes[text]
            else:
                outcome = outcomes[text] = _outcome(op.mode, text, wanted, letters)
            if outcome is None:
                continue  # already as asked
            if op.unchanged_since and row_modseq > op.unchanged_since:
                modified.append(uid)
                continue
            src = filename if in_new else f"{filename}:2,{outcome.old_letters}"
            dst = f"{filename}:2,{outcome.new_letters}"
            if in_new or src != dst:
                planned.append(PlannedRename(filename, bool(in_new), text, src, dst))
            unseen_delta += outcome.unseen_delta
            updates.append((outcome.text, outcome.bits, False, modseq, row_id))
            changed.append((uid, modseq))
        if not updates:
            return FlagChange(int(folder.highest_modseq), (), tuple(modified)), []
        advance_mark(conn, folder, directory,
                     lambda mark: _run(conn, "mark", b_id=op.folder_id, b_mark=mark))
        changing = [o for o in outcomes.values() if o is not None]
        if len(updates) > _SET_ROWS and _by_flag_text(conn, op, len(changing)):
            # A few set-based UPDATEs (one per old flag text) instead of one per
            # row: SQLite spent most of a 10,000-message change on those.
            for o in changing:
                conn.execute(
                    update(messages).where(
                        messages.c.folder_id == op.folder_id, messages.c.flags == o.old,
                        uid_in_ranges(op.ranges))
                    .values(flags=o.text, sysflags=o.bits, in_new=False, modseq=modseq))
        else:
            # Through the driver: SQLAlchemy's per-row parameter work cost more
            # than SQLite's own on 10,000 rows.
            statement = _statement(conn, "row")
            make = statement.maker(_ROW_KEYS)
            conn.exec_driver_sql(statement.sql, [make(u) for u in updates])
        _run(conn, "folder", b_id=op.folder_id, b_modseq=modseq, b_delta=unseen_delta)
        letters.save()
    if planned:
        def renames() -> None:
            rename_all(op.folder_id, directory, planned)

        if after is None:
            renames()
        else:
            after.append(renames)
    change = FolderChange(op.account_id, op.folder_id, str(folder.name), modseq, "flags")
    return FlagChange(modseq, tuple(changed), tuple(modified)), [change]


def _by_flag_text(conn: Connection, op: StoreFlags, texts: int) -> bool:
    """Whether "every row of the ranges whose flags are this text" names exactly
    the rows to change: not with UNCHANGEDSINCE (some are left out), not with
    many ranges or texts (long statements), and only where text compares
    byte for byte (MariaDB's collation would match `$label` to `$Label`)."""
    return (not op.unchanged_since and len(op.ranges) <= _SET_RANGES and texts <= _SET_TEXTS
            and conn.dialect.name in ("sqlite", "postgresql"))


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a flag change does to messages whose flags are one given text."""

    old: str  # the old flags' text (locate() needs it)
    text: str
    bits: int
    old_letters: str
    new_letters: str
    unseen_delta: int


def _outcome(mode: str, text: str, wanted: frozenset[str],
             letters: KeywordLetters) -> _Outcome | None:
    old = parse_flags(text)
    new = _apply(mode, old, wanted)
    if new == old:
        return None
    try:
        new_text = format_flags(new)
    except ValueError as exc:
        raise BadFlag(str(exc)) from None
    was, now = flag_bits(old), flag_bits(new)
    return _Outcome(text, new_text, now, letters.letters_of(old),
                    letters.letters_of(new, add=True), (was & SEEN_BIT) - (now & SEEN_BIT))


def _apply(mode: str, old: frozenset[str], flags: frozenset[str]) -> frozenset[str]:
    if mode == "add":
        return old | flags
    if mode == "remove":
        return old - flags
    return flags
