"""POP3 logins with poplib: STLS, implicit TLS, AUTH PLAIN, USER/PASS, refusals, throttling."""

from __future__ import annotations

import base64
import poplib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nmail.servers.pop3 import Pop3Settings
from pop3_rig import NO_PLAINTEXT, PASSWORD, Pop3Rig
from support import LOOPS

MESSAGE = b"Subject: hi\r\n\r\nhello\r\n"


@pytest.fixture(params=LOOPS)
def rig(request: pytest.FixtureRequest, sqlite_engine: Engine, tmp_path: Path) -> Iterator[Pop3Rig]:
    rig = Pop3Rig(sqlite_engine, tmp_path, request.param)
    rig.deliver(MESSAGE)
    yield rig
    rig.close()


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_stls_capa_and_auth_plain(rig: Pop3Rig) -> None:
    server = rig.start(NO_PLAINTEXT, tls=True)
    client = rig.connect(server)
    caps = client.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    for cap in ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"):
        assert cap in caps
    assert caps["IMPLEMENTATION"] == ["nmail"]
    with pytest.raises(poplib.error_proto) as refused:
        client.user("bob@example.com")
    assert refused.value.args[0] == (
        b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections"
    )
    client.stls(rig.client_context())
    caps = client.capa()
    assert "STLS" not in caps
    assert caps["SASL"] == ["PLAIN", "LOGIN"] and "USER" in caps
    reply = client._shortcmd("AUTH PLAIN " + plain("bob@example.com", PASSWORD))
    assert reply.startswith(b"+OK Logged in, 1 messages")
    assert client.retr(1)[1] == [b"Subject: hi", b"", b"hello"]
    client.quit()


def test_user_pass_after_stls(rig: Pop3Rig) -> None:
    server = rig.start(NO_PLAINTEXT, tls=True)
    client = rig.connect(server)
    client.stls(rig.client_context())
    client.user("bob@example.com")
    assert client.pass_(PASSWORD).startswith(b"+OK")
    assert client.stat()[0] == 1


def test_user_pass_in_plaintext_from_loopback(rig: Pop3Rig) -> None:
    server = rig.start()  # loopback is in the default plaintext_auth_networks
    client = rig.connect(server)
    caps = client.capa()
    assert "USER" in caps and "STLS" not in caps  # no certificate on this listener
    with pytest.raises(poplib.error_proto, match="TLS is not available"):
        client._shortcmd("STLS")
    client.user("bob@example.com")
    assert client.pass_(PASSWORD).startswith(b"+OK Logged in")


def test_auth_plain_continuation_and_errors(rig: Pop3Rig) -> None:
    server = rig.start()
    client = rig.connect(server)
    assert client._shortcmd("AUTH PLAIN").startswith(b"+ ")
    with pytest.raises(poplib.error_proto, match="Authentication cancelled"):
        client._shortcmd("*")
    assert client._shortcmd("AUTH PLAIN").startswith(b"+ ")
    with pytest.raises(poplib.error_proto, match="Invalid base64"):
        client._shortcmd("not base64!")
    with pytest.raises(poplib.error_proto, match="Unsupported authentication mechanism"):
        client._shortcmd("AUTH CRAM-MD5")
    assert client._shortcmd("AUTH PLAIN").startswith(b"+ ")
    assert client._shortcmd(plain("bob@example.com", PASSWORD)).startswith(b"+OK")


def test_pipelined_plaintext_before_stls_is_discarded(rig: Pop3Rig) -> None:
    server = rig.start(NO_PLAINTEXT, tls=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        stream = raw.makefile("rb")
        assert stream.readline().startswith(b"+OK")
        # An attacker in the path appends commands to the client's STLS.
        raw.sendall(b"STLS\r\nUSER bob@example.com\r\nPASS x\r\n")
        assert stream.readline() == b"+OK Begin TLS negotiation\r\n"
        with rig.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"QUIT\r\n")
            reply = tls.makefile("rb").readline()
    # Had the injected USER/PASS been executed, their replies would come first.
    assert reply == b"+OK nmail POP3 server signing off\r\n"


def test_implicit_tls_listener(rig: Pop3Rig) -> None:
    server = rig.start(Pop3Settings(implicit_tls=True, plaintext_auth_networks=()), tls=True)
    client = rig.connect_ssl(server)
    caps = client.capa()
    assert "STLS" not in caps and "USER" in caps
    client.user("bob@example.com")
    assert client.pass_(PASSWORD).startswith(b"+OK")
    assert client.retr(1)[1][-1] == b"hello"
    client.quit()


