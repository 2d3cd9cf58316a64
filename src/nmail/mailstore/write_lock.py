"""How writers of several processes queue on SQLite's one write lock.

SQLite lets one connection write at a time, and its own wait for a busy
database is a sleep-and-retry loop (1, 2, 5, 10... ms): index writers of
several processes (`nmail serve`'s processes, `nmail dbsync`, the CLI)
taking turns through it lose most of their time asleep. So every writer of
this package first queues on an exclusive flock(2) of
`<database>.writer-lock` (file_lock): the next writer wakes the moment the
last one commits. SQLite's lock stays what keeps the database consistent;
the lock file only orders the waiting. Then `BEGIN IMMEDIATE` takes the
write lock at the first statement (write_transaction), as `SELECT ... FOR
UPDATE` of the folder row does on PostgreSQL and MariaDB, which need
neither.

One lock file is open per database and process (a child of fork() opens
its own: an inherited descriptor shares the parent's lock), at most
MAX_LOCK_FILES of them: idle ones are closed (tests open many databases).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

# Connection.info key: the index writer's operation group has its transaction
# open (op_run.commit_group), and write_transaction opens none of its own.
GROUP = "nmail.writer-group"


@contextmanager
def write_transaction(conn: Connection) -> Iterator[None]:
    """A transaction that holds the write lock from its first statement.

    On SQLite, `BEGIN IMMEDIATE` takes the database's write lock up front, which
    is what `SELECT ... FOR UPDATE` on the folder row does on the servers: it
    also keeps another process (a `nmail dbsync` beside `nmail serve`) out.
    Writers of this package also queue on a lock file first (file_lock).
    Within an operation group of the index writer it opens nothing: the
    writer's transaction and savepoint hold the operation.
    """
    if conn.info.get(GROUP):
        # Inside the writer's group commit (commit_group): the
        # transaction and this operation's savepoint are the writer's.
        yield
        return
    if conn.dialect.name != "sqlite":
        with conn.begin():
            yield
        return
    with file_lock(conn.engine.url.database), conn.begin():
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield


class _FileLock:
    """An exclusive flock(2) on `<database>.writer-lock`, plus a thread lock
    (flock does not keep apart two threads of one process sharing the file)."""

    def __init__(self, path: str) -> None:
        self.pid = os.getpid()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.threads = threading.Lock()
        self.closed = False


_file_locks: dict[str, _FileLock] = {}
_file_locks_guard = threading.Lock()
MAX_LOCK_FILES = 16


def _lock_for(database: str) -> _FileLock | None:
    with _file_locks_guard:
        lock = _file_locks.get(database)
        # A lock inherited through fork() is the parent's: flock would not
        # keep the two processes apart, so a child opens its own.
        if lock is None or lock.pid != os.getpid():
            _forget_idle_locks()
            try:
                lock = _file_locks[database] = _FileLock(database + ".writer-lock")
            except OSError:
                return None  # e.g. a read-only directory: SQLite's waiting still works
        return lock


def _forget_idle_locks() -> None:
    """Close the lock files of databases not written to now (tests open many)."""
    for path, lock in list(_file_locks.items()):
        if len(_file_locks) < MAX_LOCK_FILES:
            return
        if lock.pid != os.getpid():
            del _file_locks[path]
            os.close(lock.fd)  # this process's copy of the parent's descriptor
        elif lock.threads.acquire(blocking=False):
            del _file_locks[path]
            lock.closed = True
            os.close(lock.fd)
            lock.threads.release()


@contextmanager
def file_lock(database: str | None) -> Iterator[None]:
    """Hold the writers' lock file of SQLite database `database` (no-op if none)."""
    lock = None
    if database and database != ":memory:" and not database.startswith("file:"):
        while (lock := _lock_for(database)) is not None:
            lock.threads.acquire()
            if not lock.closed:
                break
            lock.threads.release()  # closed meanwhile as idle: take a fresh one
    if lock is None:
        yield
        return
    try:
        fcntl.flock(lock.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fd, fcntl.LOCK_UN)
    finally:
        lock.threads.release()
