"""The test command says which databases it was asked for and fails without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import make_url

from databases import SERVERS, fresh_sqlite, migrated_engine, sqlite_url
from nmail.db.engine import make_engine
from nmail.db.tables import domains, metadata
from nmail.directory import Directory
from nmail.directory.passwords import fast_hashing
from support import free_port

TESTS = Path(__file__).parent


def run_pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """One small database test of this suite, run by a pytest of its own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NMAIL_TEST")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(TESTS / "test_migrations.py"), "-k", "create_every_table"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**clean, **env, "TMPDIR": str(tmp_path)},
    )


def test_a_backend_asked_for_and_not_answering_fails_the_run(tmp_path: Path) -> None:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    result = run_pytest(tmp_path, NMAIL_TEST_BACKENDS="sqlite,postgresql", NMAIL_TEST_PG=dead)
    assert result.returncode != 0
    assert "asked for but not answering: postgresql" in result.stdout + result.stderr


def test_the_run_names_what_it_was_asked_for(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, NMAIL_TEST_ONLY_SQLITE="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "databases asked for: sqlite" in result.stdout
    assert "database tests ran on: sqlite" in result.stdout


def test_an_unknown_backend_name_is_refused(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, NMAIL_TEST_BACKENDS="sqlite,oracle")
    assert result.returncode != 0
    assert "NMAIL_TEST_BACKENDS" in result.stdout + result.stderr


def test_a_server_database_is_empty_with_its_ids_at_the_start_for_each_test(
    db_url: str,
) -> None:
    """The reset between tests (databases.ServerDatabase.truncate) leaves no row and no
    moved id counter, also of a table that was written and emptied again."""
    backend = make_url(db_url).get_backend_name()
    if backend == "sqlite":
        pytest.skip("each SQLite test gets a new file (test below)")
    server = SERVERS["mariadb" if backend == "mysql" else backend]
    engine = make_engine(db_url)
    try:
        directory = Directory(engine, passwords=fast_hashing())
        directory.add_domain("kept.test")
        directory.add_account("kept.test", "Ann", "ann", "Correct-horse-9")
        with engine.begin() as conn:
            gone = conn.execute(insert(domains).values(name="gone.test", created_at=0))
            conn.execute(delete(domains).where(domains.c.id == gone.inserted_primary_key[0]))
        rows, counters = server.dirty()
        assert {"domains", "accounts"} <= rows and counters
        server.truncate()
        assert server.dirty() == (set(), set())
        with engine.begin() as conn:
            first = conn.execute(insert(domains).values(name="new.test", created_at=0))
            assert first.inserted_primary_key[0] == 1
        server.truncate()
        assert server.dirty() == (set(), set())
    finally:
        engine.dispose()


def test_a_fresh_sqlite_database_is_a_migrated_one(tmp_path: Path) -> None:
    """databases.fresh_sqlite (a copy of a database migrated once a run) holds what the
    migrations make: the same schema, at the head revision, with their rows only."""
    (tmp_path / "copy").mkdir()
    (tmp_path / "made").mkdir()
    with migrated_engine(sqlite_url(tmp_path / "made")) as made:
        copy = make_engine(fresh_sqlite(tmp_path / "copy"))
        try:
            version = "SELECT version_num FROM alembic_version"
            with made.connect() as a, copy.connect() as b:
                assert _schema(a) == _schema(b)
                assert a.exec_driver_sql(version).all() == b.exec_driver_sql(version).all()
                for table in metadata.sorted_tables:
                    assert a.execute(select(table)).all() == b.execute(select(table)).all()
        finally:
            copy.dispose()


def _schema(conn: Connection) -> list[tuple[str, str, list[str]]]:
    """sqlite_master, each statement's lines sorted: a batch migration orders a
    table's constraints by a set's (hash-seeded) order, run to run."""
    rows = conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master ORDER BY name")
    return [(kind, name, sorted(line.strip().rstrip(",") for line in (sql or "").splitlines()))
            for kind, name, sql in rows]
