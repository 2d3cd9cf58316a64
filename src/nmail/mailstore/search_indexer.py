"""Filling the search index: a follower that catches up with the commits.

Not a step of the delivery commit: extracting a body's text (MIME parts,
charsets, HTML) costs a few hundred microseconds a message, and the index
writer is the one thread every delivery of the node waits on; one more
insert into a full-text index there would slow every SMTP `250`. A
follower instead reads what was committed, in batches, on a thread of its
own (`SearchFollower`, search_follower.py), woken by the change feed, and is only moments
behind; the bench (bench/search.py) measures that it keeps up.

What is left to do is found from the folders: each folder's
HIGHESTMODSEQ against the one the indexer last read (`search_folders`),
then the messages of that folder above it that have no index row. A
folder's modseq and its messages commit together, so nothing committed
below a HIGHESTMODSEQ can appear later; a flag change raises a message's
modseq but finds its row present, and costs nothing more. Expunged
messages leave the index with their rows (foreign key, search_sql).

`nmail dbsync` mends rather than rebuilds (`refresh`): it indexes every
message of its accounts that has no index row, whatever the folders' marks
say, after dropping the rows that were made for another message (their
account or folder is not the message's: on SQLite a message id can be
handed out again after the newest message is expunged). That costs index
reads; a rebuild read and parsed every message file again, minutes for a
large mailbox, on every run. `rebuild` stays for when every row is wrong
(`nmail dbsync --rebuild-search`, after an upgrade that makes terms anew).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from nmail.db.tables import folders, message_search, messages, search_folders
from nmail.mailstore.mailboxes import mailbox_by_id
from nmail.mailstore.messagefile import expected_path, locate
from nmail.mailstore.model import StoreError
from nmail.mailstore.search_sql import SearchRow, insert_rows, terms_value
from nmail.mailstore.search_terms import document_terms
from nmail.mailstore.write_lock import write_transaction
from nmail.mime.fields import read_header_block
from nmail.mime.parts import PART_FIELDS, iter_parts
from nmail.mime.preview import html_to_text
from nmail.mime.reading import body_text as part_text

log = logging.getLogger(__name__)

BATCH = 200  # messages per transaction
MAX_READ = 2 << 20  # bytes of a message file read for its text


@dataclass(frozen=True, slots=True)
class SearchRefresh:
    """What `refresh` did."""

    indexed: int  # messages that had no index row (or a stale one) and have one now
    stale: int  # rows dropped because they were made for another message


@dataclass(frozen=True, slots=True)
class _Folder:
    id: int
    account_id: int
    name: str
    highest_modseq: int
    indexed_modseq: int


def body_text(raw: bytes) -> str:
    """The text a message shows: its text/plain parts, else its first HTML part untagged.

    Only the MIME structure is read (not read_view's every header): this
    runs for every message delivered.
    """
    block = read_header_block(raw, PART_FIELDS)
    plain: list[str] = []
    html = None
    for part in iter_parts(raw, block.fields, block.body_start, len(raw)):
        if part.is_attachment:
            continue
        if part.content_type == "text/plain":
            plain.append(part_text(raw, part))
        elif part.content_type == "text/html" and html is None:
            html = part
    if plain:
        return "\n".join(plain)
    return html_to_text(part_text(raw, html)) if html is not None else ""


def _read_head(folder_dir: Path, row: Any) -> bytes | None:
    """Up to MAX_READ bytes of the row's message file; None when it is gone.

    The file is opened where the index says it is, and only looked for when
    it is not there (another tool moved it). A read of MAX_READ bytes would
    allocate (and return to the system) 2 MiB for each 10 KB message.
    """
    in_new = bool(row.in_new)
    path: Path | None = expected_path(folder_dir, row.filename, in_new, row.flags)
    for attempt in range(2):
        if path is None:
            return None
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                return handle.read(min(size, MAX_READ))
        except FileNotFoundError:
            if attempt == 0:
                path = locate(folder_dir, row.filename, in_new, row.flags)
        except OSError:
            return None
    return None  # expunged or renamed meanwhile: the headers still count


class SearchIndexer:
    """Indexes what was committed since last time; safe to run on several nodes."""

    def __init__(self, engine: Engine, mail_dir: Path) -> None:
        self._engine = engine
        self._mail_dir = Path(mail_dir)

    def catch_up(self, budget: int = BATCH * 5, folder_ids: Set[int] | None = None) -> int:
        """Index up to about `budget` messages; how many were indexed (< budget: done).

        `folder_ids`: look only at these folders (the feed said they changed);
        None: at every folder.
        """
        done = 0
        with self._engine.connect() as conn:
            for folder in self._behind(conn, folder_ids):
                cursor: tuple[int, int] | None = (folder.indexed_modseq, 0)
                while cursor is not None and done < budget:
                    count, cursor = self._folder_batch(conn, folder, cursor,
                                                       min(BATCH, budget - done))
                    done += count
                if done >= budget:
                    break
        return done

    def rebuild(self, account_ids: Sequence[int] | None = None) -> int:
        """Drop the index of these accounts (None: all) and make it again; messages indexed."""
        with self._engine.connect() as conn:
            chosen = select(folders.c.id)
            if account_ids is not None:
                chosen = chosen.where(folders.c.account_id.in_(list(account_ids)))
            folder_ids = [int(r[0]) for r in conn.execute(chosen)]
            conn.rollback()
            for start in range(0, len(folder_ids), 500):
                part = folder_ids[start:start + 500]
                with write_transaction(conn):
                    conn.execute(delete(search_folders).where(
                        search_folders.c.folder_id.in_(part)))
                    conn.execute(delete(message_search).where(
                        message_search.c.message_id.in_(
                            select(messages.c.id).where(messages.c.folder_id.in_(part)))))
        total = 0
        while (count := self.catch_up()) > 0:
            total += count
        return total

    def refresh(self, account_ids: Sequence[int] | None = None) -> SearchRefresh:
        """Mend the index of these accounts (None: all): rows made for another
        message dropped, every message without a row indexed, the folders'
        marks brought up to their HIGHESTMODSEQ."""
        indexed = 0
        with self._engine.connect() as conn:
            stale = self._drop_stale(conn, account_ids)
            chosen = select(folders.c.id, folders.c.account_id, folders.c.name,
                            folders.c.highest_modseq)
            if account_ids is not None:
                chosen = chosen.where(folders.c.account_id.in_(list(account_ids)))
            targets = [_Folder(int(r[0]), int(r[1]), str(r[2]), int(r[3]), 0)
                       for r in conn.execute(chosen.order_by(folders.c.id))]
            conn.rollback()
            for folder in targets:
                # From the folder's first message: only those without a row are read.
                cursor: tuple[int, int] | None = (0, 0)
                while cursor is not None:
                    count, cursor = self._folder_batch(conn, folder, cursor, BATCH)
                    indexed += count
        return SearchRefresh(indexed, stale)

    def _drop_stale(self, conn: Connection, account_ids: Sequence[int] | None) -> int:
        ms = message_search.c
        query = (
            select(ms.message_id)
            .join(messages, messages.c.id == ms.message_id)
            .join(folders, folders.c.id == messages.c.folder_id)
            .where(or_(ms.folder_id != messages.c.folder_id,
                       ms.account_id != folders.c.account_id))
        )
        if account_ids is not None:
            query = query.where(or_(folders.c.account_id.in_(list(account_ids)),
                                    ms.account_id.in_(list(account_ids))))
        stale = [int(r[0]) for r in conn.execute(query)]
        conn.rollback()
        for start in range(0, len(stale), 500):
            with write_transaction(conn):
                conn.execute(delete(message_search).where(
                    ms.message_id.in_(stale[start:start + 500])))
        if stale:
            log.warning("search index: %d rows were made for another message", len(stale))
        return len(stale)

    def _behind(self, conn: Connection, folder_ids: Set[int] | None) -> list[_Folder]:
        indexed = func.coalesce(search_folders.c.indexed_modseq, -1)
        query = (
            select(folders.c.id, folders.c.account_id, folders.c.name,
                   folders.c.highest_modseq, indexed)
            .select_from(folders.outerjoin(search_folders,
                                           search_folders.c.folder_id == folders.c.id))
            .where(folders.c.highest_modseq > indexed)
        )
        if folder_ids is not None:
            query = query.where(folders.c.id.in_(sorted(folder_ids)[:1000]))
        rows = conn.execute(query).all()
        conn.rollback()
        return [_Folder(int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows]

    def _folder_batch(self, conn: Connection, folder: _Folder, cursor: tuple[int, int],
                      limit: int) -> tuple[int, tuple[int, int] | None]:
        """Index the next batch of the folder after `cursor` (modseq, message id).

        Returns how many were indexed and the cursor to go on from (None: done).
        """
        modseq, last_id = cursor
        # A range on (folder_id, modseq) the index serves, then the tie on id.
        after = and_(messages.c.modseq >= modseq,
                     or_(messages.c.modseq > modseq, messages.c.id > last_id))
        rows = conn.execute(
            select(messages.c.id, messages.c.modseq, messages.c.filename, messages.c.in_new,
                   messages.c.flags, messages.c.from_name, messages.c.from_addr,
                   messages.c.to_addrs, messages.c.cc_addrs, messages.c.subject)
            .where(messages.c.folder_id == folder.id, after,
                   messages.c.modseq <= folder.highest_modseq,
                   ~exists().where(message_search.c.message_id == messages.c.id))
            .order_by(messages.c.modseq, messages.c.id)
            .limit(limit)
        ).all()
        conn.rollback()
        finished = len(rows) < limit
        folder_dir = self._folder_dir(conn, folder) if rows else None
        dialect = conn.dialect.name
        values = [SearchRow(int(r.id), folder.account_id, folder.id,
                            terms_value(dialect, self._terms(r, folder_dir))) for r in rows]
        # Done up to the folder's modseq, or to just below the last one read
        # (more messages may share it; they come next).
        reached = folder.highest_modseq if finished else int(rows[-1].modseq) - 1
        read = {int(r.id): str(r.filename) for r in rows}
        try:
            with write_transaction(conn):
                if not _hold_folder(conn, folder.id):
                    return 0, None  # deleted meanwhile: nothing of it to index
                same = _still_the_same(conn, folder.id, read)
                insert_rows(conn, [v for v in values if v.message_id in same])
                self._advance(conn, folder.id, reached)
        except IntegrityError:
            # A message expunged meanwhile (its row gone): the next round reads
            # the folder again.
            log.debug("search index batch of folder %d raced; again later", folder.id)
            return 0, None
        if finished:
            return len(values), None
        return len(values), (int(rows[-1].modseq), int(rows[-1].id))

    def _advance(self, conn: Connection, folder_id: int, modseq: int) -> None:
        changed = conn.execute(
            update(search_folders).where(search_folders.c.folder_id == folder_id)
            .values(indexed_modseq=func.max(search_folders.c.indexed_modseq, modseq)
                    if conn.dialect.name == "sqlite"
                    else func.greatest(search_folders.c.indexed_modseq, modseq))
        ).rowcount
        if not changed:
            conn.execute(search_folders.insert().values(folder_id=folder_id,
                                                        indexed_modseq=modseq))

    def _folder_dir(self, conn: Connection, folder: _Folder) -> Path | None:
        try:
            path = mailbox_by_id(conn, folder.account_id).folder_dir(self._mail_dir, folder.name)
        except StoreError:
            path = None
        conn.rollback()
        return path

    def _terms(self, row: Any, folder_dir: Path | None) -> list[str]:
        body = ""
        raw = _read_head(folder_dir, row) if folder_dir else None
        if raw is not None:
            body = body_text(raw)
        return document_terms({
            "from": f"{row.from_name} {row.from_addr}",
            "to": f"{row.to_addrs} {row.cc_addrs}",
            "subject": row.subject,
            "body": body,
        })


def _hold_folder(conn: Connection, folder_id: int) -> bool:
    """Take the folder's row, shared, before any message row; False when it is gone.

    The lock order of every writer is the folder's row, then its messages'
    rows (the index writer's `lock_folder` is `SELECT ... FOR UPDATE`). The
    index rows' foreign key takes a share lock on each message row, and
    `search_folders`' on the folder row: in that order, on PostgreSQL and
    MariaDB, an expunge that had locked the folder and then waited for a
    message row this batch held deadlocked with this batch waiting for the
    folder (seen in CI: the POP3 QUIT failed). Shared (FOR KEY SHARE on
    PostgreSQL, so a delivery's UPDATE of the folder's counters is not held
    up; LOCK IN SHARE MODE on MariaDB; nothing on SQLite, whose writers
    queue on one lock).
    """
    row = conn.execute(select(folders.c.id).where(folders.c.id == folder_id)
                       .with_for_update(read=True, key_share=True)).first()
    return row is not None


def _still_the_same(conn: Connection, folder_id: int, read: dict[int, str]) -> set[int]:
    """Of the messages read (id -> file name), those whose row is still the one read.

    Under the write lock, just before their index rows go in: a message
    expunged while its terms were made must not leave them on a message
    delivered meanwhile that took its id (SQLite hands out the id of an
    expunged newest message again), which its words would then find and
    which would never be indexed for its own. A file name is one message's.
    """
    found = conn.execute(select(messages.c.id, messages.c.filename).where(
        messages.c.id.in_(list(read)), messages.c.folder_id == folder_id))
    return {int(i) for i, name in found if read.get(int(i)) == name}
