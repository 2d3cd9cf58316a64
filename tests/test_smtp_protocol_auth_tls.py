"""AUTH PLAIN/LOGIN exchanges and STARTTLS in the sans-IO SMTP connection."""

from __future__ import annotations

import base64

import pytest

from nmail.policy.decision import ACCEPT, Decision
from nmail.protocols.smtp import (
    Auth,
    AuthCredentials,
    Ehlo,
    Event,
    MailFrom,
    Noop,
    SaslResponse,
    SmtpConnection,
    SmtpOptions,
    SmtpState,
    SmtpUsageError,
    StartTls,
)
from smtp_rig import Driver, final_lines

EHLO = "EHLO c.test\r\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def check_password(event: Event) -> Decision:
    if isinstance(event, AuthCredentials):
        if (event.username, event.password) == ("bob@test.local", "Secret-42"):
            return ACCEPT
        return Decision(535, "5.7.8", "Authentication credentials invalid")
    return ACCEPT


def authed_driver() -> Driver:
    d = Driver(decide=check_password)
    d.send(EHLO)
    return d


def test_auth_plain_with_initial_response() -> None:
    d = authed_driver()
    reply = d.last(f"AUTH PLAIN {b64(chr(0) + 'bob@test.local' + chr(0) + 'Secret-42')}\r\n")
    assert reply == "235 2.7.0 Authentication successful"
    creds = d.of_type(AuthCredentials)[0]
    assert (creds.mechanism, creds.authzid, creds.username) == ("PLAIN", "", "bob@test.local")
    assert "Secret-42" not in repr(creds) and "Secret" not in repr(d.of_type(Auth)[0])
    assert d.conn.authenticated_as == "bob@test.local"
    assert d.conn.received_protocol == "ESMTPA"


@pytest.mark.parametrize("mechanism", ["pla\u0131n", "\u017fLAIN", "LOG\u0131N"])
def test_a_mechanism_is_an_ascii_word(mechanism: str) -> None:
    d = authed_driver()
    reply = d.last(f"AUTH {mechanism} {b64(chr(0) + 'bob@test.local' + chr(0) + 'Secret-42')}\r\n")
    assert reply == "504 5.5.4 Unrecognized authentication type"
    assert d.conn.authenticated_as is None


def test_auth_plain_with_continuation() -> None:
    d = authed_driver()
    assert d.send("AUTH PLAIN\r\n") == ["334 "]
    assert d.conn.state is SmtpState.AUTH
    reply = d.last(b64("\0bob@test.local\0Secret-42") + "\r\n")
    assert reply == "235 2.7.0 Authentication successful"
    assert [type(e) for e in d.events[1:]] == [Auth, SaslResponse, AuthCredentials]


def test_auth_login_exchange() -> None:
    d = authed_driver()
    assert d.send("AUTH LOGIN\r\n") == ["334 VXNlcm5hbWU6"]
    assert d.send(b64("bob@test.local") + "\r\n") == ["334 UGFzc3dvcmQ6"]
    assert d.last(b64("Secret-42") + "\r\n") == "235 2.7.0 Authentication successful"


def test_auth_login_with_initial_user_name() -> None:
    d = authed_driver()
    assert d.send(f"auth login {b64('bob@test.local')}\r\n") == ["334 UGFzc3dvcmQ6"]
    assert d.last(b64("Secret-42") + "\r\n") == "235 2.7.0 Authentication successful"


def test_wrong_password_is_535_and_counts_as_an_error() -> None:
    d = authed_driver()
    reply = d.last(f"AUTH PLAIN {b64(chr(0) + 'bob@test.local' + chr(0) + 'wrong')}\r\n")
    assert reply == "535 5.7.8 Authentication credentials invalid"
    assert d.conn.authenticated_as is None
    assert d.conn.bad_commands == 1
    assert d.conn.state is SmtpState.READY


