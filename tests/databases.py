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

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

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
        engine = make_engine(self.url)
        with engine.begin() as conn:
            if self.backend == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
                for table in reversed(metadata.sorted_tables):
                    conn.execute(text(f"TRUNCATE TABLE `{table.name}`"))
                conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        engine.dispose()

    def drop(self) -> None:
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{self.name}`"))
        self.admin.dispose()


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'index.sqlite3'}"


@contextmanager
def migrated_engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
