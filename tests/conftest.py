"""Shared fixtures: databases (every backend asked for), data directories."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from databases import (
    SERVERS,
    ServerDatabase,
    asked_backends,
    fresh_sqlite,
    missing_backends,
)
from nmail.db.engine import make_engine
from serve_process import end_of_test, server_log_sections

# This machine's environment sets PYTHONDONTWRITEBYTECODE: each `nmail` child
# (a CLI call, `nmail serve`) compiled nmail from source again (0.3-0.4 s of CPU
# each), and pytest rewrote every test module on every run (12 s -> 4.6 s of CPU
# for collecting the suite with them cached). The suite lets Python keep its
# compiled files (in __pycache__/, ignored by git; stale ones are found by the
# source's mtime and size).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

BACKENDS = asked_backends()
_ran: set[str] = set()


def pytest_report_header(config: pytest.Config) -> str:
    return (
        "databases asked for: " + ", ".join(BACKENDS)
        + " (NMAIL_TEST_BACKENDS; NMAIL_TEST_ONLY_SQLITE=1 for SQLite only)"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = missing_backends(BACKENDS)
    if missing:
        pytest.exit(
            f"database(s) asked for but not answering: {', '.join(missing)}"
            " (start them, or choose with NMAIL_TEST_BACKENDS / NMAIL_TEST_ONLY_SQLITE=1)",
            returncode=1,
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = ", ".join(sorted(_ran)) or "none"
    line = f"databases asked for: {', '.join(BACKENDS)}; database tests ran on: {ran}"
    terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for server in SERVERS.values():
        server.drop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test's report shows what each `nmail serve` it ran logged
    (tests/serve_process.py); a passing one's shows nothing more. After the
    teardown, a command the test left running is stopped."""
    report = yield
    if report.failed:
        report.sections.extend(server_log_sections())
    if call.when == "teardown":
        end_of_test()
    return report


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated, empty database on each backend asked for."""
    backend: str = request.param
    _ran.add(backend)
    if backend == "sqlite":
        return fresh_sqlite(tmp_path)
    server = SERVERS.get(backend)
    if server is None:
        server = SERVERS[backend] = ServerDatabase(backend)
    else:
        server.truncate()
    return server.url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)  # db_url is migrated: Alembic would only find nothing to do
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only, for tests that are about something other than the database."""
    eng = make_engine(fresh_sqlite(tmp_path))
    try:
        yield eng
    finally:
        eng.dispose()
