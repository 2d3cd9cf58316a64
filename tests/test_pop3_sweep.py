"""The POP3 door against a real `nmail serve`: hostile lines, logins, STLS, sharing, clients.

An outsider with raw sockets and real clients (mpop, fetchmail) tries every
command in every state with missing, extra, empty, huge, negative, zero,
leading-zero, signed, hex, overflowing and non-ASCII arguments; odd line
ends, NULs, over-long lines, pipelines, commands after QUIT; AUTH PLAIN and
LOGIN tricks (bad base64, "*", "=", another account's authzid, another
domain's user); every spelling of an account the login service makes
canonical (issue 9 item 3: one lockout count); STLS injection; a second
login to a locked maildrop; messages expunged by another door meanwhile.

Every hostile line gets a clear -ERR (or the behaviour written in its row)
and the session goes on where RFC 1939 says it should; nothing
acknowledged is lost. The state machine has its own tests
(test_pop3_protocol*.py), the in-process server too (test_pop3_server.py);
this file is the end-to-end net over the real command.

One server for the module, SQLite only: the door's parsing and the maildrop
lock are the same code on every database. Policies pinned here:
- one session per mailbox: a second login gets `-ERR [IN-USE]` after its
  password was checked (docs/ARCHITECTURE.md, POP3), and stays in
  AUTHORIZATION;
- a message expunged by another door is still listed (RFC 1939: the
  maildrop is fixed at login) but RETR/TOP give `-ERR message N no longer
  exists`;
- lines end at LF (a CR before it is dropped); a bare CR is part of the line;
- command keywords are ASCII, in any case; a keyword that only Unicode case
  mapping makes into one (U+017F long s, U+0131 dotless i) is unknown;
- QUIT ignores an argument (it is answered as QUIT: the client wants out).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.directory import Account, Directory
from nmail.directory.passwords import fast_hashing
from nmail.directory.throttle import LoginThrottle, account_key
from nmail.directory.throttle_store import SqlRecords
from nmail.mailstore.store import MailStore, NewMessage
from nmail.mailstore.uidset import UidSet
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data

pytestmark = pytest.mark.timeout(120)

CRLF = b"\r\n"
BOB = "bob@test.local"
MESSAGES = (
    b"Subject: one\r\n\r\nfirst body\r\n",
    b"Subject: two\r\nX: y\r\n\r\n.hidden dot\r\nline 2\r\nline 3\r\n",
    b"Subject: three\r\n\r\nthird\r\n",
)
# Accounts whose login names are spelled otherwise (issue 9 item 3), each with its own
# account so that the rows run at once: (canonical address, the spelling a client sends).
SPELLINGS = (
    ("dot@test.local", "Dot@Test.Local."),
    ("quoted@test.local", '"quoted"@test.local'),
    ("ideo@test.local", "ideo@test\u3002local"),
    ("full@test.local", "full@test\uff0elocal"),
    ("aliased@test.local", "aliased@alias.test"),
    ("me@xn--bcher-kva.test", "me@b\u00fccher.test"),
    ("you@xn--bcher-kva.test", "YOU@B\u00dcCHER.TEST."),
)
BEA = "bea@test.local"  # bob's twin: the transaction rows run in two sessions at once
USERS = (BOB, BEA, "dora@test.local", "client@test.local")  # these log in
# These only ever see wrong passwords and lockouts: hashed cheaply (a right password
# would have the server rehash at its own cost), with no mailbox and no DKIM key.
STRANGERS = ("carol@other.test", *(canonical for canonical, _ in SPELLINGS))


@dataclass
class World:
    data: Path
    ports: dict[str, int]
    engine: Engine
    store: MailStore
    directory: Directory

    def account(self, address: str) -> Account:
        found = self.directory.get_account(address)
        assert found is not None
        return found

    def deliver(self, address: str, *contents: bytes) -> list[int]:
        account = self.account(address)
        return [m.uid for m in self.store.store(
            [NewMessage(account, "INBOX", b"", c) for c in contents])]

    def uids(self, address: str) -> list[int]:
        return [r.uid for r in self.store.refs(self.account(address).id, "INBOX")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = make_data(tmp_path_factory.mktemp("pop3sweep"), *USERS)
    engine = make_engine(load_config(data).database_url)
    directory = Directory(engine)
    directory.add_domain_alias("alias.test", "test.local")
    cheap = Directory(engine, passwords=fast_hashing())
    for address in STRANGERS:
        userid, domain = address.split("@")
        if directory.get_domain(domain) is None:
            directory.add_domain(domain)
        cheap.add_account(domain, userid.title(), userid, PASSWORD)
    store = MailStore(engine, data / "mail", "mail.example.com")
    world = World(data, listen_specs("pop3", "pop3s"), engine, store, directory)
    world.deliver(BOB, *MESSAGES)
    world.deliver(BEA, *MESSAGES)
    server = ServeProcess(data, *as_options(world.ports), workers=1, shared=True)
    try:
        yield world
    finally:
        server.stop()
        store.close()
        engine.dispose()


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Pop:
    """A raw POP3 client: bytes out, reply lines back."""

    def __init__(self, port: int, source: str = "127.0.0.1", *, tls: bool = False) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=20,
                                        source_address=(source, 0))
        self.sock: socket.socket | ssl.SSLSocket = (
            client_context().wrap_socket(sock) if tls else sock)
        self.buf = b""
        self.eof = False
        OPEN.append(self)
        self.greeting = self.line()
        assert self.greeting.startswith(b"+OK"), self.greeting

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        """The next line without its CRLF; b"" (and `eof`) once the server closed."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
                rest, self.buf = self.buf, b""
                assert rest == b"", f"half a line before the close: {rest!r}"
                return b""
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def body(self) -> list[bytes]:
        """The lines of a multi-line reply up to its ".", unstuffed."""
        lines = []
        while (line := self.line()) != b".":
            assert not self.eof, "closed inside a multi-line reply"
            lines.append(line[1:] if line.startswith(b".") else line)
        return lines

    def cmd(self, line: bytes | str) -> bytes:
        self.send((line.encode() if isinstance(line, str) else line) + CRLF)
        return self.line()

    def login(self, user: str = BOB, password: str = PASSWORD) -> bytes:
        assert self.cmd(f"USER {user}") == b"+OK Send your password"
        return self.cmd(f"PASS {password}")

    def starttls(self) -> None:
        self.sock = client_context().wrap_socket(self.sock)

    def closed(self) -> bool:
        return self.line() == b"" and self.eof

    def close(self) -> None:
        self.sock.close()