def test_implicit_tls_listener_sends_nothing_in_plaintext(rig: Pop3Rig) -> None:
    server = rig.start(Pop3Settings(implicit_tls=True), tls=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"USER bob@example.com\r\n")  # not a TLS ClientHello
        raw.shutdown(socket.SHUT_WR)
        data = raw.recv(100)
    assert not data.startswith(b"+OK")


def test_wrong_password_then_throttling_and_lockout(rig: Pop3Rig) -> None:
    server = rig.start()
    client = rig.connect(server)
    for _ in range(3):  # the rig's throttle locks out after 3 failures
        client.user("bob@example.com")
        with pytest.raises(poplib.error_proto) as refused:
            client.pass_("Wrong-password-1")
        assert refused.value.args[0] == b"-ERR [AUTH] Authentication failed"
    # Each -ERR was held back longer: 1 s, 2 s, then the cap (the lockout began).
    assert rig.sleeps == [1.0, 2.0, 16.0]
    # Locked out: even the right password is refused, without being checked.
    client.user("bob@example.com")
    with pytest.raises(poplib.error_proto) as refused:
        client.pass_(PASSWORD)
    assert refused.value.args[0] == b"-ERR [SYS/TEMP] Too many failed logins, try again later"
    # The IP is locked too: another account from here is refused as well.
    rig.directory.add_account("example.com", "Ann", "ann", PASSWORD)
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        client._shortcmd("AUTH PLAIN " + plain("ann@example.com", PASSWORD))
    assert rig.sleeps == [1.0, 2.0, 16.0]
    rig.clock.advance(601)
    client.user("bob@example.com")
    assert client.pass_(PASSWORD).startswith(b"+OK")


def test_unknown_user_gets_the_same_answer(rig: Pop3Rig) -> None:
    server = rig.start()
    client = rig.connect(server)
    client.user("nobody@example.com")
    with pytest.raises(poplib.error_proto) as refused:
        client.pass_(PASSWORD)
    assert refused.value.args[0] == b"-ERR [AUTH] Authentication failed"


def test_disabled_login(rig: Pop3Rig) -> None:
    rig.directory.set_login_enabled("bob@example.com", False)
    server = rig.start()
    client = rig.connect(server)
    client.user("bob@example.com")
    with pytest.raises(poplib.error_proto) as refused:
        client.pass_(PASSWORD)
    assert refused.value.args[0] == b"-ERR [AUTH] Account disabled"
    assert rig.sleeps == []


def test_bare_userid_on_a_listener_bound_to_one_domain(rig: Pop3Rig) -> None:
    server = rig.start(Pop3Settings(default_domain="example.com"))
    client = rig.connect(server)
    client.user("bob")
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()
    other = rig.start()  # no default domain: "bob" alone is not an account
    client = rig.connect(other)
    client.user("bob")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Authentication failed"):
        client.pass_(PASSWORD)


def test_tls_handshake_failure_closes_quietly(rig: Pop3Rig) -> None:
    server = rig.start(NO_PLAINTEXT, tls=True)
    client = rig.connect(server)
    untrusting = ssl.create_default_context()  # does not trust the self-signed certificate
    with pytest.raises(ssl.SSLError):
        client.stls(untrusting)
    client = rig.connect(server)  # the server is still fine
    assert "STLS" in client.capa()


@pytest.mark.parametrize("implicit", [True, False])
def test_certificate_reload_applies_to_new_handshakes(rig: Pop3Rig, implicit: bool) -> None:
    settings = Pop3Settings(implicit_tls=implicit)
    server = rig.start(settings, tls=True)

    def handshake() -> tuple[poplib.POP3, bytes]:
        if implicit:
            client: poplib.POP3 = rig.connect_ssl(server)
        else:
            client = rig.connect(server)
            client.stls(rig.client_context())
        der = client.sock.getpeercert(binary_form=True)
        assert der is not None
        return client, der

    old_client, old_cert = handshake()
    rig.replace_certificate()
    new_client, new_cert = handshake()
    assert new_cert != old_cert
    # The connection made before the reload goes on with its certificate.
    old_client.user("bob@example.com")
    assert old_client.pass_(PASSWORD).startswith(b"+OK")
    new_client.quit()
    old_client.quit()
