"""The directory generation: one number that changes with every directory change.

Every write transaction of the Directory bumps it first (so it also takes
the write lock first: directory writers queue up on it and cannot deadlock
each other). A cache of directory answers reads it before using what it
holds: unchanged number, unchanged directory, whichever process or node
made the change. Reading it is one primary-key lookup; on SQLite it goes
through a plain sqlite3 connection per thread (about 10 µs, and WAL readers
never wait for writers), elsewhere through the engine's pool.
"""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import Connection, Engine, insert, update

from nmail.db.tables import directory_generation

_READ = "SELECT generation FROM directory_generation WHERE id = 1"


def bump_generation(conn: Connection) -> None:
    """Change the generation inside the caller's transaction."""
    table = directory_generation
    result = conn.execute(
        update(table).where(table.c.id == 1).values(generation=table.c.generation + 1)
    )
    if result.rowcount == 0:
        # The row is gone (a truncated table): start from a number no cache can
        # hold, so a cache filled before the loss can never look current.
        conn.execute(insert(table).values(id=1, generation=time.time_ns()))


def sqlite_path(engine: Engine) -> str | None:
    """The database file of a file-backed SQLite engine, else None."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


class GenerationReader:
    """Reads the directory generation; `local` says whether a read is a local file read."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._path = sqlite_path(engine)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def local(self) -> bool:
        """True when read() touches only a local SQLite file (safe on an event loop)."""
        return self._path is not None

    def read(self) -> int:
        """The current generation (0 when the row is missing)."""
        if self._path is None:
            with self._engine.connect() as pooled:
                value = pooled.exec_driver_sql(_READ).scalar()
            return int(value) if value is not None else 0
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
        row = conn.execute(_READ).fetchone()
        return int(row[0]) if row is not None else 0

    def _open(self) -> sqlite3.Connection:
        assert self._path is not None
        # Autocommit: every SELECT is its own read transaction, so it sees the
        # latest commit of any process.
        conn = sqlite3.connect(
            self._path, timeout=10, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            if self._closed:
                conn.close()
                raise sqlite3.ProgrammingError("generation reader is closed")
            self._opened.append(conn)
        self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every per-thread connection; idempotent."""
        with self._lock:
            self._closed = True
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
