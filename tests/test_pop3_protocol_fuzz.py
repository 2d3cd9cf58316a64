"""Random input never breaks the POP3 state machine or makes it say something malformed."""

from __future__ import annotations

import itertools
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
from nmail.protocols.pop3.lines import TOO_LONG, LineReader
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


class _ReferenceLines:
    """The plain line reader LineReader replaced (a bytearray, find, copy out):
    what it hands out, for any chunking, is the specification."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.skipping = False

    def lines(self, data: bytes, limit: int) -> list[bytes | None]:
        self.buffer += data
        out: list[bytes | None] = []  # None: TOO_LONG
        while True:
            if self.skipping:
                end = self.buffer.find(b"\n")
                if end < 0:
                    self.buffer.clear()
                    return out
                del self.buffer[: end + 1]
                self.skipping = False
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) >= limit:
                    self.buffer.clear()
                    self.skipping = True
                    out.append(None)
                return out
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            if len(line) + 1 > limit:
                out.append(None)
            else:
                out.append(line[:-1] if line.endswith(b"\r") else line)


_line_bytes = st.lists(
    st.one_of(
        st.sampled_from([b"RETR 1\r\n", b"NOOP\n", b"\r\n", b"\n", b"\r", b"x" * 20, b"\r\r\n"]),
        st.binary(max_size=40),
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(_line_bytes, st.lists(st.integers(min_value=0, max_value=400), max_size=12),
       st.sampled_from([8, 16, 255]))
def test_line_reader_hands_out_what_the_reference_does(
    data: bytes, cuts: list[int], limit: int
) -> None:
    reader, reference = LineReader(), _ReferenceLines()
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(bounds):
        chunk = data[start:end]
        reader.feed(chunk)
        got: list[bytes | None] = []
        while (line := reader.next_line(limit)) is not None:
            got.append(None if line is TOO_LONG else bytes(line))  # type: ignore[arg-type]
        assert got == reference.lines(chunk, limit)
        assert reader.pending == len(reference.buffer)
