"""Reconcile one folder's rows with its files (start-up repair and dbsync).

The files are the truth; the UID map is `U=` in each name plus the folder's
`nmail-uidvalidity`. Work is split in two: reading and summarizing files
that have no row happens in the caller's thread without locks; deciding and
changing happens on the writer thread under the folder's write lock, after
listing the directory again, because deliveries rename files into new/ only
while they hold that lock.

UID rules, under the lock:
- a row whose file is still there keeps its UID;
- a file without a row keeps its `U=` if no kept row has it and it is not
  below the folder's next UID (IMAP clients fetch only UIDs above the last
  they saw); otherwise, or without `U=`, it gets a fresh UID above all others
  and is renamed to carry it. Of two files claiming one UID the later name
  (names start with the delivery time) gets the new one;
- with no folder row and no `nmail-uidvalidity`, a new UIDVALIDITY is chosen
  and every file numbered afresh.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from nmail.db.tables import folders, messages
from nmail.durable import fsync_dir
from nmail.mailstore.folderscan import (
    DiskFile,
    FileFacts,
    read_facts,
    scan_messages,
    to_crlf,
)
from nmail.mailstore.keywords import KeywordLetters
from nmail.mailstore.layout import UidState, read_uid_state, write_uid_state
from nmail.mailstore.lock_order import LockFirst
from nmail.mailstore.messagefile import write_durably
from nmail.mailstore.model import DEFAULT_ROLES, SyncCounts
from nmail.mailstore.names import (
    SEEN_BIT,
    digest_base,
    disk_name,
    final_filename,
    flag_bits,
    format_flags,
    is_clean_base,
    merge_letters,
    parse_flags,
)
from nmail.mailstore.thread_index import ThreadIndex
from nmail.mailstore.thread_sweep import forget_gone
from nmail.mailstore.write_lock import write_transaction


@dataclass(frozen=True, slots=True)
class FolderTarget:
    account_id: int
    name: str
    path: Path  # the folder directory (Maildir or Maildir/.<name>)


def new_uidvalidity(now: float, previous: int = 0) -> int:
    """A UIDVALIDITY (32-bit, non-zero) that differs from `previous`."""
    value = max(int(now), previous + 1, 1)
    return value if value < 2**32 else 1


def _flag_mismatch(disk: DiskFile, in_new: bool, flags_text: str,
                   letters: KeywordLetters) -> bool:
    if disk.in_new != in_new:
        return True
    return not in_new and letters.letters_of(parse_flags(flags_text)) != disk.parsed.letters


@dataclass(frozen=True, slots=True)
class FolderIndex:
    """What the index holds for one folder, read without locks."""

    folder_id: int
    uidvalidity: int
    entries: dict[str, tuple[bool, str]]  # filename -> (in_new, flags)


def load_account_index(conn: Connection, account_id: int) -> dict[str, FolderIndex]:
    """Every folder of the account with its rows' filenames: two queries in all."""
    found = {
        str(name): FolderIndex(int(fid), int(validity), {})
        for fid, name, validity in conn.execute(
            select(folders.c.id, folders.c.name, folders.c.uidvalidity).where(
                folders.c.account_id == account_id
            )
        )
    }
    by_id = {f.folder_id: f for f in found.values()}
    if by_id:
        for fid, filename, in_new, flags_text in conn.execute(
            select(messages.c.folder_id, messages.c.filename, messages.c.in_new,
                   messages.c.flags).where(messages.c.folder_id.in_(list(by_id)))
        ):
            by_id[fid].entries[filename] = (bool(in_new), flags_text)
    return found


def prescan(
    target: FolderTarget, index: FolderIndex | None, *, full: bool
) -> tuple[bool, int, dict[str, FileFacts]]:
    """Without locks: (work needed?, rows seen, facts of files that have no row)."""
    disk = scan_messages(target.path)
    indexed = index.entries if index is not None else {}
    rowless = [f for name, f in disk.items() if name not in indexed]
    work = index is None or bool(rowless)
    if index is not None and not work:
        state = read_uid_state(target.path)
        work = state is None or state.uidvalidity != index.uidvalidity
    if not work and full:
        letters = KeywordLetters.load(target.path)
        work = any(name not in disk for name in indexed) or any(
            _flag_mismatch(disk[name], in_new, flags_text, letters)
            for name, (in_new, flags_text) in indexed.items()
        )
    facts: dict[str, FileFacts] = {}
    for f in rowless:
        got = read_facts(target.path / f.sub / f.parsed.name)
        if got is not None:
            facts[f.parsed.name] = got
    return work, len(indexed), facts


