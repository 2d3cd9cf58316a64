"""Issue 9 item 7: a session does not outlive its account, nor live for ever.

Over real sockets against `nmail serve`: after `user disable --login` or
`user del`, an authenticated submission session's next MAIL is refused
(the null sender too); a client trickling bytes is closed at the idle
deadline (a byte does not reset it); a message arriving slower than
`min_data_rate` is cut off; a session busy with NOOPs ends at
`max_session_time`.
"""

from __future__ import annotations

import re
import select
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proc_tree import holds_connection
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data, nmail, set_option, smtp_reply
from support import closed_after, silent_for, wait_until

USER = "bob@test.local"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_data(tmp_path, USER)


@pytest.fixture
def served(data: Path) -> Iterator[tuple[ServeProcess, dict[str, int]]]:
    ports = listen_specs("smtp", "submission")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        yield srv, ports
    finally:
        assert srv.stop()[0] == 0


def logged_in(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.login(USER, PASSWORD)
    assert (
        client.sendmail(USER, [USER], b"From: bob@test.local\r\nSubject: first\r\n\r\nbefore\r\n")
        == {}
    )
    return client


@pytest.mark.parametrize("change", [("user", "disable", USER, "--login"), ("user", "del", USER)])
def test_the_next_mail_after_the_account_changed_is_refused(
    data: Path, served: tuple[ServeProcess, dict[str, int]], change: tuple[str, ...]
) -> None:
    _, ports = served
    client = logged_in(ports["submission"])
    try:
        nmail(data, *change)
        for sender in (USER, ""):
            code, text = client.mail(sender)
            assert (code, text[:5]) == (530, b"5.7.0"), (sender, text)
            client.rset()
        with pytest.raises(smtplib.SMTPAuthenticationError):  # and no new login either
            logged_in(ports["submission"])
    finally:
        client.close()


def test_a_session_of_a_deleted_account_does_not_send_as_its_successor(
    tmp_path: Path, db_url: str
) -> None:
    """`user del` then `user add` of the same address: a new owner, not the old session's.

    On SQLite this holds because accounts.id is AUTOINCREMENT (migration 0012).
    """
    data = tmp_path / "data"
    nmail(data, "init", "--hostname", "mail.example.com", "--postmaster-password", PASSWORD,
          "--database-url", db_url)
    cfg = data / "nmail.toml"
    cfg.write_text(re.sub(r'(?m)^(\w+) = "0\.0\.0\.0"$', r'\1 = "off"', cfg.read_text()))
    nmail(data, "domain", "add", "test.local")
    nmail(data, "user", "add", "test.local", "Bob", "bob", PASSWORD)
    ports = listen_specs("smtp", "submission")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        client = logged_in(ports["submission"])
        try:
            nmail(data, "user", "del", USER)
            nmail(data, "user", "add", "test.local", "New Bob", "bob", "other-pass-123")
            for sender in (USER, ""):
                code, text = client.mail(sender)
                assert (code, text[:5]) == (530, b"5.7.0"), (sender, text)
                client.rset()
        finally:
            client.close()
        with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=30) as successor:
            successor.login(USER, "other-pass-123")
            assert successor.mail(USER)[0] == 250
    finally:
        assert srv.stop()[0] == 0


def test_an_enabled_account_keeps_sending(served: tuple[ServeProcess, dict[str, int]]) -> None:
    _, ports = served
    with logged_in(ports["submission"]) as client:
        assert (
            client.sendmail(
                USER, [USER], b"From: bob@test.local\r\nSubject: second\r\n\r\nafter\r\n"
            )
            == {}
        )


