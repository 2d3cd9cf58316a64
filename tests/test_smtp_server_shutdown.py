"""Graceful close: stop accepting, let transactions finish, 421 the others."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from nmail.config import SmtpSettings
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


def test_past_the_connection_limit_a_client_gets_421_and_is_closed(rig: ServerRig) -> None:
    settings = SmtpServerSettings("smtp", "mx.test", smtp=SmtpSettings(max_connections=2))
    server = rig.start(settings, RecordingBackend())
    open_ = [connect(server) for _ in range(2)]
    wait_until(lambda: server.sessions == 2)
    extra = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    buf = bytearray()
    assert read_reply(extra, buf) == "421 4.3.2 Too many connections, try again later"
    assert extra.recv(10) == b""
    extra.close()
    assert server.sessions == 2
    sock, _ = open_.pop()
    sock.sendall(b"QUIT\r\n")
    sock.close()
    wait_until(lambda: server.sessions == 1)
    again, _ = connect(server)  # room again
    for s, _ in [*open_, (again, None)]:
        s.close()


class _Client:
    def __init__(self, ip: str) -> None:
        self.client_ip = ip

    def shutdown(self) -> None:
        pass


def test_connections_per_client_address_are_limited_but_not_loopback(rig: ServerRig) -> None:
    settings = SmtpServerSettings("smtp", "mx.test", smtp=SmtpSettings(max_connections_per_ip=2))
    server = rig.start(settings, RecordingBackend())
    clients = [_Client(ip) for ip in ("192.0.2.1", "192.0.2.1", "2001:db8:1:2::1",
                                       "2001:db8:1:2::9", "127.0.0.1", "127.0.0.1")]
    for client in clients:
        assert server.admit(client.client_ip) is None
        server.session_started(client)  # type: ignore[arg-type]
    refused = server.admit("192.0.2.1")
    assert refused is not None and refused.code == 421 and refused.enhanced == "4.7.0"
    assert server.admit("2001:db8:1:2::77") is not None  # the same /64
    assert server.admit("192.0.2.2") is None
    assert server.admit("127.0.0.1") is None  # local tools are not limited
    server.session_finished(clients[0])  # type: ignore[arg-type]
    server.session_finished(clients[0])  # type: ignore[arg-type]  # counted once only
    assert server.admit("192.0.2.1") is None
    late = _Client("192.0.2.1")
    server.session_started(late)  # type: ignore[arg-type]
    assert server.admit("192.0.2.1") is not None
    for client in [*clients[1:], late]:
        server.session_finished(client)  # type: ignore[arg-type]
    assert server.sessions == 0
