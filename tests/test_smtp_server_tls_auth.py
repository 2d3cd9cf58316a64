"""STARTTLS, implicit TLS and AUTH on the SMTP server roles (25, 587, 465)."""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
import warnings
from collections.abc import Iterator

import pytest

from nmail.config import SmtpSettings
from nmail.policy.decision import Decision
from nmail.servers.smtp import SmtpServer, SmtpServerSettings
from smtp_rig import RecordingBackend, SelfSignedCert, ServerRig, make_certificate, read_reply

PASSWORD = "Secret-42"
NO_PLAINTEXT = SmtpSettings(plaintext_auth_networks=())
MESSAGE = b"Subject: hi\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["asyncio", "uvloop"])
def rig(request: pytest.FixtureRequest) -> Iterator[ServerRig]:
    server_rig = ServerRig(request.param)
    yield server_rig
    server_rig.close()


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


def start(
    rig: ServerRig,
    backend: RecordingBackend,
    cert: SelfSignedCert | None,
    role: str = "smtp",
    smtp: SmtpSettings = NO_PLAINTEXT,
) -> SmtpServer:
    settings = SmtpServerSettings(role, "mx.test", smtp)  # type: ignore[arg-type]
    return rig.start(settings, backend, cert.server_context() if cert else None)


def test_starttls_then_auth_on_port_25(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, cert)
    with smtplib.SMTP("localhost", server.port, timeout=10) as client:
        client.ehlo("c.test")
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")  # not before TLS from this network
        code, _ = client.starttls(context=cert.client_context())
        assert code == 220
        client.ehlo("c.test")
        assert not client.has_extn("starttls")
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert client.login("bob@test.local", PASSWORD)[0] == 235
        client.sendmail("bob@test.local", ["someone@elsewhere.example"], MESSAGE)
    envelope, _ = backend.accepted[0]
    assert envelope.client.protocol == "ESMTPSA"
    assert envelope.client.auth_user == "bob@test.local"
    assert envelope.client.tls is not None and envelope.client.tls.startswith("TLSv1.")
    assert envelope.recipients[0].remote == ("someone@elsewhere.example",)


def test_starttls_without_auth_is_esmtps(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, cert)
    with smtplib.SMTP("localhost", server.port, timeout=10) as client:
        client.starttls(context=cert.client_context())
        client.sendmail("a@example.org", ["bob@test.local"], MESSAGE)
    assert backend.accepted[0][0].client.protocol == "ESMTPS"


def test_plaintext_auth_refused_outside_allowed_networks(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, cert)
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        token = base64.b64encode(f"\0bob@test.local\0{PASSWORD}".encode()).decode()
        code, text = client.docmd("AUTH", f"PLAIN {token}")
        assert (code, text) == (
            538,
            b"5.7.11 Encryption required for requested authentication mechanism",
        )
    assert backend.auth_attempts == []


def test_plaintext_auth_allowed_from_loopback_by_default(
    rig: ServerRig, backend: RecordingBackend
) -> None:
    server = start(rig, backend, None, smtp=SmtpSettings())
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        assert client.has_extn("auth")
        assert client.login("bob@test.local", PASSWORD)[0] == 235
    assert backend.auth_attempts == [("bob@test.local", "127.0.0.1")]


def test_submission_with_starttls_and_login(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, cert, role="submission")
    with smtplib.SMTP("localhost", server.port, timeout=10) as client:
        client.ehlo("c.test")
        assert client.mail("bob@test.local") == (530, b"5.7.0 Authentication required")
        client.starttls(context=cert.client_context())
        client.ehlo("c.test")
        assert client.mail("bob@test.local") == (530, b"5.7.0 Authentication required")
        client.user, client.password = "bob@test.local", PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        assert code == 235
        client.sendmail("bob@test.local", ["bob@test.local"], MESSAGE)
    assert backend.accepted[0][0].client.auth_user == "bob@test.local"


def test_wrong_password_and_sender_mismatch(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, cert, role="submission")
    with smtplib.SMTP("localhost", server.port, timeout=10) as client:
        client.starttls(context=cert.client_context())
        client.ehlo("c.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login("bob@test.local", "wrong")
        assert info.value.smtp_code == 535
        assert info.value.smtp_error == b"5.7.8 Authentication credentials invalid"
        client.user, client.password = "bob@test.local", PASSWORD
        code, _ = client.auth("PLAIN", client.auth_plain, initial_response_ok=False)
        assert code == 235
        assert client.mail("alice@test.local") == (
            553,
            b"5.7.1 Sender address rejected: not owned by user <alice@test.local>",
        )
        assert client.mail("bob@test.local")[0] == 250
        assert client.docmd("AUTH", "PLAIN")[0] == 503
    assert backend.accepted == []


def test_proxy_authorization_is_refused(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, None, smtp=SmtpSettings())
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        token = base64.b64encode(f"alice@test.local\0bob@test.local\0{PASSWORD}".encode())
        assert client.docmd("AUTH", "PLAIN " + token.decode())[0] == 535
    assert backend.auth_attempts == []


def test_implicit_tls_submissions(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, cert, role="submissions")
    with smtplib.SMTP_SSL(
        "localhost", server.port, timeout=10, context=cert.client_context()
    ) as client:
        client.ehlo("c.test")
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        client.login("bob@test.local", PASSWORD)
        client.sendmail("bob@test.local", ["bob@test.local"], MESSAGE)
    envelope, content = backend.accepted[0]
    assert envelope.client.protocol == "ESMTPSA" and content == MESSAGE


def test_implicit_tls_without_a_certificate_fails_the_handshake(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, None, role="submissions")
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
        pytest.raises((ssl.SSLError, ConnectionError)),
    ):
        cert.client_context().wrap_socket(sock, server_hostname="localhost")
    assert backend.senders_seen == []


