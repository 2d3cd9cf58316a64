"""Property-based tests: whatever bytes arrive, the SMTP connection stays sane."""

from __future__ import annotations

import itertools
import re

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nmail.policy.decision import ACCEPT, Decision
from nmail.protocols.smtp import (
    AuthCredentials,
    Data,
    Event,
    MessageData,
    SmtpConnection,
    SmtpOptions,
    StartTls,
)
from nmail.protocols.smtp.data import has_long_line

FRAGMENTS = [
    b"EHLO c.test\r\n",
    b"HELO c.test\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"MAIL FROM:<> SIZE=10 BODY=8BITMIME\r\n",
    b"RCPT TO:<b@test.local>\r\n",
    b"RCPT TO:<b@test.local> NOTIFY=NEVER\r\n",
    b"DATA\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY x\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN\r\n",
    b"AUTH PLAIN AGJvYgBwdw==\r\n",
    b"AGJvYgBwdw==\r\n",
    b"*\r\n",
    b".\r\n",
    b"..\r\n",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r.\r",
    b"\r\n.\n",
    b"\n.\r\n",
    b"\r\n",
    b"\r",
    b"\n",
    b".",
    b"x" * 600,
    b"y" * 1200 + b"\r\n",
    b"\xff\xfe",
    b"QUIT\r\n",
]
REPLY_LINE = re.compile(rb"\A[2-5][0-9]{2}[ -]")

streams = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=30)), max_size=60).map(
    b"".join
)


def run(stream: bytes, cuts: list[int], decide: list[bool]) -> tuple[list[Event], bytes]:
    """Feed `stream` split at `cuts`, answering decisions from `decide` (cycled)."""
    conn = SmtpConnection(
        SmtpOptions(max_message_size=2000, max_recipients=5, starttls_available=True),
        plaintext_auth_allowed=True,
    )
    events: list[Event] = []
    out = bytearray(conn.data_to_send())
    answers = iter(decide * 200 + [True] * 10000)
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(bounds):
        conn.receive_data(stream[start:end])
        while (event := conn.next_event()) is not None:
            events.append(event)
            if isinstance(event, StartTls):
                conn.tls_started()
            elif event.needs_decision:
                if next(answers):
                    if isinstance(event, AuthCredentials):
                        conn.auth_succeeded(event.username)
                    else:
                        conn.answer(ACCEPT)
                else:
                    conn.reject(Decision(550, "5.7.1", "No"))
        out += conn.data_to_send()
    return events, bytes(out)


def check_invariants(events: list[Event], out: bytes) -> None:
    # Every DATA yields at most one message: between two Data events, <= 1 MessageData.
    since_data: int | None = None
    for event in events:
        if isinstance(event, Data):
            since_data = 0
        elif isinstance(event, MessageData):
            assert since_data is not None, "message data without DATA"
            since_data += 1
            assert since_data == 1, "two messages for one DATA"
    # Replies are well formed, CRLF-terminated lines.
    assert out.endswith(b"\r\n") or out == b""
    for line in out.split(b"\r\n")[:-1]:
        assert REPLY_LINE.match(line), line


@settings(max_examples=400, deadline=None)
@given(streams, st.lists(st.integers(min_value=0), max_size=8), st.lists(st.booleans(), max_size=8))
def test_random_streams_never_raise(stream: bytes, cuts: list[int], decide: list[bool]) -> None:
    events, out = run(stream, cuts, decide)
    check_invariants(events, out)


@settings(max_examples=200, deadline=None)
@given(streams, st.lists(st.integers(min_value=0), max_size=8))
def test_chunking_does_not_change_the_outcome(stream: bytes, cuts: list[int]) -> None:
    # Except across STARTTLS, by design: what came in the same read as STARTTLS
    # is discarded (plaintext injection), what comes after the handshake is not.
    assume(b"STARTTLS" not in stream.upper())
    assert run(stream, [], []) == run(stream, cuts, [])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=8))
def test_arbitrary_bytes_never_raise(stream: bytes, cuts: list[int]) -> None:
    events, out = run(stream, cuts, [])
    check_invariants(events, out)


SMUGGLE = [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r\n.\r", b"\r.\r\n", b"\n", b"\r"]
CLEAN = [b"line\r\n", b"..dots\r\n", b"text", b"\r\n", b"MAIL FROM:<evil@x.example>\r\n"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(SMUGGLE + CLEAN), max_size=30),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_smuggled_terminators_never_split_a_message(parts: list[bytes], cuts: list[int]) -> None:
    body = b"".join(parts)
    content = b"x" + body + b"\r\n.\r\n"
    # Parts may join into a genuine CRLF.CRLF: that is the client ending its data.
    assume(content.find(b"\r\n.\r\n") == len(content) - 5)
    stream = (
        b"EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@test.local>\r\nDATA\r\n"
        + b"x"  # the body never starts with ".CRLF", which would end it at once
        + body
        + b"\r\n.\r\nQUIT\r\n"
    )
    events, out = run(stream, cuts, [])
    check_invariants(events, out)
    messages = [e for e in events if isinstance(e, MessageData)]
    bare = b"\r" in body.replace(b"\r\n", b"") or b"\n" in body.replace(b"\r\n", b"")
    if bare:
        assert messages == []
        assert b"554 5.6.0" in out
    else:
        assert len(messages) <= 1
    assert out.endswith(b"221 2.0.0 Bye\r\n")
    assert sum(1 for e in events if type(e).__name__ == "MailFrom") == 1


def longest_line(raw: bytes) -> int:
    return max(len(line) for line in raw.split(b"\r\n"))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.integers(min_value=0, max_value=1300), st.just(998), st.just(999))))
def test_long_line_check_agrees_with_splitting(lengths: list[int]) -> None:
    raw = b"\r\n".join(b"x" * n for n in lengths)
    assert has_long_line(raw) is (bool(lengths) and longest_line(raw) > 998)