OPEN: list[Pop] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    """A failing test's sessions end with it (else its maildrop stays locked)."""
    yield
    while OPEN:
        OPEN.pop().close()


def pop(world: World, source: str = "127.0.0.1") -> Pop:
    return Pop(world.ports["pop3"], source)


def logged_in(world: World, user: str = BOB) -> Pop:
    client = pop(world)
    reply = client.login(user)
    assert reply.startswith(b"+OK Logged in"), reply
    return client


# --- every command in every state, with every kind of argument --------------------------

HUGE = "9" * 10_000
# (argument, the -ERR text for a message-number argument; None: it names message 1).
NUMBER_ARGUMENTS = [
    ("-1", "Invalid message number '-1'"),
    ("0", "No such message 0"),
    ("01", None),  # leading zeros: still the decimal number 1
    ("0000000001", None),
    ("00000000001", "No such message"),  # more digits than any maildrop
    ("+1", "Invalid message number '+1'"),
    ("0x1", "Invalid message number '0x1'"),
    ("1e0", "Invalid message number '1e0'"),
    (str(2**64), "No such message"),
    (str(2**31), f"No such message {2**31}"),
    ("4", "No such message 4"),
    ("\u0661", "Invalid message number '\u0661'"),  # Arabic-Indic one
    ("\uff11", "Invalid message number '\uff11'"),  # full-width one
    ("\u00b9", "Invalid message number '\u00b9'"),  # superscript one
    ("1\x00", "Invalid message number '1\\x00'"),
    ("1.0", "Invalid message number '1.0'"),
    ("one", "Invalid message number 'one'"),
]
MULTI = "multi"  # the row's reply is +OK and a multi-line body


def message_number_rows() -> list[tuple[str, str]]:
    """(command line, expected first reply line, or MULTI + its start) for LIST, UIDL,
    RETR, DELE and TOP with each kind of message-number argument."""
    rows: list[tuple[str, str]] = []
    for verb in ("LIST", "UIDL", "RETR", "DELE", "TOP"):
        tail = " 0" if verb == "TOP" else ""
        syntax = f"-ERR Syntax: {verb} message-number" + (" lines" if verb == "TOP" else "")
        for argument, error in NUMBER_ARGUMENTS:
            if error is not None:
                rows.append((f"{verb} {argument}{tail}", f"-ERR {error}"))
            else:
                rows.append((f"{verb} {argument}{tail}", {
                    "LIST": f"+OK 1 {len(MESSAGES[0])}", "UIDL": "+OK 1 ",
                    "RETR": f"{MULTI}+OK {len(MESSAGES[0])} octets",
                    "DELE": "+OK message 1 deleted",
                    "TOP": f"{MULTI}+OK Top of message follows"}[verb]))
        rows.append((f"{verb} 1 2 3" if verb == "TOP" else f"{verb} 1 2", syntax))
        if verb in ("RETR", "DELE", "TOP"):
            rows.append((verb, syntax))  # missing
            rows.append((f"{verb} ", syntax))  # empty
        rows.append((f"{verb} {HUGE}", "-ERR Line too long"))
    # TOP's line count.
    for count, reply in [("-1", "-ERR Invalid line count '-1'"),
                         ("+1", "-ERR Invalid line count '+1'"),
                         ("0x1", "-ERR Invalid line count '0x1'"),
                         ("\u0661", "-ERR Invalid line count '\u0661'"),
                         ("x", "-ERR Invalid line count 'x'"),
                         ("0", f"{MULTI}+OK Top of message follows"),
                         ("00", f"{MULTI}+OK Top of message follows"),
                         (str(2**64), f"{MULTI}+OK Top of message follows"),
                         ("9" * 240, f"{MULTI}+OK Top of message follows")]:
        rows.append((f"TOP 2 {count}", reply))
    return rows


