"""The index writer's flusher: deliveries' files made durable before the writer sees them.

The IndexWriter (writer.py) hands each delivery here first when it has a
`flush`: this thread flushes the files of what is waiting (several
deliveries at once) and only then puts their jobs on the writer's queue, so
the writer's time per delivery is the transaction, and a flag change is not
kept waiting behind a file flush that needs no database lock (measured on
the bench; docs/ARCHITECTURE.md "Message files"). A delivery whose files
could not be flushed fails here and never reaches the index: its caller
discards the files and says 4xx.

A room of its own: it never touches the database, and writer.py was at its
400-line limit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from nmail.mailstore.model import StoreError

log = logging.getLogger(__name__)

STOP = object()  # put on a queue: finish what came before it, then stop


@dataclass(slots=True)
class DeliveryJob:
    """One all-or-nothing group of deliveries; the Future gives its results."""

    items: list[Any]
    future: Future[Any] = field(default_factory=Future)


class Flusher:
    """A thread flushing the jobs put on `jobs`, passing each on to `to_writer` once
    flushed, at most `max_batch` items at a time; STOP is passed on after the rest."""

    def __init__(
        self,
        flush: Callable[[list[Any]], None],
        to_writer: queue.SimpleQueue[object],
        max_batch: int,
        name: str,
    ) -> None:
        self.jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._flush = flush
        self._to_writer = to_writer
        self._max_batch = max_batch
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        flush = self._flush
        stopping = False
        while not stopping:
            first = self.jobs.get()
            if first is STOP:
                break
            assert isinstance(first, DeliveryJob)
            jobs = [first]
            count = len(first.items)
            while count < self._max_batch:
                try:
                    nxt = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is STOP:
                    stopping = True
                    break
                assert isinstance(nxt, DeliveryJob)
                jobs.append(nxt)
                count += len(nxt.items)
            try:
                flush([item for job in jobs for item in job.items])
            except BaseException as exc:
                self._flush_one_by_one(flush, jobs, exc)
            else:
                for job in jobs:
                    self._to_writer.put(job)
        self._to_writer.put(STOP)

    def _flush_one_by_one(self, flush: Callable[[list[Any]], None], jobs: list[DeliveryJob],
                          exc: BaseException) -> None:
        if len(jobs) == 1:
            _flush_failed(jobs[0], exc)
            return
        log.warning("flushing %d deliveries' files failed (%s); one by one", len(jobs), exc)
        for job in jobs:
            try:
                flush(job.items)
            except BaseException as failed:
                _flush_failed(job, failed)
            else:
                self._to_writer.put(job)


def _flush_failed(job: DeliveryJob, exc: BaseException) -> None:
    # Not durable, so never indexed: the caller discards its files and says 4xx.
    if not job.future.done():
        job.future.set_exception(
            exc if isinstance(exc, StoreError) else
            StoreError(f"could not flush the message files: {exc}"))
