"""Running write operations on the index writer, and reporting their commit.

Both writers use this: the index writer process (index_service) for the
workers of `nmail serve`, and a MailStore's own writer thread in one-process
mode and the CLI. An operation opens its transaction with write_transaction,
in the writer's one order with the deliveries; the commit hook hears of it
right after COMMIT. Either writer may commit flag changes and subscriptions
that wait together in one transaction, a savepoint each (`group_key`,
`commit_group`). Work that may follow the answer (a flag change's file
renames) is handed back in `after`: the writer runs it once it has replied
(`run_after`).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from nmail.mailstore import op_expunge, op_flags, op_folders, op_transfer
from nmail.mailstore.commit_hook import FolderChange
from nmail.mailstore.folder_names import check_name
from nmail.mailstore.folder_rows import create_empty_folders
from nmail.mailstore.lock_order import DEADLOCK_TRIES, is_deadlock
from nmail.mailstore.model import StoreError
from nmail.mailstore.names import host_token
from nmail.mailstore.op_rows import folder_path
from nmail.mailstore.operations import (
    CopyMessages,
    CreateDefaultFolders,
    CreateFolder,
    DeleteFolder,
    ExpungeMessages,
    Operation,
    RenameFolder,
    StoreFlags,
    Subscribe,
)
from nmail.mailstore.write_lock import GROUP, write_transaction

# The name run_after logged under when it lived in writer.py.
log = logging.getLogger("nmail.mailstore.writer")

_HOST = host_token(socket.gethostname())

After = Callable[[], None]
# An operation: fn(conn, after) -> (its result, the folders its commit changed).
OperationFn = Callable[[Connection, list[After]], tuple[Any, Sequence[FolderChange]]]


def group_key(op: Operation) -> Hashable | None:
    """The key under which the writer may commit `op` together with others
    (IndexWriter.operate), or None when it must have a transaction alone.

    Only operations that change rows alone group: a failed group runs each
    again on its own, which is safe for them. Copy, move, expunge and folder
    changes rename, link or unlink files before their COMMIT and undo that
    when it fails; in a group a later failure would find them done. Two flag
    changes of one folder never share a group: each moves the folder's
    names mark over the renames of the changes before it, which the writer
    makes after their commit (flag_names.py).
    """
    if isinstance(op, StoreFlags):
        return ("flags", op.folder_id)
    if isinstance(op, Subscribe):
        return ("subscribe", op.account_id, op.name)
    return None


def run_operation(conn: Connection, op: Operation, *, now: float | None = None,
                  after: list[Callable[[], None]] | None = None
                  ) -> tuple[Any, list[FolderChange]]:
    """Apply `op` in its own transaction: (its result, the folders it changed).

    With `after`, work that may wait until the caller is answered is appended
    there instead of done here (the caller must run it, in order).

    On PostgreSQL and MariaDB the database may pick this transaction as a
    deadlock's victim (another writer took the rows in another order: a
    bug, but one a user must not see as a failed QUIT or a lost flag); it
    is rolled back whole, and every operation undoes its file changes when
    its COMMIT fails or finds them done when run again (op_transfer,
    op_expunge), so it runs again, up to DEADLOCK_TRIES times. Inside the
    writer's group (commit_group) the group's transaction is the victim:
    the writer then runs each operation alone, through here.
    """
    at = time.time() if now is None else now
    if conn.info.get(GROUP):
        return _dispatch(conn, op, at, after)
    for attempt in range(1, DEADLOCK_TRIES + 1):
        queued = len(after) if after is not None else 0
        try:
            return _dispatch(conn, op, at, after)
        except DBAPIError as exc:
            if not is_deadlock(exc) or attempt == DEADLOCK_TRIES:
                raise
            if after is not None:
                del after[queued:]  # nothing of the rolled-back attempt follows
            if conn.in_transaction():
                conn.rollback()
            log.warning("%s was a deadlock's victim (attempt %d); running it again",
                        type(op).__name__, attempt)
    raise AssertionError("unreachable")


def _dispatch(conn: Connection, op: Operation, at: float,
              after: list[Callable[[], None]] | None) -> tuple[Any, list[FolderChange]]:
    if isinstance(op, StoreFlags):
        return op_flags.store_flags(conn, op, after)
    if isinstance(op, CopyMessages):
        return op_transfer.transfer(conn, op, _HOST, at)
    if isinstance(op, ExpungeMessages):
        return op_expunge.expunge(conn, op, at)
    if isinstance(op, CreateFolder):
        return op_folders.create(conn, op, at)
    if isinstance(op, CreateDefaultFolders):
        return _default_folders(conn, op, at)
    if isinstance(op, RenameFolder):
        return op_folders.rename(conn, op, at)
    if isinstance(op, DeleteFolder):
        return op_folders.delete_folder(conn, op)
    if isinstance(op, Subscribe):
        return op_folders.subscribe(conn, op)
    raise TypeError(f"not an operation: {type(op).__name__}")


def commit_group(
    conn: Connection, operations: Sequence[tuple[OperationFn, list[After]]]
) -> list[tuple[Any, Sequence[FolderChange]] | StoreError]:
    """Run the operations in one transaction, a savepoint each, and COMMIT.

    Each gives its outcome: (result, changes), or the StoreError that
    refused it (its savepoint rolled back, its `after` emptied). Anything
    else, a failed COMMIT included, rolls the whole group back and raises,
    with every `after` emptied: the caller then runs each on its own.
    """
    outcomes: list[tuple[Any, Sequence[FolderChange]] | StoreError] = []
    try:
        with write_transaction(conn):
            conn.info[GROUP] = True
            try:
                for op, after in operations:
                    savepoint = conn.begin_nested()
                    try:
                        outcome = op(conn, after)
                    except StoreError as exc:
                        # Refused: only its own changes go (a rollback that
                        # fails fails the whole group instead).
                        after.clear()
                        savepoint.rollback()
                        outcomes.append(exc)
                    else:
                        savepoint.commit()
                        outcomes.append(outcome)
            finally:
                conn.info.pop(GROUP, None)
    except BaseException:
        for _, after in operations:
            after.clear()
        raise
    return outcomes


def run_after(after: list[After]) -> None:
    """Run (and clear) work queued for after an answer; a failure is logged."""
    for work in after:
        try:
            work()
        except Exception:
            log.exception("index writer: work after an answer failed")
    after.clear()


def _default_folders(conn: Connection, op: CreateDefaultFolders,
                     now: float) -> tuple[None, list[FolderChange]]:
    wanted = [(check_name(name), folder_path(op.maildir, check_name(name))) for name in op.names]
    for attempt in range(3):
        try:
            create_empty_folders(conn, op.account_id, wanted, now)
            return None, []
        except DBAPIError as exc:
            # Another writer created them meanwhile (a duplicate), or InnoDB chose
            # this one of several inserting the same rows as a deadlock's victim.
            if not (isinstance(exc, IntegrityError) or is_deadlock(exc)):
                raise
            if attempt == 2:  # another node keeps creating them: give up clearly
                raise StoreError("could not create the folders") from None
    raise AssertionError("unreachable")