@pytest.mark.parametrize(
    ("lines", "reply"),
    [
        (["AUTH PLAIN !!!notbase64"], "501 5.5.2"),
        (["AUTH PLAIN", "%%%"], "501 5.5.2"),
        (["AUTH PLAIN", "*"], "501 5.0.0 Authentication cancelled"),
        (["AUTH LOGIN", "*"], "501 5.0.0 Authentication cancelled"),
        (["AUTH LOGIN", b64("bob@test.local"), "*"], "501 5.0.0 Authentication cancelled"),
        (["AUTH LOGIN", "abc"], "501 5.5.2"),  # bad padding
        (["AUTH PLAIN " + b64("no-nul-separators")], "501 5.5.2"),
        (["AUTH PLAIN " + b64("\0\0password")], "501 5.5.2"),
        (["AUTH PLAIN " + base64.b64encode(b"\0\xff\0x").decode()], "501 5.5.2"),
        (["AUTH LOGIN", ""], "501 5.5.2"),
        (["AUTH CRAM-MD5"], "504 5.5.4"),
        (["AUTH"], "501 5.5.4"),
    ],
)
def test_auth_errors(lines: list[str], reply: str) -> None:
    d = authed_driver()
    out: list[str] = []
    for line in lines:
        out = d.send(line + "\r\n")
    assert out[-1].startswith(reply), out
    assert d.conn.state is SmtpState.READY
    assert d.conn.authenticated_as is None
    assert not d.of_type(AuthCredentials)
    assert d.last("NOOP\r\n") == "250 2.0.0 OK"


def test_auth_twice_is_503() -> None:
    d = authed_driver()
    d.send(f"AUTH PLAIN {b64(chr(0) + 'bob@test.local' + chr(0) + 'Secret-42')}\r\n")
    assert d.last("AUTH PLAIN\r\n") == "503 5.5.1 Already authenticated"


def test_auth_during_a_transaction_is_503() -> None:
    d = authed_driver()
    d.send("MAIL FROM:<a@example.org>\r\n")
    assert d.last("AUTH PLAIN\r\n") == "503 5.5.1 AUTH not permitted during a mail transaction"


def test_auth_before_ehlo_is_503() -> None:
    d = Driver()
    assert d.last("AUTH PLAIN\r\n") == "503 5.5.1 Send EHLO/HELO first"


def test_auth_in_plaintext_from_a_network_not_allowed_is_538() -> None:
    d = Driver(plaintext_auth_allowed=False)
    d.send(EHLO)
    reply = d.last(f"AUTH PLAIN {b64(chr(0) + 'bob@test.local' + chr(0) + 'Secret-42')}\r\n")
    assert reply == "538 5.7.11 Encryption required for requested authentication mechanism"
    assert not d.of_type(AuthCredentials)


def test_auth_not_available_is_502() -> None:
    d = Driver(SmtpOptions(auth_available=False), tls_active=True)
    d.send(EHLO)
    assert d.last("AUTH PLAIN\r\n").startswith("502 5.5.1")


def test_sasl_lines_may_be_long_but_not_endless() -> None:
    d = authed_driver()
    d.send("AUTH PLAIN\r\n")
    assert d.last("A" * 13000 + "\r\n") == "500 5.5.2 Line too long"
    assert d.conn.state is SmtpState.READY


def test_auth_failure_with_a_temporary_reply() -> None:
    conn = SmtpConnection(SmtpOptions(), plaintext_auth_allowed=True)
    conn.receive_data((EHLO + "AUTH PLAIN " + b64("\0u@test.local\0pw") + "\r\n").encode())
    assert isinstance(conn.next_event(), Ehlo)
    assert isinstance(conn.next_event(), Auth)
    assert isinstance(conn.next_event(), AuthCredentials)
    conn.data_to_send()
    with pytest.raises(SmtpUsageError):
        conn.auth_failed(Decision(250, "2.0.0", "not a failure"))
    conn.reject(Decision(454, "4.7.0", "Temporary authentication failure"))
    assert conn.data_to_send() == b"454 4.7.0 Temporary authentication failure\r\n"
    assert conn.bad_commands == 1
    with pytest.raises(SmtpUsageError):
        conn.auth_succeeded("u@test.local")


