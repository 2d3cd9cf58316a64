"""Issue 9 item 4: the data directory is private; `nmail serve` tightens old installs;
`nmail doctor` reports what is open, fixes it on request, and fails clearly."""

from __future__ import annotations

import os
import re
import smtplib
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_process import NMAIL, ServeProcess
from support import free_port, wait_until

PASSWORD = "Postmaster-pw-1"


def nmail(*args: str) -> subprocess.CompletedProcess[str]:
    # umask 022: what a careless admin's shell has; nmail must not depend on it.
    return subprocess.run(
        [*NMAIL, *args], capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )


def open_paths(root: Path) -> list[str]:
    """Every path under `root` (and root) that group or others can reach."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {stat.S_IMODE(mode):04o}")
    return found


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    result = nmail("--data", str(d), "init", "--hostname", "mail.example.com",
                   "--postmaster-password", PASSWORD)
    assert result.returncode == 0, result.stderr
    return d


def test_init_makes_everything_private(data: Path) -> None:
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert open_paths(data) == []
    assert stat.S_IMODE((data / "index.sqlite3").stat().st_mode) == 0o600


def open_up(data: Path) -> None:
    """What an older nmail left: 0755 directories and 0644 files."""
    for path in [data, *data.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o644)
    (data / "logs" / "old.log").write_text("mail from someone\n")
    (data / "logs" / "old.log").chmod(0o644)


@pytest.fixture
def serve(data: Path) -> Iterator[tuple[ServeProcess, int]]:
    open_up(data)
    port = free_port()
    srv = ServeProcess(data, f"smtp=127.0.0.1:{port}",
                       *(f"{n}=off" for n in ("submission", "submissions", "pop3", "pop3s",
                                              "http", "imap", "imaps")))
    try:
        yield srv, port
    finally:
        srv.stop()


def test_serve_tightens_an_old_install_and_says_so(
    data: Path, serve: tuple[ServeProcess, int]
) -> None:
    srv, port = serve
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("index.sqlite3", "nmail.toml", "tls/key.pem", "logs/old.log"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    for name in ("mail", "queue", "logs", "tls"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o700, name
    # What the server creates from now on is private too (umask 077).
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("someone@elsewhere.example", ["postmaster@example.com"],
                        b"Subject: hi\r\n\r\nhello\r\n")
    new = data / "mail" / "example.com" / "postmaster" / "Maildir" / "new"
    wait_until(lambda: any(new.iterdir()), what="the message in new/")
    for message in new.iterdir():
        assert stat.S_IMODE(message.stat().st_mode) == 0o600
    _, _ = srv.stop()
    log = srv.stderr_text
    assert f"permissions tightened: {data} was 0755, now 0700" in log
    assert f"permissions tightened: {data / 'index.sqlite3'} was 0644, now 0600" in log


def test_doctor_reports_open_paths_and_fixes_them(data: Path) -> None:
    clean = nmail("--data", str(data), "doctor")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no problems found" in clean.stdout
    for check in ("configuration:", "permissions:", "database: answers, schema current",
                  "TLS:", "mail store:", "queue:"):
        assert check in clean.stdout, check
    open_up(data)
    sick = nmail("--data", str(data), "doctor")
    assert sick.returncode == 1
    fails = [line for line in sick.stdout.splitlines() if line.startswith("FAIL")]
    assert any(f"{data} (directory) is 0755, should be 0700" in line for line in fails)
    assert any(f"{data / 'tls' / 'key.pem'} (file) is 0644" in line for line in fails)
    assert any(f"{data / 'logs' / 'old.log'} (file) is 0644" in line for line in fails)
    assert all("nmail doctor --fix" in line for line in fails)
    assert re.search(r"\d+ problem\(s\) found", sick.stdout)
    fixed = nmail("--data", str(data), "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout
    assert "permissions fixed:" in fixed.stdout
    # Mail and queue files are not walked (there may be millions): their
    # directories are closed, which closes everything in them.
    assert [p for p in open_paths(data)
            if not re.match(r"data/(mail|queue)/.", p)] == []
    for name in ("mail", "queue"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o700


def test_doctor_fails_clearly_on_a_broken_install(data: Path, tmp_path: Path) -> None:
    nowhere = nmail("--data", str(tmp_path / "nothing"), "doctor")
    assert nowhere.returncode == 1 and "not an nmail data directory" in nowhere.stdout
    (data / "tls" / "key.pem").unlink()
    broken = nmail("--data", str(data), "doctor")
    assert broken.returncode == 1
    assert any(line.startswith("FAIL TLS:") for line in broken.stdout.splitlines())
    config = data / "nmail.toml"
    config.write_text(config.read_text() + "\n[nonsense]\nx = 1\n")
    bad = nmail("--data", str(data), "doctor")
    assert bad.returncode == 1
    assert "FAIL configuration:" in bad.stdout and "nonsense" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
