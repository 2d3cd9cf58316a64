"""Commands answered straight from data_received (InlineChecks) against the task's path.

A backend with inline checks gets MAIL and RCPT answered on the loop, in
the callback that received them; when an inline check cannot answer (None)
or fails (raises), the same command goes to the blocking method in a
thread. Either way the replies come back in command order, whether the
commands arrive one at a time, pipelined, or split across packets.
"""

from __future__ import annotations

import logging
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from nmail.config import SmtpSettings
from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.directory.model import Resolution
from nmail.policy.decision import Decision
from nmail.servers.smtp import SmtpServer, SmtpServerSettings
from nmail.servers.smtp_backend import InlineChecks, PendingDecision
from smtp_rig import RecordingBackend, ServerRig, read_reply

MESSAGE = b"From: a@example.org\r\nTo: bob@test.local\r\nSubject: hi\r\n\r\nHello Bob.\r\n"


@dataclass
class InlineBackend(RecordingBackend):
    """RecordingBackend that also answers from memory, except where told not to."""

    not_in_memory: set[str] = field(default_factory=set)  # inline check returns None
    inline_fails_on: set[str] = field(default_factory=set)  # inline check raises
    inline_calls: list[str] = field(default_factory=list)

    def check_sender_now(
        self, client: ClientInfo, sender: str, size_hint: int | None
    ) -> Decision | None:
        self.inline_calls.append(f"MAIL {sender}")
        if sender in self.inline_fails_on:
            raise RuntimeError("cache is on fire")
        if sender in self.not_in_memory:
            return None
        return self.check_sender(client, sender, size_hint)

    def check_recipient_now(
        self, client: ClientInfo, sender: str, address: str, size_hint: int | None
    ) -> tuple[Decision, Resolution | None] | None:
        self.inline_calls.append(f"RCPT {address}")
        if address in self.inline_fails_on:
            raise RuntimeError("cache is on fire")
        if address in self.not_in_memory:
            return None
        return self.check_recipient(client, sender, address, size_hint)

    def accept_now(self, envelope: Envelope, content: bytes) -> PendingDecision | None:
        return None  # the message always takes the blocking accept()


@pytest.fixture(params=["asyncio", "uvloop"])
def rig(request: pytest.FixtureRequest) -> Iterator[ServerRig]:
    server_rig = ServerRig(request.param)
    yield server_rig
    server_rig.close()


def start(rig: ServerRig, backend: InlineBackend) -> SmtpServer:
    assert isinstance(backend, InlineChecks)
    return rig.start(SmtpServerSettings("smtp", "mx.test", SmtpSettings()), backend)


def connect(server: SmtpServer) -> tuple[socket.socket, bytearray]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    buf = bytearray()
    assert read_reply(sock, buf).startswith("220 mx.test")
    return sock, buf


def test_one_command_at_a_time_is_answered_inline(rig: ServerRig) -> None:
    backend = InlineBackend(users={"bob@test.local": "x", "carol@test.local": "y"})
    server = start(rig, backend)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        assert client.mail("a@example.org")[0] == 250
        assert client.rcpt("bob@test.local")[0] == 250
        assert client.rcpt("nobody@test.local")[0] == 550
        assert client.rcpt("carol@test.local")[0] == 250
        assert client.data(MESSAGE)[0] == 250
        # A second transaction on the same connection.
        assert client.mail("b@example.org")[0] == 250
        assert client.rcpt("bob@test.local")[0] == 250
        assert client.data(MESSAGE)[0] == 250
    assert backend.inline_calls == [
        "MAIL a@example.org", "RCPT bob@test.local", "RCPT nobody@test.local",
        "RCPT carol@test.local", "MAIL b@example.org", "RCPT bob@test.local",
    ]
    first, second = backend.accepted
    assert [r.address for r in first[0].recipients] == ["bob@test.local", "carol@test.local"]
    assert [r.address for r in second[0].recipients] == ["bob@test.local"]
    assert first[1] == second[1] == MESSAGE


