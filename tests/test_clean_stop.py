"""Start-up repair is skipped only when every writer of the mail store stopped cleanly.

mailstore/clean_stop.py: a `clean` marker the last writer to stop cleanly
writes, and a flock'ed file per live writer, so any writer that died (kill -9,
an error) leaves a file the next start finds and repairs after.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from crashed_writer import killed_writer
from nmail.directory.model import Account
from nmail.mailstore.clean_stop import MARKER, WriterMark, state_dir
from nmail.mailstore.model import StoreError
from nmail.mailstore.store import MailStore
from nmail.mailstore.writer import IndexWriter
from test_mailstore_support import HOST, folder_dir, make_account, message, message_rows, new, trace


def marker(mail_dir: Path) -> Path:
    return state_dir(mail_dir) / MARKER


def writer_files(mail_dir: Path) -> list[str]:
    return sorted(p.name for p in (state_dir(mail_dir) / "writers").iterdir())


# -- the marker and the writers' files ------------------------------------------------


def test_the_last_clean_stop_writes_the_marker_and_a_writer_removes_it(tmp_path: Path) -> None:
    first = WriterMark(tmp_path)
    assert not first.start.clean  # a new install (or one from before): repair
    assert not marker(tmp_path).exists()
    assert first.stop() is True
    assert marker(tmp_path).is_file() and writer_files(tmp_path) == []
    a = WriterMark(tmp_path)
    assert a.start.clean and a.start.dead == ()
    assert not marker(tmp_path).exists()  # removed before its first write
    b = WriterMark(tmp_path)
    assert not b.start.clean  # a is live: it may be writing
    assert a.stop() is False and not marker(tmp_path).exists()  # b still writes
    assert b.stop() is True and marker(tmp_path).is_file()
    assert b.stop() is False  # idempotent
    assert WriterMark(tmp_path).start.clean


def test_a_writer_killed_leaves_no_marker_until_a_full_repair(tmp_path: Path) -> None:
    WriterMark(tmp_path).stop()
    killed_writer(tmp_path)
    assert not marker(tmp_path).exists()
    dead = writer_files(tmp_path)
    assert len(dead) == 1
    # Another writer starting and stopping cleanly meanwhile does not write it back.
    other = WriterMark(tmp_path)
    assert not other.start.clean and other.start.dead == tuple(dead)
    assert other.stop() is False and not marker(tmp_path).exists()
    after = WriterMark(tmp_path)
    assert not after.start.clean and after.start.dead == tuple(dead)
    after.forget_dead(after.start.dead)  # what a full repair without errors does
    assert writer_files(tmp_path) != dead
    assert after.stop() is True
    assert WriterMark(tmp_path).start.clean


def test_a_writer_that_dies_during_the_repair_is_not_forgotten(tmp_path: Path) -> None:
    killed_writer(tmp_path)
    repairing = WriterMark(tmp_path)
    first_dead = repairing.start.dead
    killed_writer(tmp_path)  # dies after the repair began: not covered by it
    repairing.forget_dead(first_dead)
    assert len(writer_files(tmp_path)) == 2  # the repairer's own and the late one
    assert repairing.stop() is False
    assert not WriterMark(tmp_path).start.clean


def test_a_marker_beside_a_dead_writer_is_not_believed(tmp_path: Path) -> None:
    killed_writer(tmp_path)
    marker(tmp_path).write_text("restored from a backup\n")  # wrong: a writer died
    mark = WriterMark(tmp_path)
    assert not mark.start.clean and len(mark.start.dead) == 1
    assert not marker(tmp_path).exists()


def test_a_tainted_writer_does_not_write_the_marker(tmp_path: Path) -> None:
    WriterMark(tmp_path).stop()
    mark = WriterMark(tmp_path)
    mark.taint()
    assert mark.stop() is False and not marker(tmp_path).exists()
    assert not WriterMark(tmp_path).start.clean
    mark = WriterMark(tmp_path)
    assert mark.stop(clean=False) is False
    assert not WriterMark(tmp_path).start.clean


def test_odd_things_in_the_state_directory(tmp_path: Path) -> None:
    root = state_dir(tmp_path)
    (root / "writers").mkdir(parents=True)
    (root / MARKER).mkdir()  # not a file: no clean stop, and out of the way
    (root / MARKER / "x").write_text("x")
    (root / "writers" / "not-a-writer").mkdir()  # not ours: ignored
    (root / f"{MARKER}.tmp").write_text("half")  # a stop killed while writing it
    mark = WriterMark(tmp_path)
    assert not mark.start.clean and mark.start.dead == ()
    assert not (root / MARKER).exists()
    assert mark.stop() is True and (root / MARKER).is_file()
    assert WriterMark(tmp_path).start.clean


def test_a_state_directory_that_cannot_be_made_fails_the_store(tmp_path: Path) -> None:
    blocked = tmp_path / "mail"
    blocked.write_text("a file where the mail directory should be")
    with pytest.raises(OSError):
        WriterMark(blocked)


# -- the index writer tells of its failures -------------------------------------------


def test_the_index_writer_taints_on_a_failure_not_on_a_refusal(sqlite_engine: Engine) -> None:
    failures: list[int] = []
    writer = IndexWriter(sqlite_engine, lambda conn, items: [],
                         on_failure=lambda: failures.append(1))
    try:
        def refuse(_conn: object) -> None:
            raise StoreError("no such folder")

        def fail(_conn: object) -> None:
            raise RuntimeError("disk on fire")

        with pytest.raises(StoreError):
            writer.call(refuse)
        assert failures == []
        with pytest.raises(RuntimeError):
            writer.call(fail)
        assert failures == [1]
    finally:
        writer.close()


# -- the mail store --------------------------------------------------------------------


def test_store_repair_skips_after_a_clean_stop_and_repairs_after_a_kill(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    mail = tmp_path / "mail"
    store = MailStore(engine, mail, HOST)
    try:
        alice: Account = make_account(engine)
        store.ensure_account(alice)
        store.store([new(alice, subject="a")])
        assert not store.repair(unless_clean=True).skipped  # first start: no marker yet
    finally:
        store.close()
    store = MailStore(engine, mail, HOST)
    try:
        assert store.repair(unless_clean=True).skipped
        assert not store.repair().skipped  # dbsync-like callers always run it
        store.store([new(alice, subject="b")])  # a write between two starts
    finally:
        store.close()
    store = MailStore(engine, mail, HOST)
    store.close()
    # A writer killed after renaming a file into new/ and before its COMMIT.
    inbox = folder_dir(mail, alice, "INBOX")
    data = trace() + message("lost row")
    base = f"{int(time.time())}.M1P1Q9.{HOST}"
    killed_writer(mail, f"Path({str(inbox / 'new' / base)!r}).write_bytes({data!r})")
    store = MailStore(engine, mail, HOST)
    try:
        report = store.repair(unless_clean=True)
        assert not report.skipped and report.added == 1
        assert [r["subject"] for r in message_rows(engine, alice)] == ["a", "b", "lost row"]
    finally:
        store.close()
    store = MailStore(engine, mail, HOST)
    try:
        assert store.repair(unless_clean=True).skipped  # that repair covered the kill
    finally:
        store.close()
    del db_url


def test_a_repair_with_errors_does_not_forget_the_dead(tmp_path: Path) -> None:
    killed_writer(tmp_path / "mail")
    broken = create_engine("sqlite:///" + str(tmp_path / "missing" / "db.sqlite3"))
    store = MailStore(broken, tmp_path / "mail", HOST)
    try:
        with pytest.raises(StoreError):
            store.repair(unless_clean=True)
    finally:
        store.close()
    mark = WriterMark(tmp_path / "mail")
    assert not mark.start.clean and len(mark.start.dead) == 1
