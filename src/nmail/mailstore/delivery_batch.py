"""One group commit of deliveries: UIDs, rows, renames into new/, fsync, COMMIT.

The message files are already in `tmp/`, written but not flushed by the
callers' threads. Here: flush them all at once (group commit, see
nmail.durable), then under the folders' write lock allocate UIDs, insert
rows, rename each file to its final name, flush the target directories, commit.
If anything fails the renames are undone (files go back to `tmp/`), so the
caller can retry or discard, and no file is left in new/ without a row; a
deadlock's victim is run again here (deliver_batch).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from nmail.db.tables import folders, messages
from nmail.durable import fsync_dir, sync_batch
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.delivery_sql import Execute, transaction
from nmail.mailstore.indexrow import SUMMARY_KEYS
from nmail.mailstore.keywords import KeywordLetters
from nmail.mailstore.lock_order import DEADLOCK_TRIES, LockFirst, is_deadlock
from nmail.mailstore.model import StoredMessage, StoreError
from nmail.mailstore.names import SEEN_BIT, disk_name, final_filename, flag_bits, parse_flags
from nmail.mailstore.thread_index import ThreadIndex

log = logging.getLogger(__name__)


class FolderGone(StoreError):
    """A folder row disappeared (its account was deleted) while a delivery waited."""


class PreparedMessage(NamedTuple):
    """A message written to tmp/ (not yet flushed), waiting for its UID and row.

    A tuple, and its paths plain strings: the index writer process makes one
    of these per delivery from the wire (index_wire), and pathlib's parsing
    or a dataclass's frozen __init__ cost more than the rest of the decoding.
    """

    account_id: int
    folder_id: int
    folder_dir: str  # the folder's directory (str of its Path)
    tmp_path: str  # folder_dir + "/tmp/" + base
    base: str
    size: int
    flags_text: str
    letters: str
    in_new: bool
    internal_date: int
    columns: tuple[Any, ...]  # summary columns in SUMMARY_KEYS order (indexrow.summary_values)


_update_folder = (
    update(folders)
    .where(folders.c.id == bindparam("b_id"))
    .values(
        next_uid=bindparam("b_next_uid"),
        highest_modseq=bindparam("b_modseq"),
        message_count=folders.c.message_count + bindparam("b_count"),
        unseen_count=folders.c.unseen_count + bindparam("b_unseen"),
        total_size=folders.c.total_size + bindparam("b_size"),
    )
)
# values' order
_UPDATE_KEYS = ("b_next_uid", "b_modseq", "b_count", "b_unseen", "b_size", "b_id")

# One folder row, locked: in id order, so two nodes delivering to the same
# folders cannot deadlock. (SQLite has no FOR UPDATE; BEGIN IMMEDIATE locks.)
_lock_folder = (
    select(folders.c.next_uid, folders.c.highest_modseq, folders.c.account_id, folders.c.name)
    .where(folders.c.id == bindparam("b_id"))
    .with_for_update()
)
# A row's values in this order: the delivery's own, then PreparedMessage.columns
# (the table's order: on SQLite the row is the statement's parameters as it is).
_ROW_KEYS = (
    "folder_id", "uid", "modseq", "filename", "in_new", "flags", "sysflags", "created_modseq",
    "size", "internal_date",
) + SUMMARY_KEYS
_THREAD_SLOT = SUMMARY_KEYS.index("thread_id")  # carries thread keys until resolved
_DATE_SLOT = SUMMARY_KEYS.index("date")


@dataclass(frozen=True, slots=True)
class _Statement:
    """A statement compiled once per dialect, run with exec_driver_sql.

    The delivery path runs the same three statements for every batch; going
    through the driver directly skips SQLAlchemy's per-execution statement
    building and cache-key work (measured: ~250 µs a batch, most of its cost).
    """

    sql: str
    keys: tuple[str, ...] | None  # positional parameter order; None: named

    def maker(self, order: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Any]:
        """The function from values in `order` to the statement's parameters.

        Values, not a dict per row: on SQLite (and wherever the compiled
        order is `order`) they are the parameters as they are.
        """
        keys = self.keys
        if keys is None:
            return lambda values: dict(zip(order, values, strict=True))
        if keys == order:
            return _unchanged
        indexes = [order.index(key) for key in keys]
        return lambda values: tuple([values[i] for i in indexes])


class _Hot(NamedTuple):
    """A delivery statement and the function from its values (in a fixed order)
    to its parameters, made once per dialect."""

    sql: str
    make: Callable[[tuple[Any, ...]], Any]


_compiled: dict[tuple[str, str], tuple[_Hot, _Hot, _Hot]] = {}


def _statements(conn: Connection) -> tuple[_Hot, _Hot, _Hot]:
    """The folder lock (b_id,), the row insert (_ROW_KEYS) and the folder update
    (_UPDATE_KEYS), compiled for the connection's dialect."""
    dialect = conn.dialect
    key = (dialect.name, dialect.paramstyle)
    found = _compiled.get(key)
    if found is None:
        made = []
        for stmt, columns, order in (
            (_lock_folder, None, ("b_id",)),
            (messages.insert(), list(_ROW_KEYS), _ROW_KEYS),
            (_update_folder, None, _UPDATE_KEYS),
        ):
            compiled = stmt.compile(dialect=dialect, column_keys=columns)
            positional = compiled.positional and compiled.positiontup
            statement = _Statement(compiled.string, tuple(positional) if positional else None)
            made.append(_Hot(statement.sql, statement.maker(order)))
        found = _compiled[key] = (made[0], made[1], made[2])
    return found


