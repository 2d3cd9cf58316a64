"""Issue 9 item 7 for POP3: a session does not outlive its account.

Over real sockets against `nmail serve`, changed with the real commands: after
`user disable --login`, `user del`, or `user del` and `user add` of the same
address, a logged-in session's next command gets an -ERR that says why, the
connection closes, and its DELE marks are never committed; a session of an
account that did not change goes on. A session that had only sent USER has
its PASS refused by the login itself. The UPDATE at QUIT looks the account
up exactly, whatever the interval (in-process server, interval an hour).
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import Engine

from pop3_rig import PASSWORD as RIG_PASSWORD
from pop3_rig import Pop3Rig
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data, nmail
from support import wait_until

DOMAIN = "test.local"
BOB, CAROL, DAVE, ERIN = (f"{name}@{DOMAIN}" for name in ("bob", "carol", "dave", "erin"))
DISABLED = b"-ERR [AUTH] Logins to this account were disabled, closing\r\n"
DELETED = b"-ERR [AUTH] This account was deleted, closing\r\n"
REPLACED = b"-ERR [AUTH] This account was deleted and created again, closing\r\n"


@contextlib.contextmanager
def serving(
    tmp_path: Path, *users: str, database_url: str | None = None
) -> Iterator[tuple[Path, dict[str, int]]]:
    data = make_data(tmp_path, *users, database_url=database_url)
    ports = listen_specs("smtp", "pop3")
    srv = ServeProcess(data, *as_options(ports), workers=1)
    try:
        yield data, ports
    finally:
        assert srv.stop()[0] == 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    with serving(tmp_path, BOB) as found:
        yield found


class Session:
    """A raw POP3 connection, one command and one reply line at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.stream: BinaryIO = self.sock.makefile("rb")
        assert self.stream.readline().startswith(b"+OK")

    def cmd(self, line: str) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.stream.readline()

    def login(self, address: str, password: str = PASSWORD) -> None:
        assert self.cmd(f"USER {address}").startswith(b"+OK")
        assert self.cmd(f"PASS {password}").startswith(b"+OK Logged in")

    def closed(self) -> bool:
        """The server closed the connection (nothing more to read)."""
        return self.stream.read() == b""

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def deliver(port: int, *addresses: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for address in addresses:
            for n in (1, 2):
                message = f"From: a@example.net\r\nSubject: {n}\r\n\r\nbody {n}\r\n"
                assert client.sendmail("a@example.net", [address], message) == {}


def count(port: int, address: str) -> int:
    session = Session(port)
    try:
        session.login(address)
        return int(session.cmd("STAT").split()[1])
    finally:
        session.close()


def purged_files(data: Path, address: str) -> int:
    """Message files in the purge area's copy of `address`'s mailbox."""
    [mailbox] = (data / "mail" / ".purge").glob(f"*-{address}")
    return sum(1 for sub in ("new", "cur") for _ in (mailbox / "Maildir" / sub).iterdir())


def test_the_next_command_after_the_account_changed_ends_the_session(
    tmp_path: Path, db_url: str
) -> None:
    """On each database: on SQLite the generation is read on the event loop, on the
    others in a thread."""
    with serving(tmp_path, BOB, CAROL, DAVE, ERIN, database_url=db_url) as (data, ports):
        changes_end_sessions(data, ports)


def changes_end_sessions(data: Path, ports: dict[str, int]) -> None:
    deliver(ports["smtp"], BOB, CAROL, DAVE, ERIN)
    sessions = {address: Session(ports["pop3"]) for address in (BOB, CAROL, DAVE, ERIN)}
    try:
        for address, session in sessions.items():
            session.login(address)
            assert session.cmd("DELE 1") == b"+OK message 1 deleted\r\n"
        nmail(data, "user", "disable", BOB, "--login")
        nmail(data, "user", "del", CAROL)
        nmail(data, "user", "del", DAVE)
        nmail(data, "user", "add", DOMAIN, "New Dave", "dave", PASSWORD)
        for address, why in ((BOB, DISABLED), (CAROL, DELETED), (DAVE, REPLACED)):
            assert sessions[address].cmd("STAT") == why, address
            assert sessions[address].closed(), address
        # Erin's account did not change (the directory did): her session goes on.
        erin = sessions[ERIN]
        assert erin.cmd("STAT").startswith(b"+OK 1 ")
        assert erin.cmd("QUIT").startswith(b"+OK")
    finally:
        for session in sessions.values():
            session.close()
    assert count(ports["pop3"], ERIN) == 1  # her DELE was committed
    nmail(data, "user", "enable", BOB, "--login")
    assert count(ports["pop3"], BOB) == 2  # bob's was not
    assert purged_files(data, CAROL) == 2  # nor carol's: her whole mailbox was set aside
    assert purged_files(data, DAVE) == 2
    assert count(ports["pop3"], DAVE) == 0  # the new dave never saw the old one's mail


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (("user", "disable", BOB, "--login"), b"-ERR [AUTH] Account disabled\r\n"),
        (("user", "del", BOB), b"-ERR [AUTH] Authentication failed\r\n"),
    ],
)
def test_pass_after_the_account_changed_is_refused(
    served: tuple[Path, dict[str, int]], change: tuple[str, ...], refusal: bytes
) -> None:
    """In AUTHORIZATION (USER sent) there is no account yet: PASS asks the directory."""
    data, ports = served
    session = Session(ports["pop3"])
    try:
        assert session.cmd(f"USER {BOB}").startswith(b"+OK")
        nmail(data, *change)
        assert session.cmd(f"PASS {PASSWORD}") == refusal
        assert session.cmd("STAT") == b"-ERR STAT is not allowed before login\r\n"
    finally:
        session.close()


@pytest.fixture
def rig(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Pop3Rig]:
    rig = Pop3Rig(sqlite_engine, tmp_path)
    yield rig
    rig.close()


def test_update_looks_the_account_up_exactly(rig: Pop3Rig) -> None:
    """A QUIT within the check interval of the change: still nothing is removed."""
    rig.deliver(b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n")
    server = rig.start(check_interval=3600.0)
    session = Session(server.port)
    try:
        session.login("bob@example.com", RIG_PASSWORD)
        assert session.cmd("DELE 1") == b"+OK message 1 deleted\r\n"
        assert session.cmd("STAT").startswith(b"+OK 1 ")  # the generation is an hour fresh
        rig.directory.set_login_enabled("bob@example.com", False)
        assert session.cmd("QUIT") == DISABLED
        assert session.closed()
    finally:
        session.close()
    wait_until(lambda: server.connection_count == 0)
    assert len(rig.store.refs(rig.account.id, "INBOX")) == 2
