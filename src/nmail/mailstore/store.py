"""The mail store: Maildir++ files plus their SQL index, and nothing else touches either.

Deliveries write each file into `tmp/` in the caller's thread, then hand it
to the index writer (this process's writer thread, or in `nmail serve`'s
worker processes the index writer process, see index_service), which flushes
a whole batch of files at once, allocates UIDs, inserts rows, renames into
`new/`, flushes the directories and commits. `store()` returns only after
that commit; `submit()` returns a Future of it, for event loops.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from nmail.db.tables import folders
from nmail.directory.model import Account
from nmail.mailstore.clean_stop import WriterMark
from nmail.mailstore.commit_hook import CommitHook, FolderChange, report
from nmail.mailstore.delivery_batch import (
    FolderGone,
    PreparedMessage,
    deliver_batch,
    flush_files,
)
from nmail.mailstore.first_model_calls import FirstModelCalls, guarded
from nmail.mailstore.folder_catalog import FolderCatalog
from nmail.mailstore.folder_sync import FolderTarget
from nmail.mailstore.folder_view import FolderView
from nmail.mailstore.folderscan import scan_messages
from nmail.mailstore.index_client import IndexClient
from nmail.mailstore.layout import LayoutError, make_folder_dirs
from nmail.mailstore.mailboxes import Mailbox
from nmail.mailstore.model import (
    FOLDERS,
    AppendResult,
    FolderInfo,
    MessageRef,
    MessageRow,
    NewMessage,
    RepairReport,
    StoredMessage,
    StoreError,
    SyncReport,
)
from nmail.mailstore.names import host_token
from nmail.mailstore.op_rows import quota_check
from nmail.mailstore.op_run import group_key, run_operation
from nmail.mailstore.operations import CreateDefaultFolders, Operation
from nmail.mailstore.preparing import (
    Checked,
    check_flags,
    discard,
    discard_on_failure,
    normalized_flags,
    prepare_all,
)
from nmail.mailstore.rebuild import Rebuilder
from nmail.mailstore.writer import IndexWriter
from nmail.message_source import MessageSource

__all__ = [
    "FOLDERS",
    "FolderGone",
    "FolderInfo",
    "MailStore",
    "MessageRef",
    "MessageRow",
    "NewMessage",
    "RepairReport",
    "StoreError",
    "StoredMessage",
    "SyncReport",
]


log = logging.getLogger(__name__)
TOMBSTONE_DAYS = 30.0
P = ParamSpec("P")
R = TypeVar("R")


def _failures(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Disk and database failures become StoreError("could not <what>: ...")."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except StoreError:
                raise
            except (OSError, SQLAlchemyError) as exc:
                raise StoreError(f"could not {what}: {exc}") from exc

        return inner

    return wrap


def _mailbox(account: Account) -> Mailbox:
    return Mailbox(account.id, account.domain, account.userid)


def _flushed(_item: PreparedMessage) -> bool:
    return True


class _NotKnown(Exception):
    """A folder's location is not in memory (submit() does no database reads)."""


