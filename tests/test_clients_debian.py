"""Issue 3: real mail clients from Debian against a running nmail.

swaks and msmtp submit with AUTH over STARTTLS; mpop and fetchmail retrieve
over POP3 with STLS and implicit TLS. `.ci/run` installs them; where one is
missing (a machine without root) its test is skipped, and says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server_rig import PASSWORD, RunningServer, make_data_dir

pytestmark = pytest.mark.client

MESSAGE = (
    "From: bob@test.local\r\nTo: carol@test.local\r\n"
    "Subject: =?UTF-8?B?7ZWc6riA?=\r\n\r\nsent by a real client\r\n.starts with a dot\r\n"
)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/test installs it as root)")
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with RunningServer(make_data_dir(tmp_path)) as srv:
        srv.add_user("bob@test.local")
        srv.add_user("carol@test.local")
        yield srv


def inbox(server: RunningServer, address: str) -> list[bytes]:
    box = server.maildir(address)
    return [p.read_bytes() for sub in ("new", "cur") for p in sorted((box / sub).iterdir())]


def private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)  # mpop/msmtp/fetchmail refuse world-readable password files
    return path


def run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)


def test_swaks_submits_with_auth_over_starttls(server: RunningServer) -> None:
    swaks = need("swaks")
    result = run([
        swaks, "--server", f"127.0.0.1:{server.port('submission')}", "--tls",
        "--auth", "PLAIN", "--auth-user", "bob@test.local", "--auth-password", PASSWORD,
        "--from", "bob@test.local", "--to", "carol@test.local",
        "--header", "Subject: from swaks", "--body", "hello from swaks",
    ])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout
    [stored] = inbox(server, "carol@test.local")
    assert b"Subject: from swaks" in stored
    assert b"with ESMTPSA" in stored


def test_swaks_wrong_password_is_refused(server: RunningServer) -> None:
    swaks = need("swaks")
    result = run([
        swaks, "--server", f"127.0.0.1:{server.port('submission')}", "--tls",
        "--auth", "LOGIN", "--auth-user", "bob@test.local", "--auth-password", "nope-nope-1",
        "--from", "bob@test.local", "--to", "carol@test.local",
    ])
    assert result.returncode != 0
    assert "535 5.7.8" in result.stdout
    assert inbox(server, "carol@test.local") == []


def test_msmtp_submits_with_auth_over_starttls(server: RunningServer, tmp_path: Path) -> None:
    msmtp = need("msmtp")
    rc = private_file(tmp_path / "msmtprc", "\n".join([
        "account default",
        "host 127.0.0.1",
        f"port {server.port('submission')}",
        "from bob@test.local",
        "tls on", "tls_starttls on", "tls_certcheck off",
        "auth plain", "user bob@test.local", f"password {PASSWORD}", "",
    ]))
    result = run([msmtp, "-C", str(rc), "carol@test.local"], stdin=MESSAGE)
    assert result.returncode == 0, result.stderr
    [stored] = inbox(server, "carol@test.local")
    assert b"sent by a real client\r\n.starts with a dot\r\n" in stored


def _pop3_delivered(server: RunningServer, out: Path) -> list[bytes]:
    return [p.read_bytes() for sub in ("new", "cur") for p in sorted((out / sub).iterdir())]


def _seed_bob(server: RunningServer, count: int) -> None:
    with server.smtp() as client:
        for i in range(count):
            client.sendmail("x@remote.example", ["bob@test.local"],
                            f"Subject: pop {i}\r\n\r\nbody {i}\r\n.dot\r\n".encode())


@pytest.mark.parametrize("mode", ["stls", "implicit"])
def test_mpop_retrieves_over_tls_and_deletes(server: RunningServer, tmp_path: Path,
                                              mode: str) -> None:
    mpop = need("mpop")
    _seed_bob(server, 3)
    out = tmp_path / "out"
    for sub in ("tmp", "new", "cur"):
        (out / sub).mkdir(parents=True)
    port = server.port("pop3" if mode == "stls" else "pop3s")
    rc = private_file(tmp_path / "mpoprc", "\n".join([
        "account default",
        "host 127.0.0.1",
        f"port {port}",
        "tls on", f"tls_starttls {'on' if mode == 'stls' else 'off'}", "tls_certcheck off",
        "auth plain", "user bob@test.local", f"password {PASSWORD}",
        f"delivery maildir {out}", "keep off", "",
    ]))
    result = run([mpop, "-C", str(rc), "-q"])
    assert result.returncode == 0, result.stderr
    got = _pop3_delivered(server, out)
    assert len(got) == 3
    assert inbox(server, "bob@test.local") == []  # keep off: deleted on the server
    assert all(b"\n..dot" not in g and b"\n.dot" in g for g in got)  # unstuffed
    assert server.runtime.store.refs(
        server.directory.get_account("bob@test.local").id, "INBOX"  # type: ignore[union-attr]
    ) == []


def test_fetchmail_retrieves_over_pop3s_keeping_mail(server: RunningServer,
                                                     tmp_path: Path) -> None:
    fetchmail = need("fetchmail")
    _seed_bob(server, 2)
    collected = tmp_path / "collected.mbox"
    rc = private_file(tmp_path / "fetchmailrc", "\n".join([
        f'poll 127.0.0.1 service {server.port("pop3s")} protocol pop3 uidl',
        f'  user "bob@test.local" password "{PASSWORD}" is "tester" here',
        "  ssl no sslcertck keep",
        f'  mda "/bin/sh -c \'cat >> {collected}\'"', "",
    ]))
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    result = subprocess.run(
        [fetchmail, "-f", str(rc), "--nodetach", "--nosyslog", "-v"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = collected.read_bytes()
    assert text.count(b"Subject: pop ") == 2
    # "keep": still on the server, and the index agrees.
    account = server.directory.get_account("bob@test.local")
    assert account is not None
    assert len(server.runtime.store.refs(account.id, "INBOX")) == 2
