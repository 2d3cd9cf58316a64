"""Relay and address tricks against a real `nmail serve`: the whole class, table by table.

An outsider with real clients tries every classic way to make a mail server
relay (percent hack, quoted and bang paths, source routes, address literals
of our own addresses, trailing dots, case and IDN forms, postmaster without
a domain, at our host name and at hosted domains, comments and angle tricks, control and 8-bit
bytes, over-long parts); a logged-in tenant tries to send as someone else; both try the
protocol tricks (STARTTLS injection, BDAT, 1,000 RCPTs, long lines, bare LF
smuggling, odd message shapes). Every form must be refused (5xx) or reach
only a local mailbox, and nothing an outsider sends may be queued for a
remote domain except through a forward the admin set up (then with an SRS
sender). Lower layers have their own tests (addresses, policy, the in-process
server); this file is the end-to-end regression net over the real command.

One server for the module, SQLite only: relaying is decided from the
directory (the same code on every database); the queue and the mailboxes are
read after each row. Loopback is a stranger here: the admin listed another
relay network, as in tests/test_submission_signing.py.

Policy for a hosted sender from outside (MAIL FROM:<bob@our.domain> on port
25, no AUTH): accepted for local mailboxes, relaying refused, never signed
(docs/ARCHITECTURE.md: "port-25 mail to local mailboxes does none of
this"); a logged-in user's MAIL FROM must be theirs (553 5.7.1) and so must
every From:/Sender: address (550 5.7.1 at end of data, issue 9 item 1).
"""

from __future__ import annotations

import base64
import itertools
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from nmail.config import load_config
from nmail.db.engine import make_engine
from nmail.db.tables import queue_messages, queue_recipients
from nmail.directory import Directory
from serve_process import ServeProcess
from serve_setup import PASSWORD, as_options, listen_specs, make_data, set_option
from smtp_rig import read_reply
from support import free_port

pytestmark = pytest.mark.timeout(120)

STRANGER = b"<attacker@evil.test>"
CARRIAGE = b"\r\n"
_serial = itertools.count(1)


@dataclass
class World:
    data: Path
    ports: dict[str, int]
    engine: Engine

    def queued(self) -> set[tuple[str, str, str]]:
        """(message id, recipient, envelope sender) of every row the outbound queue holds."""
        query = select(queue_messages.c.id, queue_recipients.c.recipient,
                       queue_messages.c.sender).join(
            queue_messages, queue_recipients.c.message_id == queue_messages.c.id)
        with self.engine.connect() as conn:
            return {(str(r.id), str(r.recipient), str(r.sender)) for r in conn.execute(query)}

    def landed(self, marker: bytes) -> list[str]:
        """The mailboxes (user@domain) holding a message with `marker`, one entry a copy."""
        found = []
        for path in sorted((self.data / "mail").glob("*/*/Maildir/new/*")):
            if marker in path.read_bytes():
                found.append(f"{path.parents[2].name}@{path.parents[3].name}")
        return found

    def stored(self, marker: bytes) -> bytes:
        """The one stored copy holding `marker`."""
        (path,) = [p for p in (self.data / "mail").glob("*/*/Maildir/new/*")
                   if marker in p.read_bytes()]
        return path.read_bytes()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = make_data(tmp_path_factory.mktemp("relaysweep"),
                     "bob@test.local", "carol@other.test", "me@xn--bcher-kva.test")
    # Refused RCPTs answered at once (the address-guessing brake is tested elsewhere).
    set_option(data, "smtp", "rcpt_error_delay", "0")
    # Whatever is queued stays queued: the only next hop refuses connections.
    set_option(data, "relay", "host", '"127.0.0.1"')
    set_option(data, "relay", "port", str(free_port()))
    set_option(data, "relay", "tls", '"none"')
    engine = make_engine(load_config(data).database_url)
    directory = Directory(engine)
    directory.add_relay_network("192.0.2.0/24")  # loopback is not trusted
    directory.add_domain_alias("alias.test", "test.local")
    directory.add_alias("fwd@test.local", ["friend@remote.test"])
    directory.set_catchall("other.test", "carol")
    directory.set_admin("bob@test.local", True)  # test.local's postmaster mail is his
    ports = listen_specs("smtp", "submission")
    server = ServeProcess(data, *as_options(ports), workers=1, shared=True)
    try:
        yield World(data, ports, engine)
    finally:
        server.stop()
        engine.dispose()


