"""The index writer: one thread per process that owns every write to the index.

SQLite allows one writer at a time, and committing many deliveries in one
transaction (group commit) costs about what one costs. Callers queue jobs and
wait on a Future; the thread drains whatever is pending and commits it in
groups: deliveries together in one transaction, mailbox operations that only
change rows (flags, subscriptions) together in another, one savepoint each,
so a refused operation rolls back alone; other jobs (copy, move, expunge,
folder changes, sync) one at a time. A failed group is retried job by job so
one bad job cannot fail others. A job may leave work for after its answer
(`operate`'s `after`: a flag change's file renames); the thread does it right
after answering, before its next job.

Deliveries' message files are flushed by a second thread, the flusher
(writer_flusher.py), before their jobs reach the writer's queue: measured
on the bench (one \\Seen change while another thread delivers), a flag
change spent most of its time waiting for a delivery's file fsync ahead
of it, which needs no database lock. So an operation can overtake
deliveries whose files are still being flushed; nothing any caller waits
for depends on that order (a delivery's result, its UIDs, is only known
once it committed), and the writer still commits everything in one order,
one MODSEQ sequence per folder.

What the writer process (index_service) does alike is not here: a group's
transaction and the work after an answer are op_run's (commit_group,
run_after), the lock file writers of several processes queue on is
write_lock's.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from nmail.mailstore.commit_hook import CommitHook, FolderChange, report
from nmail.mailstore.model import StoreError
from nmail.mailstore.op_run import After, OperationFn, commit_group, run_after
from nmail.mailstore.writer_flusher import STOP, DeliveryJob, Flusher

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH_ITEMS = 256


@dataclass(slots=True)
class _CallJob:
    fn: Callable[[Connection], Any]
    future: Future[Any] = field(default_factory=Future)
    # Work to do once the Future has its result (before the next job).
    after: list[After] = field(default_factory=list)
    # An operation (operate()): run with `after`, its changes reported after COMMIT.
    op: OperationFn | None = None
    # Operations with a key may share a transaction with others of different keys.
    key: Hashable | None = None


class IndexWriter:
    """Runs index writes on one daemon thread.

    `deliver(conn, items)` is the batch function for deliveries: it must commit
    all items or none and leave nothing behind when it raises. With `flush`,
    a flusher thread calls `flush(items)` (making the deliveries' files
    durable; OSError if it could not) before their job reaches the writer.
    `on_commit` hears of every operation's commit (commit_hook).
    """

    def __init__(
        self,
        engine: Engine,
        deliver: Callable[[Connection, list[Any]], list[Any]],
        *,
        flush: Callable[[list[Any]], None] | None = None,
        on_commit: CommitHook | None = None,
        max_batch: int = MAX_BATCH_ITEMS,
        name: str = "nmail-index-writer",
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._on_failure = on_failure  # a job failed, not by a refusal (StoreError)
        self._deliver = deliver
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._conn: Connection | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._flusher: Flusher | None = None
        if flush is not None:
            self._flusher = Flusher(flush, self._queue, max_batch, name + "-flush")

    # -- callers' side -----------------------------------------------------

    def deliver(self, items: list[Any]) -> Future[Any]:
        """Queue one all-or-nothing group of deliveries; the Future gives its results."""
        job = DeliveryJob(items)
        self._put(job, self._flusher.jobs if self._flusher is not None else self._queue)
        return job.future

    def submit(self, fn: Callable[[Connection], T]) -> Future[T]:
        """Queue `fn(conn)` to run on the writer thread, in order with everything else.

        `fn` manages its own transaction (normally `with write_transaction(conn)`).
        """
        job = _CallJob(fn)
        self._put(job, self._queue)
        return job.future

    def submit_operation(self, fn: OperationFn, *, key: Hashable | None = None) -> Future[Any]:
        """Queue the operation `fn(conn, after)`; the Future gives its result.

        `fn` opens its transaction with write_transaction; it returns its
        result and the folders it changed, which `on_commit` hears of once
        committed, before the Future is done. It may append work to `after`
        that the writer runs after answering, before its next job (a flag
        change's renames). With a `key`, the writer may commit it together
        with other keyed operations that are waiting (none of the same key),
        each in a savepoint: only for operations that change rows alone, so
        that a failed group can run each again on its own.
        """
        job = _CallJob(_unused, op=fn, key=key)
        self._put(job, self._queue)
        return job.future

    def operate(self, fn: OperationFn, *, key: Hashable | None = None) -> Any:
        """submit_operation, waiting for its result (run inline on the writer thread)."""
        if threading.current_thread() is self._thread:
            after: list[After] = []
            result, changes = fn(self._connection(), after)
            report(self._on_commit, changes)
            run_after(after)
            return result
        return self.submit_operation(fn, key=key).result()

    def call(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` on the writer thread and return its result (or raise its error)."""
        if threading.current_thread() is self._thread:
            return fn(self._connection())
        return self.submit(fn).result()

    def close(self) -> None:
        """Finish queued jobs and stop the threads; idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            # The flusher passes the stop on once it has handed over its jobs.
            (self._flusher.jobs if self._flusher is not None else self._queue).put(STOP)
        if threading.current_thread() is not self._thread:
            flusher = self._flusher
            if flusher is not None and threading.current_thread() is not flusher.thread:
                flusher.thread.join()
            self._thread.join()

    def _put(self, job: object, to: queue.SimpleQueue[object]) -> None:
        with self._close_lock:
            if self._closed:
                raise StoreError("mail store is closed")
            to.put(job)

    # -- the thread ----------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _drop_connection(self, exc: BaseException | None = None) -> None:
        # After an error the connection may be broken (server restart): start afresh.
        if exc is not None and not isinstance(exc, StoreError) and self._on_failure:
            self._on_failure()
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
            if first is STOP:
                break
            jobs = [first]
            count = len(first.items) if isinstance(first, DeliveryJob) else 1
            while count < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is STOP:
                    stopping = True
                    break
                jobs.append(nxt)
                count += len(nxt.items) if isinstance(nxt, DeliveryJob) else 1
            self._process(jobs)
        self._drop_connection()

    def _process(self, jobs: list[object]) -> None:
        # Consecutive deliveries share one transaction, and so do consecutive
        # keyed operations (of different keys); any other job runs alone, in
        # queue order, so a flag change never overtakes an earlier delivery
        # that reached this queue (its files flushed).
        deliveries: list[DeliveryJob] = []
        operations: list[_CallJob] = []
        for job in jobs:
            if isinstance(job, DeliveryJob):
                if operations:
                    self._run_operations(operations)
                    operations = []
                deliveries.append(job)
                continue
            if deliveries:
                self._run_deliveries(deliveries)
                deliveries = []
            assert isinstance(job, _CallJob)
            if job.key is None:
                if operations:
                    self._run_operations(operations)
                    operations = []
                self._run_call(job)
            elif any(o.key == job.key for o in operations):
                self._run_operations(operations)
                operations = [job]
            else:
                operations.append(job)
        if deliveries:
            self._run_deliveries(deliveries)
        if operations:
            self._run_operations(operations)

    def _run_call(self, job: _CallJob) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        self._call(job)

    def _call(self, job: _CallJob) -> None:
        changes: Sequence[FolderChange] = ()
        try:
            conn = self._connection()
            if job.op is not None:
                result, changes = job.op(conn, job.after)
            else:
                result = job.fn(conn)
            if conn.in_transaction():
                conn.rollback()
        except BaseException as exc:
            job.after.clear()
            self._drop_connection(exc)
            job.future.set_exception(exc)
        else:
            report(self._on_commit, changes)
            job.future.set_result(result)
            run_after(job.after)

    def _run_operations(self, group: list[_CallJob]) -> None:
        """Keyed operations in one transaction, a savepoint each; if the transaction
        fails (not an operation refusing), each runs again in its own."""
        live = [job for job in group if job.future.set_running_or_notify_cancel()]
        if len(live) <= 1:
            for job in live:
                self._call(job)
            return
        operations: list[tuple[OperationFn, list[After]]] = []
        for job in live:
            assert job.op is not None
            operations.append((job.op, job.after))
        try:
            outcomes = commit_group(self._connection(), operations)
        except BaseException as exc:
            self._drop_connection(exc)
            log.warning("a group of %d mailbox changes failed (%s); one by one", len(live), exc)
            for job in live:
                self._call(job)
            return
        report(self._on_commit, [c for outcome in outcomes if not isinstance(outcome, StoreError)
                                 for c in outcome[1]])
        for job, outcome in zip(live, outcomes, strict=True):
            if isinstance(outcome, StoreError):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome[0])
        for job in live:
            run_after(job.after)

    def _run_deliveries(self, group: list[DeliveryJob]) -> None:
        live = [job for job in group if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        items = [item for job in live for item in job.items]
        try:
            results = self._deliver(self._connection(), items)
        except BaseException as exc:
            self._drop_connection(exc)
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

    def _run_single(self, job: DeliveryJob) -> None:
        try:
            result = self._deliver(self._connection(), job.items)
        except BaseException as exc:
            self._drop_connection(exc)
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)


def _unused(_conn: Connection) -> None:
    raise AssertionError("an operation job runs its op")
