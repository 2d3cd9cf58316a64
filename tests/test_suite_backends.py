"""The test command says which databases it was asked for and fails without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