class Wire:
    """A raw client on one socket: bytes out, whole replies (last line) back."""

    def __init__(self, port: int) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            ("127.0.0.1", port), timeout=20)
        self.buf = bytearray()
        self.banner = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """The next reply's last line ("250 2.1.5 Recipient OK")."""
        return read_reply(self.sock, self.buf).splitlines()[-1]

    def command(self, line: bytes) -> str:
        self.send(line + CARRIAGE)
        return self.reply()

    def ehlo(self) -> str:
        """EHLO; the whole reply (the extensions)."""
        self.send(b"EHLO client.test\r\n")
        return read_reply(self.sock, self.buf)

    def starttls(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(self.sock, server_hostname="mail.example.com")
        self.buf.clear()

    def close(self) -> None:
        self.sock.close()


def message(marker: bytes, from_: bytes = b"attacker@evil.test") -> bytes:
    return (b"From: " + from_ + b"\r\nTo: someone\r\nSubject: sweep\r\nX-Sweep: " + marker
            + b"\r\n\r\nhello\r\n")


def new_marker() -> bytes:
    return b"sweep-%d" % next(_serial)


# -- 1. an outsider on port 25 ---------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """RCPT TO:`path` after MAIL FROM:`mail` from a stranger; `code` is the RCPT reply,
    `to` the mailboxes the message then lands in (none unless 250), `queued` the
    recipients it adds to the outbound queue (a forward the admin set up)."""

    path: bytes
    code: int
    to: tuple[str, ...] = ()
    mail: bytes = STRANGER
    queued: tuple[str, ...] = ()


BOB = ("bob@test.local",)
CAROL = ("carol@other.test",)  # other.test's catch-all
ME = ("me@xn--bcher-kva.test",)
ADMIN = ("postmaster@example.com",)  # the server admin `nmail init` made
UTF8 = b" SMTPUTF8"

STRANGER_ROWS = [
    # The baseline: a remote domain is refused, whatever the sender claims.
    Row(b"<user@remote.test>", 554),
    Row(b"<user@remote.test>", 554, mail=b"<>"),
    Row(b"<user@remote.test>", 554, mail=b"<bob@test.local>"),  # a spoofed hosted sender
    Row(b"<user@remote.test>", 554, mail=b"<postmaster@example.com>"),
    Row(b"<user@remote.test> NOTIFY=NEVER ORCPT=rfc822;bob@test.local", 554),
    # The percent hack, quoted and bang paths: a local part, never routed.
    Row(b"<user%remote.test@test.local>", 550),
    Row(b'<"user%remote.test"@test.local>', 550),
    Row(b'<"user@remote.test"@test.local>', 550),
    Row(b"<remote.test!user@test.local>", 550),
    Row(b"<user%remote.test@alias.test>", 550),
    Row(b"<user@remote.test@test.local>", 501),
    Row(b"<bob@test.local@remote.test>", 501),
    Row(b"<user@remote.test%test.local>", 501),
    Row(b'<"bob@test.local"@remote.test>', 554),
    # ... and where a catch-all takes unknown names, they reach the catch-all only.
    Row(b"<user%remote.test@other.test>", 250, CAROL),
    Row(b'<"user@remote.test"@other.test>', 250, CAROL),
    Row(b"<remote.test!user@other.test>", 250, CAROL),
    # Source routes are ignored (RFC 5321 4.1.1.3): the mailbox decides.
    Row(b"<@test.local:user@remote.test>", 554),
    Row(b"<@test.local,@mail.example.com:user@remote.test>", 554),
    Row(b"<@[127.0.0.1]:user@remote.test>", 554),
    Row(b"<@remote.test:bob@test.local>", 250, BOB),
    # Address literals, of our own addresses too: not mail domains here.
    Row(b"<user%remote.test@[127.0.0.1]>", 501),
    Row(b"<user@[127.0.0.1]>", 501),
    Row(b"<bob@[127.0.0.1]>", 501),
    Row(b"<postmaster@[127.0.0.1]>", 501),
    Row(b"<bob@[IPv6:::1]>", 501),
    Row(b"<bob@[IPv6:::ffff:127.0.0.1]>", 501),
    Row(b"<user@[192.0.2.1]>", 501),
    Row(b"<user@127.0.0.1>", 501),
    # Trailing dots, case, the host name and single labels.
    Row(b"<user@remote.test.>", 554),
    Row(b"<user@REMOTE.Test>", 554),
    Row(b"<user@remote.test..>", 501),
    Row(b"<bob@test.local..>", 501),
    Row(b"<bob@test.local.>", 250, BOB),
    Row(b"<BOB@Test.Local.>", 250, BOB),
    Row(b'<"bob"@TEST.LOCAL>', 250, BOB),
    Row(b"<bob@mail.example.com>", 554),
    Row(b"<user@localhost>", 554),
    Row(b"<bob@test-local>", 554),
    # IDN: U-labels and A-labels of ours are ours, of others' are remote.
    Row("<me@bücher.test>".encode(), 553),  # U-label without SMTPUTF8
    Row("<me@bücher.test>".encode() + UTF8, 250, ME),
    Row("<me@BÜCHER.test>".encode() + UTF8, 250, ME),
    Row(b"<me@xn--bcher-kva.test>", 250, ME),
    Row("<bob@test\u3002local>".encode() + UTF8, 250, BOB),  # an ideographic full stop
    Row("<user@rémote.test>".encode() + UTF8, 554),
    Row(b"<user@xn--rmote-bsa.test>", 554),
    Row("<user@remote\u3002test>".encode() + UTF8, 554),
    Row("<user@remote\uff0etest>".encode() + UTF8, 554),
    Row("<user@remote.test\u3002>".encode() + UTF8, 501),
    Row("<user@remote\u3002test@test.local>".encode() + UTF8, 501),
    Row("<us\u00e9r@remote.test>".encode() + UTF8, 554),  # an SMTPUTF8 local part
    Row("<\u202euser@remote.test>".encode() + UTF8, 501),  # a bidi override
    Row("<b\u00f8b@test.local>".encode() + UTF8, 550),  # an SMTPUTF8 local part of ours
    Row("<\u00fcn\u00ef@other.test>".encode() + UTF8, 250, CAROL),
    # postmaster without a domain is ours (RFC 5321 4.5.1): the server admins'.
    Row(b"<postmaster>", 250, ADMIN),
    Row(b"<PostMaster>", 250, ADMIN),
    Row(b"<postmaster>", 250, ADMIN, mail=b"<>"),
    Row(b'<"postmaster">', 501),
    # So are postmaster and MAILER-DAEMON at our host name (the greeting's, not a
    # hosted domain here), whatever the case, a final dot or quotes, from anyone.
    Row(b"<postmaster@mail.example.com>", 250, ADMIN),
    Row(b"<postmaster@mail.example.com>", 250, ADMIN, mail=b"<>"),
    Row(b"<PostMaster@MAIL.Example.COM.>", 250, ADMIN),
    Row(b'<"postmaster"@mail.example.com>', 250, ADMIN),
    Row(b"<MAILER-DAEMON@mail.example.com>", 250, ADMIN),
    Row(b"<mailer-daemon@mail.example.com>", 250, ADMIN, mail=b"<>"),
    Row("<postmaster@mail\u3002example.com>".encode() + UTF8, 250, ADMIN),
    Row(b"<@remote.test:postmaster@mail.example.com>", 250, ADMIN),
    Row(b"<postmaster@mail.example.com> ORCPT=rfc822;user@remote.test", 250, ADMIN),
    # ... and nothing else there, nor anything routed through them.
    Row(b"<postmaster%remote.test@mail.example.com>", 554),
    Row(b'<"postmaster%remote.test"@mail.example.com>', 554),
    Row(b'<"postmaster@remote.test"@mail.example.com>', 554),
    Row(b"<remote.test!postmaster@mail.example.com>", 554),
    Row(b"<user%mail.example.com@mail.example.com>", 554),
    Row(b"<postmaster@remote.test@mail.example.com>", 501),
    Row(b"<postmaster@mail.example.com@remote.test>", 501),
    Row(b"<@mail.example.com:postmaster@remote.test>", 554),
    Row(b"<@mail.example.com:user@remote.test>", 554),
    Row(b"<postmaster@remote.test>", 554),
    Row(b"<postmaster@sub.mail.example.com>", 554),
    Row(b"<postmaster@mail.example.com.remote.test>", 554),
    Row(b"<postmaster@mail-example.com>", 554),
    Row(b"<postmaster@localhost>", 554),
    Row(b"<postmaster@mail.example.com..>", 501),
    Row(b"<postmaster+x@mail.example.com>", 554),
    Row(b"<post.master@mail.example.com>", 554),
    Row(b'<"post master"@mail.example.com>', 554),
    Row(b"<root@mail.example.com>", 554),
    Row(b"<abuse@mail.example.com>", 554),
    Row(b"<postmaster @mail.example.com>", 501),
    Row(b"<postmaster\x00@mail.example.com>", 501),
    Row(b"<postmaster@mail.example.com\x00@remote.test>", 501),
    Row(b"<postmaster@[IPv6:::1]>", 501),
    Row(b"<user@remote.test>", 554, mail=b"<postmaster@mail.example.com>"),
    Row(b"<user@remote.test>", 554, mail=b"<MAILER-DAEMON@mail.example.com>"),
    # postmaster at a hosted domain with no address of its own: the domain's
    # administrators (bob for test.local), else the server admins (xn--bcher-kva.test);
    # a catch-all takes it as any name. Only that exact local part.
    Row(b"<postmaster@test.local>", 250, BOB),
    Row(b"<postmaster@test.local>", 250, BOB, mail=b"<>"),
    Row(b"<POSTMASTER@Test.Local.>", 250, BOB),
    Row(b'<"postmaster"@test.local>', 250, BOB),
    Row("<postmaster@test\u3002local>".encode() + UTF8, 250, BOB),
    Row(b"<postmaster@alias.test>", 250, BOB),
    Row(b"<PostMaster@ALIAS.test.>", 250, BOB),
    Row(b"<@remote.test:postmaster@test.local>", 250, BOB),
    Row(b"<postmaster@test.local> ORCPT=rfc822;user@remote.test", 250, BOB),
    Row(b"<postmaster@xn--bcher-kva.test>", 250, ADMIN),
    Row("<postmaster@BÜCHER.test>".encode() + UTF8, 250, ADMIN),
    Row(b"<postmaster@other.test>", 250, CAROL),
    Row(b"<postmaster%remote.test@other.test>", 250, CAROL),
    Row(b"<postmaster%remote.test@test.local>", 550),
    Row(b'<"postmaster%remote.test"@test.local>', 550),
    Row(b'<"postmaster@remote.test"@test.local>', 550),
    Row(b"<remote.test!postmaster@test.local>", 550),
    Row(b"<postmaster+x@test.local>", 550),
    Row(b"<postmaster+x@alias.test>", 550),
    Row(b"<postmasters@test.local>", 550),
    Row(b"<mailer-daemon@test.local>", 550),
    Row(b"<postmaster%remote.test@xn--bcher-kva.test>", 550),
    Row(b"<remote.test!postmaster@xn--bcher-kva.test>", 550),
    Row(b"<postmaster+x@xn--bcher-kva.test>", 550),
    Row(b"<postmaster@remote.test@test.local>", 501),
    Row(b"<postmaster@test.local@remote.test>", 501),
    Row(b"<postmaster@test.local..>", 501),
    Row(b"<@test.local:postmaster@remote.test>", 554),
    Row(b"<test.local!postmaster@remote.test>", 554),
    Row(b'<"postmaster@test.local"@remote.test>', 554),
    Row(b"<postmaster@sub.test.local>", 554),
    Row(b"<postmaster@test.local.remote.test>", 554),
    Row(b"<postmaster@test-local>", 554),
    Row(b"<user@remote.test>", 554, mail=b"<postmaster@test.local>"),
    # White space, comments, angle tricks, missing brackets.
    Row(b"<user@remote.test >", 501),
    Row(b"< user@remote.test>", 501),
    Row(b"<user @remote.test>", 501),
    Row(b"<bob@test.local >", 501),
    Row(b"<(comment)user@remote.test>", 501),
    Row(b"<user@remote.test(comment)>", 501),
    Row(b"<bob@test.local(user@remote.test)>", 501),
    Row(b"<bob@test.local><user@remote.test>", 501),
    Row(b"<<user@remote.test>>", 501),
    Row(b"<bob@test.local>user@remote.test", 501),
    Row(b"<user@remote.test", 501),
    Row(b"user@remote.test", 501),
    Row(b"bob@test.local", 501),
    Row(b"Bob <user@remote.test>", 501),
    Row(b"<>", 501),
    # NUL, CR and 8-bit bytes inside the address.
    Row(b"<user\x00@remote.test>", 501),
    Row(b"<bob@test.local\x00@remote.test>", 501),
    Row(b"<user@remote.test\x00@test.local>", 501),
    Row(b"<bob@test.local>\x00<user@remote.test>", 501),
    Row(b"<bob@test.local\r@remote.test>", 501),
    Row(b"<bob\xff@test.local>", 500),
    Row(b"<user@remote\xff.test>", 500),
    Row(b"<user@remote.test\xc0\x80>", 500),  # an overlong UTF-8 NUL
    # Over-long local parts, domains and paths.
    Row(b"<" + b"a" * 65 + b"@test.local>", 553),
    Row(b"<" + b"a" * 64 + b"@remote.test>", 554),
    Row(b"<bob@" + b"a." * 130 + b"test>", 553),
    Row(b"<user@" + b"a" * 64 + b".test>", 501),
    # A domain alias maps to our own domain; an alias forwards where the admin said.
    Row(b"<bob@alias.test>", 250, BOB),
    Row(b"<bob@ALIAS.test.>", 250, BOB),
    Row(b"<fwd@test.local>", 250, queued=("friend@remote.test",)),
    Row(b"<fwd@alias.test>", 250, queued=("friend@remote.test",)),
    # SRS addresses take only bounces, and only with our hash.
    Row(b"<SRS0=AAAAAA=AA=remote.test=user@mail.example.com>", 550),
    Row(b"<SRS0=AAAAAA=AA=remote.test=user@mail.example.com>", 550, mail=b"<>"),
    Row(b"<SRS0=AAAAAA=AA=remote.test=user@test.local>", 550, mail=b"<>"),
    # A hosted sender from outside reaches local mailboxes (the policy above).
    Row(b"<bob@test.local>", 250, BOB, mail=b"<bob@test.local>"),
    Row(b"<bob@test.local>", 250, BOB, mail=b"<BOB@TEST.LOCAL.>"),
    Row(b"<bob@test.local>", 250, BOB, mail=b"<@evil.test:carol@other.test>"),
    Row(b"<bob@test.local> ORCPT=rfc822;user@remote.test", 250, BOB),
    Row(b"<bob@test.local>" + UTF8, 250, BOB, mail="<me@bücher.test>".encode()),
    Row(b"<user@remote.test>", 554, mail="<me@bücher.test>".encode() + UTF8),
]


def _row_id(row: Row) -> str:
    text = row.path.decode("utf-8", "backslashreplace")
    return (text if row.mail == STRANGER else f"{row.mail.decode()} {text}")[:70]


@pytest.mark.parametrize("row", STRANGER_ROWS, ids=[_row_id(r) for r in STRANGER_ROWS])
def test_a_stranger_on_port_25_cannot_relay(world: World, row: Row) -> None:
    before = world.queued()
    marker = new_marker()
    wire = Wire(world.ports["smtp"])
    try:
        assert "CHUNKING" not in wire.ehlo()
        utf8 = UTF8 if UTF8 in row.path else b""
        assert wire.command(b"MAIL FROM:" + row.mail + utf8).startswith("250")
        path = row.path.replace(UTF8, b"")
        answer = wire.command(b"RCPT TO:" + path)
        assert answer[:3] == str(row.code), answer
        if row.code == 250:
            assert wire.command(b"DATA").startswith("354")
            assert wire.command(message(marker) + b".").startswith("250 2.0.0")
        else:
            # Nothing was taken: DATA has no recipient to go to.
            assert wire.command(b"DATA")[:3] in ("554", "503")
        assert wire.command(b"QUIT").startswith("221")
    finally:
        wire.close()
    assert world.landed(marker) == list(row.to)
    added = world.queued() - before
    assert sorted(rcpt for _, rcpt, _ in added) == sorted(row.queued)
    # A forward of a stranger's mail leaves with our SRS sender, never the claimed one.
    assert all(sender.startswith("SRS0=") for _, _, sender in added), added


def test_a_line_feed_inside_an_address_ends_the_command(world: World) -> None:
    """A bare LF ends a command line (as in Postfix): both halves are refused."""
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        assert wire.command(b"MAIL FROM:<attacker@evil.test>").startswith("250")
        wire.send(b"RCPT TO:<bob@test.local\n@remote.test>\r\n")
        assert wire.reply().startswith("501")
        assert wire.reply().startswith("500")
        assert wire.command(b"DATA").startswith("503")
    finally:
        wire.close()


def test_the_submission_port_takes_nothing_from_a_stranger(world: World) -> None:
    """Not even for a local mailbox: MAIL needs AUTH there."""
    wire = Wire(world.ports["submission"])
    try:
        wire.ehlo()
        assert wire.command(b"MAIL FROM:<bob@test.local>").startswith("530")
        assert wire.command(b"RCPT TO:<bob@test.local>").startswith("503")
    finally:
        wire.close()


def test_success_notices_are_never_sent_for_a_stranger(world: World) -> None:
    """NOTIFY=SUCCESS RET=FULL from an outsider naming a victim as sender: no notice
    carries the message to them (local delivery sends none; a forward asks for none)."""
    before = world.queued()
    marker = new_marker()
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        assert wire.command(b"MAIL FROM:<victim@remote.test> RET=FULL").startswith("250")
        assert wire.command(b"RCPT TO:<bob@test.local> NOTIFY=SUCCESS").startswith("250")
        assert wire.command(b"RCPT TO:<fwd@test.local> NOTIFY=SUCCESS").startswith("250")
        assert wire.command(b"DATA").startswith("354")
        assert wire.command(message(marker) + b".").startswith("250")
    finally:
        wire.close()
    assert world.landed(marker) == list(BOB)
    added = world.queued() - before
    ((queue_id, rcpt, _),) = added
    assert rcpt == "friend@remote.test"
    query = select(queue_recipients.c.dsn_notify, queue_messages.c.dsn_ret).join(
        queue_messages, queue_recipients.c.message_id == queue_messages.c.id
    ).where(queue_messages.c.id == queue_id)
    with world.engine.connect() as conn:
        notify, ret = conn.execute(query).one()
    assert "SUCCESS" not in (notify or "") and ret == "HDRS"


# -- 2. a logged-in tenant ---------------------------------------------------------------


@pytest.fixture(scope="module")
def carol(world: World) -> Callable[[], Wire]:
    """carol@other.test logged in on the submission port; one session for the module
    (a full-cost password check each login), RSET between uses, again when closed."""
    held: list[Wire] = []

    def session() -> Wire:
        if held:
            try:
                if held[0].command(b"RSET").startswith("250"):
                    return held[0]
            except OSError:
                pass
            held.pop().close()
        wire = Wire(world.ports["submission"])
        wire.ehlo()
        token = base64.b64encode(b"\0carol@other.test\0" + PASSWORD.encode())
        assert wire.command(b"AUTH PLAIN " + token).startswith("235")
        held.append(wire)
        return wire

    return session


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (b"<carol@other.test>", 250),
        (b"<Carol@OTHER.Test.>", 250),
        (b'<"carol"@other.test>', 250),
        (b"<@test.local:carol@other.test>", 250),
        (b"<>", 250),  # a delivery report; its From: is still checked
        (b"<carol@other.test> AUTH=<bob@test.local>", 250),  # AUTH= is not believed
        (b"<bob@test.local>", 553),
        (b"<BOB@TEST.LOCAL.>", 553),
        (b'<"bob"@test.local>', 553),
        (b"<@other.test:bob@test.local>", 553),
        (b"<bob@alias.test>", 553),
        (b"<carol%other.test@test.local>", 553),
        (b'<"carol@other.test"@test.local>', 553),
        (b"<carol@other.test@test.local>", 501),
        (b"<carol@[127.0.0.1]>", 553),
        (b"<postmaster>", 501),
        (b"<postmaster@example.com>", 553),
        (b"<postmaster@mail.example.com>", 553),
        (b"<MAILER-DAEMON@mail.example.com>", 553),
        ("<bob@test\u3002local>".encode() + UTF8, 553),
        (b"<carol@other.test\x00bob@test.local>", 501),
        (b"<SRS0=AAAAAA=AA=test.local=bob@mail.example.com>", 553),
        (b"<user@remote.test>", 553),
    ],
    ids=lambda v: v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else str(v),
)
def test_a_tenant_sends_only_as_itself(
    world: World, carol: Callable[[], Wire], path: bytes, code: int
) -> None:
    """MAIL FROM forms of another account: 553 5.7.1 (or a syntax error)."""
    before = world.queued()
    marker = new_marker()
    wire = carol()
    answer = wire.command(b"MAIL FROM:" + path)
    assert answer[:3] == str(code), answer
    if code == 250:
        assert wire.command(b"RCPT TO:<bob@test.local>").startswith("250")
        assert wire.command(b"DATA").startswith("354")
        wire.send(message(marker, b"Carol <carol@other.test>") + b".\r\n")
        assert wire.reply().startswith("250"), path
        assert world.landed(marker) == list(BOB)
    else:
        assert answer.split()[1].startswith("5.")
        assert world.landed(marker) == []
    assert world.queued() == before


@pytest.mark.parametrize("path", [b"<postmaster@mail.example.com>", b"<postmaster>",
                                  b"<MAILER-DAEMON@Mail.Example.Com.>"])
def test_a_tenant_reaches_the_postmaster_here_not_through_the_queue(
    world: World, carol: Callable[[], Wire], path: bytes
) -> None:
    """Our host name is ours for a logged-in user too: stored for the server admin
    (it was queued for mail.example.com, as for any domain we do not host)."""
    before = world.queued()
    marker = new_marker()
    wire = carol()
    assert wire.command(b"MAIL FROM:<carol@other.test>").startswith("250")
    assert wire.command(b"RCPT TO:" + path).startswith("250")
    assert wire.command(b"DATA").startswith("354")
    wire.send(message(marker, b"Carol <carol@other.test>") + b".\r\n")
    assert wire.reply().startswith("250")
    assert world.landed(marker) == list(ADMIN)
    assert world.queued() == before


@pytest.mark.parametrize(("path", "to"), [(b"<postmaster@test.local>", BOB),
                                          (b"<Postmaster@Alias.Test.>", BOB),
                                          (b"<postmaster@xn--bcher-kva.test>", ADMIN)])
def test_a_tenant_reaches_a_hosted_domains_postmaster_here(
    world: World, carol: Callable[[], Wire], path: bytes, to: tuple[str, ...]
) -> None:
    """A hosted domain's postmaster is local for a logged-in user too: its admins'."""
    before = world.queued()
    marker = new_marker()
    wire = carol()
    assert wire.command(b"MAIL FROM:<carol@other.test>").startswith("250")
    assert wire.command(b"RCPT TO:" + path).startswith("250")
    assert wire.command(b"DATA").startswith("354")
    wire.send(message(marker, b"Carol <carol@other.test>") + b".\r\n")
    assert wire.reply().startswith("250")
    assert world.landed(marker) == list(to)
    assert world.queued() == before


def test_a_tenant_of_an_idn_domain_may_write_its_address_in_unicode(world: World) -> None:
    """MAIL FROM compares the address as RCPT resolves it and the From: check reads
    it: U-labels, IDNA dots and case name the same mailbox (they got 553 5.7.1)."""
    wire = Wire(world.ports["submission"])
    try:
        wire.ehlo()
        token = base64.b64encode(b"\0me@xn--bcher-kva.test\0" + PASSWORD.encode())
        assert wire.command(b"AUTH PLAIN " + token).startswith("235")
        for path, code in [
            ("<me@bücher.test>", 250),
            ("<ME@BÜCHER.Test.>", 250),
            ("<me@bücher\u3002test>", 250),
            ("<me@xn--bcher-kva.test>", 250),
            ("<me@bucher.test>", 553),  # another domain
            ("<you@bücher.test>", 553),  # another name
            ("<me@bücher.example>", 553),
        ]:
            answer = wire.command(b"MAIL FROM:" + path.encode() + UTF8)
            assert answer[:3] == str(code), (path, answer)
            assert wire.command(b"RSET").startswith("250")
    finally:
        wire.close()


@pytest.mark.parametrize(
    "head",
    [
        b"From: bob@test.local",
        b"From: Bob <BOB@Test.Local.>",
        b'From: "bob"@test.local',
        b"From: bob@alias.test",
        b"From: <@other.test:bob@test.local>",
        b"From: carol@other.test <bob@test.local>",
        b'From: "bob@test.local" <carol@other.test>',
        b"From: carol@other.test (bob@test.local)",
        b"From: =?utf-8?b?Ym9iQHRlc3QubG9jYWw=?= <carol@other.test>",
        b"From: carol@other.test\r\nFrom: bob@test.local",
        b"From: carol@other.test\r\nSender: bob@test.local",
        b"From: carol@other.test,\r\n bob@test.local",
        b"From: Team: carol@other.test, bob@test.local;",
        b"From:\r\n bob@test.local",
        b"FROM : bob@test.local",
        b"From: carol@other.test\r\nFrom\x00: bob@test.local",  # a name a reader may clean
        b"\xef\xbb\xbfFrom: bob@test.local\r\nFrom: carol@other.test",  # a byte-order mark
        "From: carol@other.test (bob\uff20test.local)".encode(),
        b"From: bob@test\xe3\x80\x82local",
        b"From: carol%other.test@test.local",
        b"To: bob@test.local",  # no From: at all
    ],
    ids=lambda v: v.decode("utf-8", "backslashreplace"),
)
def test_a_tenant_cannot_put_another_account_in_from(
    world: World, carol: Callable[[], Wire], head: bytes
) -> None:
    """issue 9 item 1 over the real command: 550 5.7.1 at end of data, nothing
    stored for the local recipient, nothing queued for the remote one."""
    before = world.queued()
    marker = new_marker()
    wire = carol()
    assert wire.command(b"MAIL FROM:<carol@other.test>").startswith("250")
    assert wire.command(b"RCPT TO:<bob@test.local>").startswith("250")
    assert wire.command(b"RCPT TO:<friend@remote.test>").startswith("250")
    assert wire.command(b"DATA").startswith("354")
    wire.send(head + b"\r\nSubject: pay\r\nX-Sweep: " + marker + b"\r\n\r\nWire it.\r\n.\r\n")
    answer = wire.reply()
    assert answer.startswith("550 5.7.1"), answer
    assert world.landed(marker) == []
    assert world.queued() == before


def test_a_tenant_with_its_own_from_relays(world: World, carol: Callable[[], Wire]) -> None:
    """The control for the two tables above: the same session, its own From:, goes out."""
    before = world.queued()
    marker = new_marker()
    wire = carol()
    assert wire.command(b"MAIL FROM:<carol@other.test>").startswith("250")
    assert wire.command(b"RCPT TO:<bob@test.local>").startswith("250")
    assert wire.command(b"RCPT TO:<friend@remote.test>").startswith("250")
    assert wire.command(b"DATA").startswith("354")
    assert wire.command(message(marker, b"Carol <carol@other.test>") + b".").startswith("250")
    assert world.landed(marker) == list(BOB)
    assert [(rcpt, sender) for _, rcpt, sender in world.queued() - before] == [
        ("friend@remote.test", "carol@other.test")]


# -- 3. protocol tricks ------------------------------------------------------------------

SECOND = (b"MAIL FROM:<attacker@evil.test>\r\nRCPT TO:<user@remote.test>\r\nDATA\r\n"
          b"Subject: smuggled\r\n\r\nsmuggled\r\n")


@dataclass(frozen=True)
class Body:
    """DATA content (before the final CRLF.CRLF); `code` the reply to it; `kept` what
    the stored copy ends with when accepted (the content unstuffed)."""

    name: str
    content: bytes
    code: int
    kept: bytes | None = None


BODIES = [
    Body("smuggled LF.LF", b"Subject: a\r\n\r\nx\n.\n" + SECOND, 554),
    Body("smuggled CRLF.LF", b"Subject: a\r\n\r\nx\r\n.\n" + SECOND, 554),
    Body("smuggled LF.CRLF", b"Subject: a\r\n\r\nx\n.\r\n" + SECOND, 554),
    Body("smuggled CR.CR", b"Subject: a\r\n\r\nx\r.\r" + SECOND, 554),
    Body("smuggled CRLF.CR", b"Subject: a\r\n\r\nx\r\n.\r" + SECOND, 554),
    Body("bare LF in a header", b"Subject: a\nBcc: user@remote.test\r\n\r\nx\r\n", 554),
    Body("NUL", b"Subject: nul\r\n\r\nx\x00y\r\n", 250, b"\r\n\r\nx\x00y\r\n"),
    Body("header only", b"Subject: header only\r\n", 250, b"Subject: header only\r\n"),
    Body("no blank line", b"Subject: a\r\nno blank line before me\r\n", 250,
         b"Subject: a\r\nno blank line before me\r\n"),
    Body("empty", b"", 250, b""),
    Body("998-octet line", b"Subject: a\r\n\r\n" + b"a" * 998 + b"\r\n", 250,
         b"\r\n\r\n" + b"a" * 998 + b"\r\n"),
    Body("999-octet line", b"Subject: a\r\n\r\n" + b"a" * 999 + b"\r\n", 554),
    Body("999-octet header", b"Subject: " + b"a" * 990 + b"\r\n\r\nx\r\n", 554),
    Body("8-bit without 8BITMIME", "Subject: 한글\r\n\r\n본문\r\n".encode() + b"\xff\xfe\r\n",
         250, "본문\r\n".encode() + b"\xff\xfe\r\n"),
    Body("dot-stuffed", b"Subject: a\r\n\r\n..\r\n...x\r\n", 250, b"\r\n\r\n.\r\n..x\r\n"),
]


@pytest.mark.parametrize("body", BODIES, ids=[b.name for b in BODIES])
def test_data_gets_a_clear_reply_and_keeps_what_it_acknowledged(
    world: World, body: Body
) -> None:
    before = world.queued()
    marker = new_marker()
    content = b"X-Sweep: " + marker + b"\r\n" + body.content
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        assert wire.command(b"MAIL FROM:<attacker@evil.test>").startswith("250")
        assert wire.command(b"RCPT TO:<bob@test.local>").startswith("250")
        assert wire.command(b"DATA").startswith("354")
        answer = wire.command(content + b".")
        assert answer[:3] == str(body.code), answer
        # The session goes on, and what was smuggled got no replies of its own.
        assert wire.command(b"NOOP") == "250 2.0.0 OK"
    finally:
        wire.close()
    assert world.queued() == before
    if body.kept is None:
        assert world.landed(marker) == []
        assert world.landed(b"Subject: smuggled") == []
    else:
        assert world.landed(marker) == list(BOB)
        assert world.stored(marker).endswith(body.kept)


def test_two_messages_and_quit_in_one_write_are_both_kept(world: World) -> None:
    """A pipelining client that does not wait: each 250 is a stored copy."""
    first, second = new_marker(), new_marker()
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        transaction = b"MAIL FROM:<attacker@evil.test>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n"
        wire.send(transaction + message(first) + b".\r\n"
                  + transaction + message(second) + b".\r\nQUIT\r\n")
        answers = [wire.reply()[:3] for _ in range(9)]
        assert answers == ["250", "250", "354", "250"] * 2 + ["221"]
    finally:
        wire.close()
    assert world.landed(first) == list(BOB) and world.landed(second) == list(BOB)


def test_starttls_drops_commands_pipelined_in_plaintext(world: World) -> None:
    """CVE-2021-38371 class, port 25: MAIL/RCPT sent with STARTTLS are never read."""
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        wire.send(b"STARTTLS\r\nMAIL FROM:<attacker@evil.test>\r\nRCPT TO:<bob@test.local>\r\n")
        assert wire.reply().startswith("220")
        wire.starttls()
        # Had the injected MAIL been kept: "503 Sender already specified" or a RCPT reply.
        assert wire.command(b"MAIL FROM:<attacker@evil.test>") == "503 5.5.1 Send EHLO/HELO first"
        wire.ehlo()
        assert wire.command(b"MAIL FROM:<attacker@evil.test>").startswith("250")
        assert wire.command(b"RCPT TO:<user@remote.test>") == "554 5.7.1 Relay denied"
    finally:
        wire.close()


def test_starttls_drops_an_auth_pipelined_in_plaintext(world: World) -> None:
    """Submission: credentials sent with STARTTLS do not log the session in."""
    wire = Wire(world.ports["submission"])
    try:
        wire.ehlo()
        token = base64.b64encode(b"\0carol@other.test\0" + PASSWORD.encode())
        wire.send(b"STARTTLS\r\nAUTH PLAIN " + token + b"\r\n")
        assert wire.reply().startswith("220")
        wire.starttls()
        wire.ehlo()
        assert wire.command(b"MAIL FROM:<carol@other.test>").startswith("530")
    finally:
        wire.close()


def test_bdat_is_not_offered_and_its_chunk_is_read_as_commands(world: World) -> None:
    before = world.queued()
    chunk = b"RCPT TO:<user@remote.test>\r\n"
    wire = Wire(world.ports["smtp"])
    try:
        assert "CHUNKING" not in wire.ehlo()
        assert wire.command(b"MAIL FROM:<attacker@evil.test>").startswith("250")
        assert wire.command(b"RCPT TO:<bob@test.local>").startswith("250")
        wire.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        assert wire.reply() == "500 5.5.1 Command unrecognized"
        assert wire.reply() == "554 5.7.1 Relay denied"
        assert wire.command(b"NOOP") == "250 2.0.0 OK"
    finally:
        wire.close()
    assert world.queued() == before


def test_a_thousand_pipelined_rcpts(world: World) -> None:
    """One reply each: the first 100 taken (max_recipients), 452 for the rest; the
    message stored once."""
    marker = new_marker()
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        wire.send(b"MAIL FROM:<attacker@evil.test>\r\n"
                  + b"RCPT TO:<bob@test.local>\r\n" * 1000 + b"DATA\r\n")
        answers = [wire.reply()[:3] for _ in range(1002)]
        assert answers == ["250"] * 101 + ["452"] * 900 + ["354"]
        assert wire.command(message(marker) + b".").startswith("250")
    finally:
        wire.close()
    assert world.landed(marker) == list(BOB)


def test_a_thousand_pipelined_remote_rcpts_end_the_session(world: World) -> None:
    """Refused RCPTs past the hard limit (20) end the session with 421; nothing queued."""
    before = world.queued()
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        wire.send(b"MAIL FROM:<attacker@evil.test>\r\n"
                  + b"RCPT TO:<user@remote.test>\r\n" * 1000 + b"DATA\r\n")
        assert wire.reply().startswith("250")
        answers = []
        with pytest.raises(ConnectionError):
            while True:
                answers.append(wire.reply())
        assert answers[:20] == ["554 5.7.1 Relay denied"] * 20
        assert answers[20:] == ["421 4.7.0 Too many errors"]
    finally:
        wire.close()
    assert world.queued() == before


@pytest.mark.parametrize(
    "line",
    [
        b"MAIL FROM:<" + b"a" * 5000 + b"@evil.test>",
        b"RCPT TO:<" + b"u" * 3000 + b"@remote.test>",
        b"NOOP " + b"x" * 100_000,
    ],
    ids=["5000-octet MAIL", "3000-octet RCPT", "100 KB NOOP"],
)
def test_an_overlong_command_line_is_refused_and_the_session_goes_on(
    world: World, line: bytes
) -> None:
    before = world.queued()
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        if line.startswith(b"RCPT"):
            assert wire.command(b"MAIL FROM:<attacker@evil.test>").startswith("250")
        assert wire.command(line) == "500 5.5.2 Line too long"
        assert wire.command(b"NOOP") == "250 2.0.0 OK"
    finally:
        wire.close()
    assert world.queued() == before


def test_commands_pipelined_after_a_failed_auth_are_a_strangers(world: World) -> None:
    """A wrong password pipelined with MAIL/RCPT: the RCPT is judged as an outsider's.
    Last in the module: the failure delays the next login from loopback."""
    before = world.queued()
    wire = Wire(world.ports["smtp"])
    try:
        wire.ehlo()
        token = base64.b64encode(b"\0nobody@test.local\0wrong")
        wire.send(b"AUTH PLAIN " + token + b"\r\nMAIL FROM:<nobody@test.local>\r\n"
                  b"RCPT TO:<user@remote.test>\r\n")
        assert wire.reply().startswith("535")
        assert wire.reply().startswith("250")
        assert wire.reply() == "554 5.7.1 Relay denied"
    finally:
        wire.close()
    assert world.queued() == before
