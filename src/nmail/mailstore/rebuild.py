"""Start-up repair and `dbsync`: folders and accounts walked, folder by folder."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from nmail.db.tables import folders
from nmail.mailstore import flag_names, folder_sync, folder_undo, thread_sweep
from nmail.mailstore.folder_sync import FolderIndex, FolderTarget
from nmail.mailstore.folderscan import remove_stale_tmp
from nmail.mailstore.layout import disk_folder_names, make_folder_dirs
from nmail.mailstore.lock_order import DEADLOCK_TRIES, is_deadlock
from nmail.mailstore.mailboxes import Mailbox, all_mailboxes
from nmail.mailstore.model import (
    FOLDERS,
    AccountSync,
    RepairReport,
    StoreError,
    SyncCounts,
    SyncReport,
)
from nmail.mailstore.write_lock import write_transaction
from nmail.mailstore.writer import IndexWriter

log = logging.getLogger(__name__)

T = TypeVar("T")


class Rebuilder:
    """Reconciles the index with the files; the locked steps run on the writer."""

    def __init__(self, engine: Engine, writer: IndexWriter, mail_dir: Path,
                 clock: Callable[[], float]) -> None:
        self._engine = engine
        self._writer = writer
        self._mail_dir = mail_dir
        self._clock = clock

    def sync_folder(self, target: FolderTarget, *, full: bool,
                    index: dict[str, FolderIndex] | None = None) -> SyncCounts:
        """Reconcile one folder: `full` also drops rows of gone files and fixes flags.

        `index` is the account's index as `load_account_index` read it (read here
        when not given); the locked step checks everything again anyway.
        """
        if index is None:
            with self._engine.connect() as conn:
                index = folder_sync.load_account_index(conn, target.account_id)
        self._finish_names(target, index)
        work, seen, facts = folder_sync.prescan(target, index.get(target.name), full=full)
        if not work:
            return SyncCounts(kept=seen)
        for attempt in range(3):
            try:
                return self._call(
                    lambda conn: folder_sync.apply(conn, target, facts, full=full,
                                                   now=self._clock())
                )
            except IntegrityError:
                # Another node created the folder row or indexed a file meanwhile.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _call(self, step: Callable[[Connection], T]) -> T:
        """Run a locked step on the writer; again when it was a deadlock's victim.

        dbsync runs beside a serving server (its index writer, search follower
        and other nodes), and the database may roll a step back to break a
        deadlock. Each step reads what it changes again under its locks (the
        folder's rows and files, the account's folder rows), so it runs again
        rather than ending dbsync with a traceback.
        """
        for attempt in range(1, DEADLOCK_TRIES + 1):
            try:
                return self._writer.call(step)
            except DBAPIError as exc:
                if not is_deadlock(exc) or attempt == DEADLOCK_TRIES:
                    raise
                log.warning("dbsync: a step was a deadlock's victim (attempt %d); again",
                            attempt)
        raise AssertionError("unreachable")

    def _finish_names(self, target: FolderTarget, index: dict[str, FolderIndex]) -> None:
        """Flag renames a crash cut short (after their COMMIT): the index's flags
        win for rows above the folder's mark (flag_names), before names and rows
        are compared, so the comparison finds nothing to fix for them."""
        known = index.get(target.name)
        if known is None:
            return
        with self._engine.connect() as conn:
            if not flag_names.names_behind(conn, known.folder_id):
                return
        moved = self._call(
            lambda conn: flag_names.finish_folder(conn, known.folder_id, target.path))
        if moved:
            log.warning("%s: %d file names brought up to their committed flags",
                        target.path, moved)

    def repair(self) -> RepairReport:
        """Reconcile every folder of every account with its files (as dbsync does).

        Files without rows are indexed (a crash between a delivery's rename and
        its COMMIT), rows without files dropped (a move's rename without its
        COMMIT): after any crash each message is in exactly one folder.
        """
        with self._engine.connect() as conn:
            mailboxes = all_mailboxes(conn)
        checked = added = renumbered = tmp_removed = removed = 0
        errors: list[str] = []
        now = self._clock()
        for box in mailboxes:
            try:
                maildir = box.maildir(self._mail_dir)
                if not maildir.is_dir():
                    continue
                restored = self._settle_folder_changes(box, maildir)
                if restored:
                    log.warning("%s: folder change(s) not committed before a crash undone: %s",
                                box.address, ", ".join(sorted(restored)))
                with self._engine.connect() as conn:
                    index = folder_sync.load_account_index(conn, box.account_id)
                names = disk_folder_names(maildir)
                for name in names:
                    target = FolderTarget(box.account_id, name,
                                          box.folder_dir(self._mail_dir, name))
                    tmp_removed += remove_stale_tmp(target.path, now)
                    counts = self.sync_folder(target, full=True, index=index)
                    checked += 1
                    added += counts.added
                    removed += counts.removed
                    renumbered += counts.renumbered
                # Rows whose directory is gone (another tool removed it) go, as
                # dbsync does.
                for name in sorted(set(index) - set(names)):
                    removed += self._drop_folder(box.account_id, name)
            except (StoreError, OSError) as exc:
                # One broken mailbox must not keep the server from starting.
                log.error("start-up repair skipped %s: %s", box.address, exc)
                errors.append(f"{box.address}: {exc}")
        if added:
            log.warning("start-up repair indexed %d message files that had no row", added)
        if removed:
            log.warning("start-up repair dropped %d rows whose files are gone", removed)
        return RepairReport(checked, added, renumbered, tmp_removed, tuple(errors), removed)

    def dbsync(
        self,
        mailboxes: Sequence[Mailbox] | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SyncReport:
        """Rebuild the index of `mailboxes` (all accounts when None) from their files."""
        if mailboxes is None:
            with self._engine.connect() as conn:
                mailboxes = all_mailboxes(conn)
        results: list[AccountSync] = []
        errors: list[str] = []
        total = SyncCounts()
        for done, box in enumerate(mailboxes, start=1):
            try:
                result = self._sync_account(box)
            except (StoreError, OSError) as exc:
                log.error("dbsync skipped %s: %s", box.address, exc)
                errors.append(f"{box.address}: {exc}")
            else:
                results.append(result)
                total += result.counts
            if progress is not None:
                progress(done, len(mailboxes))
        return SyncReport(tuple(results), total, tuple(errors))

    def _settle_folder_changes(self, box: Mailbox, maildir: Path) -> tuple[str, ...]:
        """First step of repair and dbsync for an account: folder renames and deletes
        a crash cut short before their COMMIT are put back under their rows' names,
        committed deletes' moved-aside trees removed (folder_undo); the names put back.

        Under the account's folder lock, so a change a running server is making
        is waited for, not undone."""
        if not maildir.is_dir():
            return ()
        restored, leftovers = self._call(
            lambda conn: folder_undo.settle(conn, box.account_id, maildir))
        folder_undo.finish_deletes(leftovers)
        return tuple(restored)

    def _sync_account(self, box: Mailbox) -> AccountSync:
        maildir = box.maildir(self._mail_dir)
        # Before the default folders are made: one of them may be what a crash
        # left renamed away.
        restored = self._settle_folder_changes(box, maildir)
        make_folder_dirs(maildir, FOLDERS)
        on_disk = disk_folder_names(maildir)
        with self._engine.connect() as conn:
            index = folder_sync.load_account_index(conn, box.account_id)
        indexed = {name: len(f.entries) for name, f in index.items()}
        counts = SyncCounts()
        now = self._clock()
        for name in on_disk:
            target = FolderTarget(box.account_id, name, box.folder_dir(self._mail_dir, name))
            remove_stale_tmp(target.path, now)
            counts += self.sync_folder(target, full=True, index=index)
        for name in sorted(set(indexed) - set(on_disk)):
            # A folder row whose directory is gone: its messages are gone with it.
            counts += SyncCounts(removed=self._drop_folder(box.account_id, name))
        counts += SyncCounts(forgotten=self._sweep_links(box.account_id))
        created = tuple(name for name in on_disk if name not in indexed)
        return AccountSync(box.account_id, box.address, counts, created, restored)

    def _drop_folder(self, account_id: int, name: str) -> int:
        return self._call(lambda conn: _drop_folder(conn, account_id, name))

    def _sweep_links(self, account_id: int) -> int:
        """Drop the links of the account's conversations with no message left (what
        versions before thread_sweep left behind), one writer transaction per step."""
        after: str | None = ""
        forgotten = 0
        while after is not None:
            after, dropped = self._call(partial(_sweep_step, account_id=account_id,
                                                       after=after))
            forgotten += dropped
        return forgotten


def _sweep_step(conn: Connection, account_id: int, after: str) -> tuple[str | None, int]:
    with write_transaction(conn):
        return thread_sweep.sweep_account(conn, account_id, after)


def _drop_folder(conn: Connection, account_id: int, name: str) -> int:
    with write_transaction(conn):
        row = conn.execute(
            select(folders.c.id, folders.c.message_count)
            .where(folders.c.account_id == account_id, folders.c.name == name)
            .with_for_update()
        ).first()
        if row is None:
            return 0
        threads = thread_sweep.threads_in_folders(conn, [int(row.id)])
        conn.execute(delete(folders).where(folders.c.id == row.id))
        thread_sweep.forget_gone(conn, account_id, threads)
        return int(row.message_count)
