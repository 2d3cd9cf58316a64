"""Conversations in the index: thread ids from msg-id links, and the per-folder list.

A message's thread keys (mime.threads.thread_keys: its root, nearest
ancestors, In-Reply-To and own Message-ID, each hashed to 16 hex digits) are
looked up in `thread_links`, per account. No key known: the message starts
a conversation named by the time it began (12 hex digits: the second, then
1/65,536ths of it) and its first key (its root); every key is linked to it,
so a reply that arrives before its parent starts the thread the parent then
finds by its own id. One conversation known: the message joins it. Several: a message linking two
threads merges them (the smaller id, the older thread, wins; the others'
messages and links are renamed, rare and bounded by the account's size).
Every key is then linked, so later messages find the thread by any id the
conversation ever named. (Ids made before the time prefix, by migration
0013 and until this change, are the root's key alone: any id is opaque.)
This is the union of JWZ threading by references without its tree: the
webmail shows a conversation flat, by date, as Gmail does.

Decisions (docs/ARCHITECTURE.md, "Conversations"): no subject joining of
messages that carry ids (Gmail also splits a thread whose subject differs;
"안녕하세요" and "Invoice" would join strangers); a message without any
msg-id is threaded by its base subject (mime.threads). Threads are per
account, not per folder, so a copy or a move keeps its thread id (a reply
in Sent and its parent in INBOX are one thread); the conversation list is
per folder, as Roundcube's, from `folder_threads`: one row per thread with
messages in the folder and its newest date, kept by every write that adds
or removes messages in the same transaction (`refresh`: deleted and re-read
from the thread's messages; deliveries `added`: one upsert raising the
date, as rows only came), so the first page
of a 100,000-message folder is an index walk, not a GROUP BY of the folder.

Why the time prefix: three indexes are keyed by thread id, and with ids
that are hashes every new conversation put its entries at a random place
in each, one page apiece: a group commit of 8 new conversations wrote 63
WAL pages, 40 of them for the conversation tables, and each page costs the
index writer a checksum, two write(2)s and later a checkpoint copy (the
writer is the process every `250` waits for). With ids that grow, a new
conversation's entries land at the end of its folder's (or account's)
range: 44 pages for the same commit. Named by the second alone, the
conversations begun in one second (some thousand under an inbound burst)
still went in at random places within that second's range, a page apiece
in each of the four b-trees keyed by thread id; with the second's
1/65,536ths after it (12 digits, the first 8 still the second), a commit's
new conversations land together at the end: 49.8 -> 36.6 WAL pages per commit
of 8 (bench/writer_instructions.py, 2,000 messages a second). A reply still
lands where its thread is, and `thread_links`' key (a hash of a msg-id)
stays random: one page a message, the price of finding a thread by any id
it named.
On SQLite both tables are WITHOUT ROWID (migration 0016): read and written
by their primary key only, a rowid table kept each row twice (the table and
its key's index), two b-tree inserts per new conversation where one does:
1.3% fewer instructions and one page less per commit of 8.

Statements are compiled once per dialect and run through a `Run` callable
(raw driver SQL), so the delivery path, which runs on the driver directly,
and the SQLAlchemy paths share them. The lookup binds only the keys it
holds (widths 1-64, padded to the next power of two): padded to 64 for
every batch it cost 15% of the writer's instructions per message.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Dialect

from nmail.db.tables import folder_threads, folders, messages, thread_links
from nmail.mailstore.lock_order import LockFirst
from nmail.mime.threads import KEY_LENGTH

# run(sql, parameters, many) -> every row (many=False) or None (many=True)
Run = Callable[[str, Any, bool], Any]
LOOKUP_WIDTH = 64  # keys per lookup statement at most
LOOKUP_WIDTHS = (1, 2, 4, 8, 16, 32, LOOKUP_WIDTH)  # the compiled widths (padded up to one)
CHUNK = 500


@dataclass(slots=True)
class Plan:
    """What resolving a batch decided: each message's thread, links to add, merges."""

    thread_ids: list[str]
    new_links: dict[str, str] = field(default_factory=dict)  # key -> thread id
    merged: dict[str, str] = field(default_factory=dict)  # loser -> winner (final)


_HEX_DIGITS = frozenset("0123456789abcdef")