def warm_statements(conn: Connection) -> None:
    """Compile the delivery's statements (and the thread index's) now, not in
    the first delivery: SQLAlchemy's compiling of them takes ~9 ms of CPU
    here, the writer's work for some 40 deliveries."""
    _statements(conn)
    ThreadIndex(_no_run, conn.dialect)


def _no_run(_sql: str, _params: Any, _many: bool) -> None:
    raise AssertionError("only compiling")


Statement = _Statement  # for other writers (compile_statement)


def compile_statement(conn: Connection, stmt: Any) -> Statement:
    """`stmt` compiled for the connection's dialect, to run with exec_driver_sql
    (other writers' hot statements: a flag change of 10,000 messages)."""
    compiled = stmt.compile(dialect=conn.dialect)
    positional = compiled.positional and compiled.positiontup
    return _Statement(compiled.string, tuple(positional) if positional else None)


@dataclass(slots=True)
class Piggyback:
    """A commit's chance to make the next batch's files durable for nothing.

    The directories' flush of a batch is a whole-filesystem flush (syncfs),
    so it also flushes every file written before it starts. `before_flush`
    runs just before it (the index writer reads the requests that have
    arrived: their files are written); afterwards `devices` holds the
    filesystems that were flushed whole. The next batch then need not flush
    those files again: one flush per batch instead of two.
    """

    before_flush: Callable[[], None]
    devices: set[int] = field(default_factory=set)


def flush_files(items: list[PreparedMessage]) -> None:
    """Make the items' files in tmp/ durable (the index writer's flusher thread
    calls this before their batch; OSError if the flush failed)."""
    sync_batch(files=[i.tmp_path for i in items])


def deliver_batch(
    conn: Connection,
    items: list[PreparedMessage],
    *,
    flushed: Callable[[PreparedMessage], bool] | None = None,
    piggyback: Piggyback | None = None,
    changes: list[FolderChange] | None = None,
    wire: bool = False,
) -> list[Any]:
    """Index and publish `items` all together, or raise leaving them in tmp/.

    `flushed(item)` says an item's file is known durable already (see
    Piggyback); the others are flushed first, as always before a rename.
    `changes` gets one FolderChange per folder once the batch committed.
    Returns a StoredMessage per item, or with `wire` the tuples that
    index_wire.encode_stored makes of them: the index writer process only
    sends them on, and a frozen dataclass of six fields costs more to make
    than the rest of a message's Python work in _index.

    The batch runs again, its renames undone (lock_order.py): with more
    folders locked first when a conversation merge needs one below those it
    holds (LockFirst), and up to DEADLOCK_TRIES times when the database
    rolled it back as a deadlock's victim (every client of the batch would
    otherwise get a 4xx and send again).
    """
    sync_batch(files=[i.tmp_path for i in items if flushed is None or not flushed(i)])
    attempt, lock_first = 1, frozenset[int]()
    while True:
        try:
            return _commit(conn, items, piggyback, changes, wire, lock_first)
        except LockFirst as exc:
            lock_first |= exc.folder_ids
        except DBAPIError as exc:
            if not is_deadlock(exc) or attempt == DEADLOCK_TRIES:
                raise
            log.warning("a batch of %d deliveries was a deadlock's victim (attempt %d);"
                        " running it again", len(items), attempt)
            attempt += 1


def _commit(conn: Connection, items: list[PreparedMessage], piggyback: Piggyback | None,
            changes: list[FolderChange] | None, wire: bool, lock_first: frozenset[int],
            ) -> list[Any]:
    """One attempt: the batch's transaction, its renames undone if it fails."""
    renamed: list[tuple[str, str]] = []
    try:
        with transaction(conn) as execute:
            stored, moves, touched = _index(execute, _statements(conn), items, conn.dialect,
                                            lock_first)
            targets: set[str] = set()
            for src, dst, directory in moves:
                os.rename(src, dst)
                renamed.append((dst, src))
                targets.add(directory)
            if piggyback is None:
                sync_batch(directories=targets)
            else:
                piggyback.devices = set()
                piggyback.before_flush()
                piggyback.devices = sync_batch(directories=targets, whole=True)
        if changes is not None:
            changes.extend(touched)
        return stored if wire else [StoredMessage(*row) for row in stored]
    except BaseException:
        _undo(renamed)
        raise


