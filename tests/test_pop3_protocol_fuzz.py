"""Random input never breaks the POP3 state machine or makes it say something malformed."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from nmail.protocols.pop3 import (
    Authenticate,
    Close,
    LoginFailure,
    Pop3Session,
    Retrieve,
    StartTls,
    State,
    Update,
)
from pop3_driver import ENTRIES, MESSAGES, plain

_verbs = st.sampled_from([
    "USER bob@example.com", "PASS x", "STAT", "LIST", "LIST 2", "UIDL", "UIDL 9", "RETR 1",
    "RETR 2", "TOP 2 0", "TOP 3 x", "DELE 1", "DELE 1", "RSET", "NOOP", "CAPA", "STLS",
    "AUTH", "AUTH PLAIN", "AUTH PLAIN " + plain("bob@example.com", "x"), "*", "QUIT", "APOP a b",
    "RETR 0", "LIST 99999999999999999999",
])
_pieces = st.one_of(
    _verbs.map(lambda v: v.encode() + b"\r\n"),
    st.lists(_verbs, min_size=1, max_size=8).map(
        lambda verbs: "".join(v + "\r\n" for v in verbs).encode()
    ),
    st.binary(max_size=300),
    st.just(b"X" * 400),
    st.just(b"\r\n"),
)


def _drive(session: Pop3Session, data: bytes, refuse: bool) -> None:
    """Answer events like the server would; logins fail when `refuse`."""
    session.receive_data(data)
    while (event := session.next_event()) is not None:
        if isinstance(event, Authenticate):
            if refuse:
                session.login_refused(LoginFailure.BAD_CREDENTIALS)
            else:
                session.login_accepted(ENTRIES)
        elif isinstance(event, Retrieve):
            session.message_whole(MESSAGES[event.entry.uid])
        elif isinstance(event, StartTls):
            session.tls_started()
        elif isinstance(event, Update):
            session.update_finished(True)
        elif isinstance(event, Close):
            return


# The positive answers that a multi-line body follows.
_BODY_START = re.compile(
    rb"\+OK (Capability list follows|Unique-ID listing follows|Top of message follows"
    rb"|Supported mechanisms follow|\d+ messages \(\d+ octets\)|\d+ octets)"
)


def _check_replies(output: bytes) -> None:
    """Every response is a +OK / -ERR / '+ ' line; multi-line ones end with '.'."""
    lines = output.split(b"\r\n")
    assert lines[-1] == b""
    in_body = False
    for line in lines[:-1]:
        if in_body:
            in_body = line != b"."
            continue
        assert line.startswith((b"+OK", b"-ERR", b"+ ")), line
        in_body = _BODY_START.fullmatch(line) is not None
    assert not in_body


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(_pieces, max_size=40), refuse=st.booleans(), tls=st.booleans())
def test_random_input(pieces: list[bytes], refuse: bool, tls: bool) -> None:
    session = Pop3Session(plaintext_allowed=True, tls_available=tls, max_errors=50)
    output = [session.data_to_send()]
    for piece in pieces:
        _drive(session, piece, refuse)
        output.append(session.data_to_send())
        if session.state is State.CLOSED:
            break
    _check_replies(b"".join(output))
    if refuse:
        assert session.state in (State.AUTHORIZATION, State.CLOSED)
