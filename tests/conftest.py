"""Shared fixtures: databases (every backend that answers), data directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from databases import ServerDatabase, available_backends, migrated_engine, sqlite_url

BACKENDS = available_backends()
_servers: dict[str, ServerDatabase] = {}
_ran: set[str] = set()


def pytest_report_header(config: pytest.Config) -> str:
    return "databases: " + ", ".join(BACKENDS) + " (PostgreSQL/MariaDB only when they answer)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = ", ".join(sorted(_ran)) or "none"
    skipped = ", ".join(b for b in ("sqlite", "postgresql", "mariadb") if b not in BACKENDS)
    line = f"database tests ran on: {ran}"
    if skipped:
        line += f"; not run: {skipped} (not answering, or NMAIL_TEST_ONLY_SQLITE set)"
    terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for server in _servers.values():
        server.drop()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated, empty database on each backend that answers."""
    backend: str = request.param
    _ran.add(backend)
    if backend == "sqlite":
        url = sqlite_url(tmp_path)
        with migrated_engine(url):
            pass
        return url
    server = _servers.get(backend)
    if server is None:
        server = _servers[backend] = ServerDatabase(backend)
    else:
        server.truncate()
    return server.url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated_engine(db_url) as eng:
        yield eng


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only, for tests that are about something other than the database."""
    with migrated_engine(sqlite_url(tmp_path)) as eng:
        yield eng
