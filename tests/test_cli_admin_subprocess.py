"""The admin commands as a real process: `python -m nmail ...` exit codes and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_admin_support import write_config
from databases import sqlite_url


def nmail(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "nmail", "--data", str(data_dir), *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    write_config(directory, sqlite_url(tmp_path))
    return directory


def test_success_and_refusals_as_a_process(data_dir: Path) -> None:
    ok = nmail(data_dir, "domain", "add", "example.com")
    assert (ok.returncode, ok.stderr) == (0, "")
    assert "added domain example.com" in ok.stdout

    cases = [
        (("domain", "add", "bad..example.com"), "empty label"),
        (("domain", "add", "example.com"), "already exists"),
        (("user", "add", "example.com", "Bob", "bob", "short"), "shorter than 8"),
        (("user", "add", "missing.com", "Bob", "bob", "secret-pass1"), "no such domain"),
        (("relay", "add", "10.0.0.0/40"), "not a network"),
        (("user", "add", "example.com", "Bob", "bob", "secret-pass1", "BOSS"), "must be ADMIN"),
    ]
    for args, why in cases:
        done = nmail(data_dir, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1, (args, done.stderr)
        assert lines[0].startswith("nmail: error: ") and why in lines[0], (args, lines)
        assert done.stdout == ""

    listing = nmail(data_dir, "user", "list")
    assert listing.returncode == 0 and "(no accounts)" in listing.stdout


def test_usage_error_exit_status_2(data_dir: Path) -> None:
    done = nmail(data_dir, "user", "add", "example.com")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_import_with_failures_exits_1(data_dir: Path, tmp_path: Path) -> None:
    nmail(data_dir, "domain", "add", "example.com")
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "domain,name,userid,password\n"
        "example.com,Bob,bob,secret-pass1\n"
        "example.com,Ann,ann,short\n",
        encoding="utf-8",
    )
    done = nmail(data_dir, "user", "import", str(csv_file))
    assert done.returncode == 1
    assert "line 3: the password is shorter than 8 characters" in done.stdout
    assert "imported 1, failed 1" in done.stdout
    assert done.stderr.splitlines() == ["nmail: error: 1 of 2 lines failed (see the report above)"]