NO_ARGUMENT_ROWS = [
    (line, reply)
    for verb in ("STAT", "RSET", "NOOP", "CAPA")
    for line, reply in [
        (f"{verb} x", f"-ERR {verb} takes no arguments"),
        (f"{verb} 1", f"-ERR {verb} takes no arguments"),
        (f"{verb} {HUGE}", "-ERR Line too long"),
        (f"{verb} \u00e9", f"-ERR {verb} takes no arguments"),
    ]
]
# What is refused in TRANSACTION whatever its arguments.
AFTER_LOGIN_ROWS = [
    (f"{verb}{argument}", f"-ERR {verb} is not allowed after login")
    for verb in ("USER", "PASS", "AUTH", "STLS")
    for argument in ("", " x", " " + base64.b64encode(f"\0{BOB}\0{PASSWORD}".encode()).decode())
] + [
    ("APOP bob@test.local 0123456789abcdef0123456789abcdef", "-ERR Unknown command APOP"),
    ("UTF8", "-ERR Unknown command UTF8"),
    ("LANG", "-ERR Unknown command LANG"),
    ("XTND XMIT", "-ERR Unknown command XTND"),
    ("", "-ERR Unknown command"),
    (" RETR 1", "-ERR Unknown command"),
    ("RETR\t1", "-ERR Unknown command"),
    ("STAT\t", "-ERR Unknown command"),
    ("NOOP\x00", "-ERR Unknown command"),
    ("\x00", "-ERR Unknown command"),
    ("NOOP\rRSET", "-ERR Unknown command"),  # a bare CR is not a line end
    ("\u017ftat", "-ERR Unknown command"),  # U+017F upper-cases to S
    ("qu\u0131t", "-ERR Unknown command"),  # U+0131 upper-cases to I
    ("\ufb06at", "-ERR Unknown command"),  # the "st" ligature upper-cases to ST
    ("\x1b[2J", "-ERR Unknown command"),
]
GOOD_ROWS = [
    ("stat", f"+OK 3 {sum(map(len, MESSAGES))}"),
    ("Stat", f"+OK 3 {sum(map(len, MESSAGES))}"),
    ("list", f"{MULTI}+OK 3 messages"),
    ("LIST ", f"{MULTI}+OK 3 messages"),
    ("list  2", f"+OK 2 {len(MESSAGES[1])}"),  # two spaces
    ("RETR  2 ", f"{MULTI}+OK {len(MESSAGES[1])} octets"),
    ("uidl", f"{MULTI}+OK Unique-ID listing follows"),
    ("top 1 99999", f"{MULTI}+OK Top of message follows"),
    ("noop", "+OK"),
    ("NOOP ", "+OK"),
    ("rset", "+OK maildrop has 3 messages"),
    ("capa", f"{MULTI}+OK Capability list follows"),
    ("RETR 2\r", f"{MULTI}+OK {len(MESSAGES[1])} octets"),  # CR CR LF: one CR is the line's
]
TRANSACTION_ROWS = message_number_rows() + NO_ARGUMENT_ROWS + AFTER_LOGIN_ROWS + GOOD_ROWS


def expect(client: Pop, line: str, expected: str) -> None:
    reply = client.cmd(line.encode())
    multi = expected.startswith(MULTI)
    want = expected.removeprefix(MULTI).encode()
    assert reply.startswith(want), (line[:60], reply)
    if want.startswith(b"-ERR"):
        # The whole reply: nothing of the line is echoed but through repr().
        assert reply == want, (line[:60], reply)
    assert all(b >= 0x20 and b != 0x7F for b in reply), reply  # no control byte echoed
    if multi:
        client.body()


def test_transaction_rows(world: World) -> None:
    """Each row in a logged-in session; at most nine errors a session (the tenth closes
    it), then NOOP and STAT show it still works and QUIT (after RSET) removes nothing.
    Two mailboxes take turns, so that two sessions log in at once."""
    before = {user: world.uids(user) for user in (BOB, BEA)}
    batches: list[list[tuple[str, str]]] = [[]]
    errors = 0
    for row in TRANSACTION_ROWS:
        if row[1].startswith("-ERR"):
            if errors == 9:
                batches.append([])
                errors = 0
            errors += 1
        batches[-1].append(row)

    def run(user: str, batch: list[tuple[str, str]]) -> None:
        client = logged_in(world, user)
        for line, expected in batch:
            expect(client, line, expected)
            if line.upper().startswith("DELE") and expected.startswith("+OK"):
                assert client.cmd("RSET").startswith(b"+OK maildrop has 3 messages")
        assert client.cmd("NOOP") == b"+OK"
        assert client.cmd("STAT") == f"+OK 3 {sum(map(len, MESSAGES))}".encode()
        assert client.cmd("QUIT").startswith(b"+OK")
        assert client.closed()

    def run_all(user: str, mine: list[list[tuple[str, str]]]) -> None:
        for batch in mine:
            run(user, batch)

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(run_all, BOB, batches[0::2]),
                     pool.submit(run_all, BEA, batches[1::2])]:
            done.result()
    assert {user: world.uids(user) for user in (BOB, BEA)} == before


AUTHORIZATION_ROWS = [
    (f"{verb}", f"-ERR {verb.split()[0].upper()} is not allowed before login")
    for verb in ("STAT", "LIST", "LIST 1", "UIDL", "UIDL 1", "RETR 1", "DELE 1", "TOP 1 0",
                 "NOOP", "RSET", "list", "retr 1")
] + [
    (f"{verb} {argument}", f"-ERR {verb.upper()} is not allowed before login")
    for verb in ("RETR", "DELE")
    for argument in ("-1", "0", str(2**64), "\u0661", "\x00")
] + [
    ("CAPA x", "-ERR CAPA takes no arguments"),
    ("STLS x", "-ERR STLS takes no arguments"),
    ("USER", "-ERR Syntax: USER name"),
    ("USER ", "-ERR Syntax: USER name"),
    ("USER a b", "-ERR Syntax: USER name"),
    ("USER bob\rPASS x", "-ERR Syntax: USER name"),
    (f"USER {HUGE}", "-ERR Line too long"),
    ("PASS x", "-ERR Send USER first"),
    ("PASS", "-ERR Send USER first"),
    ("AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism"),
    ("AUTH XOAUTH2 x", "-ERR Unsupported authentication mechanism"),
    ("AUTH PLAIN a b", "-ERR Syntax: AUTH mechanism [initial-response]"),
    ("AUTH PLAIN !!!!", "-ERR Invalid base64 data in AUTH response"),
    ("AUTH PLAIN AAA", "-ERR Invalid base64 data in AUTH response"),  # bad padding
    ("AUTH PLAIN =", "-ERR Malformed AUTH PLAIN response"),
    ("AUTH PLAIN " + base64.b64encode(b"\0bob@test.local").decode(),
     "-ERR Malformed AUTH PLAIN response"),
    ("AUTH PLAIN " + base64.b64encode(b"\0\0" + PASSWORD.encode()).decode(),
     "-ERR Malformed AUTH PLAIN response"),
    ("AUTH PLAIN " + base64.b64encode(b"\0bob\xff\0x").decode(), "-ERR AUTH response is not UTF-8"),
    ("AUTH LOGIN =", "-ERR Empty user name"),
    ("AUTH pla\u0131n =", "-ERR Unsupported authentication mechanism"),  # dotless i
    ("AUTH \u017fLAIN =", "-ERR Unsupported authentication mechanism"),  # long s
    ("APOP bob@test.local 0123456789abcdef0123456789abcdef", "-ERR Unknown command APOP"),
    ("UTF8", "-ERR Unknown command UTF8"),
    ("\u017ftat", "-ERR Unknown command"),
    ("\u017ftls", "-ERR Unknown command"),
    ("\xff", "-ERR Unknown command"),
]


