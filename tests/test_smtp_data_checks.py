"""DATA's line checks (protocols/smtp/data.py) against plain references, for any bytes.

has_long_line strides by rfind instead of walking 499-octet windows, and
line_problem leaves the line lengths to it instead of measuring the split's
pieces: both exist only to cost fewer instructions (bench/smtp_instructions.py),
so each is held here to the plain way (one line at a time) and to the walk it
replaced, on generated and hostile content: lines of 997-1000 octets at every
offset, bare CR and LF next to them, CR CR LF, LF CR, no final line ending,
content past the split limit.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from nmail.protocols.smtp.data import (
    SPLIT_CHECK_MAX,
    has_long_line,
    line_problem,
)
from nmail.protocols.smtp.replies import BARE_LINE_ENDING, TEXT_LINE_TOO_LONG, Reply

DIFF = settings(max_examples=1500, deadline=None)


def plain_long_line(raw: bytes) -> bool:
    """A line is what ends at an LF (a CR just before it is not text) or the content's end."""
    lines = raw.split(b"\n")
    for i, line in enumerate(lines):
        ends_with_lf = i < len(lines) - 1
        text = len(line) - (1 if ends_with_lf and line.endswith(b"\r") else 0)
        if text > 998:
            return True
    return False


def window_long_line(raw: bytes) -> bool:
    """has_long_line as it was before the strides: 499-octet windows."""
    limit = 998
    window = (limit + 1) // 2
    n = len(raw)
    pos = 0
    while pos + window <= n:
        if raw.find(b"\n", pos, pos + window) >= 0:
            pos += window
            continue
        start = raw.rfind(b"\n", 0, pos) + 1
        end = raw.find(b"\n", pos)
        if end < 0:
            end = n
        elif raw[end - 1 : end] == b"\r":
            end -= 1
        if end - start > limit:
            return True
        pos = end + 1
    return False


def plain_line_problem(raw: bytes) -> Reply | None:
    """The checks the plain way: CRLF removed, is a CR or LF left; the longest CRLF line."""
    rest = raw.replace(b"\r\n", b"")
    if b"\r" in rest or b"\n" in rest:
        return BARE_LINE_ENDING
    if max(len(line) for line in raw.split(b"\r\n")) > 998:
        return TEXT_LINE_TOO_LONG
    return None


PIECES = [
    b"\r\n", b"\r", b"\n", b"\n\r", b"\r\r\n", b"a", b".", b"\x00", b"\xff",
    b"x" * 80, b"x" * 997, b"x" * 998, b"x" * 999, b"x" * 1000, b"x" * 1997,
]


@DIFF
@given(st.lists(st.sampled_from(PIECES), max_size=40))
@example([b"x" * 998, b"\r"])
@example([b"x" * 999])
@example([b"x" * 998, b"\r", b"\n"])
@example([b"x" * 999, b"\r", b"\n"])
@example([b"x" * 997, b"\r", b"x", b"\n"])
def test_long_line_is_the_plain_one(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert has_long_line(raw) is plain_long_line(raw) is window_long_line(raw)


@DIFF
@given(st.lists(st.tuples(st.integers(0, 1100), st.sampled_from([b"\r\n", b"\n", b"\r", b""]))),
       st.binary(max_size=3))
def test_long_line_at_every_length_and_offset(lines: list[tuple[int, bytes]], lead: bytes) -> None:
    """Lines of any length, so the 999-octet strides fall on every place of a line."""
    raw = lead + b"".join(b"y" * n + end for n, end in lines)
    assert has_long_line(raw) is plain_long_line(raw) is window_long_line(raw)


@DIFF
@given(st.binary(max_size=3000))
def test_long_line_on_any_bytes(raw: bytes) -> None:
    assert has_long_line(raw) is plain_long_line(raw)


@DIFF
@given(st.lists(st.sampled_from(PIECES), max_size=40))
@example([b"x" * 999, b"\n"])  # bare comes before long
@example([b"a", b"\r\r\n"])
def test_line_problem_is_the_plain_one(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert line_problem(raw) == plain_line_problem(raw)


@DIFF
@given(st.binary(max_size=2000))
def test_line_problem_on_any_bytes(raw: bytes) -> None:
    assert line_problem(raw) == plain_line_problem(raw)


def test_line_problem_past_the_split_limit() -> None:
    body = (b"z" * 76 + b"\r\n") * (SPLIT_CHECK_MAX // 78 + 10)
    assert len(body) > SPLIT_CHECK_MAX
    for raw in (body, body + b"x" * 998 + b"\r\n", body + b"x" * 999 + b"\r\n",
                body + b"q\n", b"\r" + body, body + b"x" * 999):
        assert line_problem(raw) == plain_line_problem(raw)


def test_smtp_source_message() -> None:
    """smtp-source's 10 KB message, as the benchmark sends it, passes; each
    change of one line ending or length is seen."""
    head = b"From: <a@test.local>\r\nTo: <b@test.local>\r\n\r\n"
    body = b"".join(b"%d" % i + b"X" * 77 + b"\r\n" for i in range(1, 129))
    raw = head + body
    assert line_problem(raw) is None
    at = raw.index(b"\r\n", 5000)
    assert line_problem(raw[:at] + b"\n" + raw[at + 2:]) == BARE_LINE_ENDING
    assert line_problem(raw[:at] + b"\r" + raw[at + 2:]) == BARE_LINE_ENDING
    assert line_problem(raw[:at] + b"Y" * 999 + raw[at:]) == TEXT_LINE_TOO_LONG
