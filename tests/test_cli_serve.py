"""`nmail init`, `nmail serve` and `nmail tls show` as real processes."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from nmail.certs import generate_self_signed
from serve_process import NMAIL, ServeProcess
from support import free_port, wait_until


def nmail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NMAIL, *args], capture_output=True, text=True, timeout=120, env=env)


def listeners_off(data: Path) -> None:
    cfg = data / "nmail.toml"
    cfg.write_text(re.sub(r'(?m)^(\w+) = "0\.0\.0\.0"$', r'\1 = "off"', cfg.read_text()))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    result = nmail(
        "--data",
        str(d),
        "init",
        "--hostname",
        "mail.example.com",
        "--postmaster-password",
        "Postmaster-pw-1",
    )
    assert result.returncode == 0, result.stderr
    return d


def test_init_creates_the_data_directory(tmp_path: Path) -> None:
    d = tmp_path / "fresh"
    result = nmail("--data", str(d), "init", "--hostname", "mx1.example.org")
    assert result.returncode == 0, result.stderr
    for name in ("nmail.toml", "index.sqlite3", "mail", "queue", "logs", "tls/cert.pem"):
        assert (d / name).exists(), name
    assert "postmaster@example.org" in result.stdout
    match = re.search(r"password \(shown once, store it now\): (\S+)", result.stdout)
    assert match, result.stdout
    assert (d / "mail" / "example.org" / "postmaster" / "Maildir" / "new").is_dir()
    listed = nmail("--data", str(d), "user", "list")
    assert "postmaster@example.org" in listed.stdout
    assert "server admin" in listed.stdout


def test_init_twice_is_refused_and_changes_nothing(data: Path) -> None:
    before = (data / "nmail.toml").read_text()
    result = nmail("--data", str(data), "init")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"nmail: error: {data / 'nmail.toml'} already exists; nothing changed"
    ]
    assert (data / "nmail.toml").read_text() == before


def test_init_rejects_a_bad_hostname(tmp_path: Path) -> None:
    result = nmail("--data", str(tmp_path / "d"), "init", "--hostname", "bad_host..name")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d" / "nmail.toml").exists()


def test_nmail_data_environment_variable(tmp_path: Path) -> None:
    env = dict(os.environ, NMAIL_DATA=str(tmp_path / "envdata"))
    result = nmail("init", "--hostname", "mail.example.net", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "envdata" / "nmail.toml").exists()
    assert "postmaster@example.net" in nmail("user", "list", env=env).stdout


def test_serve_initializes_an_empty_directory_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    srv = ServeProcess(
        tmp_path / "new",
        f"smtp=127.0.0.1:{port}",
        "http=127.0.0.1:0",
        *(f"{n}=127.0.0.1:0" for n in ("submission", "submissions", "pop3", "pop3s")),
    )
    try:
        out = "".join(srv.lines)
        assert "postmaster password (shown once" in out
        assert f"smtp 127.0.0.1:{port}" in out
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.noop()[0] == 250
    finally:
        assert srv.stop()[0] == 0


def test_serve_bad_listen_option_is_one_line(data: Path) -> None:
    result = nmail("--data", str(data), "serve", "--listen", "smtp=127.0.0.1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "nmail: error: --listen 'smtp=127.0.0.1': missing port"
    ]
    result = nmail("--data", str(data), "serve", "--listen", "ftp=127.0.0.1:21")
    assert result.returncode == 1
    assert "expected NAME=HOST:PORT" in result.stderr


def test_serve_port_in_use_is_one_line(data: Path) -> None:
    listeners_off(data)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = nmail("--data", str(data), "serve", "--listen", f"smtp=127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"nmail: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def _peer_cert_subject(port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    assert der is not None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def test_sighup_reloads_certificates_without_dropping_connections(data: Path) -> None:
    listeners_off(data)
    port = free_port()
    smtp_port = free_port()
    srv = ServeProcess(data, f"submissions=127.0.0.1:{port}", f"smtp=127.0.0.1:{smtp_port}")
    try:
        assert _peer_cert_subject(port) == "CN=mail.example.com"
        open_session = smtplib.SMTP("127.0.0.1", smtp_port, timeout=10)
        open_session.ehlo("c.example")
        generate_self_signed(
            "renewed.example.com", data / "tls" / "cert.pem", data / "tls" / "key.pem"
        )
        srv.proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: _peer_cert_subject(port) == "CN=renewed.example.com",
            what="new certificate served",
        )
        assert open_session.noop()[0] == 250  # the connection survived the reload
        open_session.quit()
    finally:
        assert srv.stop()[0] == 0


def test_tls_show(data: Path) -> None:
    result = nmail("--data", str(data), "tls", "show")
    assert result.returncode == 0, result.stderr
    assert "subject:   CN=mail.example.com" in result.stdout
    assert "mail.example.com" in result.stdout.split("SANs:")[1]
    assert "(self-signed)" in result.stdout
    assert "days left" in result.stdout


def test_tls_show_missing_file_is_one_line(data: Path) -> None:
    (data / "tls" / "cert.pem").unlink()
    result = nmail("--data", str(data), "tls", "show")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"nmail: error: {data / 'tls' / 'cert.pem'}: not found"
    ]


def test_pop3_connection_limit_from_nmail_toml(data: Path) -> None:
    """[pop3] max_connections reaches the listener: past it, one -ERR and close."""
    listeners_off(data)
    cfg = data / "nmail.toml"
    cfg.write_text(cfg.read_text().replace("max_connections = 1000        # open POP3",
                                           "max_connections = 1        # open POP3"))
    port = free_port()
    srv = ServeProcess(data, f"pop3=127.0.0.1:{port}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as first:
            assert first.recv(512).startswith(b"+OK")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as second:
                refused = b""
                while chunk := second.recv(512):  # the server closes after the line
                    refused += chunk
                assert refused == b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
            first.sendall(b"QUIT\r\n")
            assert first.recv(512).startswith(b"+OK")
    finally:
        assert srv.stop()[0] == 0
    # The admin hears of it (one line, not one per refused connection).
    assert "pop3: connection from 127.0.0.1 refused: the listener's connection limit" in (
        srv.stderr_text
    )