def test_authorization_rows(world: World) -> None:
    """Before login, in sessions of at most eight errors; each ends still usable."""
    rows = list(AUTHORIZATION_ROWS)
    for start in range(0, len(rows), 8):
        client = pop(world)
        for line, expected in rows[start:start + 8]:
            expect(client, line, expected)
        assert client.cmd("CAPA").startswith(b"+OK")
        assert b"USER" in b"\n".join(client.body())
        assert client.cmd("QUIT") == b"+OK nmail POP3 server signing off"
        assert client.closed()


def test_non_utf8_and_nul_bytes(world: World) -> None:
    client = pop(world)
    assert client.cmd(b"\xff\xfe") == b"-ERR Command is not valid UTF-8"
    assert client.cmd(b"USER bob\xc0@test.local") == b"-ERR Command is not valid UTF-8"
    assert client.cmd(b"\x00\x00\x00") == b"-ERR Unknown command"
    assert client.cmd(b"USER " + BOB.encode()) == b"+OK Send your password"
    assert client.cmd(f"PASS {PASSWORD}".encode()).startswith(b"+OK Logged in")
    assert client.cmd(b"RETR 1\x00") == b"-ERR Invalid message number '1\\x00'"
    assert client.cmd(b"\xc3\xa9") == b"-ERR Unknown command"
    assert client.cmd(b"STAT").startswith(b"+OK 3 ")
    assert client.cmd("QUIT").startswith(b"+OK")


def test_tenth_error_closes_and_commits_nothing(world: World) -> None:
    before = world.uids(BOB)
    client = logged_in(world)
    assert client.cmd("DELE 1") == b"+OK message 1 deleted"
    client.send(b"RETR 0\r\n" * 12)
    replies = [client.line() for _ in range(10)]
    assert replies[:9] == [b"-ERR No such message 0"] * 9
    assert replies[9] == b"-ERR Too many bad commands, closing connection"
    assert client.closed()
    assert world.uids(BOB) == before  # DELE 1 was never committed


def test_line_ends(world: World) -> None:
    """Bare LF ends a line; a bare CR does not; split writes are one line."""
    client = pop(world)
    client.send(b"USER " + BOB.encode() + b"\n")
    assert client.line() == b"+OK Send your password"
    client.send(f"PASS {PASSWORD}\n".encode())
    assert client.line().startswith(b"+OK Logged in")
    client.send(b"NOOP\n")
    assert client.line() == b"+OK"
    client.send(b"ST")
    client.send(b"AT\r")
    client.send(b"\n")
    assert client.line().startswith(b"+OK 3 ")
    client.send(b"NOOP\rNOOP\r\n")  # one line, not two commands
    assert client.line() == b"-ERR Unknown command"
    client.send(b"NOOP\r\r\n")
    assert client.line() == b"-ERR Unknown command"
    client.send(b"LIST 1\n\rLIST 2\r\n")  # "\rLIST 2": not a command
    assert client.line() == f"+OK 1 {len(MESSAGES[0])}".encode()
    assert client.line() == b"-ERR Unknown command"
    # A command line ending without LF is held until the limit, then refused.
    client.send(b"NOOP\r" * 100)
    assert client.line() == b"-ERR Line too long"
    client.send(b"\r\nNOOP\r\n")  # the rest of the long line, dropped; then a command
    assert client.line() == b"+OK"
    assert client.cmd("QUIT").startswith(b"+OK")
    assert client.closed()


@pytest.mark.parametrize("size", [254, 255, 256, 10_000, 100_000])
def test_line_limit(world: World, size: int) -> None:
    """255 octets with CRLF (RFC 2449): longer is -ERR, its rest dropped, the session on."""
    client = pop(world)
    line = b"NOOP" + b" " * (size - 6)  # size octets with its CRLF
    client.send(line + CRLF + b"CAPA\r\n")
    reply = client.line()
    if size <= 255:
        assert reply == b"-ERR NOOP is not allowed before login"
    else:
        assert reply == b"-ERR Line too long"
    assert client.line() == b"+OK Capability list follows"
    client.body()
    assert client.cmd("QUIT").startswith(b"+OK")


def test_pipelined_session_in_one_write(world: World) -> None:
    """Login, 300 commands and QUIT in one write: every reply in order, then the close."""
    commands = [b"USER " + BOB.encode(), f"PASS {PASSWORD}".encode()]
    for n in range(100):
        commands += [b"STAT", b"RETR %d" % (n % 3 + 1), b"TOP %d 0" % (n % 3 + 1)]
    commands += [b"DELE 99", b"QUIT", b"DELE 1", b"QUIT"]
    before = world.uids(BOB)
    client = pop(world)
    client.send(CRLF.join(commands) + CRLF)
    assert client.line() == b"+OK Send your password"
    assert client.line().startswith(b"+OK Logged in")
    for n in range(100):
        assert client.line().startswith(b"+OK 3 ")
        assert client.line() == b"+OK %d octets" % len(MESSAGES[n % 3])
        assert b"\r\n".join(client.body()) + CRLF == MESSAGES[n % 3]
        assert client.line() == b"+OK Top of message follows"
        client.body()
    assert client.line() == b"-ERR No such message 99"
    assert client.line().startswith(b"+OK nmail POP3 server signing off")
    assert client.closed()  # nothing after QUIT was read: DELE 1 never ran
    assert world.uids(BOB) == before


