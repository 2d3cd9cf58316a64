"""The one SASL exchange (PLAIN, LOGIN) that SMTP, POP3 and IMAP share: steps and bad input."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmail.protocols.sasl import (
    MECHANISMS,
    PASSWORD_PROMPT,
    USERNAME_PROMPT,
    Challenge,
    Credentials,
    Failure,
    SaslExchange,
    SaslFailure,
)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def test_plain_with_and_without_initial_response() -> None:
    assert SaslExchange("plain").start(None) == Challenge("")
    step = SaslExchange("PLAIN").start(b64(b"\0bob@example.com\0pw word"))
    assert step == Credentials("", "bob@example.com", "pw word")
    assert isinstance(step, Credentials) and not step.acts_as_other
    proxy = SaslExchange("PLAIN").feed(b64(b"root\0bob\0pw"))
    assert isinstance(proxy, Credentials) and proxy.acts_as_other
    same = SaslExchange("PLAIN").feed(b64(b"bob\0bob\0pw"))
    assert isinstance(same, Credentials) and not same.acts_as_other
    assert "pw" not in repr(step)  # the password stays out of logs


def test_login_asks_the_user_name_then_the_password() -> None:
    exchange = SaslExchange("LOGIN")
    assert exchange.start(None) == Challenge(USERNAME_PROMPT)
    assert exchange.feed(b64("김철수@example.com".encode())) == Challenge(PASSWORD_PROMPT)
    assert exchange.feed(b64(b"secret")) == Credentials("", "김철수@example.com", "secret")
    first = SaslExchange("LOGIN")
    assert first.start(b64(b"bob")) == Challenge(PASSWORD_PROMPT)


@pytest.mark.parametrize(
    ("mechanism", "line", "reason"),
    [
        ("PLAIN", "*", SaslFailure.CANCELLED),
        ("LOGIN", " * ", SaslFailure.CANCELLED),
        ("PLAIN", "!!!", SaslFailure.BAD_BASE64),
        ("PLAIN", "abc", SaslFailure.BAD_BASE64),  # bad padding
        ("PLAIN", "한국", SaslFailure.BAD_BASE64),
        ("PLAIN", "=", SaslFailure.MALFORMED),
        ("PLAIN", b64(b"no-nuls"), SaslFailure.MALFORMED),
        ("PLAIN", b64(b"\0\0pw"), SaslFailure.MALFORMED),
        ("PLAIN", b64(b"\0bob\0"), SaslFailure.MALFORMED),
        ("PLAIN", b64(b"a\0b\0c\0d"), SaslFailure.MALFORMED),
        ("PLAIN", b64(b"\0bob\xff\0pw"), SaslFailure.NOT_UTF8),
        ("LOGIN", "=", SaslFailure.EMPTY_USER_NAME),
        ("LOGIN", b64(b"\xc3"), SaslFailure.NOT_UTF8),
    ],
)
def test_bad_responses(mechanism: str, line: str, reason: SaslFailure) -> None:
    assert SaslExchange(mechanism).feed(line) == Failure(reason)


def test_unknown_mechanism_is_refused() -> None:
    # Unicode case mapping makes "pla\u0131n" (dotless i) and "\u017fLAIN" (long s) PLAIN.
    for name in ("CRAM-MD5", "XOAUTH2", "", "PLAIN ", "pla\u0131n", "\u017fLAIN", "LOG\u0130N"):
        with pytest.raises(ValueError):
            SaslExchange(name)
    assert MECHANISMS == ("PLAIN", "LOGIN")


@given(st.sampled_from(MECHANISMS), st.lists(st.text(max_size=60), min_size=1, max_size=4))
def test_any_lines_give_a_step_never_an_exception(mechanism: str, lines: list[str]) -> None:
    exchange = SaslExchange(mechanism)
    step = exchange.start(lines[0])
    for line in lines[1:]:
        if not isinstance(step, Challenge):
            break
        step = exchange.feed(line)
    assert isinstance(step, (Challenge, Credentials, Failure))
