"""Which databases the suite runs against, and fresh schemas on each.

The backends are asked for, not guessed: NMAIL_TEST_BACKENDS (a comma list
of sqlite, postgresql, mariadb; default all three, as on this project's
machines and in CI), or NMAIL_TEST_ONLY_SQLITE=1 as the explicit opt-out.
A backend asked for that does not answer fails the run (conftest.py): a
suite that silently drops PostgreSQL or MariaDB proves nothing about them.
PostgreSQL is 127.0.0.1:5432 (user postgres), MariaDB 127.0.0.1:3306
(root). Each test run gets its own database on the servers, so parallel
runs do not collide.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text

from nmail.db.engine import make_engine
from nmail.db.migrate import upgrade
from nmail.db.tables import metadata

PG_ADMIN = os.environ.get("NMAIL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MY_ADMIN = os.environ.get("NMAIL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")

RUN_ID = uuid.uuid4().hex[:8]


def _answers(url: str) -> bool:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


ALL_BACKENDS = ("sqlite", "postgresql", "mariadb")


class BackendChoiceError(ValueError):
    """NMAIL_TEST_BACKENDS names something that is not a backend."""


def asked_backends() -> list[str]:
    """The backends this run must test, from the environment (default: all three)."""
    if os.environ.get("NMAIL_TEST_ONLY_SQLITE"):
        return ["sqlite"]
    text = os.environ.get("NMAIL_TEST_BACKENDS", ",".join(ALL_BACKENDS))
    asked = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in asked if name not in ALL_BACKENDS]
    if unknown or not asked:
        raise BackendChoiceError(
            f"NMAIL_TEST_BACKENDS={text!r}: expected a comma list of {', '.join(ALL_BACKENDS)}"
        )
    return [name for name in ALL_BACKENDS if name in asked]


def missing_backends(asked: list[str]) -> list[str]:
    """Those of `asked` whose server does not answer."""
    urls = {"postgresql": PG_ADMIN, "mariadb": MY_ADMIN}
    return [name for name in asked if name in urls and not _answers(urls[name])]


class ServerDatabase:
    """One throw-away database on a server, emptied between tests."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.name = f"nmail_t_{RUN_ID}_{uuid.uuid4().hex[:6]}"
        admin_url = PG_ADMIN if backend == "postgresql" else MY_ADMIN
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            else:
                conn.execute(text(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4"))
        base = admin_url.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}"
        engine = make_engine(self.url)
        upgrade(engine)
        engine.dispose()

    def truncate(self) -> None:
        """Every table of the schema empty and every id counter back at its start.

        Only what a test touched is reset: a table with a row, a counter that
        moved. TRUNCATE of all 26 tables cost 0.7-1 s on PostgreSQL and 1.7-2.1 s
        on MariaDB (it recreates each table), before each of ~450 tests a
        server; the few a test touches cost 0.1-0.4 s (tests/notes: suitetime).
        What is left afterwards is checked by `dirty()` being empty
        (tests/test_suite_backends.py)."""
        engine = make_engine(self.url)
        try:
            with engine.begin() as conn:
                rows, counters = _dirty(conn, self.backend)
                if self.backend == "postgresql":
                    # DELETE, not TRUNCATE (a new file per table); triggers and
                    # foreign keys off for it, as FOREIGN_KEY_CHECKS=0 below.
                    conn.execute(text("SET LOCAL session_replication_role = replica"))
                    for table in reversed(metadata.sorted_tables):
                        if table.name in rows:
                            conn.execute(text(f'DELETE FROM "{table.name}"'))
                    for sequence in counters:
                        conn.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))
                elif rows or counters:
                    conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
                    for table in metadata.sorted_tables:
                        if table.name in rows or table.name in counters:
                            conn.execute(text(f"TRUNCATE TABLE `{table.name}`"))
                    conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        finally:
            engine.dispose()

    def dirty(self) -> tuple[set[str], set[str]]:
        """(tables with a row, id counters that moved): what `truncate` resets."""
        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                return _dirty(conn, self.backend)
        finally:
            engine.dispose()

    def drop(self) -> None:
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{self.name}`"))
        self.admin.dispose()


def _dirty(conn: Connection, backend: str) -> tuple[set[str], set[str]]:
    """Tables of the schema with a row; sequences (PostgreSQL) or tables (MariaDB)
    whose id counter is past its start."""
    quote = '"' if backend == "postgresql" else "`"
    dual = "" if backend == "postgresql" else " FROM DUAL"
    query = " UNION ALL ".join(
        f"SELECT '{t.name}'{dual} WHERE EXISTS (SELECT 1 FROM {quote}{t.name}{quote})"
        for t in metadata.sorted_tables)
    rows = {str(name) for name in conn.execute(text(query)).scalars()}
    if backend == "postgresql":  # last_value is NULL until the first nextval after a RESTART
        counters = conn.execute(text(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename)"
            " FROM pg_sequences WHERE last_value IS NOT NULL")).scalars()
    else:
        counters = conn.execute(text(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND auto_increment > 1")).scalars()
    return rows, {str(name) for name in counters}


SERVERS: dict[str, ServerDatabase] = {}  # this run's database on each server, once made


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'index.sqlite3'}"


_template: list[Path] = []  # the migrated SQLite file of this run, once made


def fresh_sqlite(directory: Path) -> str:
    """The URL of a freshly migrated, empty SQLite database in `directory`.

    A copy of one database migrated once per run: the 16 migrations (a
    commit, so a sync, each) took 0.3-1 s before every SQLite test."""
    if not _template:
        home = Path(tempfile.mkdtemp(prefix="nmail-template-"))
        atexit.register(shutil.rmtree, home, True)
        with migrated_engine(sqlite_url(home)):
            pass
        # Every connection closed: the WAL was checkpointed into the file and removed.
        assert [p.name for p in home.iterdir()] == ["index.sqlite3"], list(home.iterdir())
        _template.append(home / "index.sqlite3")
    copy = directory / "index.sqlite3"
    shutil.copyfile(_template[0], copy)
    copy.chmod(0o600)  # the index holds password hashes and DKIM keys
    return sqlite_url(directory)


@contextmanager
def migrated_engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
