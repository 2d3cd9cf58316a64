"""The index writer thread: group commit, one-by-one retry, ordering, shutdown."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from nmail.mailstore.model import StoreError
from nmail.mailstore.write_lock import write_transaction
from nmail.mailstore.writer import IndexWriter


class Recorder:
    """A delivery function that remembers its batches and fails any holding 'bad'."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.thread_names: set[str] = set()

    def __call__(self, conn: Connection, items: list[Any]) -> list[Any]:
        self.thread_names.add(threading.current_thread().name)
        self.batches.append(list(items))
        with write_transaction(conn):
            conn.execute(text("SELECT 1"))
        if "bad" in items:
            raise StoreError("bad item")
        return [f"done:{item}" for item in items]


def _hold(writer: IndexWriter) -> tuple[threading.Event, threading.Thread]:
    """Keep the writer busy until the event is set, so jobs pile up in its queue."""
    started, release = threading.Event(), threading.Event()

    def block(_conn: Connection) -> None:
        started.set()
        release.wait(30)

    holder = threading.Thread(target=writer.call, args=(block,))
    holder.start()
    assert started.wait(30)
    return release, holder


def test_pending_deliveries_share_a_batch_and_failures_are_isolated(
    sqlite_engine: Engine,
) -> None:
    rec = Recorder()
    writer = IndexWriter(sqlite_engine, rec)
    try:
        release, holder = _hold(writer)
        futures = [writer.deliver(["a1", "a2"]), writer.deliver(["bad"]), writer.deliver(["c"])]
        release.set()
        holder.join()
        assert futures[0].result(30) == ["done:a1", "done:a2"]
        with pytest.raises(StoreError):
            futures[1].result(30)
        assert futures[2].result(30) == ["done:c"]
        assert rec.batches == [["a1", "a2", "bad", "c"], ["a1", "a2"], ["bad"], ["c"]]
        assert rec.thread_names == {"nmail-index-writer"}
    finally:
        writer.close()


def test_batches_are_capped(sqlite_engine: Engine) -> None:
    rec = Recorder()
    writer = IndexWriter(sqlite_engine, rec, max_batch=3)
    try:
        release, holder = _hold(writer)
        futures = [writer.deliver([f"m{i}"]) for i in range(7)]
        release.set()
        holder.join()
        assert [f.result(30) for f in futures] == [[f"done:m{i}"] for i in range(7)]
        assert [len(b) for b in rec.batches] == [3, 3, 1]
    finally:
        writer.close()


def test_calls_keep_their_place_in_the_queue(sqlite_engine: Engine) -> None:
    rec = Recorder()
    writer = IndexWriter(sqlite_engine, rec)
    order: list[str] = []
    try:
        release, holder = _hold(writer)
        first = writer.deliver(["x"])
        first.add_done_callback(lambda _f: order.append("deliver x"))
        call = writer.submit(lambda _c: order.append("call") or 7)
        second = writer.deliver(["y"])
        second.add_done_callback(lambda _f: order.append("deliver y"))
        release.set()
        holder.join()
        assert second.result(30) == ["done:y"]
        assert call.result(30) == 7
        assert order == ["deliver x", "call", "deliver y"]
        assert rec.batches == [["x"], ["y"]]
    finally:
        writer.close()


def test_close_finishes_queued_work_then_refuses(sqlite_engine: Engine) -> None:
    rec = Recorder()
    writer = IndexWriter(sqlite_engine, rec)
    release, holder = _hold(writer)
    pending = writer.deliver(["last"])
    closer = threading.Thread(target=writer.close)
    closer.start()
    release.set()
    holder.join()
    closer.join(30)
    assert pending.result(30) == ["done:last"]
    with pytest.raises(StoreError):
        writer.deliver(["late"])
    with pytest.raises(StoreError):
        writer.call(lambda _c: None)
    writer.close()


def test_a_failing_call_reports_its_error_and_the_writer_goes_on(sqlite_engine: Engine) -> None:
    writer = IndexWriter(sqlite_engine, Recorder())
    try:
        def boom(_conn: Connection) -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            writer.call(boom)
        assert writer.deliver(["ok"]).result(30) == ["done:ok"]
    finally:
        writer.close()


def test_write_transaction_holds_the_sqlite_write_lock(sqlite_engine: Engine) -> None:
    path = sqlite_engine.url.database
    assert path is not None
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with sqlite_engine.connect() as conn, write_transaction(conn):
            conn.execute(text("SELECT count(*) FROM folders")).scalar()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
    finally:
        other.close()


# -- the flusher lane and grouped operations ------------------------------------------


class HeldFlush:
    """A flush function for the flusher thread that holds or fails chosen items."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[list[str]] = []
        self.threads: set[str] = set()

    def __call__(self, items: list[Any]) -> None:
        self.threads.add(threading.current_thread().name)
        self.calls.append(list(items))
        if "slow" in items:
            self.entered.set()
            assert self.release.wait(30)
        if "unflushable" in items:
            raise OSError(5, "Input/output error")


def test_an_operation_is_not_queued_behind_a_delivery_whose_files_are_flushing(
    sqlite_engine: Engine,
) -> None:
    rec, flush = Recorder(), HeldFlush()
    writer = IndexWriter(sqlite_engine, rec, flush=flush)
    try:
        delivery = writer.deliver(["slow"])
        assert flush.entered.wait(30)
        # The delivery's files are being flushed: the writer itself is free.
        assert writer.operate(lambda conn, after: ("flagged", ()), key="f") == "flagged"
        assert not delivery.done()
        assert rec.batches == []
        flush.release.set()
        assert delivery.result(30) == ["done:slow"]
        assert flush.threads == {"nmail-index-writer-flush"}
        assert rec.thread_names == {"nmail-index-writer"}
    finally:
        flush.release.set()
        writer.close()


def test_a_failed_flush_fails_only_its_own_delivery(sqlite_engine: Engine) -> None:
    rec, flush = Recorder(), HeldFlush()
    writer = IndexWriter(sqlite_engine, rec, flush=flush)
    try:
        blocker = writer.deliver(["slow"])
        assert flush.entered.wait(30)
        # These wait for the flusher together, so they are flushed as one group.
        futures = [writer.deliver(["a"]), writer.deliver(["unflushable"]), writer.deliver(["c"])]
        flush.release.set()
        assert blocker.result(30) == ["done:slow"]
        assert futures[0].result(30) == ["done:a"]
        with pytest.raises(StoreError, match="flush"):
            futures[1].result(30)
        assert futures[2].result(30) == ["done:c"]
        assert ["unflushable"] not in rec.batches  # never indexed: not durable
        assert ["a", "unflushable", "c"] in flush.calls
    finally:
        flush.release.set()
        writer.close()


def test_close_waits_for_deliveries_still_flushing(sqlite_engine: Engine) -> None:
    rec, flush = Recorder(), HeldFlush()
    writer = IndexWriter(sqlite_engine, rec, flush=flush)
    pending = writer.deliver(["slow"])
    assert flush.entered.wait(30)
    closer = threading.Thread(target=writer.close)
    closer.start()
    flush.release.set()
    closer.join(30)
    assert not closer.is_alive()
    assert pending.result(30) == ["done:slow"]
    with pytest.raises(StoreError):
        writer.deliver(["late"])
