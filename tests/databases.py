"""Which databases the suite runs against, and fresh schemas on each.

SQLite always; PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB
(127.0.0.1:3306, root) when they answer. Each test run gets its own
database on the servers, so parallel runs do not collide.
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


def available_backends() -> list[str]:
    found = ["sqlite"]
    if os.environ.get("NMAIL_TEST_ONLY_SQLITE"):
        return found
    if _answers(PG_ADMIN):
        found.append("postgresql")
    if _answers(MY_ADMIN):
        found.append("mariadb")
    return found


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
