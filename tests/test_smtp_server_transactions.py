"""The SMTP server over real sockets: smtplib and raw clients against 127.0.0.1."""

from __future__ import annotations

import logging
import smtplib
import socket
from collections.abc import Iterator

import pytest

from nmail.config import SmtpSettings
from nmail.servers.smtp import SmtpServer, SmtpServerSettings
from smtp_rig import RecordingBackend, ServerRig, read_reply
from support import silent_for, wait_until

OPEN_DATA = b"EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n"
MESSAGE = b"From: a@example.org\r\nTo: bob@test.local\r\nSubject: hi\r\n\r\nHello Bob.\r\n"


@pytest.fixture(params=["asyncio", "uvloop"])
def rig(request: pytest.FixtureRequest) -> Iterator[ServerRig]:
    server_rig = ServerRig(request.param)
    yield server_rig
    server_rig.close()


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


def start(
    rig: ServerRig, backend: RecordingBackend, role: str = "smtp", **smtp: object
) -> SmtpServer:
    settings = SmtpServerSettings(role, "mx.test", SmtpSettings(**smtp))  # type: ignore[arg-type]
    return rig.start(settings, backend)


def raw(server: SmtpServer) -> tuple[socket.socket, bytearray]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    buf = bytearray()
    assert read_reply(sock, buf).startswith("220 mx.test")
    return sock, buf


def test_smtplib_delivers_exact_bytes(rig: ServerRig, backend: RecordingBackend) -> None:
    server = start(rig, backend)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        code, _ = client.ehlo("client.example.org")
        assert code == 250
        assert client.has_extn("pipelining") and client.has_extn("smtputf8")
        assert client.has_extn("size") and client.esmtp_features["size"] == "52428800"
        assert not client.has_extn("starttls")  # no certificate configured
        refused = client.sendmail("a@example.org", ["bob@test.local"], MESSAGE)
        assert refused == {}
    assert len(backend.accepted) == 1
    envelope, content = backend.accepted[0]
    assert content == MESSAGE
    assert envelope.sender == "a@example.org"
    assert [r.address for r in envelope.recipients] == ["bob@test.local"]
    assert envelope.client.ip == "127.0.0.1"
    assert envelope.client.helo == "client.example.org"
    assert envelope.client.protocol == "ESMTP"
    assert envelope.client.auth_user is None and envelope.client.tls is None


def test_dot_stuffing_round_trip(rig: ServerRig, backend: RecordingBackend) -> None:
    server = start(rig, backend)
    body = b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nend\r\n"
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.sendmail("a@example.org", ["bob@test.local"], body)
    assert backend.accepted[0][1] == body


def test_rejections_reach_the_client(rig: ServerRig, backend: RecordingBackend) -> None:
    server = start(rig, backend, max_message_size=1000)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        client.mail("a@example.org")
        assert client.rcpt("nobody@test.local") == (
            550,
            b"5.1.1 Mailbox unavailable <nobody@test.local>",
        )
        code, _ = client.rcpt("someone@elsewhere.example")
        assert code == 250  # 127.0.0.1 is in the default relay networks
        client.rset()
        code, text = client.mail("a@example.org", ["SIZE=5000"])
        assert (code, text) == (552, b"5.3.4 Message size exceeds the server limit")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.org", ["bob@test.local"], b"x" * 2000)  # sends SIZE=
        assert refused.value.smtp_code == 552
        # Without SIZE= the limit is enforced at the end of the data.
        client.mail("a@example.org")
        client.rcpt("bob@test.local")
        assert client.data(b"x" * 500 + b"\r\n" + b"y" * 600) == (
            552,
            b"5.3.4 Message size exceeds the server limit",
        )
    assert backend.accepted == []


def test_relay_denied_outside_the_relay_networks(rig: ServerRig) -> None:
    backend = RecordingBackend(relay_networks=("10.0.0.0/8",))
    server = start(rig, backend)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        client.mail("a@example.org")
        assert client.rcpt("someone@elsewhere.example") == (554, b"5.7.1 Relay denied")


