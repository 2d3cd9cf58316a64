""".ci/start-databases: starts what the tests are asked for when it is down, fails if it stays down.

The service commands are stand-ins on PATH (a state directory says what is
"running"), so nothing real is started or stopped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / ".ci" / "start-databases"

FAKES = {
    "pg_isready": 'test -e "$STATE/pg_up"',
    "mariadb-admin": 'test -e "$STATE/my_up"',
    "pg_ctlcluster": 'echo "pg_ctlcluster $*" >> "$STATE/calls"; '
                     'test -n "$STUCK" || touch "$STATE/pg_up"',
    "start-stop-daemon": 'echo "start-stop-daemon $*" >> "$STATE/calls"; '
                         'test -n "$STUCK" || touch "$STATE/my_up"',
}


def run(
    tmp_path: Path, up: frozenset[str] = frozenset(), **env: str
) -> tuple[int, str, list[str]]:
    fake_bin, state = tmp_path / "bin", tmp_path / "state"
    fake_bin.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    for name, body in FAKES.items():
        path = fake_bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    for name in up:
        (state / f"{name}_up").touch()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NMAIL_TEST")}
    result = subprocess.run(
        [str(SCRIPT)], capture_output=True, text=True, timeout=60,
        env={**clean, "PATH": f"{fake_bin}:/usr/bin:/bin", "STATE": str(state),
             "STUCK": "", "NMAIL_CI_START_TRIES": "4", **env},
    )
    calls = (state / "calls").read_text().splitlines() if (state / "calls").exists() else []
    return result.returncode, result.stdout + result.stderr, calls


def test_databases_that_are_down_are_started(tmp_path: Path) -> None:
    code, out, calls = run(tmp_path)
    assert code == 0, out
    assert [c.split()[0] for c in calls] == ["pg_ctlcluster", "start-stop-daemon"]
    assert "main start" in calls[0] and "/usr/sbin/mariadbd" in calls[1]
    assert "starting PostgreSQL" in out and "starting MariaDB" in out


def test_databases_that_answer_are_left_alone(tmp_path: Path) -> None:
    code, _, calls = run(tmp_path, up=frozenset({"pg", "my"}))
    assert (code, calls) == (0, [])


def test_a_database_that_stays_down_fails_the_run(tmp_path: Path) -> None:
    code, out, calls = run(tmp_path, up=frozenset({"my"}), STUCK="1")
    assert code != 0
    assert "PostgreSQL did not start" in out
    assert [c.split()[0] for c in calls] == ["pg_ctlcluster"]


def test_only_what_is_asked_for_is_started(tmp_path: Path) -> None:
    assert run(tmp_path, NMAIL_TEST_BACKENDS="sqlite")[2] == []
    assert run(tmp_path, NMAIL_TEST_ONLY_SQLITE="1")[2] == []
    code, _, calls = run(tmp_path, NMAIL_TEST_BACKENDS="sqlite,mariadb")
    assert code == 0 and [c.split()[0] for c in calls] == ["start-stop-daemon"]