def test_submission_requires_auth_before_mail() -> None:
    d = Driver(SmtpOptions(auth_required=True), decide=check_password)
    d.send(EHLO)
    assert d.last("MAIL FROM:<bob@test.local>\r\n") == "530 5.7.0 Authentication required"
    d.send(f"AUTH PLAIN {b64(chr(0) + 'bob@test.local' + chr(0) + 'Secret-42')}\r\n")
    assert d.last("MAIL FROM:<bob@test.local>\r\n") == "250 2.1.0 Sender OK"


# -- STARTTLS ---------------------------------------------------------------------


def tls_driver() -> Driver:
    d = Driver(SmtpOptions(starttls_available=True), plaintext_auth_allowed=False)
    d.send(EHLO)
    return d


def test_starttls_discards_pipelined_plaintext() -> None:
    d = tls_driver()
    injected = "STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nNOOP\r\n"
    assert d.send(injected) == ["220 2.0.0 Ready to start TLS"]
    assert d.conn.state is SmtpState.TLS_HANDSHAKE
    assert d.of_type(StartTls) == [StartTls()]
    # Bytes arriving before the handshake is done are the TLS layer's, not commands.
    assert d.send("NOOP\r\n") == []
    d.conn.tls_started()
    assert d.conn.state is SmtpState.CONNECTED and d.conn.helo is None
    assert d.last("MAIL FROM:<a@example.org>\r\n") == "503 5.5.1 Send EHLO/HELO first"
    assert not d.of_type(MailFrom)
    assert not d.of_type(Noop)


def test_after_starttls_ehlo_offers_auth_and_not_starttls() -> None:
    d = tls_driver()
    d.send("STARTTLS\r\n")
    d.conn.tls_started()
    lines = d.send(EHLO)
    assert "250-STARTTLS" not in lines and lines[-1] == "250 AUTH PLAIN LOGIN"
    assert d.conn.tls_active
    assert d.conn.received_protocol == "ESMTPS"
    assert len(d.of_type(Ehlo)) == 2


@pytest.mark.parametrize(
    ("setup", "command", "reply"),
    [
        ("", "STARTTLS now\r\n", "501 5.5.4"),
        ("MAIL FROM:<a@example.org>\r\n", "STARTTLS\r\n", "503 5.5.1"),
    ],
)
def test_starttls_errors(setup: str, command: str, reply: str) -> None:
    d = tls_driver()
    d.send(setup)
    assert d.last(command).startswith(reply)
    assert d.conn.state is not SmtpState.TLS_HANDSHAKE


def test_starttls_before_ehlo_when_unavailable_and_when_active() -> None:
    d = Driver(SmtpOptions(starttls_available=True))
    assert d.last("STARTTLS\r\n") == "503 5.5.1 Send EHLO/HELO first"
    d = Driver(SmtpOptions(starttls_available=False))
    d.send(EHLO)
    assert d.last("STARTTLS\r\n").startswith("502 5.5.1")
    d = Driver(SmtpOptions(starttls_available=True), tls_active=True)
    d.send(EHLO)
    assert d.last("STARTTLS\r\n") == "503 5.5.1 TLS already active"


def test_tls_started_without_starttls_is_a_usage_error() -> None:
    d = tls_driver()
    with pytest.raises(SmtpUsageError):
        d.conn.tls_started()


def test_starttls_forgets_the_authenticated_identity() -> None:
    options = SmtpOptions(starttls_available=True)
    d = Driver(options, decide=check_password, plaintext_auth_allowed=True)
    d.send(EHLO + f"AUTH PLAIN {b64(chr(0) + 'bob@test.local' + chr(0) + 'Secret-42')}\r\n")
    assert d.conn.authenticated_as == "bob@test.local"
    assert final_lines(d.send("STARTTLS\r\n")) == ["220 2.0.0 Ready to start TLS"]
    d.conn.tls_started()
    assert d.conn.authenticated_as is None