def test_plaintext_client_on_the_implicit_tls_port_gets_nothing(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, cert, role="submissions")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"EHLO c.test\r\nMAIL FROM:<a@example.org>\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        assert b"250" not in data and b"220" not in data
    assert backend.senders_seen == []


def test_starttls_drops_pipelined_plaintext(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    server = start(rig, backend, cert)
    sock = socket.create_connection(("localhost", server.port), timeout=10)
    buf = bytearray()
    read_reply(sock, buf)
    sock.sendall(b"EHLO c.test\r\n")
    read_reply(sock, buf)
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<bob@test.local>\r\n")
    assert read_reply(sock, buf) == "220 2.0.0 Ready to start TLS"
    assert buf == bytearray()
    tls = cert.client_context().wrap_socket(sock, server_hostname="localhost")
    tls_buf = bytearray()
    tls.sendall(b"MAIL FROM:<a@example.org>\r\n")
    # Had the injected MAIL been kept, this would be "503 Sender already specified".
    assert read_reply(tls, tls_buf) == "503 5.5.1 Send EHLO/HELO first"
    tls.sendall(b"EHLO c.test\r\n")
    assert read_reply(tls, tls_buf).endswith("250 AUTH PLAIN LOGIN")
    tls.sendall(b"QUIT\r\n")
    assert read_reply(tls, tls_buf) == "221 2.0.0 Bye"
    tls.close()
    assert backend.senders_seen == []


def test_tls_below_1_2_is_refused(
    rig: ServerRig, backend: RecordingBackend, cert: SelfSignedCert
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # A server context that would allow TLS 1.0: the server must raise it to 1.2.
        lax = cert.server_context()
        lax.minimum_version = ssl.TLSVersion.TLSv1
        lax.set_ciphers("DEFAULT:@SECLEVEL=0")
        old_client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old_client.check_hostname = False
        old_client.verify_mode = ssl.CERT_NONE
        old_client.minimum_version = ssl.TLSVersion.TLSv1
        old_client.maximum_version = ssl.TLSVersion.TLSv1_1
        old_client.set_ciphers("DEFAULT:@SECLEVEL=0")
    settings = SmtpServerSettings("submissions", "mx.test", NO_PLAINTEXT)
    server = rig.start(settings, backend, lax)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
        pytest.raises((ssl.SSLError, ConnectionError)),
    ):
        old_client.wrap_socket(sock, server_hostname="localhost")
    with smtplib.SMTP_SSL(
        "localhost", server.port, timeout=10, context=cert.client_context()
    ) as client:
        assert client.sock is not None
        version = client.sock.version()  # type: ignore[attr-defined]
        assert version in ("TLSv1.2", "TLSv1.3")


def test_reloaded_certificate_is_used_for_new_handshakes(
    rig: ServerRig,
    backend: RecordingBackend,
    cert: SelfSignedCert,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    second = make_certificate(tmp_path_factory.mktemp("tls2"))
    current = {"ctx": cert.server_context()}
    settings = SmtpServerSettings("submissions", "mx.test", NO_PLAINTEXT)
    server = SmtpServer(settings, backend, lambda: current["ctx"])
    rig.loop.run(server.start("127.0.0.1", 0))
    rig.servers.append(server)
    with smtplib.SMTP_SSL("localhost", server.port, context=cert.client_context()) as client:
        client.noop()
        current["ctx"] = second.server_context()
        assert client.noop()[0] == 250  # the open session keeps going
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL("localhost", server.port, timeout=10, context=cert.client_context())
    with smtplib.SMTP_SSL("localhost", server.port, context=second.client_context()) as client:
        assert client.noop()[0] == 250


def test_failed_auth_waits_the_backend_delay_then_refuses(rig: ServerRig) -> None:
    # The server sleeps (not the test); the reply arrives once it is done.
    backend = RecordingBackend(auth_delay=0.05)
    server = start(rig, backend, None, smtp=SmtpSettings())
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login("bob@test.local", "wrong")
        assert info.value.smtp_code == 535
        assert client.noop()[0] == 250
    # smtplib tries PLAIN, then LOGIN: both were checked and both refused.
    assert backend.auth_attempts == [("bob@test.local", "127.0.0.1")] * 2


def test_temporary_auth_refusal_from_the_backend(rig: ServerRig) -> None:
    backend = RecordingBackend(auth_refusal=Decision(454, "4.7.0", "Too many failures, wait"))
    server = start(rig, backend, None, smtp=SmtpSettings())
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo("c.test")
        token = base64.b64encode(b"\0bob@test.local\0wrong").decode()
        assert client.docmd("AUTH", "PLAIN " + token) == (454, b"4.7.0 Too many failures, wait")