class MailStore(FirstModelCalls):
    """Stores, lists, reads, flags and expunges messages; rebuilds the index."""

    def __init__(self, engine: Engine, mail_dir: Path, hostname: str, *,
                 clock: Callable[[], float] = time.time,
                 index_client: IndexClient | None = None,
                 on_commit: CommitHook | None = None,
                 tombstone_days: float = TOMBSTONE_DAYS) -> None:
        """`index_client`: where every change is committed when another process
        does it (a worker process of `nmail serve`); default: this process's
        writer thread, which then calls `on_commit` after each commit
        (commit_hook). Expunge tombstones are kept `tombstone_days`."""
        self._engine = engine
        self._mail_dir = Path(mail_dir)
        self._host = host_token(hostname)
        self._clock = clock
        self._on_commit = on_commit
        # Registered before any write: the next start repairs unless this store
        # and every other writer stop cleanly (clean_stop).
        self._mark = WriterMark(self._mail_dir)
        self._writer = IndexWriter(engine, self._deliver_local, flush=flush_files,
                                   on_commit=on_commit, on_failure=self._mark.taint)
        self._catalog = FolderCatalog(engine, self._mail_dir, self.run_operation,
                                      keep_tombstones=int(tombstone_days * 86400))
        self._remote = index_client
        self._commit: Callable[[list[PreparedMessage]], Future[list[StoredMessage]]] = (
            self._remote.submit if self._remote else self._writer.deliver
        )
        self._rebuilder = Rebuilder(engine, self._writer, self._mail_dir, clock)
        # (account id, domain, userid, folder) -> (folder id, folder directory)
        self._folders: dict[tuple[int, str, str, str], tuple[int, Path]] = {}
        self._folders_lock = threading.Lock()

    def close(self) -> None:
        """Stop the writer thread after the queued work; idempotent."""
        self._writer.close()
        if self._remote is not None:
            self._remote.close()
        self._mark.stop()

    # -- accounts and folders ------------------------------------------------

    @_failures("create the mailbox")
    def ensure_account(self, account: Account) -> None:
        """Create the Maildir++ folders, their rows and `nmail-uidvalidity`; idempotent."""
        box = _mailbox(account)
        maildir = box.maildir(self._mail_dir)
        try:
            paths = make_folder_dirs(maildir, FOLDERS)
        except LayoutError as exc:
            raise StoreError(str(exc)) from None
        known = self._folder_ids(box.account_id)
        missing = [(name, path) for name, path in zip(FOLDERS, paths, strict=True)
                   if name not in known]
        if missing:
            empty = [(name, path) for name, path in missing if not scan_messages(path)]
            if empty:
                self._create_folders(box.account_id, empty)
            for name, path in missing:
                if (name, path) not in empty:
                    # Files from before a lost index: indexing them now keeps their
                    # UIDs (an empty row would hand those UIDs out again).
                    self._sync(FolderTarget(box.account_id, name, path))
            known = self._folder_ids(box.account_id)
        for name, folder_id in known.items():
            self._remember(box, name, folder_id)

    def _create_folders(self, account_id: int, wanted: list[tuple[str, Path]]) -> None:
        maildir = str(self._catalog.maildir(account_id))
        self.run_operation(CreateDefaultFolders(account_id, maildir,
                                                tuple(name for name, _ in wanted)))

    def _sync(self, target: FolderTarget) -> None:
        self._rebuilder.sync_folder(target, full=False)

    def _folder_ids(self, account_id: int) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(folders.c.name, folders.c.id).where(folders.c.account_id == account_id)
            ).all()
        return {str(name): int(fid) for name, fid in rows}

    def _remember(self, box: Mailbox, name: str, folder_id: int) -> None:
        try:
            path = box.folder_dir(self._mail_dir, name)
        except StoreError:
            return  # a folder name from elsewhere that we cannot use as a directory
        with self._folders_lock:
            self._folders[(box.account_id, box.domain, box.userid, name)] = (folder_id, path)

    def _location(self, box: Mailbox, name: str, account: Account) -> tuple[int, Path]:
        key = (box.account_id, box.domain, box.userid, name)
        found = self._folders.get(key)
        if found is not None:
            return found
        if name in FOLDERS:
            self.ensure_account(account)
        else:
            for folder_name, folder_id in self._folder_ids(box.account_id).items():
                self._remember(box, folder_name, folder_id)
        found = self._folders.get(key)
        if found is None:
            raise StoreError(f"no folder {name!r} for {box.address}")
        return found

    def _forget(self, items: Sequence[NewMessage]) -> None:
        with self._folders_lock:
            for item in items:
                a = item.account
                self._folders.pop((a.id, a.domain, a.userid, item.folder), None)

    # -- delivery --------------------------------------------------------------

    @_failures("store the message")
    def store(self, items: Sequence[NewMessage]) -> list[StoredMessage]:
        """Store every item durably and index it, or none (StoreError); thread-safe."""
        if not items:
            return []
        try:
            return self._store_once(items)
        except FolderGone:
            # A cached folder vanished (account deleted and re-created): look again.
            self._forget(items)
            return self._store_once(items)

    def submit(self, items: Sequence[NewMessage]) -> Future[list[StoredMessage]] | None:
        """store() without waiting for the commit: the Future gives its result.

        For callers on an event loop: the message files are written here (no
        flush: that is the writer's, per batch), nothing else blocks. None
        when a folder is not known in memory yet (or vanished): nothing was
        written, and store() in a worker thread does it all.
        """
        if not items:
            done: Future[list[StoredMessage]] = Future()
            done.set_result([])
            return done
        try:
            checked = self._check(items, known_only=True)
        except _NotKnown:
            return None
        try:
            prepared = prepare_all(checked, self._host, self._clock)
        except FolderGone:
            self._forget(items)
            return None
        except OSError as exc:
            raise StoreError(f"could not store the message: {exc}") from exc
        try:
            future = self._commit(prepared)
        except BaseException:
            discard(prepared)
            raise
        future.add_done_callback(lambda f: discard_on_failure(f, prepared))
        return future

    def _store_once(self, items: Sequence[NewMessage]) -> list[StoredMessage]:
        if self._remote is not None and not self._remote.can_wait():
            raise StoreError("store() on the event loop would never return; use submit()")
        prepared = prepare_all(self._check(items, known_only=False), self._host, self._clock)
        try:
            result: list[StoredMessage] = self._commit(prepared).result()
            return result
        except BaseException:
            discard(prepared)
            raise

    def _check(self, items: Sequence[NewMessage], *, known_only: bool) -> list[Checked]:
        checked = []
        for item in items:
            flags, flags_text = check_flags(item)
            a = item.account
            found = self._folders.get((a.id, a.domain, a.userid, item.folder))
            if found is not None:
                loc = found
            elif known_only:
                raise _NotKnown
            else:
                loc = self._location(_mailbox(a), item.folder, a)
            checked.append((item, loc, flags, flags_text))
        return checked

    # -- the mailbox model ----------------------------------------------------------

    def open_folder(self, account_id: int, name: str) -> FolderView:
        """A FolderView of the account's folder `name` ("INBOX", "거래처/2026")."""
        return guarded("open the folder", lambda: self._catalog.open(account_id, name))

    def list_folders(self, account_id: int) -> list[FolderInfo]:
        """Every folder with its kept counts, INBOX first."""
        return guarded("read the index", lambda: self._catalog.list(account_id))

    def create_folder(self, account_id: int, name: str, *, role: str | None = None) -> FolderInfo:
        return guarded("create the folder",
                        lambda: self._catalog.create(account_id, name, role=role))

    def rename_folder(self, account_id: int, name: str, new_name: str) -> None:
        guarded("rename the folder", lambda: self._catalog.rename(account_id, name, new_name))

    def delete_folder(self, account_id: int, name: str, *, force: bool = False) -> None:
        guarded("delete the folder",
                 lambda: self._catalog.delete(account_id, name, force=force))

    def subscribe(self, account_id: int, name: str, subscribed: bool = True) -> None:
        guarded("change the subscription",
                 lambda: self._catalog.subscribe(account_id, name, subscribed))

    @_failures("append the message")
    def append(self, account: Account, folder: str, content: MessageSource, *,
               flags: Iterable[str] = (), internal_date: int | None = None) -> AppendResult:
        """Store `content` into `folder` with flags and an internal date (IMAP APPEND,
        the webmail's Sent and Drafts): the delivery path, flushed before it returns.
        QuotaExceeded when the account's quota would be exceeded."""
        view = self.open_folder(account.id, folder)
        with self._engine.connect() as conn:
            quota_check(conn, account.id, len(content), "appending the message")
        stored = self.store([NewMessage(account, view.name, b"", content,
                                        normalized_flags(flags), internal_date)])[0]
        return AppendResult(stored.folder_id, view.info.uidvalidity, stored.uid, stored.size)

    def run_operation(self, op: Operation) -> Any:
        """Commit one operation through the index writer and wait for it."""
        if self._remote is not None:
            if not self._remote.can_wait():
                raise StoreError("a mail store change on the event loop would never return")
            return self._remote.submit_op(op).result()
        return self._writer.operate(lambda conn, after: run_operation(conn, op, after=after),
                                    key=group_key(op))

    def names_settled(self) -> None:
        """Wait until the file renames of the flag changes answered so far are made
        (they follow the answer: flag_names.py). For tools and tests that read
        file names; readers of messages need not (they find a file by its base)."""
        if self._remote is not None:
            # No barrier on the wire: the writer process makes them right after
            # sending its answers, before it reads its next requests.
            return
        self._writer.call(lambda conn: None)

    def _deliver_local(self, conn: Connection, items: list[PreparedMessage]) -> list[Any]:
        # The writer's flusher made the files durable (flush_files) before this.
        changes: list[FolderChange] = []
        stored = deliver_batch(conn, items, flushed=_flushed, changes=changes)
        report(self._on_commit, changes)
        return stored

    # -- repair and rebuild -----------------------------------------------------

    @_failures("repair the index")
    def repair(self, *, unless_clean: bool = False) -> RepairReport:
        """Start-up: index every file in new/ and cur/ that has no row. `unless_clean`:
        not when every writer stopped cleanly before this store was made (clean_stop)."""
        start = self._mark.start
        if unless_clean and start.clean:
            log.debug("start-up repair skipped: every writer of the mail store stopped cleanly")
            return RepairReport(skipped=True)
        done = self._rebuilder.repair()
        log.debug("start-up repair checked %d folders", done.folders_checked)
        if not done.errors:
            self._mark.forget_dead(start.dead)
        return done

    @_failures("rebuild the index")
    def dbsync(self, accounts: Sequence[Account] | None,
               progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Rebuild the index of `accounts` (None: all) from the files, keeping UIDs."""
        boxes = None if accounts is None else [_mailbox(a) for a in accounts]
        return self._rebuilder.dbsync(boxes, progress)