def parent_dir(path: str) -> str:
    """os.path.dirname for the normalized paths made here, at a fraction of its cost."""
    head, sep, _ = path.rpartition("/")
    return head or sep


def _index(
    execute: Execute,
    statements: tuple[_Hot, _Hot, _Hot],
    items: list[PreparedMessage],
    dialect: Dialect,
    lock_first: frozenset[int] = frozenset(),
) -> tuple[list[tuple[int, int, int, int, str, str]], list[tuple[str, str, str]],
           list[FolderChange]]:
    """Rows in, UIDs out; the renames to make: (tmp path, final path, its directory)."""
    lock, insert, update_folder = statements
    state: dict[int, list[int]] = {}
    touched: list[FolderChange] = []
    own = {item.folder_id for item in items}
    for fid in sorted(own | lock_first):  # lock_first: a merge's (LockFirst)
        found = execute(lock.sql, lock.make((fid,)), False)
        if fid not in own:
            continue
        if not found:
            raise FolderGone(f"folder {fid} no longer exists")
        locked = found[0]
        # next uid, modseq, count, size, unseen
        state[fid] = [int(locked[0]), int(locked[1]) + 1, 0, 0, 0]
        touched.append(FolderChange(int(locked[2]), fid, str(locked[3]), state[fid][1],
                                    "deliver"))
    make_row = insert.make
    threads = ThreadIndex(execute, dialect, held=own | lock_first)
    thread_ids = _resolve_threads(threads, items)
    keyword_maps: dict[str, KeywordLetters] = {}
    rows: list[Any] = []
    stored: list[tuple[int, int, int, int, str, str]] = []  # StoredMessage's fields
    moves: list[tuple[str, str, str]] = []
    latest: list[tuple[int, str, int]] = []
    for item, thread_id in zip(items, thread_ids, strict=True):
        folder_id = item.folder_id
        size = item.size
        st = state[folder_id]
        uid = st[0]
        st[0] = uid + 1
        st[2] += 1
        st[3] += size
        flags_text = item.flags_text
        bits = flag_bits(parse_flags(flags_text)) if flags_text else 0
        if not bits & SEEN_BIT:
            st[4] += 1
        filename = final_filename(item.base, uid, size)
        letters = item.letters
        if flags_text and len(letters) < len(flags_text.split()):
            # Keywords (an append's $Forwarded, a label): their letters come from the
            # folder's dovecot-keywords, which only this writer changes.
            keywords = keyword_maps.get(item.folder_dir)
            if keywords is None:
                keywords = keyword_maps[item.folder_dir] = KeywordLetters.load(
                    Path(item.folder_dir))
            letters = keywords.letters_of(parse_flags(flags_text), add=True)
        # Plain strings: folder_dir is a normalized path (str of a Path).
        directory = item.folder_dir + ("/new" if item.in_new else "/cur")
        path = directory + "/" + disk_name(filename, letters, item.in_new)
        columns = item.columns
        rows.append(make_row((folder_id, uid, st[1], filename, item.in_new, flags_text, bits,
                              st[1], size, item.internal_date, *columns[:_THREAD_SLOT],
                              thread_id, *columns[_THREAD_SLOT + 1:])))
        latest.append((folder_id, thread_id, int(columns[_DATE_SLOT])))
        stored.append((item.account_id, folder_id, uid, size, item.base, path))
        moves.append((item.tmp_path, path, directory))
    for keywords in keyword_maps.values():
        keywords.save()  # before any file carries the new letters
    execute(insert.sql, rows, True)
    threads.added(latest)
    make_update = update_folder.make
    execute(
        update_folder.sql,
        [make_update((st[0], st[1], st[2], st[4], st[3], fid)) for fid, st in state.items()],
        True,
    )
    return stored, moves, touched


def _resolve_threads(threads: ThreadIndex, items: list[PreparedMessage]) -> list[str]:
    """Each item's thread id, from the thread keys it carries."""
    accounts = {item.account_id for item in items}
    if len(accounts) == 1:
        return threads.resolve(items[0].account_id,
                               [str(item.columns[_THREAD_SLOT]) for item in items])
    out: dict[int, str] = {}
    for account_id in sorted(accounts):
        mine = [item for item in items if item.account_id == account_id]
        tids = threads.resolve(account_id, [str(item.columns[_THREAD_SLOT]) for item in mine])
        out.update(zip(map(id, mine), tids, strict=True))
    return [out[id(item)] for item in items]


def _unchanged(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return values


def _undo(renamed: list[tuple[str, str]]) -> None:
    directories: set[str] = set()
    for published, tmp in reversed(renamed):
        directories.add(parent_dir(published))
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
