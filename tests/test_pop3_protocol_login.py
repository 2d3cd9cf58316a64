"""The POP3 state machine without sockets: CAPA, USER/PASS, AUTH PLAIN, STLS."""

from __future__ import annotations

import base64

import pytest

from nmail.protocols.pop3 import (
    Authenticate,
    LoginFailure,
    Pop3Session,
    StartTls,
    State,
)
from pop3_driver import Client, plain


def test_greeting_and_capa_before_login() -> None:
    c = Client(tls_available=True)
    assert c.greeting == b"+OK nmail POP3 server ready\r\n"
    reply = c.cmd("CAPA").decode()
    lines = reply.split("\r\n")
    assert lines[0].startswith("+OK")
    for cap in ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "USER",
                "SASL PLAIN LOGIN", "STLS", "IMPLEMENTATION nmail"):
        assert cap in lines
    assert reply.endswith("\r\n.\r\n")


def test_capa_hides_login_without_tls_when_plaintext_not_allowed() -> None:
    c = Client(tls_available=True, plaintext_allowed=False)
    lines = c.cmd("CAPA").decode().split("\r\n")
    assert "STLS" in lines
    assert "USER" not in lines
    assert not any(line.startswith("SASL") for line in lines)


def test_capa_after_tls_has_no_stls() -> None:
    c = Client(tls_available=True, tls_active=True, plaintext_allowed=False)
    lines = c.cmd("CAPA").decode().split("\r\n")
    assert "STLS" not in lines
    assert "USER" in lines


def test_user_pass_login_enters_transaction() -> None:
    c = Client()
    c.login()
    assert c.session.state is State.TRANSACTION
    auth = c.events[0]
    assert auth == Authenticate("bob@example.com", "secret pass", "USER")


def test_pass_without_user() -> None:
    c = Client()
    assert c.cmd("PASS x") == b"-ERR Send USER first\r\n"
    assert c.session.state is State.AUTHORIZATION


def test_user_needs_a_name() -> None:
    c = Client()
    assert c.cmd("USER").startswith(b"-ERR Syntax")
    assert c.cmd("USER a b").startswith(b"-ERR Syntax")


def test_login_refusals_carry_response_codes() -> None:
    expected = {
        LoginFailure.BAD_CREDENTIALS: b"-ERR [AUTH] Authentication failed\r\n",
        LoginFailure.DISABLED: b"-ERR [AUTH] Account disabled\r\n",
        LoginFailure.IN_USE: b"-ERR [IN-USE] Mailbox is locked by another POP3 session\r\n",
        LoginFailure.LOCKED_OUT: b"-ERR [SYS/TEMP] Too many failed logins, try again later\r\n",
        LoginFailure.TEMPORARY: b"-ERR [SYS/TEMP] Temporary server error, try again later\r\n",
    }
    for failure, reply in expected.items():
        s = Pop3Session(plaintext_allowed=True)
        s.data_to_send()
        s.receive_data(b"USER a@b.c\r\nPASS wrong\r\nSTAT\r\n")
        assert isinstance(s.next_event(), Authenticate)
        s.login_refused(failure)
        assert s.next_event() is None  # STAT is refused, not executed
        assert s.data_to_send() == (
            b"+OK Send your password\r\n" + reply + b"-ERR STAT is not allowed before login\r\n"
        )
        assert s.state is State.AUTHORIZATION
        # USER must be given again after a failure.
        s.receive_data(b"PASS again\r\n")
        assert s.next_event() is None
        assert s.data_to_send() == b"-ERR Send USER first\r\n"


def test_next_event_refuses_to_run_while_an_event_is_unanswered() -> None:
    s = Pop3Session(plaintext_allowed=True)
    s.receive_data(b"USER a@b.c\r\nPASS x\r\n")
    assert isinstance(s.next_event(), Authenticate)
    with pytest.raises(RuntimeError):
        s.next_event()
    with pytest.raises(RuntimeError):
        s.update_finished(True)


def test_plaintext_refused_on_insecure_connection() -> None:
    c = Client(tls_available=True, plaintext_allowed=False)
    refused = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections\r\n"
    assert c.cmd("USER bob@example.com") == refused
    assert c.cmd("PASS x") == refused
    assert c.cmd("AUTH PLAIN " + plain("bob@example.com", "x")) == refused
    assert not c.events


