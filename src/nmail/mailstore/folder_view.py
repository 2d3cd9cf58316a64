"""A folder opened once: the one object POP3, IMAP and the webmail work a folder through.

`MailStore.open_folder(account_id, name)` resolves the account's Maildir and
the folder's id once; the view then reads through the index (pages in any
sort, summaries by UID set or sequence range, changes since a MODSEQ) and
the files (whole, header, one MIME part), and sends its changes (flags,
copy, move, expunge) to the index writer as typed operations
(operations.py), waiting for their commit. A view holds no lock and no
connection; the folder's state as of opening (or the last refresh()) is
`info`, and UID sets are checked against its UIDNEXT.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from nmail.db.tables import folders
from nmail.mailstore import folder_reads
from nmail.mailstore.folder_names import check_name
from nmail.mailstore.message_parts import find_part, split_header
from nmail.mailstore.messagefile import locate
from nmail.mailstore.model import (
    SORT_KEYS,
    BadFlag,
    BadUidSet,
    ChangeSet,
    CopyResult,
    FlagChange,
    FlagMode,
    FolderInfo,
    MessageRef,
    MessageRow,
    NoSuchFolder,
    SortKey,
    StoreError,
)
from nmail.mailstore.names import normalize_flags
from nmail.mailstore.op_rows import folder_path
from nmail.mailstore.operations import CopyMessages, ExpungeMessages, Operation, StoreFlags
from nmail.mailstore.uidset import UidSet

MAX_PAGE = 1000
RunOperation = Callable[[Operation], Any]


class FolderView:
    """One folder of one account, ids resolved; reads here, writes through the writer."""

    def __init__(self, engine: Engine, run: RunOperation, account_id: int, maildir: str,
                 info: FolderInfo, *, keep_tombstones: int) -> None:
        self._engine = engine
        self._run = run
        self.account_id = account_id
        self.maildir = maildir
        self.info = info
        self._keep_tombstones = keep_tombstones

    @property
    def folder_id(self) -> int:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def path(self) -> Path:
        return folder_path(self.maildir, self.info.name)

    def refresh(self) -> FolderInfo:
        """Read the folder's status again (counts, UIDNEXT, HIGHESTMODSEQ, its name)."""
        from nmail.mailstore.op_folders import info_of

        with self._engine.connect() as conn:
            row = conn.execute(select(folders).where(folders.c.id == self.info.id)).first()
        if row is None or int(row.account_id) != self.account_id:
            raise NoSuchFolder(f"folder {self.info.name!r} no longer exists")
        self.info = info_of(row)
        return self.info

    # -- UID sets ------------------------------------------------------------------

    def uid_set(self, text: str) -> UidSet:
        """`text` in IMAP syntax ("1:5,7,9:*") against this folder's UIDNEXT."""
        return UidSet.parse(text, uid_next=self.info.next_uid)

    def uids(self) -> list[int]:
        """Every UID, ascending: message sequence number n is uids()[n - 1]."""
        with self._engine.connect() as conn:
            return folder_reads.uids(conn, self.info.id)

    def sequence_range(self, first: int, last: int) -> UidSet:
        """The UIDs of sequence numbers first..last (1-based, inclusive)."""
        everything = self.uids()
        if type(first) is not int or type(last) is not int or not 0 < first <= last:
            raise BadUidSet(f"bad sequence range {first!r}:{last!r}")
        if last > len(everything):
            raise BadUidSet(f"sequence number {last} is past the last message "
                            f"({len(everything)})")
        return UidSet.of(everything[first - 1:last])

    # -- reading -----------------------------------------------------------------

    def summaries(self, uids: UidSet) -> list[MessageRow]:
        """The listing rows of the UIDs that exist, ascending UID."""
        with self._engine.connect() as conn:
            return folder_reads.summaries(conn, self.info.id, uids.ranges)

    def page(self, sort: SortKey = "date", *, descending: bool = True, offset: int = 0,
             limit: int = 50) -> list[MessageRow]:
        """A page of the folder in `sort` order ("date", "arrival", "from", "subject", "size")."""
        if sort not in SORT_KEYS:
            raise StoreError(f"unknown sort {sort!r} (one of {', '.join(SORT_KEYS)})")
        if type(offset) is not int or type(limit) is not int or offset < 0 or \
                not 0 <= limit <= MAX_PAGE:
            raise StoreError(f"offset must be >= 0 and limit 0..{MAX_PAGE}")
        with self._engine.connect() as conn:
            return folder_reads.page(conn, self.info.id, sort, descending, offset, limit)

    def refs(self) -> list[MessageRef]:
        """UID, size, UIDL and flags of every message, ascending UID (POP3's listing)."""
        with self._engine.connect() as conn:
            return folder_reads.refs(conn, self.info.id)

    def message_path(self, uid: int) -> Path | None:
        """The message's file wherever flags moved it; None if there is none."""
        with self._engine.connect() as conn:
            found = folder_reads.location(conn, self.info.id, uid)
        if found is None:
            return None
        return locate(self.path, *found)

    def open_message(self, uid: int) -> int | None:
        """A read-only descriptor of the message's file; None when it is gone."""
        for _ in range(3):
            path = self.message_path(uid)
            if path is None:
                return None
            try:
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # renamed by a flag change meanwhile: look again
        return None

    def read(self, uid: int) -> bytes | None:
        """The message as stored (trace headers included); None if it is gone."""
        fd = self.open_message(uid)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def read_header(self, uid: int) -> bytes | None:
        """The header block, its blank line included."""
        data = self.read(uid)
        return None if data is None else split_header(data).header

    def read_part(self, uid: int, section: str) -> bytes | None:
        """One MIME part's body as stored ("1", "2.1"); None if the message or part is not there."""
        data = self.read(uid)
        if data is None:
            return None
        try:
            part = find_part(data, section)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        return None if part is None else part.body

    def changes_since(self, modseq: int) -> ChangeSet:
        """New UIDs, changed flags and vanished UIDs after `modseq`."""
        if type(modseq) is not int or modseq < 0:
            raise StoreError(f"bad MODSEQ {modseq!r}")
        with self._engine.connect() as conn:
            return folder_reads.changes_since(conn, self.info.id, modseq)

    # -- changing (through the index writer) ----------------------------------------

    def store_flags(self, uids: UidSet, mode: FlagMode, flags: Iterable[str], *,
                    unchanged_since: int | None = None) -> FlagChange:
        """Set, add or remove `flags` on `uids` in one commit (UNCHANGEDSINCE optional)."""
        if mode not in ("set", "add", "remove"):
            raise StoreError(f"unknown flag mode {mode!r}")
        try:
            wanted = normalize_flags(tuple(flags))
        except ValueError as exc:
            raise BadFlag(str(exc)) from None
        if unchanged_since is not None and (type(unchanged_since) is not int
                                            or unchanged_since < 0):
            raise StoreError(f"bad UNCHANGEDSINCE {unchanged_since!r}")
        result: FlagChange = self._run(StoreFlags(
            self.account_id, self.maildir, self.info.id, _ranges(uids), mode,
            tuple(sorted(wanted)), unchanged_since or 0))
        return result

    def copy(self, uids: UidSet, target: str) -> CopyResult:
        """Copy `uids` to the account's folder `target`; COPYUID's mapping."""
        return self._transfer(uids, target, move=False)

    def move(self, uids: UidSet, target: str) -> CopyResult:
        """Move `uids` to `target` atomically; COPYUID's mapping."""
        return self._transfer(uids, target, move=True)

    def expunge(self, uids: UidSet) -> tuple[int, ...]:
        """Remove `uids` for good; the UIDs that were there, ascending."""
        result: tuple[int, ...] = self._run(ExpungeMessages(
            self.account_id, self.maildir, self.info.id, _ranges(uids), self._keep_tombstones))
        return result

    def _transfer(self, uids: UidSet, target: str, *, move: bool) -> CopyResult:
        name = check_name(target)
        with self._engine.connect() as conn:
            target_id = conn.execute(select(folders.c.id).where(
                folders.c.account_id == self.account_id, folders.c.name == name)).scalar()
        if target_id is None:
            raise NoSuchFolder(f"no folder {name!r}")
        result: CopyResult = self._run(CopyMessages(
            self.account_id, self.maildir, self.info.id, _ranges(uids), int(target_id), move))
        return result


def _ranges(uids: UidSet) -> tuple[tuple[int, int], ...]:
    if not isinstance(uids, UidSet):
        raise BadUidSet("UIDs must be given as a UidSet")
    return uids.ranges