class _Apply:
    """The locked half: one call, one transaction, on the writer thread."""

    def __init__(self, conn: Connection, target: FolderTarget, facts: dict[str, FileFacts],
                 full: bool, now: float, lock_first: frozenset[int] = frozenset()) -> None:
        self.conn = conn
        self.target = target
        self.facts = facts
        self.full = full
        self.now = now
        self.letters = KeywordLetters.load(target.path)
        self.lock_first = lock_first  # other folders a merge changes (LockFirst)

    def run(self) -> SyncCounts:
        with write_transaction(self.conn):
            return self._run()

    def _run(self) -> SyncCounts:
        conn, target = self.conn, self.target
        if self.lock_first:
            # With the folder's own row, in id order: a merge of this step needs them.
            own = conn.execute(select(folders.c.id).where(
                folders.c.account_id == target.account_id, folders.c.name == target.name)
            ).scalars().all()
            conn.execute(select(folders.c.id).where(folders.c.id.in_(
                sorted(self.lock_first.union(own)))).order_by(folders.c.id).with_for_update()
            ).all()
        row = conn.execute(
            select(folders.c.id, folders.c.uidvalidity, folders.c.next_uid,
                   folders.c.highest_modseq)
            .where(folders.c.account_id == target.account_id, folders.c.name == target.name)
            .with_for_update()
        ).first()
        state = read_uid_state(target.path)
        renumber_all = False
        if row is None:
            if state is None:
                uidvalidity, renumber_all = new_uidvalidity(self.now), True
            else:
                uidvalidity = state.uidvalidity
            floor, next_uid, modseq = 0, state.next_uid if state else 1, 1
            folder_id = int(conn.execute(
                insert(folders).values(
                    account_id=target.account_id, name=target.name, uidvalidity=uidvalidity,
                    next_uid=1, highest_modseq=1, names_modseq=1, message_count=0, total_size=0,
                    unseen_count=0, subscribed=True, role=DEFAULT_ROLES.get(target.name),
                )
            ).inserted_primary_key[0])  # type: ignore[index]
        else:
            folder_id, uidvalidity = int(row.id), int(row.uidvalidity)
            floor = next_uid = int(row.next_uid)
            modseq = int(row.highest_modseq)
        modseq += 1

        disk = scan_messages(target.path)
        rows = conn.execute(
            select(messages.c.id, messages.c.uid, messages.c.filename, messages.c.in_new,
                   messages.c.flags, messages.c.thread_id).where(messages.c.folder_id == folder_id)
        ).all()
        counts = SyncCounts()
        claimed: set[int] = set()
        gone: list[int] = []
        gone_threads: set[str] = set()
        flag_updates: list[dict[str, Any]] = []
        for r in rows:
            found = disk.get(r.filename)
            if found is None and self.full:
                gone.append(int(r.id))
                gone_threads.add(str(r.thread_id))
                continue
            claimed.add(int(r.uid))
            if found is None:
                continue
            counts += SyncCounts(kept=1)
            if self.full and _flag_mismatch(found, bool(r.in_new), r.flags, self.letters):
                flags = merge_letters(parse_flags(r.flags), found.parsed.letters, self.letters)
                flag_updates.append({"b_id": r.id, "b_flags": format_flags(flags),
                                     "b_bits": flag_bits(flags),
                                     "b_in_new": found.in_new, "b_modseq": modseq})
        known = {r.filename for r in rows}
        rowless = sorted((f for name, f in disk.items() if name not in known),
                         key=lambda f: f.parsed.filename)
        uids, renumbered = self._assign(rowless, claimed, floor, next_uid, renumber_all)
        new_rows = [
            made for f in rowless
            if (made := self._index_file(f, uids[f.parsed.filename], folder_id, modseq))
        ]
        for start in range(0, len(gone), 500):
            conn.execute(delete(messages).where(messages.c.id.in_(gone[start:start + 500])))
        if flag_updates:
            conn.execute(
                update(messages).where(messages.c.id == bindparam("b_id")).values(
                    flags=bindparam("b_flags"), sysflags=bindparam("b_bits"),
                    in_new=bindparam("b_in_new"), modseq=bindparam("b_modseq"),
                ),
                flag_updates,
            )
        threads = ThreadIndex.on(conn, held={folder_id, *self.lock_first})
        if new_rows:
            # Rows made from files carry thread keys: linked like a delivery's.
            tids = threads.resolve(target.account_id, [str(r["thread_id"]) for r in new_rows])
            for made, tid in zip(new_rows, tids, strict=True):
                made["thread_id"] = tid
            conn.execute(messages.insert(), new_rows)
        threads.refresh((folder_id, tid)
                        for tid in gone_threads | {str(r["thread_id"]) for r in new_rows})
        forgotten = forget_gone(conn, target.account_id, gone_threads)  # emptied conversations
        changed = bool(gone or flag_updates or new_rows)
        top = max([next_uid - 1, *claimed, *(r["uid"] for r in new_rows)])
        # Repair and dbsync may count: they set the counters every other write keeps.
        count, size = conn.execute(
            select(func.count(), func.coalesce(func.sum(messages.c.size), 0)).where(
                messages.c.folder_id == folder_id
            )
        ).one()
        unseen = conn.execute(
            select(func.count()).where(messages.c.folder_id == folder_id,
                                       messages.c.sysflags.op("&")(SEEN_BIT) == 0)
        ).scalar_one()
        conn.execute(
            update(folders).where(folders.c.id == folder_id).values(
                next_uid=top + 1,
                highest_modseq=modseq if changed else modseq - 1,
                message_count=int(count),
                unseen_count=int(unseen),
                total_size=int(size),
            )
        )
        if state is None or state.uidvalidity != uidvalidity or state.next_uid < top + 1:
            write_uid_state(target.path, UidState(uidvalidity, top + 1))
        added = len(new_rows)
        return counts + SyncCounts(added=added, removed=len(gone), renumbered=renumbered,
                                   flags=len(flag_updates), forgotten=forgotten)

    def _assign(
        self, rowless: list[DiskFile], claimed: set[int], floor: int, next_uid: int,
        renumber_all: bool,
    ) -> tuple[dict[str, int], int]:
        """UID for each file without a row, and how many lost the UID they carried."""
        uids: dict[str, int] = {}
        fresh: list[DiskFile] = []
        if renumber_all:
            order = sorted(rowless, key=lambda f: (f.parsed.uid is None, f.parsed.uid or 0,
                                                   f.parsed.filename))
            for number, f in enumerate(order, start=1):
                uids[f.parsed.filename] = number
            return uids, sum(1 for f in rowless if f.parsed.uid is not None)
        renumbered = 0
        with_uid = sorted((f for f in rowless if f.parsed.uid is not None),
                          key=lambda f: (f.parsed.uid, f.parsed.filename))
        for f in with_uid:
            uid = f.parsed.uid
            assert uid is not None
            if uid >= floor and uid not in claimed:
                uids[f.parsed.filename] = uid
                claimed.add(uid)
            else:
                fresh.append(f)
                renumbered += 1
        fresh.extend(f for f in rowless if f.parsed.uid is None)
        nxt = max(next_uid, max(claimed, default=0) + 1)
        for f in fresh:
            uids[f.parsed.filename] = nxt
            nxt += 1
        return uids, renumbered

    def _index_file(self, f: DiskFile, uid: int, folder_id: int,
                    modseq: int) -> dict[str, Any] | None:
        """Give one file its final name (and CRLF) and return its row; None if it vanished."""
        directory = self.target.path / f.sub
        path = directory / f.parsed.name
        facts = self.facts.get(f.parsed.name) or read_facts(path)
        if facts is None:
            return None
        base = f.parsed.base if is_clean_base(f.parsed.base) else digest_base(f.parsed.base)
        filename = final_filename(base, uid, facts.size)
        flags = self.letters.flags_of(f.parsed.letters)
        letters = self.letters.letters_of(flags)
        final = directory / disk_name(filename, letters, f.in_new)
        if final != path:
            os.rename(path, final)
        if facts.needs_crlf:
            self._rewrite_crlf(final, facts.internal_date)
        if final != path or facts.needs_crlf:
            fsync_dir(directory)
        row = dict(facts.columns)
        row.update(folder_id=folder_id, uid=uid, modseq=modseq, created_modseq=modseq,
                   filename=filename, in_new=f.in_new, flags=format_flags(flags),
                   sysflags=flag_bits(flags), size=facts.size,
                   internal_date=facts.internal_date)
        return row

    def _rewrite_crlf(self, path: Path, mtime: int) -> None:
        # Renamed first, then replaced whole: at every moment exactly one file exists.
        data = to_crlf(path.read_bytes())
        tmp = self.target.path / "tmp" / f"{path.name.split(':', 1)[0]}.crlf"
        write_durably(tmp, (data,), mtime)
        os.replace(tmp, path)


def apply(conn: Connection, target: FolderTarget, facts: dict[str, FileFacts], *,
          full: bool, now: float) -> SyncCounts:
    """Reconcile under the write lock (call on the writer thread).

    Run again, with more folders locked first, when a conversation merge
    needs a folder below the one it holds (lock_order.LockFirst); what the
    run before renamed is found again (`_index_file` reads a file facts
    do not name).
    """
    lock_first = frozenset[int]()
    while True:
        try:
            return _Apply(conn, target, facts, full, now, lock_first).run()
        except LockFirst as exc:
            lock_first |= exc.folder_ids
