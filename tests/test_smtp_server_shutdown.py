"""Graceful close: stop accepting, let transactions finish, 421 the others."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from nmail.servers.smtp import SmtpServer, SmtpServerSettings
from smtp_rig import RecordingBackend, ServerRig, read_reply
from support import wait_until

SETTINGS = SmtpServerSettings("smtp", "mx.test")


@pytest.fixture(params=["asyncio", "uvloop"])
def rig(request: pytest.FixtureRequest) -> Iterator[ServerRig]:
    server_rig = ServerRig(request.param)
    yield server_rig
    server_rig.close()


def connect(server: SmtpServer) -> tuple[socket.socket, bytearray]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    buf = bytearray()
    read_reply(sock, buf)
    sock.sendall(b"EHLO c.test\r\n")
    read_reply(sock, buf)
    return sock, buf


def test_idle_sessions_get_421_and_new_connections_are_refused(rig: ServerRig) -> None:
    backend = RecordingBackend()
    server = rig.start(SETTINGS, backend)
    port = server.port
    idle = [connect(server) for _ in range(3)]
    wait_until(lambda: server.sessions == 3)
    rig.loop.run(server.close(grace=5))
    for sock, buf in idle:
        assert read_reply(sock, buf) == "421 4.3.2 Service shutting down"
        assert sock.recv(10) == b""
        sock.close()
    assert server.sessions == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_transaction_in_flight_finishes_then_421(rig: ServerRig) -> None:
    backend = RecordingBackend()
    server = rig.start(SETTINGS, backend)
    sock, buf = connect(server)
    sock.sendall(b"MAIL FROM:<a@example.org>\r\n")
    assert read_reply(sock, buf) == "250 2.1.0 Sender OK"
    closing = rig.loop.submit(server.close(grace=30))
    wait_until(lambda: server.closing)
    sock.sendall(b"RCPT TO:<bob@test.local>\r\nDATA\r\n")
    assert read_reply(sock, buf) == "250 2.1.5 Recipient OK"
    assert read_reply(sock, buf).startswith("354")
    sock.sendall(b"Subject: last one\r\n\r\nbody\r\n.\r\n")
    assert read_reply(sock, buf) == "250 2.0.0 Ok: queued as T1"
    assert read_reply(sock, buf) == "421 4.3.2 Service shutting down"
    closing.result(timeout=10)
    sock.close()
    assert len(backend.accepted) == 1


def test_grace_deadline_cuts_off_slow_transactions(rig: ServerRig) -> None:
    backend = RecordingBackend()
    server = rig.start(SETTINGS, backend)
    sock, buf = connect(server)
    sock.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n")
    for _ in range(3):
        read_reply(sock, buf)
    sock.sendall(b"Subject: never finished\r\n\r\nhalf")
    rig.loop.run(server.close(grace=0.1))
    assert read_reply(sock, buf) == "421 4.3.2 Service shutting down"
    assert sock.recv(10) == b""
    sock.close()
    assert backend.accepted == []
    assert server.sessions == 0


def test_stop_is_close_with_the_configured_grace(rig: ServerRig) -> None:
    backend = RecordingBackend()
    server = rig.start(SmtpServerSettings("smtp", "mx.test", shutdown_grace=0.1), backend)
    sock, buf = connect(server)
    sock.sendall(b"MAIL FROM:<a@example.org>\r\n")
    read_reply(sock, buf)
    rig.loop.run(server.stop())
    assert read_reply(sock, buf) == "421 4.3.2 Service shutting down"
    sock.close()