def session(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    assert smtp_reply(sock).startswith(b"220")
    sock.sendall(b"EHLO client.test\r\n")
    assert smtp_reply(sock).startswith(b"250")
    return sock


def test_a_trickle_of_bytes_does_not_reset_the_idle_deadline(data: Path) -> None:
    set_option(data, "smtp", "idle_timeout", '"2s"')
    ports = listen_specs("smtp")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        with session(ports["smtp"]) as sock:
            said = closed_after(sock, b"N", 0.2, 150)  # a line that never ends
        assert said.startswith(b"421 4.4.2 Idle timeout"), said
    finally:
        assert srv.stop()[0] == 0


def test_a_message_slower_than_the_minimum_rate_is_cut_off(data: Path) -> None:
    set_option(data, "smtp", "idle_timeout", '"2s"')
    set_option(data, "smtp", "min_data_rate", "1000")
    ports = listen_specs("smtp")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        with session(ports["smtp"]) as sock:
            for command in (b"MAIL FROM:<a@b.example>", f"RCPT TO:<{USER}>".encode(), b"DATA"):
                sock.sendall(command + b"\r\n")
                assert smtp_reply(sock)[:1] in (b"2", b"3")
            said = closed_after(sock, b"x" * 19 + b"\n", 0.2, 150)  # 100 bytes/s
        assert said.startswith(b"421 4.4.2"), said
        with session(ports["smtp"]) as sock:  # fast enough: 2 MB at once is fine
            for command in (b"MAIL FROM:<a@b.example>", f"RCPT TO:<{USER}>".encode(), b"DATA"):
                sock.sendall(command + b"\r\n")
                assert smtp_reply(sock)[:1] in (b"2", b"3")
            sock.sendall(b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 2000 + b".\r\n")
            assert smtp_reply(sock).startswith(b"250")
    finally:
        assert srv.stop()[0] == 0


def test_a_session_ends_at_its_time_limit_however_busy(data: Path) -> None:
    set_option(data, "smtp", "max_session_time", '"3s"')
    ports = listen_specs("smtp")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        with session(ports["smtp"]) as sock:
            said = b""
            for _ in range(200):  # a NOOP every 0.1 s would last 20 s
                sock.sendall(b"NOOP\r\n")
                reply = smtp_reply(sock)
                said += reply
                if not reply.startswith(b"250"):
                    break
                silent_for(sock, 0.1)  # a busy client's pause; over if the server hangs up
            assert said.rsplit(b"\r\n", 2)[-2].startswith(b"421 4.4.2 Session time limit"), said
    finally:
        assert srv.stop()[0] == 0


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("idle_timeout", '"0s"', "[smtp] idle_timeout: expected at least 1 second"),
        ("max_session_time", '"forever"', "[smtp] max_session_time: expected a duration"),
        ("min_data_rate", "0", "[smtp] min_data_rate: expected 1"),
    ],
)
def test_bad_session_settings_are_refused_with_the_key(
    data: Path, key: str, value: str, error: str
) -> None:
    from nmail.config import ConfigError, load_config

    set_option(data, "smtp", key, value)
    with pytest.raises(ConfigError) as caught:
        load_config(data)
    assert error in str(caught.value)


def test_a_client_that_never_reads_its_replies_ends_at_the_time_limit(data: Path) -> None:
    """The server stops reading a client that does not read; the time limit must
    still free the session (its socket), though no 421 can reach that client."""
    set_option(data, "smtp", "max_session_time", '"3s"')
    ports = listen_specs("smtp")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        pid = srv.proc.pid
        with session(ports["smtp"]) as sock:
            # The session's own socket, not a count of the process's sockets: the
            # process opens others of its own after it listens (its feed
            # subscription), which made a count off by one now and then.
            client = sock.getsockname()
            assert holds_connection(pid, client)
            sock.setblocking(False)
            flood = b"NOOP\r\n" * 10_000
            deadline = time.monotonic() + 60
            while True:  # until the server has stopped reading for a second
                assert time.monotonic() < deadline, "the server kept reading a client not reading"
                try:
                    sock.send(flood)
                except BlockingIOError:
                    _, writable, _ = select.select([], [sock], [], 1.0)
                    if not writable:
                        break
            wait_until(lambda: not holds_connection(pid, client), 30, "the session's socket freed")
    finally:
        assert srv.stop()[0] == 0