def test_pipelined_transactions_in_one_write(rig: ServerRig, backend: RecordingBackend) -> None:
    server = start(rig, backend)
    sock, buf = raw(server)
    batch = b"EHLO c.test\r\n"
    for i in range(5):
        batch += (
            b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@test.local>\r\n"
            b"RCPT TO:<nobody@test.local>\r\nDATA\r\n"
            + b"Subject: %d\r\n\r\nbody %d\r\n.\r\n"
            % (i, i)
        )
    sock.sendall(batch + b"QUIT\r\n")
    replies: list[str] = []
    while not (replies and replies[-1].startswith("221")):
        replies.append(read_reply(sock, buf))
    sock.close()
    finals = [r.splitlines()[-1] for r in replies]
    assert finals.count("354 End data with <CR><LF>.<CR><LF>") == 5
    assert finals.count("550 5.1.1 Mailbox unavailable <nobody@test.local>") == 5
    assert [f for f in finals if "queued as" in f] == [
        f"250 2.0.0 Ok: queued as T{i}" for i in range(1, 6)
    ]
    assert [c for _, c in backend.accepted] == [
        b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i) for i in range(5)
    ]


def test_disconnect_mid_data_delivers_nothing(rig: ServerRig, backend: RecordingBackend) -> None:
    server = start(rig, backend)
    sock, buf = raw(server)
    sock.sendall(OPEN_DATA)
    for _ in range(4):
        read_reply(sock, buf)
    sock.sendall(b"Subject: cut\r\n\r\nhalf a message\r\n")
    sock.close()
    wait_until(lambda: server.sessions == 0)
    assert backend.accepted == []
    assert backend.recipients_seen == ["bob@test.local"]