def test_stls_discards_pipelined_plaintext() -> None:
    c = Client(tls_available=True, plaintext_allowed=False)
    out = c.send(b"STLS\r\nUSER evil@example.com\r\nPASS x\r\n")
    assert out == b"+OK Begin TLS negotiation\r\n"
    assert c.events == [StartTls()]
    # Plaintext that arrives before the handshake finishes is dropped as well.
    c.session.receive_data(b"CAPA\r\n")
    c.session.tls_started()
    assert c.session.tls_active
    assert c.session.next_event() is None
    assert c.session.data_to_send() == b""
    # After TLS, plaintext login is allowed and there is no pending USER.
    assert c.cmd("PASS x") == b"-ERR Send USER first\r\n"
    c.login()


def test_stls_refusals() -> None:
    assert Client().cmd("STLS") == b"-ERR TLS is not available\r\n"
    active = Client(tls_available=True, tls_active=True)
    assert active.cmd("STLS") == b"-ERR TLS is already active\r\n"
    assert Client(tls_available=True).cmd("STLS now") == b"-ERR STLS takes no arguments\r\n"


def test_auth_plain_initial_response() -> None:
    c = Client()
    reply = c.cmd("AUTH PLAIN " + plain("bob@example.com", "pw with space"))
    assert reply.startswith(b"+OK Logged in")
    assert c.events == [Authenticate("bob@example.com", "pw with space", "PLAIN")]


def test_auth_plain_continuation() -> None:
    c = Client()
    assert c.cmd("AUTH plain") == b"+ \r\n"
    assert c.cmd(plain("bob@example.com", "pw", authz="bob@example.com")).startswith(b"+OK")
    assert c.events == [Authenticate("bob@example.com", "pw", "PLAIN")]


def test_auth_plain_cancel_and_errors() -> None:
    c = Client()
    assert c.cmd("AUTH PLAIN") == b"+ \r\n"
    assert c.cmd("*") == b"-ERR Authentication cancelled\r\n"
    assert c.session.state is State.AUTHORIZATION
    assert c.cmd("AUTH PLAIN") == b"+ \r\n"
    assert c.cmd("!!!notbase64") == b"-ERR Invalid base64 data in AUTH response\r\n"
    assert c.cmd("AUTH PLAIN " + base64.b64encode(b"no-nuls").decode()) == (
        b"-ERR Malformed AUTH PLAIN response\r\n"
    )
    assert c.cmd("AUTH PLAIN =") == b"-ERR Malformed AUTH PLAIN response\r\n"
    assert c.cmd("AUTH PLAIN " + plain("bob@example.com", "")) == (
        b"-ERR Malformed AUTH PLAIN response\r\n"
    )
    assert c.cmd("AUTH PLAIN " + plain("bob@example.com", "pw", authz="root@example.com")) == (
        b"-ERR [AUTH] Authorization identity must be empty or the login\r\n"
    )
    bad_utf8 = base64.b64encode(b"\0bob\xff\0pw").decode()
    assert c.cmd("AUTH PLAIN " + bad_utf8) == b"-ERR AUTH response is not UTF-8\r\n"
    assert c.cmd("AUTH CRAM-MD5") == b"-ERR Unsupported authentication mechanism\r\n"
    assert c.cmd("AUTH PLAIN a b") == b"-ERR Syntax: AUTH mechanism [initial-response]\r\n"
    assert c.events == []


def test_auth_login_asks_user_name_then_password() -> None:
    c = Client()
    assert c.cmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6\r\n"
    assert c.cmd(base64.b64encode(b"bob@example.com").decode()) == b"+ UGFzc3dvcmQ6\r\n"
    assert c.cmd(base64.b64encode(b"pw pw").decode()).startswith(b"+OK")
    assert c.events == [Authenticate("bob@example.com", "pw pw", "LOGIN")]
    # With the user name as initial response; an empty one and '*' are refused.
    c = Client()
    assert c.cmd("AUTH LOGIN " + base64.b64encode(b"bob").decode()) == b"+ UGFzc3dvcmQ6\r\n"
    assert c.cmd("*") == b"-ERR Authentication cancelled\r\n"
    assert c.cmd("AUTH LOGIN =") == b"-ERR Empty user name\r\n"
    assert c.events == []


def test_auth_without_mechanism_lists_them() -> None:
    assert Client().cmd("AUTH") == (
        b"+OK Supported mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n"
    )
    insecure = Client(plaintext_allowed=False)
    assert insecure.cmd("AUTH") == b"+OK Supported mechanisms follow\r\n.\r\n"


def test_long_sasl_continuation_line_is_accepted() -> None:
    c = Client()
    assert c.cmd("AUTH PLAIN") == b"+ \r\n"
    response = plain("bob@example.com", "p" * 400)
    assert len(response) > 255
    assert c.cmd(response).startswith(b"+OK Logged in")
