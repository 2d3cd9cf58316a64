"""SMTP AUTH through the login service (real directory, throttle), start_smtp_server's wiring."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.config import Config, SmtpSettings
from nmail.directory import Directory, LoginThrottle
from nmail.directory.login import LoginService
from nmail.directory.passwords import fast_hashing
from nmail.servers.delays import Sleep
from nmail.servers.limits import SharedRow
from nmail.servers.smtp import start_smtp_server
from nmail.servers.smtp_auth import LOCKED_OUT, LOGIN_DISABLED, auth_outcome
from nmail.servers.smtp_backend import AuthOutcome
from smtp_rig import RecordingBackend, SelfSignedCert, make_certificate
from support import FakeClock, LoopThread

PASSWORD = "Correct-horse-42"


@pytest.fixture
def directory(sqlite_engine: Engine) -> Directory:
    d = Directory(sqlite_engine, passwords=fast_hashing())
    d.add_domain("example.com")
    d.add_account("example.com", "Bob", "bob", PASSWORD)
    return d


class Auth:
    """SMTP AUTH answers from one login service."""

    def __init__(self, directory: Directory, throttle: LoginThrottle) -> None:
        self.login = LoginService(directory, throttle)

    def authenticate(self, username: str, password: str, ip: str) -> AuthOutcome:
        return auth_outcome(self.login, username, password, ip)


def test_good_password(directory: Directory) -> None:
    auth = Auth(directory, LoginThrottle(FakeClock()))
    outcome = auth.authenticate("bob@example.com", PASSWORD, "192.0.2.1")
    assert outcome.ok and outcome.account_address == "bob@example.com"


def test_failures_grow_the_delay_then_lock_out(directory: Directory) -> None:
    clock = FakeClock()
    auth = Auth(directory, LoginThrottle(clock, max_failures=3))
    delays = [auth.authenticate("bob@example.com", "wrong", "192.0.2.1").delay for _ in range(2)]
    assert delays == [1.0, 2.0]
    third = auth.authenticate("bob@example.com", "wrong", "192.0.2.1")
    assert not third.ok and third.reply is None
    # Locked out now: even the right password is refused, temporarily, untested.
    locked = auth.authenticate("bob@example.com", PASSWORD, "192.0.2.1")
    assert not locked.ok and locked.reply == LOCKED_OUT


def test_unknown_user_is_a_plain_failure(directory: Directory) -> None:
    auth = Auth(directory, LoginThrottle(FakeClock()))
    outcome = auth.authenticate("nobody@example.com", PASSWORD, "192.0.2.1")
    assert not outcome.ok and outcome.reply is None and outcome.delay == 1.0


def test_login_disabled_is_said_only_with_the_right_password(directory: Directory) -> None:
    directory.set_login_enabled("bob@example.com", False)
    auth = Auth(directory, LoginThrottle(FakeClock()))
    assert auth.authenticate("bob@example.com", PASSWORD, "192.0.2.1").reply == LOGIN_DISABLED
    assert auth.authenticate("bob@example.com", "wrong", "192.0.2.1").reply is None


@dataclass
class FakeCertificates:
    ctx: ssl.SSLContext | None

    def context(self) -> ssl.SSLContext | None:
        return self.ctx


@dataclass
class MiniRuntime:
    """What start_smtp_server reads from nmail.runtime.Runtime."""

    config: Config
    intake: RecordingBackend
    login: LoginService
    certificates: FakeCertificates
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4))
    connection_counts: dict[str, SharedRow] = field(default_factory=dict)
    sleep: Sleep = asyncio.sleep


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread("uvloop")
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def test_start_smtp_server_wires_submission(
    loop: LoopThread, directory: Directory, cert: SelfSignedCert, tmp_path: Path
) -> None:
    config = Config(
        data_dir=tmp_path,
        hostname="mail.example.com",
        database_url="sqlite://",
        smtp=SmtpSettings(plaintext_auth_networks=()),
    )
    runtime = MiniRuntime(
        config,
        RecordingBackend(hosted=("example.com",), users={"postmaster@example.com": ""}),
        LoginService(directory, LoginThrottle()),
        FakeCertificates(cert.server_context()),
    )
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    server = loop.run(start_smtp_server(runtime, "submission", sock))
    try:
        with smtplib.SMTP("localhost", server.port, timeout=10) as client:
            _, banner = client.ehlo("c.test")
            assert banner.startswith(b"mail.example.com")
            client.starttls(context=cert.client_context())
            client.login("bob@example.com", PASSWORD)
            client.sendmail("bob@example.com", ["<postmaster>"], b"Subject: hi\r\n\r\nx\r\n")
        envelope, _ = runtime.intake.accepted[0]
        assert envelope.client.auth_user == "bob@example.com"
        assert runtime.intake.recipients_seen == ["postmaster@mail.example.com"]
    finally:
        loop.run(server.close(grace=0))
        runtime.executor.shutdown()
    with socket.socket() as unused, pytest.raises(ValueError):
        loop.run(start_smtp_server(runtime, "imap", unused))