@pytest.mark.parametrize(
    "smuggled", [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r\n.\r", b"\r.\r\n"]
)
def test_smuggling_over_a_socket(
    rig: ServerRig, backend: RecordingBackend, smuggled: bytes
) -> None:
    server = start(rig, backend)
    sock, buf = raw(server)
    sock.sendall(OPEN_DATA)
    for _ in range(4):
        read_reply(sock, buf)
    sock.sendall(
        b"Subject: one\r\n\r\nfirst"
        + smuggled
        + b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n"
        + b"Subject: forged\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n"
    )
    replies = [read_reply(sock, buf), read_reply(sock, buf)]
    sock.close()
    assert replies == [
        "554 5.6.0 Message contains bare CR or LF (RFC 5321 2.3.8)",
        "221 2.0.0 Bye",
    ]
    assert backend.accepted == []
    assert "evil@attacker.example" not in backend.senders_seen


def test_backend_failure_is_451_and_logged(
    rig: ServerRig, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RecordingBackend(fail_on="boom@example.org")
    server = start(rig, backend)
    caplog.set_level(logging.ERROR, logger="nmail.smtp")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        code, text = client.mail("boom@example.org")
        assert (code, text) == (451, b"4.3.0 Temporary local error")
        assert b"Traceback" not in text
        client.mail("a@example.org")
        assert client.rcpt("boom@example.org")[0] == 451
        assert client.noop()[0] == 250
    assert any("check_sender failed" in r.getMessage() for r in caplog.records)
    assert any("check_recipient failed" in r.getMessage() for r in caplog.records)


def test_accept_failure_is_451(rig: ServerRig) -> None:
    backend = RecordingBackend(fail_on="boom@example.org")
    server = start(rig, backend)
    backend_sender = "boom@example.org"
    sock, buf = raw(server)
    # check_sender raises for this sender; send it via a backend that lets MAIL pass.
    backend.fail_on = None
    sock.sendall(
        b"EHLO c.test\r\nMAIL FROM:<%s>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n"
        % backend_sender.encode()
    )
    for _ in range(4):
        read_reply(sock, buf)
    backend.fail_on = backend_sender
    sock.sendall(b"Subject: x\r\n\r\nx\r\n.\r\n")
    assert read_reply(sock, buf) == "451 4.3.0 Temporary local error"
    sock.sendall(b"QUIT\r\n")
    assert read_reply(sock, buf) == "221 2.0.0 Bye"
    sock.close()
    assert backend.accepted == []


def test_envelope_carries_dsn_and_smtputf8(rig: ServerRig, backend: RecordingBackend) -> None:
    server = start(rig, backend)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        assert client.mail("a@example.org", ["SMTPUTF8", "RET=HDRS", "ENVID=abc+2B1"])[0] == 250
        assert (
            client.rcpt("bob@test.local", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;b+40x"])[0]
            == 250
        )
        assert client.data(b"Subject: x\r\n\r\n\xec\x95\x88\xeb\x85\x95\r\n")[0] == 250
    envelope, content = backend.accepted[0]
    assert envelope.smtputf8 and envelope.dsn_ret == "HDRS" and envelope.dsn_envid == "abc+1"
    assert envelope.dsn_notify == ("SUCCESS,FAILURE",)
    assert envelope.dsn_orcpt == ("rfc822;b@x",)
    assert "안녕".encode() in content


def test_dsn_values_decoding_to_controls_are_refused_at_once(
    rig: ServerRig, backend: RecordingBackend
) -> None:
    """ENVID/ORCPT that decode to CR, LF or NUL get 501 at MAIL/RCPT, not at end of data."""
    server = start(rig, backend)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        code, text = client.mail("a@example.org", ["ENVID=x+0D+0AQUIT"])
        assert (code, text[:5]) == (501, b"5.5.4")
        assert client.mail("a@example.org")[0] == 250
        code, _ = client.rcpt("bob@test.local", ["ORCPT=rfc822;b+00+0D+0A@x"])
        assert code == 501
        assert client.rcpt("bob@test.local")[0] == 250
        assert client.data(MESSAGE)[0] == 250
    envelope, _ = backend.accepted[0]
    assert envelope.dsn_envid is None and envelope.dsn_orcpt == (None,)


def test_bad_input_gets_precise_replies(rig: ServerRig, backend: RecordingBackend) -> None:
    server = start(rig, backend, max_bad_commands=3)
    sock, buf = raw(server)
    sock.sendall(b"EHLO c.test\r\n")
    read_reply(sock, buf)
    sock.sendall(b"X" * 2000 + b"\r\n")
    assert read_reply(sock, buf) == "500 5.5.2 Line too long"
    sock.sendall(b"RCPT TO:<bob@test.local>\r\n")
    assert read_reply(sock, buf) == "503 5.5.1 Need MAIL before RCPT"
    sock.sendall(b"WHAT\r\n")
    assert read_reply(sock, buf) == "500 5.5.1 Command unrecognized"
    assert read_reply(sock, buf) == "421 4.7.0 Too many errors"
    assert sock.recv(100) == b""  # closed
    sock.close()


def test_idle_client_is_cut_off(rig: ServerRig, backend: RecordingBackend) -> None:
    settings = SmtpServerSettings("smtp", "mx.test", idle_timeout=0.2)
    server = rig.start(settings, backend)
    sock, buf = raw(server)
    # The server speaks first: the read waits for its timeout, bounded by ours.
    assert read_reply(sock, buf) == "421 4.4.2 Idle timeout, closing connection"
    assert sock.recv(100) == b""
    sock.close()
    wait_until(lambda: server.sessions == 0)


def test_many_parallel_sessions(rig: ServerRig, backend: RecordingBackend) -> None:
    server = start(rig, backend)
    clients = [smtplib.SMTP("127.0.0.1", server.port, timeout=10) for _ in range(20)]
    for i, client in enumerate(clients):
        client.sendmail("a@example.org", ["bob@test.local"], b"Subject: %d\r\n\r\nx\r\n" % i)
    for client in clients:
        client.quit()
    assert len(backend.accepted) == 20
    wait_until(lambda: server.sessions == 0)


def test_a_client_guessing_addresses_is_slowed_then_cut_off(
    rig: ServerRig, backend: RecordingBackend
) -> None:
    """Refused RCPTs count: past the soft limit replies wait, at the hard limit 421."""
    # The server's waits are recorded, not slept: which replies waited, and how
    # long they were to, without asserting a time on a loaded machine.
    delay = 0.3
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    settings = SmtpServerSettings("smtp", "mx.test", SmtpSettings(
        rcpt_error_soft_limit=3, rcpt_error_hard_limit=6, rcpt_error_delay=delay))
    server = rig.start(settings, backend, sleep=record)
    sock, buf = raw(server)
    sock.sendall(b"EHLO c.test\r\nMAIL FROM:<a@example.org>\r\n")
    read_reply(sock, buf)
    assert read_reply(sock, buf).startswith("250")
    for i in range(5):
        sock.sendall(f"RCPT TO:<guess{i}@test.local>\r\n".encode())
        assert read_reply(sock, buf).startswith("550 5.1.1")
        # the first three errors are answered at once; from the fourth on each waits
        assert waited == [delay] * max(0, i - 2), (i, waited)
    # a good address is slowed too while the client is past the soft limit
    sock.sendall(b"RCPT TO:<bob@test.local>\r\n")
    assert read_reply(sock, buf).startswith("250")
    assert waited == [delay] * 3
    sock.sendall(b"RCPT TO:<guess9@test.local>\r\n")
    assert read_reply(sock, buf).startswith("550 5.1.1")
    assert read_reply(sock, buf).startswith("421 4.7.0 Too many errors")
    assert sock.recv(100) == b""  # closed
    sock.close()
    assert backend.recipients_seen.count("guess9@test.local") == 1


def test_a_stop_cuts_a_guessing_clients_delay_short(
    rig: ServerRig, backend: RecordingBackend
) -> None:
    """The real wait (an hour here) ends when the listener closes: the reply
    comes within the client's 10 s socket timeout, and the transaction may end."""
    settings = SmtpServerSettings("smtp", "mx.test", SmtpSettings(
        rcpt_error_soft_limit=1, rcpt_error_hard_limit=6, rcpt_error_delay=3600))
    server = rig.start(settings, backend)
    sock, buf = raw(server)
    sock.sendall(b"EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<guess0@test.local>\r\n")
    read_reply(sock, buf)
    assert read_reply(sock, buf).startswith("250")
    assert read_reply(sock, buf).startswith("550 5.1.1")  # at once: below the soft limit
    sock.sendall(b"RCPT TO:<guess1@test.local>\r\n")
    assert silent_for(sock, 0.2)  # held back
    closing = rig.loop.submit(server.close(grace=600))
    assert read_reply(sock, buf).startswith("550 5.1.1")
    sock.sendall(b"QUIT\r\n")
    assert read_reply(sock, buf).startswith("221")
    closing.result(timeout=60)
    rig.servers.remove(server)
    sock.close()


def test_a_delivered_message_forgives_earlier_refusals(
    rig: ServerRig, backend: RecordingBackend
) -> None:
    server = start(
        rig, backend, rcpt_error_soft_limit=2, rcpt_error_hard_limit=3, rcpt_error_delay=0
    )
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        for _ in range(3):
            client.ehlo("c.test")
            assert client.mail("a@example.org")[0] == 250
            assert client.rcpt("nobody@test.local")[0] == 550
            assert client.rcpt("nobody2@test.local")[0] == 550
            assert client.rcpt("bob@test.local")[0] == 250
            assert client.data(MESSAGE)[0] == 250
    assert len(backend.accepted) == 3