def test_inline_none_or_failure_falls_back_in_order(
    rig: ServerRig, caplog: pytest.LogCaptureFixture
) -> None:
    backend = InlineBackend(
        users={"bob@test.local": "x", "carol@test.local": "y", "dave@test.local": "z"},
        not_in_memory={"carol@test.local"},
        inline_fails_on={"dave@test.local", "slow@example.org"},
    )
    server = start(rig, backend)
    caplog.set_level(logging.WARNING, logger="nmail.smtp")
    sock, buf = connect(server)
    # Everything pipelined in one packet: inline, blocking, failing inline, inline.
    sock.sendall(
        b"EHLO c.test\r\nMAIL FROM:<slow@example.org>\r\nRCPT TO:<bob@test.local>\r\n"
        b"RCPT TO:<carol@test.local>\r\nRCPT TO:<dave@test.local>\r\n"
        b"RCPT TO:<nobody@test.local>\r\nDATA\r\n"
    )
    replies = [read_reply(sock, buf) for _ in range(7)]
    assert [reply[:3] for reply in replies] == ["250", "250", "250", "250", "250", "550", "354"]
    sock.sendall(MESSAGE + b".\r\nQUIT\r\n")
    assert read_reply(sock, buf).startswith("250 2.0.0 Ok: queued as")
    assert read_reply(sock, buf) == "221 2.0.0 Bye"
    sock.close()
    envelope, content = backend.accepted[0]
    assert content == MESSAGE
    assert [r.address for r in envelope.recipients] == [
        "bob@test.local", "carol@test.local", "dave@test.local",
    ]
    # The blocking method saw exactly the ones inline could not answer.
    assert backend.senders_seen == ["slow@example.org"]
    assert "carol@test.local" in backend.recipients_seen
    assert "dave@test.local" in backend.recipients_seen
    assert any("check_recipient_now failed" in r.getMessage() for r in caplog.records)


def test_commands_split_across_packets(rig: ServerRig) -> None:
    backend = InlineBackend()
    server = start(rig, backend)
    sock, buf = connect(server)
    wire = b"EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n"
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for start_at in range(0, len(wire), 7):
        sock.sendall(wire[start_at : start_at + 7])
    assert [read_reply(sock, buf)[:3] for _ in range(4)] == ["250", "250", "250", "354"]
    sock.sendall(MESSAGE[:10])
    sock.sendall(MESSAGE[10:] + b".")
    sock.sendall(b"\r\nRSET\r\nNOOP\r\n")
    assert read_reply(sock, buf).startswith("250 2.0.0 Ok: queued as")
    assert read_reply(sock, buf).startswith("250")  # RSET
    assert read_reply(sock, buf).startswith("250")  # NOOP
    sock.sendall(b"MAIL FROM:<a@example.org\r\n")  # malformed: answered inline too
    assert read_reply(sock, buf).startswith("501")
    sock.sendall(b"QUIT\r\n")
    assert read_reply(sock, buf) == "221 2.0.0 Bye"
    sock.close()
    assert backend.accepted[0][1] == MESSAGE


def test_a_flood_of_pipelined_commands_is_answered_in_order(rig: ServerRig) -> None:
    """Thousands of commands in one go are answered in turns (other connections get
    the loop between them), every reply in order, and a transaction still works."""
    backend = InlineBackend()
    server = start(rig, backend)
    sock, buf = connect(server)
    other, other_buf = connect(server)
    count = 3000
    sock.sendall(
        b"EHLO c.test\r\n" + b"NOOP\r\n" * count + b"MAIL FROM:<a@example.org>\r\n"
        b"RCPT TO:<bob@test.local>\r\nDATA\r\n"
    )
    other.sendall(b"EHLO other.test\r\n")
    assert read_reply(other, other_buf).startswith("250")
    assert read_reply(sock, buf).startswith("250")
    replies = [read_reply(sock, buf) for _ in range(count)]
    assert replies == ["250 2.0.0 OK"] * count
    assert [read_reply(sock, buf)[:3] for _ in range(3)] == ["250", "250", "354"]
    sock.sendall(MESSAGE + b".\r\nQUIT\r\n")
    assert read_reply(sock, buf).startswith("250 2.0.0 Ok: queued as")
    assert read_reply(sock, buf) == "221 2.0.0 Bye"
    sock.close()
    other.close()
    assert backend.accepted[0][1] == MESSAGE
