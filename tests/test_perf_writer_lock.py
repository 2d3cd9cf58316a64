"""The index writers' lock file: SQLite writers of every process queue on it."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from nmail.mailstore import write_lock
from nmail.mailstore.write_lock import file_lock, write_transaction


def try_lock(path: str) -> bool:
    """Whether another open file description gets the lock now (what another process sees)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # also drops the lock if it was taken
    return True


def test_a_write_transaction_holds_the_lock_file(sqlite_engine: Engine) -> None:
    database = sqlite_engine.url.database
    assert database is not None
    lock_path = database + ".writer-lock"
    with sqlite_engine.connect() as conn, write_transaction(conn):
        conn.execute(text("SELECT count(*) FROM folders")).scalar()
        assert Path(lock_path).exists()
        assert not try_lock(lock_path)
    assert try_lock(lock_path)


def test_threads_take_turns(tmp_path: Path) -> None:
    database = str(tmp_path / "db.sqlite3")
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(50):
            with file_lock(database):
                with guard:
                    inside += 1
                    most = max(most, inside)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 1


def test_idle_lock_files_are_closed_and_reopened(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"db{n}.sqlite3") for n in range(write_lock.MAX_LOCK_FILES + 8)]
    for path in paths:
        with file_lock(path):
            assert not try_lock(path + ".writer-lock")
    assert len(write_lock._file_locks) <= write_lock.MAX_LOCK_FILES
    with file_lock(paths[0]):  # closed as idle earlier: opened again, still exclusive
        assert not try_lock(paths[0] + ".writer-lock")


@pytest.mark.parametrize("database", [None, "", ":memory:", "file:x?mode=memory"])
def test_no_lock_file_where_there_is_no_database_file(database: str | None) -> None:
    with file_lock(database):
        pass
