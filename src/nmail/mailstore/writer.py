"""The index writer: one thread per process that owns every write to the index.

SQLite allows one writer at a time, and committing many deliveries in one
transaction (group commit) costs about what one costs. Callers queue jobs and
wait on a Future; the thread drains whatever is pending, runs deliveries
together in one transaction and other changes (flags, expunge, sync) one at a
time. A failed batch is retried job by job so one bad job cannot fail others.
A job may leave work for after its answer (`call_then`: a flag change's file
renames); the thread does it right after answering, before its next job.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from nmail.mailstore.model import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH_ITEMS = 256


@contextmanager
def write_transaction(conn: Connection) -> Iterator[None]:
    """A transaction that holds the write lock from its first statement.

    On SQLite, `BEGIN IMMEDIATE` takes the database's write lock up front, which
    is what `SELECT ... FOR UPDATE` on the folder row does on the servers: it
    also keeps another process (a `nmail dbsync` beside `nmail serve`) out.
    Writers of this package also queue on a lock file first (see _FileLock).
    """
    if conn.dialect.name != "sqlite":
        with conn.begin():
            yield
        return
    with file_lock(conn.engine.url.database), conn.begin():
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield


class _FileLock:
    """An exclusive flock(2) on `<database>.writer-lock`, plus a thread lock.

    SQLite's own wait for a busy database is a sleep-and-retry loop (1, 2, 5,
    10... ms), so index writers of several processes (`nmail serve`'s
    processes, `nmail dbsync`) taking turns through it lose most of their
    time asleep. Queued on a lock file instead, the next writer wakes the
    moment the last one commits. SQLite's lock stays what keeps the database
    consistent; this one only orders the waiting.
    """

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


@dataclass(slots=True)
class _DeliveryJob:
    items: list[Any]
    future: Future[Any] = field(default_factory=Future)


@dataclass(slots=True)
class _CallJob:
    fn: Callable[[Connection], Any]
    future: Future[Any] = field(default_factory=Future)
    # Work to do once the Future has its result (before the next job).
    after: list[Callable[[], None]] = field(default_factory=list)


_STOP = object()


class IndexWriter:
    """Runs index writes on one daemon thread.

    `deliver(conn, items)` is the batch function for deliveries: it must commit
    all items or none and leave nothing behind when it raises.
    """

    def __init__(
        self,
        engine: Engine,
        deliver: Callable[[Connection, list[Any]], list[Any]],
        *,
        max_batch: int = MAX_BATCH_ITEMS,
        name: str = "nmail-index-writer",
    ) -> None:
        self._engine = engine
        self._deliver = deliver
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._conn: Connection | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- callers' side -----------------------------------------------------

    def deliver(self, items: list[Any]) -> Future[Any]:
        """Queue one all-or-nothing group of deliveries; the Future gives its results."""
        job = _DeliveryJob(items)
        self._put(job)
        return job.future

    def submit(self, fn: Callable[[Connection], T]) -> Future[T]:
        """Queue `fn(conn)` to run on the writer thread, in order with everything else.

        `fn` manages its own transaction (normally `with write_transaction(conn)`).
        """
        job = _CallJob(fn)
        self._put(job)
        return job.future

    def call_then(self, fn: Callable[[Connection, list[Callable[[], None]]], T]) -> T:
        """Like call(), but `fn` may append work to its second argument that the
        writer runs after answering, before its next job (a flag change's renames)."""
        if threading.current_thread() is self._thread:
            after: list[Callable[[], None]] = []
            result = fn(self._connection(), after)
            run_after(after)
            return result
        job = _CallJob(lambda conn: None)
        job.fn = lambda conn: fn(conn, job.after)
        self._put(job)
        answer: T = job.future.result()
        return answer

    def call(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` on the writer thread and return its result (or raise its error)."""
        if threading.current_thread() is self._thread:
            return fn(self._connection())
        return self.submit(fn).result()

    def close(self) -> None:
        """Finish queued jobs and stop the thread; idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _put(self, job: object) -> None:
        with self._close_lock:
            if self._closed:
                raise StoreError("mail store is closed")
            self._queue.put(job)

    # -- the thread ----------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        # After an error the connection may be broken (server restart): start afresh.
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing a failed index connection", exc_info=True)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs = [first]
            count = len(first.items) if isinstance(first, _DeliveryJob) else 1
            while count < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                jobs.append(nxt)
                count += len(nxt.items) if isinstance(nxt, _DeliveryJob) else 1
            self._process(jobs)
        self._drop_connection()

    def _process(self, jobs: list[object]) -> None:
        # Consecutive deliveries share one transaction; any other job runs alone,
        # in queue order, so a flag change never overtakes an earlier delivery.
        group: list[_DeliveryJob] = []
        for job in jobs:
            if isinstance(job, _DeliveryJob):
                group.append(job)
                continue
            if group:
                self._run_deliveries(group)
                group = []
            assert isinstance(job, _CallJob)
            self._run_call(job)
        if group:
            self._run_deliveries(group)

    def _run_call(self, job: _CallJob) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            conn = self._connection()
            result = job.fn(conn)
            if conn.in_transaction():
                conn.rollback()
        except BaseException as exc:
            self._drop_connection()
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)
            run_after(job.after)

    def _run_deliveries(self, group: list[_DeliveryJob]) -> None:
        live = [job for job in group if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        items = [item for job in live for item in job.items]
        try:
            results = self._deliver(self._connection(), items)
        except BaseException as exc:
            self._drop_connection()
            if len(live) == 1:
                live[0].future.set_exception(exc)
                return
            log.warning("index batch of %d deliveries failed (%s); retrying one by one",
                        len(items), exc)
            for job in live:
                self._run_single(job)
            return
        start = 0
        for job in live:
            end = start + len(job.items)
            job.future.set_result(results[start:end])
            start = end

    def _run_single(self, job: _DeliveryJob) -> None:
        try:
            result = self._deliver(self._connection(), job.items)
        except BaseException as exc:
            self._drop_connection()
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)


def run_after(after: list[Callable[[], None]]) -> None:
    """Run (and clear) work queued for after an answer; a failure is logged."""
    for work in after:
        try:
            work()
        except Exception:
            log.exception("index writer: work after an answer failed")
    after.clear()