def test_commands_after_quit_before_login(world: World) -> None:
    client = pop(world)
    client.send(b"QUIT\r\nUSER " + BOB.encode() + b"\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert client.line() == b"+OK nmail POP3 server signing off"
    assert client.closed()


def test_quit_with_an_argument_is_quit(world: World) -> None:
    client = logged_in(world)
    assert client.cmd("QUIT now").startswith(b"+OK nmail POP3 server signing off")
    assert client.closed()


def test_top_shapes(world: World) -> None:
    """TOP n 0 is the header and the blank line; n past the body is the whole message."""
    client = logged_in(world)
    for number, message in enumerate(MESSAGES, 1):
        head = message[:message.index(b"\r\n\r\n") + 2]
        assert client.cmd(f"TOP {number} 0") == b"+OK Top of message follows"
        assert b"\r\n".join(client.body()) + CRLF == head + CRLF
        for count in (1000, 2**64):
            assert client.cmd(f"TOP {number} {count}") == b"+OK Top of message follows"
            assert b"\r\n".join(client.body()) + CRLF == message
    assert client.cmd("TOP 2 1") == b"+OK Top of message follows"
    assert client.body() == [b"Subject: two", b"X: y", b"", b".hidden dot"]
    assert client.cmd("QUIT").startswith(b"+OK")


def test_a_message_deleted_in_this_session(world: World) -> None:
    before = world.uids(BOB)
    client = logged_in(world)
    assert client.cmd("DELE 2") == b"+OK message 2 deleted"
    for line in ("RETR 2", "TOP 2 0", "LIST 2", "UIDL 2", "DELE 2"):
        assert client.cmd(line) == b"-ERR message 2 already deleted", line
    assert client.cmd("STAT") == f"+OK 2 {len(MESSAGES[0]) + len(MESSAGES[2])}".encode()
    assert client.cmd("LIST") == b"+OK 2 messages (%d octets)" % (
        len(MESSAGES[0]) + len(MESSAGES[2]))
    assert [line.split()[0] for line in client.body()] == [b"1", b"3"]
    assert client.cmd("UIDL").startswith(b"+OK")
    assert [line.split()[0] for line in client.body()] == [b"1", b"3"]
    assert client.cmd("RSET") == b"+OK maildrop has 3 messages (%d octets)" % sum(
        map(len, MESSAGES))
    assert client.cmd("RETR 2") == b"+OK %d octets" % len(MESSAGES[1])
    client.body()
    assert client.cmd("QUIT").startswith(b"+OK")
    assert world.uids(BOB) == before


# --- AUTH ------------------------------------------------------------------------------


# Logins at once at most: the server's password gate has one check per CPU and four
# times that waiting (docs/ARCHITECTURE.md, Logins); past that a login is answered
# busy. Five places on a one-CPU machine.
GATE_PLACES = 4


def plain(user: str, password: str, authz: str = "") -> str:
    return base64.b64encode(f"{authz}\0{user}\0{password}".encode()).decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auth_exchanges(world: World) -> None:
    """Cancels, bad base64 and '=' in the exchange; the session stays in AUTHORIZATION."""
    client = pop(world)
    assert client.cmd("AUTH PLAIN") == b"+ "
    assert client.cmd("*") == b"-ERR Authentication cancelled"
    assert client.cmd("AUTH PLAIN") == b"+ "
    assert client.cmd("not base64!") == b"-ERR Invalid base64 data in AUTH response"
    assert client.cmd("AUTH PLAIN") == b"+ "
    assert client.cmd("=") == b"-ERR Malformed AUTH PLAIN response"
    assert client.cmd("AUTH LOGIN") == b"+ " + b64("Username:").encode()
    assert client.cmd("*") == b"-ERR Authentication cancelled"
    assert client.cmd("AUTH LOGIN") == b"+ " + b64("Username:").encode()
    assert client.cmd(b64(BOB)) == b"+ " + b64("Password:").encode()
    assert client.cmd("*") == b"-ERR Authentication cancelled"
    assert client.cmd("auth login " + b64(BOB)) == b"+ " + b64("Password:").encode()
    assert client.cmd("=!") == b"-ERR Invalid base64 data in AUTH response"
    assert client.cmd("STAT") == b"-ERR STAT is not allowed before login"
    client.send(b"AUTH PLAIN\r\n" + b"A" * 9000 + b"\r\nCAPA\r\n")
    assert client.line() == b"+ "
    assert client.line() == b"-ERR Line too long"
    assert client.line() == b"+OK Capability list follows"
    client.body()
    # A long but legal response line is taken (SASL responses may pass 255 octets).
    assert client.cmd("AUTH PLAIN " + plain(BOB, PASSWORD)).startswith(b"+OK Logged in")
    assert client.cmd("QUIT").startswith(b"+OK")


def test_auth_pipelined_with_its_responses_and_commands(world: World) -> None:
    """AUTH LOGIN, its two responses, STAT, LIST 1 and QUIT in one write (RFC 2449
    PIPELINING is offered): every reply, in order."""
    client = pop(world)
    client.send(CRLF.join([b"AUTH LOGIN", b64(BOB).encode(), b64(PASSWORD).encode(),
                           b"STAT", b"LIST 1", b"QUIT"]) + CRLF)
    assert client.line() == b"+ " + b64("Username:").encode()
    assert client.line() == b"+ " + b64("Password:").encode()
    assert client.line().startswith(b"+OK Logged in, 3 messages")
    assert client.line() == f"+OK 3 {sum(map(len, MESSAGES))}".encode()
    assert client.line() == f"+OK 1 {len(MESSAGES[0])}".encode()
    assert client.line().startswith(b"+OK nmail POP3 server signing off")
    assert client.closed()


def test_another_accounts_authzid_never_logs_in_as_them(world: World) -> None:
    client = pop(world)
    for authz in ("carol@other.test", "dora@test.local", "Bob@test.local", "*", "bob"):
        reply = client.cmd("AUTH PLAIN " + plain(BOB, PASSWORD, authz))
        assert reply == b"-ERR [AUTH] Authorization identity must be empty or the login", authz
    assert client.cmd("AUTH PLAIN") == b"+ "
    assert client.cmd(plain(BOB, PASSWORD, "carol@other.test")) == (
        b"-ERR [AUTH] Authorization identity must be empty or the login")
    assert client.cmd("STAT") == b"-ERR STAT is not allowed before login"
    # The authzid that is the login itself is allowed, and is bob.
    assert client.cmd("AUTH PLAIN " + plain(BOB, PASSWORD, BOB)).startswith(
        b"+OK Logged in, 3 messages")
    assert client.cmd("QUIT").startswith(b"+OK")


def test_users_of_other_domains_and_other_spellings(world: World) -> None:
    """Bob's password does not open another domain's mailbox; each try is a plain failure
    (answered after the throttle's delay: one row per client address, in parallel)."""
    attempts = [
        [f"AUTH PLAIN {plain('carol@other.test', PASSWORD + 'x')}"],
        [f"AUTH PLAIN {plain('bob@other.test', PASSWORD)}"],
        [f"AUTH PLAIN {plain('bob@evil.test', PASSWORD)}"],
        [f"AUTH PLAIN {plain('bob@test.local@evil.test', PASSWORD)}"],
        [f"AUTH PLAIN {plain('bob', PASSWORD)}"],  # no default domain configured
        [f"AUTH PLAIN {plain('bob%test.local@other.test', PASSWORD)}"],
        [f"AUTH PLAIN {plain('bob@[127.0.0.1]', PASSWORD)}"],
        [f"AUTH PLAIN {plain('bob@test.local' + chr(0x202E), PASSWORD)}"],
        # A NUL in the name: PostgreSQL refused it as a throttle key (an error, not a
        # count: tests/test_directory_throttle_shared.py has it on every database).
        ["USER bob\0@test.local", f"PASS {PASSWORD}"],
        ["USER bob@OTHER.test.", f"PASS {PASSWORD}"],
    ]

    def attempt(n: int) -> tuple[bytes, bytes]:
        client = pop(world, f"127.0.1.{n + 1}")
        *first, last = attempts[n]
        for line in first:
            assert client.cmd(line) == b"+OK Send your password"
        reply = client.cmd(last)
        after = client.cmd("STAT")
        client.close()
        return reply, after

    with ThreadPoolExecutor(GATE_PLACES) as pool:
        results = list(pool.map(attempt, range(len(attempts))))
    for lines, (reply, after) in zip(attempts, results, strict=True):
        assert reply == b"-ERR [AUTH] Authentication failed", (lines, reply)
        assert after == b"-ERR STAT is not allowed before login"


def test_every_spelling_is_one_account_for_the_lockout(world: World) -> None:
    """A wrong password under each spelling is counted on the one account's record;
    once that record is locked, the right password under the spelling is refused."""
    records = SqlRecords(world.engine)
    throttle = LoginThrottle(time.time, records=records)

    def wrong(n: int) -> tuple[bytes, bytes]:
        client = pop(world, f"127.0.2.{n + 1}")
        _, spelling = SPELLINGS[n]
        user = client.cmd(f"USER {spelling}")
        reply = client.cmd("PASS wrong-password")
        client.close()
        return user, reply

    with ThreadPoolExecutor(GATE_PLACES) as pool:
        results = list(pool.map(wrong, range(len(SPELLINGS))))
    for (canonical, spelling), (user, reply) in zip(SPELLINGS, results, strict=True):
        assert user == b"+OK Send your password"
        assert reply == b"-ERR [AUTH] Authentication failed", spelling
        record = records.get(account_key(canonical))
        assert record is not None and len(record.failures) == 1, spelling
        # Nine more failures elsewhere: the account is locked out.
        for _ in range(9):
            throttle.failure("192.0.2.1", canonical)
    for n, (canonical, spelling) in enumerate(SPELLINGS):
        client = pop(world, f"127.0.3.{n + 1}")
        assert client.cmd(f"USER {spelling}") == b"+OK Send your password"
        assert client.cmd(f"PASS {PASSWORD}") == (
            b"-ERR [SYS/TEMP] Too many failed logins, try again later"), spelling
        assert client.cmd(f"AUTH PLAIN {plain(canonical, PASSWORD)}") == (
            b"-ERR [SYS/TEMP] Too many failed logins, try again later"), canonical
        client.close()


def test_spellings_log_in_as_the_one_account(world: World) -> None:
    """Each spelling with the right password is the same mailbox (dora's)."""
    world.deliver("dora@test.local", b"Subject: dora\r\n\r\nfor dora\r\n")
    for spelling in ("DORA@TEST.LOCAL", "dora@test.local.", '"dora"@test.local',
                     "dora@test\u3002local", "dora@alias.test", "dora@TEST\uff61LOCAL"):
        client = pop(world)
        reply = client.login(spelling)
        assert reply.startswith(b"+OK Logged in, 1 messages"), (spelling, reply)
        assert client.cmd("TOP 1 0") == b"+OK Top of message follows"
        assert client.body()[0] == b"Subject: dora"
        assert client.cmd("QUIT").startswith(b"+OK")
        assert client.closed()


# --- STLS -------------------------------------------------------------------------------


def test_stls_injection_twice_and_after_login(world: World) -> None:
    client = pop(world)
    client.send(b"STLS\r\nUSER " + BOB.encode() + b"\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert client.line() == b"+OK Begin TLS negotiation"
    assert client.buf == b""
    client.starttls()
    # The pipelined USER/PASS were dropped: PASS alone has no USER.
    assert client.cmd("PASS " + PASSWORD) == b"-ERR Send USER first"
    assert client.cmd("STLS") == b"-ERR TLS is already active"
    assert client.cmd("CAPA") == b"+OK Capability list follows"
    assert b"STLS" not in client.body()
    assert client.login().startswith(b"+OK Logged in")
    assert client.cmd("STLS") == b"-ERR STLS is not allowed after login"
    assert client.cmd("QUIT").startswith(b"+OK")
    assert client.closed()


def test_stls_after_user_forgets_the_user(world: World) -> None:
    client = pop(world)
    assert client.cmd("USER " + BOB) == b"+OK Send your password"
    assert client.cmd("STLS") == b"+OK Begin TLS negotiation"
    client.starttls()
    assert client.cmd("PASS " + PASSWORD) == b"-ERR Send USER first"
    client.close()


def test_stls_injection_in_the_same_packet_as_the_handshake(world: World) -> None:
    """Plaintext sent right after STLS, before the handshake: never read as commands
    (the handshake may fail on it; what matters is that nothing runs)."""
    client = pop(world)
    client.send(b"STLS\r\nAUTH PLAIN " + plain(BOB, PASSWORD).encode() + b"\r\nDELE 1\r\n"
                b"QUIT\r\n")
    assert client.line() == b"+OK Begin TLS negotiation"
    before = world.uids(BOB)
    try:
        client.starttls()
    except (ssl.SSLError, OSError):
        pass  # the server read the plaintext as a broken TLS record
    else:
        assert client.cmd("STAT") == b"-ERR STAT is not allowed before login"
        assert client.cmd("QUIT").startswith(b"+OK")
    client.close()
    assert world.uids(BOB) == before


def test_pop3s_speaks_tls_first(world: World) -> None:
    client = Pop(world.ports["pop3s"], tls=True)
    assert client.cmd("STLS") == b"-ERR TLS is already active"
    assert client.login().startswith(b"+OK Logged in")
    assert client.cmd("QUIT").startswith(b"+OK")


# --- sharing a mailbox ------------------------------------------------------------------


def test_second_login_gets_in_use_and_may_log_in_later(world: World) -> None:
    first = logged_in(world, "dora@test.local")
    second = pop(world)
    for attempt in ("USER", "AUTH"):
        if attempt == "USER":
            reply = second.login("dora@test.local")
        else:
            reply = second.cmd("AUTH PLAIN " + plain("DORA@alias.test", PASSWORD))
        assert reply == b"-ERR [IN-USE] Mailbox is locked by another POP3 session", attempt
        assert second.cmd("STAT") == b"-ERR STAT is not allowed before login"
    # A wrong password to a locked maildrop is a wrong password, not IN-USE.
    third = pop(world, "127.0.4.1")
    assert third.login("dora@test.local", "wrong-password") == (
        b"-ERR [AUTH] Authentication failed")
    third.close()
    assert first.cmd("STAT").startswith(b"+OK")
    assert first.cmd("QUIT").startswith(b"+OK")
    assert first.closed()
    assert second.login("dora@test.local").startswith(b"+OK Logged in")
    assert second.cmd("QUIT").startswith(b"+OK")


def test_a_dropped_session_frees_the_maildrop(world: World) -> None:
    first = logged_in(world, "dora@test.local")
    first.close()  # no QUIT
    deadline = time.monotonic() + 10
    while True:
        client = pop(world)
        reply = client.login("dora@test.local")
        if reply.startswith(b"+OK") or time.monotonic() > deadline:
            break
        assert reply.startswith(b"-ERR [IN-USE]")
        client.close()
    assert reply.startswith(b"+OK Logged in")
    assert client.cmd("QUIT").startswith(b"+OK")


def uidl_map(client: Pop) -> dict[int, str]:
    assert client.cmd("UIDL").startswith(b"+OK")
    pairs = [line.decode().split() for line in client.body()]
    return {int(n): uid for n, uid in pairs}


def test_expunged_by_another_door_during_the_session(world: World) -> None:
    address = "dora@test.local"
    existing = world.uids(address)
    world.store.expunge(world.account(address).id, "INBOX", existing)
    uids = world.deliver(address, *(b"Subject: m%d\r\n\r\nbody %d\r\n" % (n, n)
                                     for n in range(1, 6)))
    client = logged_in(world, address)
    first = uidl_map(client)
    assert len(first) == 5 and len(set(first.values())) == 5
    account = world.account(address)
    # The webmail removes messages 2 and 3; another message arrives.
    world.store.expunge(account.id, "INBOX", [uids[1], uids[2]])
    late = world.deliver(address, b"Subject: late\r\n\r\nlate\r\n")
    assert client.cmd("RETR 2") == b"-ERR message 2 no longer exists"
    assert client.cmd("TOP 3 0") == b"-ERR message 3 no longer exists"
    assert client.cmd("RETR 1").startswith(b"+OK")
    assert client.body()[0] == b"Subject: m1"
    assert client.cmd("STAT").startswith(b"+OK 5 ")  # the maildrop is fixed at login
    assert uidl_map(client) == first
    assert client.cmd("DELE 3") == b"+OK message 3 deleted"  # already gone: nothing to do
    assert client.cmd("DELE 4") == b"+OK message 4 deleted"
    quit_reply = client.cmd("QUIT")
    assert quit_reply.startswith(b"+OK nmail POP3 server signing off"), quit_reply
    assert client.closed()
    # Removed: what the webmail expunged and what this session deleted; nothing else.
    assert world.uids(address) == [uids[0], uids[4], *late]
    again = logged_in(world, address)
    second = uidl_map(again)
    assert list(second.values())[:2] == [first[1], first[5]]
    assert len(second) == 3 and len(set(second.values())) == 3
    assert second[3] not in first.values()
    assert again.cmd("RETR 3").startswith(b"+OK")
    assert again.body()[0] == b"Subject: late"
    assert again.cmd("QUIT").startswith(b"+OK")


def test_flagged_moved_and_twin_messages_meanwhile(world: World) -> None:
    """During a session the webmail flags message 1 (its file renamed) and moves message
    2 to Archive; both were DELE'd here. At QUIT the flagged one is removed (the DELE
    was acknowledged), the moved one stays in Archive (it is no longer the message this
    session listed). Two identical messages have two UIDLs."""
    address = "dora@test.local"
    account = world.account(address)
    existing = world.uids(address)
    if existing:
        world.store.expunge(account.id, "INBOX", existing)
    twin = b"Subject: twin\r\n\r\nsame bytes\r\n"
    uids = world.deliver(address, b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n",
                         twin, twin)
    client = logged_in(world, address)
    listed = uidl_map(client)
    assert len(set(listed.values())) == 4
    world.store.set_flags(account.id, "INBOX", [uids[0]], add=frozenset({"\\Seen"}))
    world.store.names_settled()
    if "Archive" not in {f.name for f in world.store.list_folders(account.id)}:
        world.store.create_folder(account.id, "Archive")
    archive_before = len(world.store.refs(account.id, "Archive"))
    world.store.open_folder(account.id, "INBOX").move(UidSet.of([uids[1]]), "Archive")
    assert client.cmd("RETR 1").startswith(b"+OK")  # flagged: still found
    assert client.body()[0] == b"Subject: a"
    assert client.cmd("RETR 2") == b"-ERR message 2 no longer exists"
    assert client.cmd("DELE 1") == b"+OK message 1 deleted"
    assert client.cmd("DELE 2") == b"+OK message 2 deleted"
    assert client.cmd("DELE 4") == b"+OK message 4 deleted"
    assert client.cmd("QUIT").startswith(b"+OK nmail POP3 server signing off")
    assert client.closed()
    assert world.uids(address) == [uids[2]]
    assert len(world.store.refs(account.id, "Archive")) == archive_before + 1
    again = logged_in(world, address)
    assert uidl_map(again) == {1: listed[3]}
    assert again.cmd("QUIT").startswith(b"+OK")


# --- real clients -----------------------------------------------------------------------


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/test installs it as root)")
    return path


def private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def maildir(path: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def fetched(path: Path) -> list[bytes]:
    return sorted(p.read_bytes() for sub in ("new", "cur") for p in (path / sub).iterdir())


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload, no-any-return]


def seeded(world: World, address: str, count: int) -> list[int]:
    existing = world.uids(address)
    if existing:
        world.store.expunge(world.account(address).id, "INBOX", existing)
    return world.deliver(address, *(
        b"Subject: client %d\r\n\r\nbody %d\r\n.dot line\r\n" % (n, n) for n in range(count)))


@pytest.mark.parametrize("tls", ["off", "stls"])
def test_mpop_keeps_then_deletes(world: World, tmp_path: Path, tls: str) -> None:
    """keep on: everything fetched, all left; a second run fetches nothing (UIDLs);
    then keep off: nothing fetched again, all removed. (Over pop3s, and deleting
    over STLS at once: tests/test_clients_debian.py.)"""
    mpop = need("mpop")
    address = "client@test.local"
    seeded(world, address, 3)
    out = maildir(tmp_path / "out")
    port = world.ports["pop3s" if tls == "pop3s" else "pop3"]

    def config(keep: str) -> Path:
        return private_file(tmp_path / f"mpoprc-{keep}", "\n".join([
            "account default", "host 127.0.0.1", f"port {port}",
            "tls off" if tls == "off" else "tls on",
            f"tls_starttls {'on' if tls == 'stls' else 'off'}", "tls_certcheck off",
            "auth user", f"user {address}", f"password {PASSWORD}",
            f"delivery maildir {out}", f"keep {keep}",
            f"uidls_file {tmp_path / 'uidls'}", "",
        ]))

    for keep, fetched_now, left in (("on", 3, 3), ("on", 3, 3), ("off", 3, 0)):
        result = run([mpop, "-C", str(config(keep)), "-q"])
        assert result.returncode == 0, result.stdout + result.stderr
        got = fetched(out)
        assert len(got) == fetched_now, keep
        assert len(world.uids(address)) == left
    assert all(b"\n.dot line" in g and b"\n..dot" not in g for g in got)


@pytest.mark.parametrize("tls", ["off", "pop3s"])
def test_fetchmail_keeps_then_deletes(world: World, tmp_path: Path, tls: str) -> None:
    """keep, keep again (UIDLs: nothing twice), then no keep: all fetched once more
    (fetchall) and removed."""
    fetchmail = need("fetchmail")
    address = "client@test.local"
    seeded(world, address, 2)
    collected = tmp_path / "collected.mbox"
    port = world.ports["pop3s" if tls == "pop3s" else "pop3"]
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))

    def fetch(keep: str) -> None:
        rc = private_file(tmp_path / "fetchmailrc", "\n".join([
            f"poll 127.0.0.1 service {port} protocol pop3 uidl",
            f'  user "{address}" password "{PASSWORD}" is "tester" here',
            "  ssl no sslcertck" if tls == "pop3s" else "  sslproto ''",
            f"  {keep}",
            f'  mda "/bin/sh -c \'cat >> {collected}\'"', "",
        ]))
        result = run([fetchmail, "-f", str(rc), "--nodetach", "--nosyslog", "-v"], env=env)
        assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: no mail

    fetch("keep")
    assert collected.read_bytes().count(b"Subject: client ") == 2
    assert len(world.uids(address)) == 2
    fetch("keep")  # seen before (uidl): nothing fetched again
    assert collected.read_bytes().count(b"Subject: client ") == 2
    fetch("nokeep fetchall")
    assert collected.read_bytes().count(b"Subject: client ") == 4
    assert world.uids(address) == []
    assert re.search(rb"\n\.dot line", collected.read_bytes())