PREFIX_LENGTH = 12
_TICKS = 1 << 16  # a prefix's units in a second


def new_thread_prefix(now: float) -> str:
    """What starts the ids of threads begun at `now`: its time in 1/65,536ths of a
    second, 12 hex digits, the first 8 its second (ids that grow with time: see
    the module's text)."""
    return f"{max(0, min(int(now * _TICKS), (1 << 4 * PREFIX_LENGTH) - 1)):012x}"


def split_keys(text: str) -> list[str]:
    """The well-formed keys of a thread_id slot (16 hex digits each), in order."""
    keys: list[str] = []
    for key in text.split():
        if len(key) == KEY_LENGTH and key not in keys and _HEX_DIGITS.issuperset(key):
            keys.append(key)
    return keys


def plan(known: dict[str, str], key_lists: list[list[str]], prefix: str = "") -> Plan:
    """Threads for messages in arrival order, given the links already known.

    Pure: `known` (key -> thread id) is updated in place as the messages link.
    A new thread is named `prefix` + its first key; a message without keys
    gets a thread of its own (`prefix` + random digits).
    """
    merged: dict[str, str] = {}

    def final(tid: str) -> str:
        while tid in merged:
            tid = merged[tid]
        return tid

    out = Plan([])
    for keys in key_lists:
        if not keys:
            out.thread_ids.append(prefix + secrets.token_hex(KEY_LENGTH // 2))
            continue
        found = {final(known[k]) for k in keys if k in known}
        tid = min(found) if found else prefix + keys[0]
        for loser in found - {tid}:
            merged[loser] = tid
        for key in keys:
            if key not in known:
                out.new_links[key] = tid
            known[key] = tid
        out.thread_ids.append(tid)
    out.thread_ids = [final(t) for t in out.thread_ids]
    out.new_links = {k: final(t) for k, t in out.new_links.items()}
    out.merged = {loser: final(loser) for loser in merged}
    for key, tid in known.items():
        known[key] = final(tid)
    return out


@dataclass(frozen=True, slots=True)
class _Sql:
    """A statement compiled once per dialect; `make` turns values given in the
    order named at compile time into the driver's parameters (on SQLite the
    values themselves: no dict per row)."""

    sql: str
    make: Callable[[tuple[Any, ...]], Any]


def _compile(dialect: Dialect, stmt: Any, order: tuple[str, ...]) -> _Sql:
    compiled = stmt.compile(dialect=dialect)
    positional = compiled.positional and compiled.positiontup
    if not positional:
        return _Sql(compiled.string, lambda values: dict(zip(order, values, strict=True)))
    if tuple(positional) == order:
        return _Sql(compiled.string, _same)
    indexes = [order.index(key) for key in positional]
    return _Sql(compiled.string, lambda values: tuple([values[i] for i in indexes]))


def _same(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return values


def _insert_ignoring(dialect: Dialect) -> Any:
    """An insert of links that skips keys another node linked meanwhile."""
    values: dict[str, Any] = {"account_id": bindparam("a"), "link_key": bindparam("k"),
              "thread_id": bindparam("t")}
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(thread_links).values(values).on_conflict_do_nothing()
    if dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        return sqlite_insert(thread_links).values(values).on_conflict_do_nothing()
    return insert(thread_links).values(values).prefix_with("IGNORE")


def _upsert_latest(dialect: Dialect) -> Any:
    """A conversation row made, or its newest date raised (messages were added)."""
    values: dict[str, Any] = {"folder_id": bindparam("f"), "thread_id": bindparam("t"),
              "latest_date": bindparam("d")}
    latest = folder_threads.c.latest_date
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        pg = pg_insert(folder_threads).values(values)
        return pg.on_conflict_do_update(
            index_elements=["folder_id", "thread_id"],
            set_={"latest_date": func.greatest(latest, pg.excluded.latest_date)})
    if dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        lite = sqlite_insert(folder_threads).values(values)
        return lite.on_conflict_do_update(
            index_elements=["folder_id", "thread_id"],
            set_={"latest_date": func.max(latest, lite.excluded.latest_date)})
    from sqlalchemy.dialects.mysql import insert as mysql_insert
    my = mysql_insert(folder_threads).values(values)
    return my.on_duplicate_key_update(latest_date=func.greatest(latest, my.inserted.latest_date))


_account_folders = select(folders.c.id).where(folders.c.account_id == bindparam("a"))


@dataclass(frozen=True, slots=True)
class _Statements:
    lookups: dict[int, _Sql]  # by width (LOOKUP_WIDTHS): (a, k0, k1...)
    link: _Sql  # (a, k, t)
    raise_latest: _Sql  # (f, t, d)
    clear: _Sql  # (f, t)
    fill: _Sql  # (f, t)
    merge_messages: _Sql  # (a, l, w), and the three below
    merge_links: _Sql
    merge_folders: _Sql
    merge_clear: _Sql
    lock_folder: _Sql  # (f)


_cache: dict[tuple[str, str], _Statements] = {}


def _lookup(dialect: Dialect, width: int) -> _Sql:
    t = thread_links.c
    names = tuple(f"k{i}" for i in range(width))
    return _compile(dialect, select(t.link_key, t.thread_id).where(
        t.account_id == bindparam("a"), t.link_key.in_([bindparam(k) for k in names])),
        ("a", *names))


def _statements(dialect: Dialect) -> _Statements:
    key = (dialect.name, str(dialect.paramstyle))
    found = _cache.get(key)
    if found is not None:
        return found
    t, m, ft = thread_links.c, messages.c, folder_threads.c
    same_thread = (ft.folder_id == bindparam("f"), ft.thread_id == bindparam("t"))
    merge = ("a", "l", "w")
    made = _Statements(
        lookups={width: _lookup(dialect, width) for width in LOOKUP_WIDTHS},
        link=_compile(dialect, _insert_ignoring(dialect), ("a", "k", "t")),
        raise_latest=_compile(dialect, _upsert_latest(dialect), ("f", "t", "d")),
        clear=_compile(dialect, delete(folder_threads).where(*same_thread), ("f", "t")),
        fill=_compile(dialect, insert(folder_threads).from_select(
            ["folder_id", "thread_id", "latest_date"],
            # ix_messages_thread covers it: a range of the thread's entries.
            select(m.folder_id, m.thread_id, func.max(m.date)).where(
                m.folder_id == bindparam("f"), m.thread_id == bindparam("t"))
            .group_by(m.folder_id, m.thread_id)), ("f", "t")),
        merge_messages=_compile(dialect, update(messages).where(
            m.thread_id == bindparam("l"), m.folder_id.in_(_account_folders))
            .values(thread_id=bindparam("w")), merge),
        merge_links=_compile(dialect, update(thread_links).where(
            t.account_id == bindparam("a"), t.thread_id == bindparam("l"))
            .values(thread_id=bindparam("w")), merge),
        merge_folders=_compile(dialect, select(ft.folder_id).where(
            ft.thread_id == bindparam("l"), ft.folder_id.in_(_account_folders)), merge),
        merge_clear=_compile(dialect, delete(folder_threads).where(
            ft.thread_id == bindparam("l"), ft.folder_id.in_(_account_folders)), merge),
        lock_folder=_compile(dialect, select(folders.c.id).where(
            folders.c.id == bindparam("f")).with_for_update(), ("f",)),
    )
    _cache[key] = made
    return made


class ThreadIndex:
    """Thread ids and the folder conversation list, inside a writer's transaction."""

    def __init__(self, run: Run, dialect: Dialect, clock: Callable[[], float] = time.time,
                 held: set[int] | None = None) -> None:
        """`held`: the folders whose rows the transaction has locked. A merge
        then locks only folders above them, and raises LockFirst for any below
        (the lock order). On SQLite, or without `held`, it locks what it needs."""
        self._run = run
        self._sql = _statements(dialect)
        self._clock = clock
        self._held = held if dialect.name != "sqlite" else None

    @classmethod
    def on(cls, conn: Connection, clock: Callable[[], float] = time.time,
           held: set[int] | None = None) -> ThreadIndex:
        """For the SQLAlchemy write paths (in their transaction)."""

        def run(sql: str, params: Any, many: bool) -> Any:
            result = conn.exec_driver_sql(sql, params)
            if many:
                return None
            return result.all() if result.returns_rows else []

        return cls(run, conn.dialect, clock, held)

    def resolve(self, account_id: int, key_texts: list[str]) -> list[str]:
        """The thread id of each message (its keys as text), linking and merging."""
        key_lists = [split_keys(text) for text in key_texts]
        wanted = sorted({k for keys in key_lists for k in keys})
        known: dict[str, str] = {}
        lookups = self._sql.lookups
        run = self._run
        for start in range(0, len(wanted), LOOKUP_WIDTH):
            chunk = wanted[start:start + LOOKUP_WIDTH]
            # The narrowest statement that holds the chunk, padded with its first key:
            # a few compiled statements, and no 64 values to bind for one message.
            width = next(w for w in LOOKUP_WIDTHS if w >= len(chunk))
            lookup = lookups[width]
            values = (account_id, *chunk, *[chunk[0]] * (width - len(chunk)))
            for row in run(lookup.sql, lookup.make(values), False):
                known[row[0]] = row[1]
        made = plan(known, key_lists, new_thread_prefix(self._clock()))
        merges = [(loser, winner, self._merge_folders(account_id, loser, winner))
                  for loser, winner in sorted(made.merged.items())]
        if merges:
            self._lock_folders({f for _, _, folder_ids in merges for f in folder_ids})
        if made.new_links:
            link = self._sql.link
            make = link.make
            run(link.sql, [make((account_id, k, t)) for k, t in sorted(made.new_links.items())],
                True)
        for loser, winner, folder_ids in merges:
            self._merge(account_id, loser, winner, folder_ids)
        return made.thread_ids

    def _merge_folders(self, account_id: int, loser: str, winner: str) -> list[int]:
        """The folders holding the loser's conversation rows: the merge changes them."""
        sql = self._sql.merge_folders
        return sorted({int(r[0]) for r in self._run(
            sql.sql, sql.make((account_id, loser, winner)), False)})

    def _lock_folders(self, wanted: set[int]) -> None:
        """Lock the folders the merges change, before their rows and the links.

        Unlocked, the merge wrote the loser's messages and conversation rows in
        folders the transaction did not hold (a conversation row's insert takes
        the folder row's KEY SHARE), and deadlocked with dbsync holding one of
        them. Locked after the transaction's own folders, one with a lower id
        broke the id order and deadlocked with any writer of both (it takes
        the lower first): the transaction runs again with it locked first
        (LockFirst). (docs/ARCHITECTURE.md "Lock order", tests/test_lock_order.py.)
        """
        held = self._held
        missing = sorted(wanted if held is None else wanted - held)
        if held is not None and held and missing and missing[0] < max(held):
            raise LockFirst(missing)
        sql = self._sql.lock_folder
        for folder_id in missing:
            self._run(sql.sql, sql.make((folder_id,)), False)
        if held is not None:
            held.update(missing)

    def _merge(self, account_id: int, loser: str, winner: str, folder_ids: list[int]) -> None:
        sql = self._sql
        values = (account_id, loser, winner)
        self._run(sql.merge_messages.sql, sql.merge_messages.make(values), False)
        self._run(sql.merge_links.sql, sql.merge_links.make(values), False)
        self._run(sql.merge_clear.sql, sql.merge_clear.make(values), False)
        self.refresh((f, winner) for f in folder_ids)

    def added(self, rows: Iterable[tuple[int, str, int]]) -> None:
        """Conversation rows for messages just added: (folder, thread, date) each.

        One upsert per conversation instead of refresh's delete and re-read
        (the delivery path: half the statements, no read of the thread).
        """
        newest: dict[tuple[int, str], int] = {}
        for folder_id, tid, date in rows:
            key = (folder_id, tid)
            if date > newest.get(key, date - 1):
                newest[key] = date
        if not newest:
            return
        sql = self._sql.raise_latest
        make = sql.make
        self._run(sql.sql, [make((f, t, d)) for (f, t), d in sorted(newest.items())], True)

    def refresh(self, pairs: Iterable[tuple[int, str]]) -> None:
        """Make each (folder, thread)'s conversation row match its messages."""
        todo = sorted(set(pairs))
        sql = self._sql
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            self._run(sql.clear.sql, [sql.clear.make(v) for v in chunk], True)
            self._run(sql.fill.sql, [sql.fill.make(v) for v in chunk], True)
